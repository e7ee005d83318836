package wssec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/xmlsec"
)

// More fault local names (WS-Security 1.1 §12).
const (
	FaultFailedCheck          = "FailedCheck"
	FaultUnsupportedAlgorithm = "UnsupportedAlgorithm"
)

// X.509 Token Profile 1.1 and WS-Security 1.1 URIs.
const (
	X509v3         = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
	X509SKI        = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
	ThumbprintSHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"

	NSWSA2005 = "http://www.w3.org/2005/08/addressing"
	NSWSA2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
)

// Algorithms accepted in signed requests by default.
var (
	requestSignatureAlgorithms = []string{xmlsec.AlgRSASHA1, xmlsec.AlgRSASHA256, xmlsec.AlgRSASHA512}
	requestDigestAlgorithms    = []string{xmlsec.AlgSHA1, xmlsec.AlgSHA256, xmlsec.AlgSHA512}
)

// verifySignedRequest checks the request signature of the X.509 Token
// Profile: one ds:Signature in the Security header, made with a certificate
// the trust store vouches for, over the real soap:Body, the Timestamp of
// this Security header and every WS-Addressing header.
//
// Signature wrapping is defeated by construction: every ID in the whole
// envelope must be unique, and an ID resolves only to the element in the
// place the profile puts it (the Body as the Envelope's child, a Timestamp,
// BinarySecurityToken or UsernameToken as this Security header's child, a
// WS-Addressing block as a Header child). A copy elsewhere, a second Body,
// an element hidden in ds:Object: none can be what a Reference names.
func (p *Processor) verifySignedRequest(ctx context.Context, req *Request) (*xmlsec.DetachedSignature, *x509.Certificate, *CertIdentity, error) {
	sec := req.Security
	var sig, ts *etree.Element
	for c := range sec.ChildElementsSeq() {
		switch {
		case c.Tag == "Signature" && c.NamespaceURI() == xmlsec.NamespaceDSig:
			if sig != nil {
				return nil, nil, nil, fail(FaultInvalidSecurity, "more than one ds:Signature in the Security header")
			}
			sig = c
		case c.Tag == "Timestamp" && c.NamespaceURI() == NSWSU:
			if ts != nil {
				return nil, nil, nil, fail(FaultInvalidSecurity, "more than one Timestamp")
			}
			ts = c
		}
	}
	ids, err := xmlsec.IndexIDs(req.Envelope)
	if err != nil {
		return nil, nil, nil, &Error{Code: FaultInvalidSecurity, Msg: "an ID value is used more than once in the message", Err: err}
	}
	cert, err := p.signingCertificate(ctx, sig, sec, ids)
	if err != nil {
		return nil, nil, nil, err
	}
	// Trust before cryptography: a certificate nobody vouches for costs no
	// digest work.
	id, err := p.IdentifyCertificate(ctx, cert, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	allowed := map[*etree.Element]bool{req.Body: true}
	for c := range sec.ChildElementsSeq() {
		switch {
		case c.NamespaceURI() == NSWSU && c.Tag == "Timestamp",
			c.NamespaceURI() == NSWSSE && (c.Tag == "BinarySecurityToken" || c.Tag == "UsernameToken"):
			allowed[c] = true
		}
	}
	var wsa []*etree.Element
	if req.Header != nil {
		for c := range req.Header.ChildElementsSeq() {
			if ns := c.NamespaceURI(); ns == NSWSA2005 || ns == NSWSA2004 {
				allowed[c] = true
				wsa = append(wsa, c)
			}
		}
	}
	resolve := func(id string) (*etree.Element, error) {
		el, ok := ids[id]
		if !ok {
			return nil, errors.New("no element carries this ID")
		}
		if !allowed[el] {
			return nil, fmt.Errorf("names %s, which is not the Body, a Timestamp, token or WS-Addressing header in its place", el.Tag)
		}
		return el, nil
	}
	sigAlgs, digAlgs := p.SignatureAlgorithms, p.DigestAlgorithms
	if len(sigAlgs) == 0 {
		sigAlgs = requestSignatureAlgorithms
	}
	if len(digAlgs) == 0 {
		digAlgs = requestDigestAlgorithms
	}
	d, err := xmlsec.VerifyDetached(sig, resolve, xmlsec.DetachedOptions{Certs: []*x509.Certificate{cert},
		SignatureAlgorithms: sigAlgs, DigestAlgorithms: digAlgs})
	if err != nil {
		return nil, nil, nil, signatureError(err)
	}
	if !d.Covers(req.Body) {
		return nil, nil, nil, fail(FaultInvalidSecurity, "the signature does not cover the soap:Body")
	}
	if ts == nil {
		return nil, nil, nil, fail(FaultInvalidSecurity, "a signed request needs a wsu:Timestamp in its Security header")
	}
	if !d.Covers(ts) {
		return nil, nil, nil, fail(FaultInvalidSecurity, "the signature does not cover the wsu:Timestamp")
	}
	for _, h := range wsa {
		if !d.Covers(h) {
			return nil, nil, nil, fail(FaultInvalidSecurity, "the signature does not cover the WS-Addressing header %s", h.Tag)
		}
	}
	return d, cert, id, nil
}

// signatureError maps verifier errors to WS-Security faults. Messages name
// the class of failure, never which certificate or element was expected.
func signatureError(err error) error {
	var code, msg string
	switch {
	case errors.Is(err, xmlsec.ErrBadDigest), errors.Is(err, xmlsec.ErrBadSignature):
		code, msg = FaultFailedCheck, "the signature does not verify"
	case errors.Is(err, xmlsec.ErrAlgorithmNotAllowed):
		code, msg = FaultUnsupportedAlgorithm, "the signature uses an algorithm or transform that is not accepted"
	case errors.Is(err, xmlsec.ErrUntrustedKey):
		code, msg = FaultFailedAuthentication, CertificateFailure
	case errors.Is(err, xmlsec.ErrBadReference):
		code, msg = FaultInvalidSecurity, "a signature reference does not name the Body, the Timestamp or a header in its place"
	default:
		code, msg = FaultInvalidSecurity, "the signature is malformed"
	}
	return &Error{Code: code, Msg: msg, Err: err}
}

// claimSignature records the SignatureValue as a nonce until the signed
// Timestamp expires: a captured signed request cannot be replayed, on any
// node sharing the database.
func (p *Processor) claimSignature(ctx context.Context, d *xmlsec.DetachedSignature, ts *Timestamp, now time.Time) error {
	until := ts.Created.Add(p.MaxAge + 2*p.Skew)
	if !ts.Expires.IsZero() {
		until = ts.Expires.Add(p.Skew)
	}
	if !until.After(now) {
		until = now.Add(p.Skew + time.Second)
	}
	sum := sha256.Sum256(d.Value)
	key := "sig:" + base64.StdEncoding.EncodeToString(sum[:])
	if err := p.Replay.ClaimNonce(ctx, key, now, until); errors.Is(err, storage.ErrAlreadyExists) {
		return fail(FaultInvalidSecurity, "this signed message has already been received (replay)")
	} else if err != nil {
		return &Error{Code: "RequestFailed", Msg: "the replay cache is unavailable", Err: err}
	}
	return nil
}

// signingCertificate reads ds:KeyInfo: a wsse:SecurityTokenReference to a
// BinarySecurityToken of this header, a KeyIdentifier (X509v3 certificate,
// SubjectKeyIdentifier, ThumbprintSHA1), ds:X509Data (certificate, issuer
// and serial, SKI) inside it or directly in KeyInfo. The certificate is
// only a candidate: IdentifyCertificate decides whether anything vouches
// for it. When KeyInfo carries the certificate and also hints, the hints
// must describe that certificate; hints alone can only find a registered
// certificate.
func (p *Processor) signingCertificate(ctx context.Context, sig, sec *etree.Element, ids map[string]*etree.Element) (*x509.Certificate, error) {
	var ki *etree.Element
	for c := range sig.ChildElementsSeq() {
		if c.Tag == "KeyInfo" && c.NamespaceURI() == xmlsec.NamespaceDSig {
			ki = c
		}
	}
	if ki == nil {
		return nil, fail(FaultInvalidSecurity, "the signature has no KeyInfo")
	}
	var cert *x509.Certificate
	var hints []func(*x509.Certificate) bool
	setCert := func(der []byte) error {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fail(FaultInvalidSecurityToken, "the signing certificate does not parse")
		}
		if cert != nil && !cert.Equal(c) {
			return fail(FaultInvalidSecurity, "KeyInfo names two different certificates")
		}
		cert = c
		return nil
	}
	x509Data := func(xd *etree.Element) error {
		for c := range xd.ChildElementsSeq() {
			if c.NamespaceURI() != xmlsec.NamespaceDSig {
				continue
			}
			switch c.Tag {
			case "X509Certificate":
				der, err := b64(c.Text())
				if err != nil {
					return fail(FaultInvalidSecurityToken, "X509Certificate is not valid base64")
				}
				if err := setCert(der); err != nil {
					return err
				}
			case "X509IssuerSerial":
				var issuer, serial string
				for f := range c.ChildElementsSeq() {
					switch f.Tag {
					case "X509IssuerName":
						issuer = f.Text()
					case "X509SerialNumber":
						serial = strings.TrimSpace(f.Text())
					}
				}
				if serial == "" {
					// An empty template (python-xmlsec leaves
					// <X509IssuerSerial/> unfilled): no hint.
					continue
				}
				n, ok := new(big.Int).SetString(serial, 10)
				if !ok {
					return fail(FaultInvalidSecurityToken, "X509SerialNumber is not a decimal integer")
				}
				hints = append(hints, func(c *x509.Certificate) bool {
					return c.SerialNumber.Cmp(n) == 0 && sameDN(c.Issuer.String(), issuer)
				})
			case "X509SKI":
				ski, err := b64(c.Text())
				if err != nil {
					return fail(FaultInvalidSecurityToken, "X509SKI is not valid base64")
				}
				hints = append(hints, func(c *x509.Certificate) bool { return bytes.Equal(c.SubjectKeyId, ski) })
			}
		}
		return nil
	}
	for c := range ki.ChildElementsSeq() {
		switch {
		case c.Tag == "SecurityTokenReference" && c.NamespaceURI() == NSWSSE:
			for r := range c.ChildElementsSeq() {
				switch {
				case r.Tag == "Reference" && r.NamespaceURI() == NSWSSE:
					uri := strings.TrimSpace(r.SelectAttrValue("URI", ""))
					if !strings.HasPrefix(uri, "#") {
						return nil, fail(FaultUnsupportedSecurityToken, "only same-message token references are supported")
					}
					bst := ids[uri[1:]]
					if bst == nil || bst.Parent() != sec || bst.Tag != "BinarySecurityToken" || bst.NamespaceURI() != NSWSSE {
						return nil, fail(FaultInvalidSecurity, "the token reference does not name a BinarySecurityToken of this Security header")
					}
					if vt := bst.SelectAttrValue("ValueType", ""); vt != X509v3 {
						return nil, fail(FaultUnsupportedSecurityToken, "unsupported BinarySecurityToken ValueType %q", vt)
					}
					if enc := bst.SelectAttrValue("EncodingType", Base64Binary); enc != Base64Binary {
						return nil, fail(FaultUnsupportedSecurityToken, "unsupported BinarySecurityToken EncodingType %q", enc)
					}
					der, err := b64(bst.Text())
					if err != nil {
						return nil, fail(FaultInvalidSecurityToken, "BinarySecurityToken is not valid base64")
					}
					if err := setCert(der); err != nil {
						return nil, err
					}
				case r.Tag == "KeyIdentifier" && r.NamespaceURI() == NSWSSE:
					if enc := r.SelectAttrValue("EncodingType", Base64Binary); enc != Base64Binary {
						return nil, fail(FaultUnsupportedSecurityToken, "unsupported KeyIdentifier EncodingType %q", enc)
					}
					v, err := b64(r.Text())
					if err != nil {
						return nil, fail(FaultInvalidSecurityToken, "KeyIdentifier is not valid base64")
					}
					switch vt := r.SelectAttrValue("ValueType", ""); vt {
					case X509v3:
						if err := setCert(v); err != nil {
							return nil, err
						}
					case X509SKI:
						hints = append(hints, func(c *x509.Certificate) bool { return bytes.Equal(c.SubjectKeyId, v) })
					case ThumbprintSHA1:
						hints = append(hints, func(c *x509.Certificate) bool { return bytes.Equal(thumbprintSHA1(c), v) })
					default:
						return nil, fail(FaultUnsupportedSecurityToken, "unsupported KeyIdentifier ValueType %q", vt)
					}
				case r.Tag == "X509Data" && r.NamespaceURI() == xmlsec.NamespaceDSig:
					if err := x509Data(r); err != nil {
						return nil, err
					}
				default:
					return nil, fail(FaultUnsupportedSecurityToken, "unsupported SecurityTokenReference content %s", r.Tag)
				}
			}
		case c.Tag == "X509Data" && c.NamespaceURI() == xmlsec.NamespaceDSig:
			if err := x509Data(c); err != nil {
				return nil, err
			}
		default:
			// KeyName, KeyValue, RetrievalMethod, ...: a bare key proves
			// nothing about who holds it.
			return nil, fail(FaultUnsupportedSecurityToken, "unsupported KeyInfo content %s", c.Tag)
		}
	}
	match := func(c *x509.Certificate) bool {
		for _, h := range hints {
			if !h(c) {
				return false
			}
		}
		return true
	}
	switch {
	case cert != nil && !match(cert):
		return nil, fail(FaultInvalidSecurity, "KeyInfo names two different certificates")
	case cert != nil:
		return cert, nil
	case len(hints) == 0:
		return nil, fail(FaultInvalidSecurity, "KeyInfo names no certificate")
	}
	return p.certByHint(ctx, match)
}

func b64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}

// sameDN compares distinguished names written by different libraries:
// RDNs in either order, case and spaces around separators ignored.
func sameDN(a, b string) bool {
	norm := func(s string) string {
		parts := strings.Split(s, ",")
		for i, p := range parts {
			kv := strings.SplitN(p, "=", 2)
			for j := range kv {
				kv[j] = strings.ToLower(strings.TrimSpace(kv[j]))
			}
			parts[i] = strings.Join(kv, "=")
		}
		sort.Strings(parts)
		return strings.Join(parts, ",")
	}
	return norm(a) == norm(b)
}
