package saml

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/xmlsec"
	"github.com/avouch/avouch/internal/xmltext"
)

// Namespaces and URIs of the assertions we build.
const (
	NS20 = "urn:oasis:names:tc:SAML:2.0:assertion"
	NS11 = "urn:oasis:names:tc:SAML:1.0:assertion"

	CMBearer20      = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	CMBearer11      = "urn:oasis:names:tc:SAML:1.0:cm:bearer"
	CMHolderOfKey20 = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
	CMHolderOfKey11 = "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"
	NSXSI           = "http://www.w3.org/2001/XMLSchema-instance"

	AttrNameFormatURI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	NameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

	ACPassword                   = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
	ACPasswordProtectedTransport = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	ACX509                       = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
	ACTLSClient                  = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
	AMPassword11                 = "urn:oasis:names:tc:SAML:1.0:am:password"
	AMXMLDSig11                  = "urn:ietf:rfc:3075" // SAML 1.1 §7.1: XML Digital Signature
	AMTLSClient11                = "urn:ietf:rfc:2246" // SAML 1.1 §7.1: SSL/TLS certificate-based client authentication

	// NSDelegation is the namespace of the SAML V2.0 Condition for
	// Delegation Restriction.
	NSDelegation = "urn:oasis:names:tc:SAML:2.0:conditions:delegation"
)

// TimeFormat is how every protocol time is written: UTC, millisecond, Z.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Attribute is a claim: its URI and values.
type Attribute struct {
	Name   string
	Values []string
}

// Assertion is what the core asks a builder for. It is protocol-free data.
type Assertion struct {
	ID           string
	Issuer       string
	IssueInstant time.Time
	NotBefore    time.Time
	NotOnOrAfter time.Time
	Subject      string
	NameIDFormat string // default unspecified
	Audiences    []string
	AuthnInstant time.Time
	AuthnContext string // SAML 2.0 class ref; SAML 1.1 always uses am:password for passwords
	Attributes   []Attribute
	// KeyInfo, when set, makes the confirmation holder-of-key: it is the
	// serialised ds:KeyInfo element (proof key encrypted for the RP, or the
	// requestor's public key) placed in the SubjectConfirmation.
	KeyInfo []byte
	// DefaultNS writes the assertion in the default namespace
	// (<Assertion xmlns="…">), as ADFS does, for clients that cut tokens out by
	// text and expect no prefix.
	DefaultNS bool
	// Delegate, when set, is the NameID of the caller that obtained this
	// token ActAs/OnBehalfOf the subject: SAML 2.0 assertions carry it in a
	// del:DelegationRestrictionType condition (with DelegationInstant when
	// set); SAML 1.1 has no such condition and records it nowhere.
	Delegate          string
	DelegationInstant time.Time
}

// NewID returns a fresh assertion ID: "_", the time in milliseconds (48
// bits) and 128 random bits, in hex — an NCName, as xs:ID requires. The
// random part alone makes IDs unique and unguessable; the time prefix makes
// IDs issued close together sort together, so the token store appends to
// the end of its ID index instead of touching a random page of it per
// token (fewer pages written per commit). The issue time is in the
// assertion anyway.
func NewID() string {
	var b [22]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return "_" + hex.EncodeToString(b[:])
}

func ts(t time.Time) string { return t.UTC().Format(TimeFormat) }

