package xmlsec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
)

// VerifyOptions says what VerifyEnveloped trusts.
type VerifyOptions struct {
	// Certs are the trusted signing certificates. The key is always taken
	// from here: KeyInfo may only select one of them. Validity dates and
	// chains are not checked; trust is the presence in this list.
	Certs []*x509.Certificate
	// SignatureAlgorithms and DigestAlgorithms are allow-lists; empty means
	// DefaultSignatureAlgorithms / DefaultDigestAlgorithms (no SHA-1).
	SignatureAlgorithms, DigestAlgorithms []string
	// IDAttribute is the unprefixed attribute holding the element's ID:
	// "ID" (SAML 2.0, metadata; the default) or "AssertionID" (SAML 1.1).
	IDAttribute string
}

// idLikeAttrs are attribute local names treated as IDs, besides
// VerifyOptions.IDAttribute, when looking for duplicates. Any prefix.
var idLikeAttrs = []string{"ID", "Id", "AssertionID"}

// VerifyEnveloped verifies the enveloped XML signature of el and returns what
// was signed.
//
// Accepted: exactly one ds:Signature child of el; SignedInfo canonicalized
// with exc-c14n (with or without comments, optional PrefixList); exactly one
// Reference, with URI "#"+el's ID, or "" when el is the document element;
// transforms enveloped-signature then exc-c14n (optional PrefixList); allowed
// algorithms only; no ID value repeated in the document; a SignatureValue
// that verifies with one of opts.Certs; a digest that matches.
//
// The SignatureValue is checked before the referenced content is
// canonicalized and digested, so unsigned input cannot make us do the
// expensive part.
//
// verified is a new element parsed from exactly the canonical bytes that
// were digested (without the ds:Signature and without comments). Callers
// must read data only from it, never from el: anything outside the signed
// bytes (a wrapped copy, a comment splitting a text node) is not in it. For
// example the signed NameID "admin<!---->@evil.example" (exc-c14n drops the
// comment, so the digest is the same as for "admin@evil.example") comes back
// as one text node "admin@evil.example". Read text with safexml.Text.
func VerifyEnveloped(el *etree.Element, opts VerifyOptions) (verified *etree.Element, cert *x509.Certificate, err error) {
	if el == nil {
		return nil, nil, fmt.Errorf("%w: nil element", ErrNoSignature)
	}
	idAttr := opts.IDAttribute
	if idAttr == "" {
		idAttr = "ID"
	}
	var sig *etree.Element
	for c := range el.ChildElementsSeq() {
		if is(c, NamespaceDSig, "Signature") {
			if sig != nil {
				return nil, nil, malformedSig("more than one ds:Signature")
			}
			sig = c
		}
	}
	if sig == nil {
		return nil, nil, ErrNoSignature
	}
	p, err := parseSignature(sig)
	if err != nil {
		return nil, nil, err
	}

	// Algorithms, before any cryptography.
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
		return nil, nil, fmt.Errorf("%w: signature method %q", ErrAlgorithmNotAllowed, p.sigAlg)
	}
	dh, known := digestAlgs[p.digestAlg]
	if !known || !slices.Contains(digAlgs, p.digestAlg) {
		return nil, nil, fmt.Errorf("%w: digest method %q", ErrAlgorithmNotAllowed, p.digestAlg)
	}
	refOpts, err := p.referenceC14N()
	if err != nil {
		return nil, nil, err
	}

	// The Reference must designate el itself.
	wholeDoc := false
	if p.refURI == "" {
		if !isDocumentElement(el) {
			return nil, nil, fmt.Errorf(`%w: URI="" signs the whole document, not this element`, ErrBadReference)
		}
		wholeDoc = true
	} else {
		id, ok := unprefixedAttr(el, idAttr)
		if !ok || id == "" || p.refURI != "#"+id {
			return nil, nil, fmt.Errorf("%w: URI %q, element %s=%q", ErrBadReference, p.refURI, idAttr, id)
		}
	}
	if err := checkUniqueIDs(el, idAttr); err != nil {
		return nil, nil, err
	}

	// SignatureValue over the canonical SignedInfo.
	signed, err := p.signedInfoC14N()
	if err != nil {
		return nil, nil, err
	}
	cert, err = verifySignatureValue(p, sa, signed, opts.Certs)
	if err != nil {
		return nil, nil, err
	}

	// Digest of the referenced content.
	canonical, err := canonicalize(el, refOpts, wholeDoc)
	if err != nil {
		return nil, nil, err
	}
	h := dh.New()
	h.Write(canonical)
	if subtle.ConstantTimeCompare(h.Sum(nil), p.digestValue) != 1 {
		return nil, nil, ErrBadDigest
	}

	doc, err := safexml.Parse(canonical, safexml.Limits{MaxBytes: int64(len(canonical)), MaxDepth: 1 << 20})
	if err != nil {
		// Canonical XML of a well-formed tree is well-formed; this would be
		// a bug here, or a tree built outside safexml.
		return nil, nil, fmt.Errorf("%w: signed content does not re-parse: %v", ErrBadReference, err)
	}
	return doc.Root(), cert, nil
}

