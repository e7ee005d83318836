// Package wstrust is the WS-Trust SOAP front-end: it parses RequestSecurityToken
// messages of WS-Trust 2005/02, 1.3 (200512) and 1.4 (200802) into the core's
// request type, calls the core, and renders RSTR/RSTRC or faults. It knows the
// wire format and nothing of tokens or users.
package wstrust

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wssec"
)

// Namespaces.
const (
	NS13   = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	NS14   = "http://docs.oasis-open.org/ws-sx/ws-trust/200802"
	NS2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust"

	NSWSP2004 = "http://schemas.xmlsoap.org/ws/2004/09/policy"
	NSWSP2006 = "http://www.w3.org/2006/07/ws-policy"
	NSWSPW3C  = "http://www.w3.org/ns/ws-policy"

	NSWSA2005 = "http://www.w3.org/2005/08/addressing"
	NSWSA2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"

	NSWSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"

	TokenProfileSAML20 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
	TokenProfileSAML11 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"

	KeyTypeNoProofKey = "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"
)

// Version is a WS-Trust version, identified by its namespace.
type Version string

const (
	V13   Version = NS13
	V2005 Version = NS2005
)

// RequestType is the WS-Trust binding requested.
type RequestType string

const (
	Issue    RequestType = "Issue"
	Renew    RequestType = "Renew"
	Validate RequestType = "Validate"
	Cancel   RequestType = "Cancel"
)

// requestTypeOf maps a RequestType URI of either version to its binding.
func requestTypeOf(v Version, uri string) (RequestType, bool) {
	base := string(v) + "/"
	if !strings.HasPrefix(uri, base) {
		return "", false
	}
	rt := RequestType(strings.TrimPrefix(strings.TrimPrefix(uri, base), "Batch"))
	switch rt {
	case Issue, Renew, Validate, Cancel:
		return rt, true
	}
	return "", false
}

// RST is a parsed RequestSecurityToken.
type RST struct {
	Version     Version
	Context     string
	RequestType RequestType
	// TokenTypeURI is the TokenType as sent ("" when absent); TokenType its
	// canonical form for the core.
	TokenTypeURI  string
	TokenType     string
	KeyTypeURI    string
	KeyType       sts.KeyType
	AppliesTo     string
	Created       time.Time
	Expires       time.Time
	ClaimsDialect string
	Claims        []sts.ClaimRequest
	// Renewing (Issue): Allow="false" → not renewable; OK="true" → renewable
	// after expiry.
	NotRenewable     bool
	RenewAfterExpiry bool
	// Target of Renew/Validate/Cancel.
	Target sts.Target
	// Batch is true when the RequestType was one of the Batch* URIs.
	Batch bool
	// Holder-of-key request data.
	HoK sts.HoK
	// Delegation is the ActAs (WS-Trust 1.4) or OnBehalfOf element's token,
	// nil when the request has neither.
	Delegation *DelegationToken
}

func canonicalTokenType(uri string) string {
	switch uri {
	case sts.TokenSAML20, TokenProfileSAML20:
		return sts.TokenSAML20
	case sts.TokenSAML11, TokenProfileSAML11:
		return sts.TokenSAML11
	}
	return uri // refused by the core with a message naming it
}

func keyTypeOf(uri string) sts.KeyType {
	switch uri {
	case "", NS13 + "/Bearer", NS2005 + "/Bearer", KeyTypeNoProofKey:
		return sts.KeyBearer
	case NS13 + "/SymmetricKey", NS2005 + "/SymmetricKey":
		return sts.KeySymmetric
	case NS13 + "/PublicKey", NS2005 + "/PublicKey":
		return sts.KeyPublic
	}
	return sts.KeyUnknown
}

// invalid is a parse failure reported as wst:InvalidRequest.
func invalid(msg string) error { return &sts.Error{Code: sts.CodeInvalidRequest, Msg: msg} }