// sortedAttributes returns a's attributes with names sorted (canonical order
// is irrelevant for elements, but stable output makes tests and diffs simple)
// and values kept in order.
func sortedAttributes(in []Attribute) []Attribute {
	out := append([]Attribute(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// el writes elements with one prefix (or none in default-namespace style).
type el struct {
	b      *bytes.Buffer
	prefix string // "saml2:" or ""
}

// The pieces are written one by one: concatenating them first would
// allocate a string per element and attribute (a few dozen per token).
func (w el) open(name string) { w.start(name); w.end() }
func (w el) close(name string) {
	w.b.WriteString("</")
	w.b.WriteString(w.prefix)
	w.b.WriteString(name)
	w.end()
}
func (w el) start(name string) {
	w.b.WriteByte('<')
	w.b.WriteString(w.prefix)
	w.b.WriteString(name)
}
func (w el) attr(k, v string) {
	w.b.WriteByte(' ')
	w.b.WriteString(k)
	w.b.WriteString(`="`)
	w.b.WriteString(xmltext.EscapeAttr(v))
	w.b.WriteByte('"')
}
func (w el) end() { w.b.WriteByte('>') }
func (w el) text(name, v string) {
	w.open(name)
	w.b.WriteString(xmltext.EscapeText(v))
	w.close(name)
}

// Build20 writes and signs a SAML 2.0 assertion with bearer confirmation.
func (s *Signer) Build20(a *Assertion) ([]byte, error) {
	var head, tail bytes.Buffer
	head.Grow(512)
	tail.Grow(2048 + 256*len(a.Attributes))
	w := el{b: &head, prefix: "saml2:"}
	if a.DefaultNS {
		w.prefix = ""
	}
	w.start("Assertion")
	if a.DefaultNS {
		head.WriteString(` xmlns="` + NS20 + `"`)
	} else {
		head.WriteString(` xmlns:saml2="` + NS20 + `"`)
	}
	w.attr("ID", a.ID)
	w.attr("IssueInstant", ts(a.IssueInstant))
	w.attr("Version", "2.0")
	w.end()
	w.text("Issuer", a.Issuer)

	w.b = &tail
	w.open("Subject")
	format := a.NameIDFormat
	if format == "" {
		format = NameIDUnspecified
	}
	w.start("NameID")
	w.attr("Format", format)
	w.end()
	tail.WriteString(xmltext.EscapeText(a.Subject))
	w.close("NameID")
	w.start("SubjectConfirmation")
	if a.KeyInfo != nil {
		w.attr("Method", CMHolderOfKey20)
		w.end()
		w.start("SubjectConfirmationData")
		tail.WriteString(` xmlns:xsi="` + NSXSI + `"`)
		w.attr("NotOnOrAfter", ts(a.NotOnOrAfter))
		// The QName in xsi:type resolves against the namespaces in scope:
		// saml2 is declared on the Assertion, or it is the default namespace.
		if a.DefaultNS {
			w.attr("xsi:type", "KeyInfoConfirmationDataType")
		} else {
			w.attr("xsi:type", "saml2:KeyInfoConfirmationDataType")
		}
		w.end()
		tail.Write(a.KeyInfo)
	} else {
		w.attr("Method", CMBearer20)
		w.end()
		w.start("SubjectConfirmationData")
		w.attr("NotOnOrAfter", ts(a.NotOnOrAfter))
		w.end()
	}
	w.close("SubjectConfirmationData")
	w.close("SubjectConfirmation")
	w.close("Subject")

	w.start("Conditions")
	w.attr("NotBefore", ts(a.NotBefore))
	w.attr("NotOnOrAfter", ts(a.NotOnOrAfter))
	w.end()
	if len(a.Audiences) > 0 {
		w.open("AudienceRestriction")
		for _, aud := range a.Audiences {
			w.text("Audience", aud)
		}
		w.close("AudienceRestriction")
	}
	if a.Delegate != "" {
		// xsi:type names a type in the del namespace: exclusive c14n keeps
		// xmlns:del on Condition only because the signature's PrefixList
		// says "del" (see signDelegated); xsi is visibly used.
		w.start("Condition")
		tail.WriteString(` xmlns:del="` + NSDelegation + `" xmlns:xsi="` + NSXSI + `"`)
		w.attr("xsi:type", "del:DelegationRestrictionType")
		w.end()
		tail.WriteString(`<del:Delegate`)
		if !a.DelegationInstant.IsZero() {
			w.attr("DelegationInstant", ts(a.DelegationInstant))
		}
		tail.WriteString(`>`)
		w.start("NameID")
		w.attr("Format", NameIDUnspecified)
		w.end()
		tail.WriteString(xmltext.EscapeText(a.Delegate))
		w.close("NameID")
		tail.WriteString(`</del:Delegate>`)
		w.close("Condition")
	}
	w.close("Conditions")

	w.start("AuthnStatement")
	w.attr("AuthnInstant", ts(a.AuthnInstant))
	w.attr("SessionIndex", a.ID)
	w.end()
	w.open("AuthnContext")
	ac := a.AuthnContext
	if ac == "" {
		ac = ACPassword
	}
	w.text("AuthnContextClassRef", ac)
	w.close("AuthnContext")
	w.close("AuthnStatement")

	if len(a.Attributes) > 0 {
		w.open("AttributeStatement")
		for _, at := range sortedAttributes(a.Attributes) {
			w.start("Attribute")
			w.attr("Name", at.Name)
			w.attr("NameFormat", AttrNameFormatURI)
			w.end()
			for _, v := range at.Values {
				w.text("AttributeValue", v)
			}
			w.close("Attribute")
		}
		w.close("AttributeStatement")
	}
	w.close("Assertion")
	if a.Delegate != "" {
		return s.signDelegated(head.Bytes(), tail.Bytes(), a.ID, "</"+w.prefix+"Issuer>", a.KeyInfo != nil)
	}
	if a.KeyInfo != nil {
		return s.signForeign(head.Bytes(), tail.Bytes(), nil, a.ID, "</"+w.prefix+"Issuer>")
	}
	return s.sign(head.Bytes(), tail.Bytes(), a.ID)
}

// splitClaimURI splits a claim URI at its last '/' into the SAML 1.1
// AttributeNamespace and AttributeName, as WIF/ADFS do. A URI without '/'
// (or ending in one) keeps an empty namespace... which SAML 1.1 forbids, so
// the whole URI becomes the name under the avouch namespace.
func splitClaimURI(uri string) (ns, name string) {
	i := strings.LastIndexByte(uri, '/')
	if i <= 0 || i == len(uri)-1 {
		return "urn:avouch:claims", uri
	}
	return uri[:i], uri[i+1:]
}

// Build11 writes and signs a SAML 1.1 assertion with bearer confirmation. The
// signature is the last child, as the SAML 1.1 schema requires.
func (s *Signer) Build11(a *Assertion) ([]byte, error) {
	var head bytes.Buffer
	head.Grow(2048 + 320*len(a.Attributes))
	w := el{b: &head, prefix: "saml:"}
	if a.DefaultNS {
		w.prefix = ""
	}
	w.start("Assertion")
	if a.DefaultNS {
		head.WriteString(` xmlns="` + NS11 + `"`)
	} else {
		head.WriteString(` xmlns:saml="` + NS11 + `"`)
	}
	w.attr("AssertionID", a.ID)
	w.attr("IssueInstant", ts(a.IssueInstant))
	w.attr("Issuer", a.Issuer)
	w.attr("MajorVersion", "1")
	w.attr("MinorVersion", "1")
	w.end()

	w.start("Conditions")
	w.attr("NotBefore", ts(a.NotBefore))
	w.attr("NotOnOrAfter", ts(a.NotOnOrAfter))
	w.end()
	if len(a.Audiences) > 0 {
		w.open("AudienceRestrictionCondition")
		for _, aud := range a.Audiences {
			w.text("Audience", aud)
		}
		w.close("AudienceRestrictionCondition")
	}
	w.close("Conditions")

	subject := func() {
		w.open("Subject")
		w.start("NameIdentifier")
		if a.NameIDFormat != "" {
			w.attr("Format", a.NameIDFormat)
		}
		w.end()
		head.WriteString(xmltext.EscapeText(a.Subject))
		w.close("NameIdentifier")
		w.open("SubjectConfirmation")
		if a.KeyInfo != nil {
			w.text("ConfirmationMethod", CMHolderOfKey11)
			head.Write(a.KeyInfo)
		} else {
			w.text("ConfirmationMethod", CMBearer11)
		}
		w.close("SubjectConfirmation")
		w.close("Subject")
	}

	w.start("AuthenticationStatement")
	w.attr("AuthenticationInstant", ts(a.AuthnInstant))
	switch a.AuthnContext {
	case ACX509:
		w.attr("AuthenticationMethod", AMXMLDSig11)
	case ACTLSClient:
		w.attr("AuthenticationMethod", AMTLSClient11)
	default:
		w.attr("AuthenticationMethod", AMPassword11)
	}
	w.end()
	subject()
	w.close("AuthenticationStatement")

	if len(a.Attributes) > 0 {
		w.open("AttributeStatement")
		subject()
		for _, at := range sortedAttributes(a.Attributes) {
			ns, name := splitClaimURI(at.Name)
			w.start("Attribute")
			w.attr("AttributeName", name)
			w.attr("AttributeNamespace", ns)
			w.end()
			for _, v := range at.Values {
				w.text("AttributeValue", v)
			}
			w.close("Attribute")
		}
		w.close("AttributeStatement")
	}
	tail := []byte("</" + w.prefix + "Assertion>")
	if a.KeyInfo != nil {
		return s.signForeign(head.Bytes(), tail, nil, a.ID, "")
	}
	return s.sign(head.Bytes(), tail, a.ID)
}

// delegationPrefixList is the InclusiveNamespaces PrefixList of assertions
// with a delegation condition: it keeps the declaration of the prefix that
// xsi:type="del:…" uses, which exclusive c14n would otherwise drop (the
// prefix is not visibly utilized by saml2:Condition).
const delegationPrefixList = "del"

// signDelegated signs an assertion carrying a delegation condition: as sign
// (or signForeign when foreign is set: the holder-of-key KeyInfo was written
// elsewhere and the whole assertion is canonicalized once, with the
// PrefixList), but with the PrefixList on the Reference's exclusive c14n
// transform. The bytes digested are the bytes sent.
func (s *Signer) signDelegated(head, tail []byte, id, after string, foreign bool) ([]byte, error) {
	if foreign {
		whole := append(append([]byte{}, head...), tail...)
		doc, err := safexml.Parse(whole, safexml.Limits{MaxBytes: 1 << 20, MaxDepth: 64})
		if err != nil {
			return nil, err
		}
		canon, err := xmlsec.Canonicalize(doc.Root(), xmlsec.C14NOptions{InclusivePrefixes: []string{delegationPrefixList}})
		if err != nil {
			return nil, err
		}
		i := bytes.Index(canon, []byte(after))
		if i < 0 {
			return nil, errors.New("saml: no Issuer in the canonical assertion")
		}
		head, tail = canon[:i+len(after)], canon[i+len(after):]
	}
	dh, err := hashFor(s.DigestAlgorithm)
	if err != nil {
		return nil, err
	}
	d := dh.New()
	d.Write(head)
	d.Write(tail)
	digest := base64.StdEncoding.EncodeToString(d.Sum(nil))
	signedInfo := func(b *bytes.Buffer, declareNS bool) {
		b.WriteString(`<ds:SignedInfo`)
		if declareNS {
			b.WriteString(` xmlns:ds="` + NSDSig + `"`)
		}
		b.WriteString(`><ds:CanonicalizationMethod Algorithm="` + AlgExcC14N + `"></ds:CanonicalizationMethod>`)
		b.WriteString(`<ds:SignatureMethod Algorithm="` + s.SignatureAlgorithm + `"></ds:SignatureMethod>`)
		b.WriteString(`<ds:Reference URI="#` + id + `"><ds:Transforms>`)
		b.WriteString(`<ds:Transform Algorithm="` + AlgEnveloped + `"></ds:Transform>`)
		b.WriteString(`<ds:Transform Algorithm="` + AlgExcC14N + `"><ec:InclusiveNamespaces xmlns:ec="` + AlgExcC14N +
			`" PrefixList="` + delegationPrefixList + `"></ec:InclusiveNamespaces></ds:Transform>`)
		b.WriteString(`</ds:Transforms><ds:DigestMethod Algorithm="` + s.DigestAlgorithm + `"></ds:DigestMethod>`)
		b.WriteString(`<ds:DigestValue>` + digest + `</ds:DigestValue></ds:Reference></ds:SignedInfo>`)
	}
	var si bytes.Buffer
	signedInfo(&si, true)
	sh, err := sigHashFor(s.SignatureAlgorithm)
	if err != nil {
		return nil, err
	}
	h := sh.New()
	h.Write(si.Bytes())
	sv, err := SignatureValue(s.Key, sh, h.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("saml: sign: %w", err)
	}
	certB64 := base64.StdEncoding.EncodeToString(s.Cert.Raw)
	var out bytes.Buffer
	out.Grow(len(head) + len(tail) + 1400 + len(certB64))
	out.Write(head)
	out.WriteString(`<ds:Signature xmlns:ds="` + NSDSig + `">`)
	signedInfo(&out, false)
	out.WriteString(`<ds:SignatureValue>` + base64.StdEncoding.EncodeToString(sv))
	out.WriteString(`</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + certB64)
	out.WriteString(`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>`)
	out.Write(tail)
	return out.Bytes(), nil
}