// isDocumentElement reports whether el is the root element of its document
// (or a detached element).
func isDocumentElement(el *etree.Element) bool {
	p := el.Parent()
	return p == nil || (p.Tag == "" && p.Parent() == nil)
}

// checkUniqueIDs walks the whole document holding el and refuses any ID
// value carried twice, so that no ID lookup, here or in any other tool that
// sees this document, can pick a different element than the one verified.
func checkUniqueIDs(el *etree.Element, idAttr string) error {
	top := el
	for top.Parent() != nil {
		top = top.Parent()
	}
	seen := make(map[string]struct{})
	stack := []*etree.Element{top}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, a := range e.Attr {
			if a.Space == "xmlns" || (a.Key != idAttr && !slices.Contains(idLikeAttrs, a.Key) && !(a.Space == "xml" && a.Key == "id")) {
				continue
			}
			if _, dup := seen[a.Value]; dup {
				return fmt.Errorf("%w: %q", ErrDuplicateID, a.Value)
			}
			seen[a.Value] = struct{}{}
		}
		for _, c := range e.Child {
			if ce, ok := c.(*etree.Element); ok {
				stack = append(stack, ce)
			}
		}
	}
	return nil
}

// verifySignatureValue checks SignatureValue over signedInfo with the
// trusted certificate KeyInfo selects, or with each trusted certificate when
// KeyInfo names none.
func verifySignatureValue(p *parsedSig, sa sigAlg, signedInfo []byte, trusted []*x509.Certificate) (*x509.Certificate, error) {
	if len(trusted) == 0 {
		return nil, fmt.Errorf("%w: no trusted certificates configured", ErrUntrustedKey)
	}
	candidates := trusted
	if len(p.certs) > 0 {
		candidates = nil
		for _, t := range trusted {
			for _, der := range p.certs {
				if bytes.Equal(t.Raw, der) {
					candidates = append(candidates, t)
					break
				}
			}
		}
		if len(candidates) == 0 {
			return nil, fmt.Errorf("%w: KeyInfo certificate is not among the trusted ones", ErrUntrustedKey)
		}
	}
	h := sa.hash.New()
	h.Write(signedInfo)
	digest := h.Sum(nil)
	for _, c := range candidates {
		if verifyWith(c.PublicKey, sa, digest, p.sigValue) == nil {
			return c, nil
		}
	}
	return nil, ErrBadSignature
}

func verifyWith(pub crypto.PublicKey, sa sigAlg, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if sa.ecdsa {
			return errors.New("key type mismatch")
		}
		return rsa.VerifyPKCS1v15(k, sa.hash, digest, sig)
	case *ecdsa.PublicKey:
		if !sa.ecdsa {
			return errors.New("key type mismatch")
		}
		// XML-DSig ECDSA values are r||s, each as wide as the curve order.
		size := (k.Curve.Params().N.BitLen() + 7) / 8
		if len(sig) != 2*size {
			return errors.New("bad ECDSA signature length")
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	}
	return errors.New("unsupported key type")
}