func isPolicyNS(ns string) bool { return ns == NSWSP2004 || ns == NSWSP2006 || ns == NSWSPW3C }
func isWSANS(ns string) bool    { return ns == NSWSA2005 || ns == NSWSA2004 }

// ParseRST reads an RST element. Children may come in any order; unknown
// children are ignored (no schema validation), duplicates are refused.
func ParseRST(el *etree.Element) (*RST, error) {
	v := Version(el.NamespaceURI())
	if v != V13 && v != V2005 {
		return nil, invalid("unsupported WS-Trust namespace")
	}
	r := &RST{Version: v, Context: el.SelectAttrValue("Context", "")}
	seen := map[string]bool{}
	once := func(name string) error {
		if seen[name] {
			return invalid("duplicate " + name + " element")
		}
		seen[name] = true
		return nil
	}
	var requestTypeURI string
	for c := range el.ChildElementsSeq() {
		ns := c.NamespaceURI()
		switch {
		case ns == string(v) && c.Tag == "RequestType":
			if err := once("RequestType"); err != nil {
				return nil, err
			}
			requestTypeURI = strings.TrimSpace(c.Text())
		case ns == string(v) && c.Tag == "TokenType":
			if err := once("TokenType"); err != nil {
				return nil, err
			}
			r.TokenTypeURI = strings.TrimSpace(c.Text())
			r.TokenType = canonicalTokenType(r.TokenTypeURI)
		case ns == string(v) && c.Tag == "KeyType":
			if err := once("KeyType"); err != nil {
				return nil, err
			}
			r.KeyTypeURI = strings.TrimSpace(c.Text())
		case isPolicyNS(ns) && c.Tag == "AppliesTo":
			if err := once("AppliesTo"); err != nil {
				return nil, err
			}
			addr, err := appliesToAddress(c)
			if err != nil {
				return nil, err
			}
			r.AppliesTo = addr
		case ns == string(v) && c.Tag == "Lifetime":
			if err := once("Lifetime"); err != nil {
				return nil, err
			}
			if err := r.parseLifetime(c); err != nil {
				return nil, err
			}
		case ns == string(v) && c.Tag == "Renewing":
			if err := once("Renewing"); err != nil {
				return nil, err
			}
			r.NotRenewable = isFalse(c.SelectAttrValue("Allow", "true"))
			r.RenewAfterExpiry = isTrue(c.SelectAttrValue("OK", "false"))
		case ns == string(v) && (c.Tag == "RenewTarget" || c.Tag == "ValidateTarget" || c.Tag == "CancelTarget"):
			if err := once("Target"); err != nil {
				return nil, err
			}
			t, err := parseTarget(c)
			if err != nil {
				return nil, err
			}
			r.Target = t
		case ns == string(v) && c.Tag == "Entropy":
			if err := once("Entropy"); err != nil {
				return nil, err
			}
			bs := c.SelectElement("BinarySecret")
			if bs == nil || bs.NamespaceURI() != string(v) {
				return nil, invalid("Entropy must hold a BinarySecret")
			}
			e, err := base64.StdEncoding.DecodeString(strings.TrimSpace(bs.Text()))
			if err != nil || len(e) == 0 {
				return nil, invalid("Entropy BinarySecret is not valid base64")
			}
			r.HoK.ClientEntropy = e
		case ns == string(v) && c.Tag == "KeySize":
			if err := once("KeySize"); err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(strings.TrimSpace(c.Text()))
			if err != nil || n <= 0 {
				return nil, invalid("KeySize must be a positive integer")
			}
			r.HoK.KeySize = n
		case ns == string(v) && c.Tag == "UseKey":
			if err := once("UseKey"); err != nil {
				return nil, err
			}
			if err := parseUseKey(c, &r.HoK); err != nil {
				return nil, err
			}
		case (ns == string(v) && c.Tag == "OnBehalfOf") || (ns == NS14 && c.Tag == "ActAs"):
			if err := once("ActAs/OnBehalfOf"); err != nil {
				return nil, invalid("a request may hold one ActAs or OnBehalfOf, not several")
			}
			d, err := parseDelegation(c)
			if err != nil {
				return nil, err
			}
			r.Delegation = d
		case ns == string(v) && c.Tag == "Claims":
			if err := once("Claims"); err != nil {
				return nil, err
			}
			r.ClaimsDialect = strings.TrimSpace(c.SelectAttrValue("Dialect", ""))
			if r.ClaimsDialect == "" {
				return nil, invalid("Claims without Dialect")
			}
			for ct := range c.ChildElementsSeq() {
				if ct.Tag != "ClaimType" {
					continue
				}
				uri := strings.TrimSpace(ct.SelectAttrValue("Uri", ""))
				opt := strings.TrimSpace(ct.SelectAttrValue("Optional", "false"))
				r.Claims = append(r.Claims, sts.ClaimRequest{URI: uri, Optional: opt == "true" || opt == "1"})
			}
		}
	}
	if requestTypeURI == "" {
		return nil, invalid("missing RequestType")
	}
	rt, ok := requestTypeOf(v, requestTypeURI)
	if !ok {
		return nil, invalid("unsupported RequestType " + requestTypeURI)
	}
	r.RequestType = rt
	r.Batch = strings.HasPrefix(strings.TrimPrefix(requestTypeURI, string(v)+"/"), "Batch")
	r.KeyType = keyTypeOf(r.KeyTypeURI)
	if rt != Issue && r.Target.Element == nil && r.Target.ID == "" {
		return nil, invalid(string(rt) + " requires a " + string(rt) + "Target")
	}
	return r, nil
}

