package saml

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/xmlsec"
)

// Parsed is what a verified assertion says. Every field comes from the
// element the signature verifier returned, never from the document as
// received (signature wrapping cannot smuggle content in).
type Parsed struct {
	Version      string // NS20 or NS11
	ID           string
	Issuer       string
	IssueInstant time.Time
	Subject      string
	NotBefore    time.Time // zero when absent
	NotOnOrAfter time.Time // zero when absent
	Audiences    []string
	Attributes   []Attribute
}

// Errors of Verify.
var (
	ErrNotAssertion = errors.New("saml: not a SAML 1.1 or 2.0 assertion")
	ErrSignature    = errors.New("saml: signature does not verify")
	ErrMalformed    = errors.New("saml: malformed assertion")
)

// VerifyOptions choose the trusted keys and algorithms.
type VerifyOptions struct {
	Certs               []*x509.Certificate
	SignatureAlgorithms []string // empty = xmlsec defaults (no SHA-1)
	DigestAlgorithms    []string
}

// Verify checks the assertion's enveloped signature against the trusted
// certificates and parses the verified element.
func Verify(el *etree.Element, o VerifyOptions) (*Parsed, error) {
	if el == nil || el.Tag != "Assertion" {
		return nil, ErrNotAssertion
	}
	var idAttr string
	switch el.NamespaceURI() {
	case NS20:
		idAttr = "ID"
	case NS11:
		idAttr = "AssertionID"
	default:
		return nil, ErrNotAssertion
	}
	verified, _, err := xmlsec.VerifyEnveloped(el, xmlsec.VerifyOptions{Certs: o.Certs, IDAttribute: idAttr,
		SignatureAlgorithms: o.SignatureAlgorithms, DigestAlgorithms: o.DigestAlgorithms})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if verified.NamespaceURI() == NS20 {
		return parse20(verified)
	}
	return parse11(verified)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: bad time %q", ErrMalformed, s)
	}
	return t.UTC(), nil
}

// childrenNS returns el's children named local in ns.
func childrenNS(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for c := range el.ChildElementsSeq() {
		if c.Tag == local && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

func child(el *etree.Element, ns, local string) *etree.Element {
	if cs := childrenNS(el, ns, local); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

// fullText concatenates all text under el, so a comment splitting a value
// ("admin<!---->@evil") cannot truncate what we read.
func fullText(el *etree.Element) string {
	var b strings.Builder
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		for _, t := range e.Child {
			switch v := t.(type) {
			case *etree.CharData:
				b.WriteString(v.Data)
			case *etree.Element:
				walk(v)
			}
		}
	}
	walk(el)
	return strings.TrimSpace(b.String())
}

func parse20(a *etree.Element) (*Parsed, error) {
	p := &Parsed{Version: NS20, ID: a.SelectAttrValue("ID", "")}
	var err error
	if p.IssueInstant, err = parseTime(a.SelectAttrValue("IssueInstant", "")); err != nil {
		return nil, err
	}
	if iss := child(a, NS20, "Issuer"); iss != nil {
		p.Issuer = fullText(iss)
	}
	if subj := child(a, NS20, "Subject"); subj != nil {
		if n := child(subj, NS20, "NameID"); n != nil {
			p.Subject = fullText(n)
		}
	}
	if c := child(a, NS20, "Conditions"); c != nil {
		if p.NotBefore, err = parseTime(c.SelectAttrValue("NotBefore", "")); err != nil {
			return nil, err
		}
		if p.NotOnOrAfter, err = parseTime(c.SelectAttrValue("NotOnOrAfter", "")); err != nil {
			return nil, err
		}
		for _, ar := range childrenNS(c, NS20, "AudienceRestriction") {
			for _, au := range childrenNS(ar, NS20, "Audience") {
				p.Audiences = append(p.Audiences, fullText(au))
			}
		}
	}
	for _, st := range childrenNS(a, NS20, "AttributeStatement") {
		for _, at := range childrenNS(st, NS20, "Attribute") {
			attr := Attribute{Name: at.SelectAttrValue("Name", "")}
			for _, v := range childrenNS(at, NS20, "AttributeValue") {
				attr.Values = append(attr.Values, fullText(v))
			}
			p.Attributes = append(p.Attributes, attr)
		}
	}
	if p.ID == "" || p.Subject == "" {
		return nil, fmt.Errorf("%w: assertion without ID or subject", ErrMalformed)
	}
	return p, nil
}

func parse11(a *etree.Element) (*Parsed, error) {
	p := &Parsed{Version: NS11, ID: a.SelectAttrValue("AssertionID", ""), Issuer: a.SelectAttrValue("Issuer", "")}
	var err error
	if p.IssueInstant, err = parseTime(a.SelectAttrValue("IssueInstant", "")); err != nil {
		return nil, err
	}
	if c := child(a, NS11, "Conditions"); c != nil {
		if p.NotBefore, err = parseTime(c.SelectAttrValue("NotBefore", "")); err != nil {
			return nil, err
		}
		if p.NotOnOrAfter, err = parseTime(c.SelectAttrValue("NotOnOrAfter", "")); err != nil {
			return nil, err
		}
		for _, ar := range childrenNS(c, NS11, "AudienceRestrictionCondition") {
			for _, au := range childrenNS(ar, NS11, "Audience") {
				p.Audiences = append(p.Audiences, fullText(au))
			}
		}
	}
	for st := range a.ChildElementsSeq() {
		if st.NamespaceURI() != NS11 {
			continue
		}
		if subj := child(st, NS11, "Subject"); subj != nil && p.Subject == "" {
			if n := child(subj, NS11, "NameIdentifier"); n != nil {
				p.Subject = fullText(n)
			}
		}
		if st.Tag == "AttributeStatement" {
			for _, at := range childrenNS(st, NS11, "Attribute") {
				attr := Attribute{Name: at.SelectAttrValue("AttributeNamespace", "") + "/" + at.SelectAttrValue("AttributeName", "")}
				for _, v := range childrenNS(at, NS11, "AttributeValue") {
					attr.Values = append(attr.Values, fullText(v))
				}
				p.Attributes = append(p.Attributes, attr)
			}
		}
	}
	if p.ID == "" || p.Subject == "" {
		return nil, fmt.Errorf("%w: assertion without AssertionID or subject", ErrMalformed)
	}
	return p, nil
}
