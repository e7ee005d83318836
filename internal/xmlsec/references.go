package xmlsec

import (
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	"github.com/beevik/etree"
)

// DetachedOptions says what VerifyDetached trusts and accepts.
type DetachedOptions struct {
	// Certs are the candidate signing certificates. The caller chooses them
	// from its own trust store (WS-Security's SecurityTokenReference is the
	// caller's business, not this package's); a certificate inside KeyInfo
	// X509Data may only select one of them, never add one.
	Certs []*x509.Certificate
	// SignatureAlgorithms and DigestAlgorithms are allow-lists; empty means
	// DefaultSignatureAlgorithms / DefaultDigestAlgorithms (no SHA-1).
	SignatureAlgorithms, DigestAlgorithms []string
	// MaxReferences bounds the work one signature may ask for; 0 means 16.
	MaxReferences int
}

// VerifiedReference is one Reference of a detached signature whose digest
// matched.
type VerifiedReference struct {
	// ID is the referenced ID (the URI without its "#").
	ID string
	// Element is what the resolver returned for ID. Its exclusive canonical
	// form (without comments) is what was digested; comments inside it are
	// not signed (etree's Element.Text skips them), processing instructions
	// are.
	Element *etree.Element
	// Canonical is exactly the digested octets.
	Canonical []byte
}

// DetachedSignature is the result of a successful VerifyDetached.
type DetachedSignature struct {
	// Cert is the certificate of opts.Certs whose key verified SignatureValue.
	Cert *x509.Certificate
	// SignatureMethod and the References' DigestMethods that were used.
	SignatureMethod string
	References      []VerifiedReference
	// Value is the SignatureValue (for replay caches).
	Value []byte
}

// Covers reports whether el is one of the verified references' elements.
func (d *DetachedSignature) Covers(el *etree.Element) bool {
	for _, r := range d.References {
		if r.Element == el {
			return true
		}
	}
	return false
}

// detachedRef is one ds:Reference, checked for shape.
type detachedRef struct {
	id          string
	prefixes    []string
	digestAlg   string
	digestValue []byte
}

// VerifyDetached verifies a signature over elements elsewhere in the same
// document, each named by a same-document Reference URI="#id": the shape
// WS-Security uses for the Body, the Timestamp and other headers.
//
// resolve maps an ID to its element. It is the caller's anti-wrapping
// policy: it must refuse IDs that are not unique in the document and
// elements that are not where the caller expects them (an ID that names a
// copy of the Body inside a header must not resolve). VerifyDetached never
// looks an ID up by itself.
//
// Accepted: a ds:Signature of SignedInfo, SignatureValue and an optional
// KeyInfo, nothing else (no ds:Object); SignedInfo canonicalized with
// exc-c14n (with or without comments, optional PrefixList); 1 to
// MaxReferences References, each with a distinct URI "#id" and exactly one
// transform, exc-c14n (optional PrefixList); allowed algorithms only (an
// HMAC SignatureMethod is unknown here and refused); a SignatureValue that
// verifies with one of opts.Certs; every digest matching.
//
// The SignatureValue is checked before any referenced content is resolved,
// canonicalized or digested.
func VerifyDetached(sig *etree.Element, resolve func(id string) (*etree.Element, error), opts DetachedOptions) (*DetachedSignature, error) {
	if sig == nil || !is(sig, NamespaceDSig, "Signature") {
		return nil, fmt.Errorf("%w: not a ds:Signature", ErrNoSignature)
	}
	if resolve == nil {
		return nil, fmt.Errorf("%w: no resolver", ErrBadReference)
	}
	maxRefs := opts.MaxReferences
	if maxRefs <= 0 {
		maxRefs = 16
	}
	p, refs, err := parseDetached(sig, maxRefs)
	if err != nil {
		return nil, err
	}
	sigAlgs := opts.SignatureAlgorithms
	if len(sigAlgs) == 0 {
		sigAlgs = DefaultSignatureAlgorithms
	}
	digAlgs := opts.DigestAlgorithms
	if len(digAlgs) == 0 {
		digAlgs = DefaultDigestAlgorithms
	}
	sa, known := signatureAlgs[p.sigAlg]
	if !known || !slices.Contains(sigAlgs, p.sigAlg) {
		return nil, fmt.Errorf("%w: signature method %q", ErrAlgorithmNotAllowed, p.sigAlg)
	}
	for _, r := range refs {
		if _, known := digestAlgs[r.digestAlg]; !known || !slices.Contains(digAlgs, r.digestAlg) {
			return nil, fmt.Errorf("%w: digest method %q", ErrAlgorithmNotAllowed, r.digestAlg)
		}
	}

	signed, err := p.signedInfoC14N()
	if err != nil {
		return nil, err
	}
	cert, err := verifySignatureValue(p, sa, signed, opts.Certs)
	if err != nil {
		return nil, err
	}

	out := &DetachedSignature{Cert: cert, SignatureMethod: p.sigAlg, Value: p.sigValue}
	for _, r := range refs {
		el, err := resolve(r.id)
		if err != nil {
			return nil, fmt.Errorf("%w: #%s: %w", ErrBadReference, r.id, err)
		}
		if el == nil {
			return nil, fmt.Errorf("%w: #%s does not resolve", ErrBadReference, r.id)
		}
		if contains(el, sig) {
			// Only an enveloped transform could make this verify, and we do
			// not accept one here.
			return nil, fmt.Errorf("%w: #%s contains the signature", ErrBadReference, r.id)
		}
		for _, prev := range out.References {
			if prev.Element == el {
				return nil, fmt.Errorf("%w: #%s and #%s name the same element", ErrBadReference, prev.ID, r.id)
			}
		}
		canonical, err := Canonicalize(el, C14NOptions{InclusivePrefixes: r.prefixes})
		if err != nil {
			return nil, err
		}
		h := digestAlgs[r.digestAlg].New()
		h.Write(canonical)
		if subtle.ConstantTimeCompare(h.Sum(nil), r.digestValue) != 1 {
			return nil, fmt.Errorf("%w: #%s", ErrBadDigest, r.id)
		}
		out.References = append(out.References, VerifiedReference{ID: r.id, Element: el, Canonical: canonical})
	}
	return out, nil
}