func isTrue(s string) bool  { s = strings.TrimSpace(s); return s == "true" || s == "1" }
func isFalse(s string) bool { s = strings.TrimSpace(s); return s == "false" || s == "0" }

// SAML assertion and reference namespaces accepted in targets.
const (
	nsSAML20 = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsSAML11 = "urn:oasis:names:tc:SAML:1.0:assertion"
)

// parseTarget reads a Renew/Validate/CancelTarget: the token itself, or a
// wsse:SecurityTokenReference to it by KeyIdentifier (SAMLID,
// SAMLAssertionID) or by a same-document Reference.
func parseTarget(el *etree.Element) (sts.Target, error) {
	kids := el.ChildElements()
	if len(kids) != 1 {
		return sts.Target{}, invalid(el.Tag + " must hold exactly one token or reference")
	}
	c := kids[0]
	switch {
	case c.Tag == "Assertion" && (c.NamespaceURI() == nsSAML20 || c.NamespaceURI() == nsSAML11):
		return sts.Target{Element: c}, nil
	case c.Tag == "SecurityTokenReference" && c.NamespaceURI() == wssec.NSWSSE:
		for r := range c.ChildElementsSeq() {
			if r.NamespaceURI() != wssec.NSWSSE {
				continue
			}
			switch r.Tag {
			case "KeyIdentifier":
				if id := strings.TrimSpace(r.Text()); id != "" {
					return sts.Target{ID: id}, nil
				}
			case "Reference":
				if uri := strings.TrimSpace(r.SelectAttrValue("URI", "")); strings.HasPrefix(uri, "#") && len(uri) > 1 {
					return sts.Target{ID: uri[1:]}, nil
				}
			}
		}
		return sts.Target{}, invalid("SecurityTokenReference without a usable KeyIdentifier or Reference")
	}
	return sts.Target{}, invalid(el.Tag + " holds an unsupported token {" + c.NamespaceURI() + "}" + c.Tag)
}