// contains reports whether inner is el or one of its descendants.
func contains(el, inner *etree.Element) bool {
	for e := inner; e != nil; e = e.Parent() {
		if e == el {
			return true
		}
	}
	return false
}

// parseDetached checks the shape of a detached ds:Signature.
func parseDetached(sig *etree.Element, maxRefs int) (*parsedSig, []detachedRef, error) {
	p := &parsedSig{sig: sig}
	kids, err := children(sig)
	if err != nil {
		return nil, nil, err
	}
	if p.signedInfo, err = expect(kids, 0, "SignedInfo"); err != nil {
		return nil, nil, err
	}
	sv, err := expect(kids, 1, "SignatureValue")
	if err != nil {
		return nil, nil, err
	}
	if p.sigValue, err = decodeBase64(sv); err != nil {
		return nil, nil, err
	}
	rest := kids[2:]
	if len(rest) > 0 && is(rest[0], NamespaceDSig, "KeyInfo") {
		if p.certs, err = keyInfoCerts(rest[0]); err != nil {
			return nil, nil, err
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		// ds:Object in particular: a classic hiding place for wrapped copies.
		return nil, nil, malformedSig("unexpected element %s in Signature", rest[0].Tag)
	}

	si, err := children(p.signedInfo)
	if err != nil {
		return nil, nil, err
	}
	cm, err := expect(si, 0, "CanonicalizationMethod")
	if err != nil {
		return nil, nil, err
	}
	if p.c14nAlg, err = algorithm(cm); err != nil {
		return nil, nil, err
	}
	if p.c14nPrefixes, err = inclusivePrefixes(cm); err != nil {
		return nil, nil, err
	}
	sm, err := expect(si, 1, "SignatureMethod")
	if err != nil {
		return nil, nil, err
	}
	if p.sigAlg, err = algorithm(sm); err != nil {
		return nil, nil, err
	}
	if k, _ := children(sm); len(k) > 0 {
		return nil, nil, malformedSig("unexpected parameters in SignatureMethod")
	}
	if len(si) < 3 {
		return nil, nil, malformedSig("SignedInfo without a Reference")
	}
	if len(si)-2 > maxRefs {
		return nil, nil, malformedSig("more than %d References", maxRefs)
	}
	var refs []detachedRef
	seen := map[string]bool{}
	for i := 2; i < len(si); i++ {
		ref, err := expect(si, i, "Reference")
		if err != nil {
			return nil, nil, err
		}
		r, err := parseDetachedRef(ref)
		if err != nil {
			return nil, nil, err
		}
		if seen[r.id] {
			return nil, nil, fmt.Errorf("%w: #%s is referenced twice", ErrBadReference, r.id)
		}
		seen[r.id] = true
		refs = append(refs, r)
	}
	return p, refs, nil
}

func parseDetachedRef(ref *etree.Element) (detachedRef, error) {
	var r detachedRef
	uri, ok := unprefixedAttr(ref, "URI")
	if !ok {
		return r, malformedSig("Reference without URI")
	}
	// Same-document "#id" only: not "" (the whole document), not an
	// XPointer, not an external resource.
	if !strings.HasPrefix(uri, "#") || !isNCNameLike(uri[1:]) {
		return r, fmt.Errorf("%w: Reference URI %q is not a same-document #id", ErrBadReference, uri)
	}
	r.id = uri[1:]
	rk, err := children(ref)
	if err != nil {
		return r, err
	}
	if len(rk) == 0 || !is(rk[0], NamespaceDSig, "Transforms") {
		// Without transforms the node-set would go through inclusive C14N
		// 1.0, which we do not implement: refuse rather than guess.
		return r, malformedSig("Reference #%s without Transforms (exclusive c14n is required)", r.id)
	}
	ts, err := children(rk[0])
	if err != nil {
		return r, err
	}
	for j := range ts {
		t, err := expect(ts, j, "Transform")
		if err != nil {
			return r, err
		}
		alg, err := algorithm(t)
		if err != nil {
			return r, err
		}
		if alg != AlgExcC14N && alg != AlgExcC14NWithComments {
			// XPath, XSLT, enveloped-signature, base64, C14N 1.0/1.1, ...
			return r, fmt.Errorf("%w: transform %q", ErrAlgorithmNotAllowed, alg)
		}
		// Comments are never part of a "#id" node-set (XML-DSig §4.4.3.3),
		// so #WithComments canonicalizes like exc-c14n here.
		if r.prefixes, err = inclusivePrefixes(t); err != nil {
			return r, err
		}
	}
	if len(ts) != 1 {
		return r, malformedSig("Reference #%s must have exactly one transform, exclusive c14n", r.id)
	}
	dm, err := expect(rk, 1, "DigestMethod")
	if err != nil {
		return r, err
	}
	if r.digestAlg, err = algorithm(dm); err != nil {
		return r, err
	}
	dv, err := expect(rk, 2, "DigestValue")
	if err != nil {
		return r, err
	}
	if len(rk) > 3 {
		return r, malformedSig("unexpected element in Reference")
	}
	if r.digestValue, err = decodeBase64(dv); err != nil {
		return r, err
	}
	return r, nil
}

// isNCNameLike accepts what an xs:ID value may be, leniently: non-empty, no
// ASCII besides letters, digits, '.', '_' and '-' (so no XPointer
// "xpointer(...)", no '#', '/', ':' or spaces).
func isNCNameLike(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return false
	}
	return true
}

// IndexIDs maps every ID value in the document holding el to its element.
// ID attributes are, in any namespace, those named Id (wsu:Id), ID (SAML
// 2.0, XML-Enc) and AssertionID (SAML 1.1), and xml:id. A value carried
// twice, on one element or two, is refused with ErrDuplicateID: then no
// lookup, here or in any other tool that sees the document, can pick a
// different element than the one verified.
func IndexIDs(el *etree.Element) (map[string]*etree.Element, error) {
	top := el
	for top.Parent() != nil {
		top = top.Parent()
	}
	ids := make(map[string]*etree.Element)
	stack := []*etree.Element{top}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, a := range e.Attr {
			if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
				continue
			}
			if !slices.Contains(idLikeAttrs, a.Key) && !(a.Space == "xml" && a.Key == "id") {
				continue
			}
			if _, dup := ids[a.Value]; dup {
				return nil, fmt.Errorf("%w: %q", ErrDuplicateID, a.Value)
			}
			ids[a.Value] = e
		}
		for _, c := range e.Child {
			if ce, ok := c.(*etree.Element); ok {
				stack = append(stack, ce)
			}
		}
	}
	return ids, nil
}