// appliesToAddress returns the address of the EndpointReference in AppliesTo.
func appliesToAddress(at *etree.Element) (string, error) {
	for c := range at.ChildElementsSeq() {
		if !isWSANS(c.NamespaceURI()) {
			continue
		}
		switch c.Tag {
		case "EndpointReference":
			for a := range c.ChildElementsSeq() {
				if a.Tag == "Address" && isWSANS(a.NamespaceURI()) {
					if s := strings.TrimSpace(a.Text()); s != "" {
						return s, nil
					}
				}
			}
			return "", invalid("AppliesTo EndpointReference without Address")
		case "Address": // tolerated: an Address without its EndpointReference
			if s := strings.TrimSpace(c.Text()); s != "" {
				return s, nil
			}
		}
	}
	return "", invalid("AppliesTo must hold a WS-Addressing EndpointReference")
}

func (r *RST) parseLifetime(el *etree.Element) error {
	for c := range el.ChildElementsSeq() {
		if c.NamespaceURI() != wssec.NSWSU {
			continue
		}
		t, err := wssec.ParseTime(c.Text())
		switch c.Tag {
		case "Created":
			if err != nil {
				return &sts.Error{Code: sts.CodeInvalidTimeRange, Msg: "Lifetime Created is not a valid dateTime"}
			}
			r.Created = t
		case "Expires":
			if err != nil {
				return &sts.Error{Code: sts.CodeInvalidTimeRange, Msg: "Lifetime Expires is not a valid dateTime"}
			}
			r.Expires = t
		}
	}
	if !r.Created.IsZero() && !r.Expires.IsZero() && !r.Expires.After(r.Created) {
		return &sts.Error{Code: sts.CodeInvalidTimeRange, Msg: "Lifetime Expires is not after Created"}
	}
	return nil
}

const (
	nsDSig = "http://www.w3.org/2000/09/xmldsig#"
	x509v3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)

// parseUseKey reads the requestor's public key: a wsse:BinarySecurityToken
// (X509v3), a ds:KeyInfo with X509Data/X509Certificate, or an RSAKeyValue.
func parseUseKey(el *etree.Element, h *sts.HoK) error {
	for c := range el.ChildElementsSeq() {
		switch {
		case c.Tag == "BinarySecurityToken" && c.NamespaceURI() == wssec.NSWSSE:
			if vt := c.SelectAttrValue("ValueType", x509v3); vt != x509v3 {
				return invalid("UseKey BinarySecurityToken must be X509v3")
			}
			return certInto(c.Text(), h)
		case c.Tag == "KeyInfo" && c.NamespaceURI() == nsDSig:
			if xc := c.FindElement("./X509Data/X509Certificate"); xc != nil {
				return certInto(xc.Text(), h)
			}
			if kv := c.FindElement("./KeyValue/RSAKeyValue"); kv != nil {
				return rsaInto(kv, h)
			}
			return invalid("UseKey KeyInfo must hold an X509Certificate or an RSAKeyValue")
		case c.Tag == "KeyValue" && c.NamespaceURI() == nsDSig:
			if kv := c.SelectElement("RSAKeyValue"); kv != nil {
				return rsaInto(kv, h)
			}
		}
	}
	return invalid("UseKey must hold an X.509 certificate or an RSA key value")
}

func certInto(b64 string, h *sts.HoK) error {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
	if err != nil {
		return invalid("UseKey certificate is not valid base64")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return invalid("UseKey certificate does not parse")
	}
	h.UseKeyCert = cert
	return nil
}

func rsaInto(kv *etree.Element, h *sts.HoK) error {
	m, e := kv.SelectElement("Modulus"), kv.SelectElement("Exponent")
	if m == nil || e == nil {
		return invalid("RSAKeyValue needs Modulus and Exponent")
	}
	mb, err1 := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m.Text()), ""))
	eb, err2 := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(e.Text()), ""))
	if err1 != nil || err2 != nil || len(mb) < 128 || len(mb) > 1024 || len(eb) == 0 || len(eb) > 4 {
		return invalid("RSAKeyValue is not a usable RSA public key (at least 1024 bits)")
	}
	exp := new(big.Int).SetBytes(eb)
	h.UseKeyRSA = &rsa.PublicKey{N: new(big.Int).SetBytes(mb), E: int(exp.Int64())}
	return nil
}
