package xmlsec

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/beevik/etree"
)

// Signer creates enveloped signatures.
type Signer struct {
	// Key signs; an *rsa.PrivateKey, *ecdsa.PrivateKey or any crypto.Signer
	// (HSM) with such a public key.
	Key crypto.Signer
	// Cert, if set, goes into KeyInfo/X509Data/X509Certificate and must
	// hold Key's public key.
	Cert *x509.Certificate
	// SignatureAlgorithm defaults to AlgRSASHA256 or AlgECDSASHA256 after
	// the key type; DigestAlgorithm defaults to AlgSHA256.
	SignatureAlgorithm, DigestAlgorithm string
	// InclusivePrefixes, if set, becomes the PrefixList of the Reference's
	// exc-c14n transform (e.g. "xs" for xsi:type="xs:string" values).
	InclusivePrefixes []string
}

// SignEnveloped signs el with an enveloped signature and inserts the
// ds:Signature into el.
//
// With idAttr set, el must carry that unprefixed attribute with a non-empty
// value and the Reference is URI="#value"; with idAttr empty, el must be the
// document element (or detached) and the Reference is URI="" (the whole
// document). insertAt counts child elements: the signature is inserted
// before el's insertAt-th child element (0 = before the first, 1 = after
// the first, as SAML wants after Issuer); -1 or past the end appends it as
// the last child. On error el is left unchanged.
//
// The signature is over the tree as it is: write the document out with
// escaping that preserves it (the WriteSettings safexml.Parse sets), or a
// reader will see different characters than were signed.
func (s Signer) SignEnveloped(el *etree.Element, idAttr string, insertAt int) error {
	if el == nil || s.Key == nil {
		return errors.New("xmlsec: SignEnveloped needs an element and a key")
	}
	sigAlg, digAlg, err := s.algorithms()
	if err != nil {
		return err
	}
	if s.Cert != nil {
		if pk, ok := s.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(s.Cert.PublicKey) {
			return errors.New("xmlsec: Signer.Cert does not hold Signer.Key's public key")
		}
	}
	uri := ""
	if idAttr != "" {
		id, ok := unprefixedAttr(el, idAttr)
		if !ok || id == "" {
			return fmt.Errorf("xmlsec: element has no %s attribute to reference", idAttr)
		}
		uri = "#" + id
	} else if !isDocumentElement(el) {
		return errors.New(`xmlsec: URI="" needs the document element; give an ID attribute`)
	}

	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", NamespaceDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", AlgExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", sigAlg)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", uri)
	ts := ref.CreateElement("ds:Transforms")
	ts.CreateElement("ds:Transform").CreateAttr("Algorithm", AlgEnveloped)
	c14n := ts.CreateElement("ds:Transform")
	c14n.CreateAttr("Algorithm", AlgExcC14N)
	if len(s.InclusivePrefixes) > 0 {
		in := c14n.CreateElement("ec:InclusiveNamespaces")
		in.CreateAttr("xmlns:ec", AlgExcC14N)
		in.CreateAttr("PrefixList", strings.Join(s.InclusivePrefixes, " "))
	}
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digAlg)
	dv := ref.CreateElement("ds:DigestValue")
	sv := sig.CreateElement("ds:SignatureValue")
	if s.Cert != nil {
		sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
			SetText(base64.StdEncoding.EncodeToString(s.Cert.Raw))
	}

	insertChildElementAt(el, sig, insertAt)
	if err := s.fill(el, sig, si, dv, sv, sigAlg, digAlg, uri == ""); err != nil {
		el.RemoveChild(sig)
		return err
	}
	return nil
}

func (s Signer) fill(el, sig, si, dv, sv *etree.Element, sigAlg, digAlg string, wholeDoc bool) error {
	content, err := canonicalize(el, C14NOptions{InclusivePrefixes: s.InclusivePrefixes, Exclude: sig}, wholeDoc)
	if err != nil {
		return err
	}
	h := digestAlgs[digAlg].New()
	h.Write(content)
	dv.SetText(base64.StdEncoding.EncodeToString(h.Sum(nil)))

	signed, err := Canonicalize(si, C14NOptions{})
	if err != nil {
		return err
	}
	sa := signatureAlgs[sigAlg]
	h = sa.hash.New()
	h.Write(signed)
	value, err := s.Key.Sign(rand.Reader, h.Sum(nil), sa.hash)
	if err != nil {
		return fmt.Errorf("xmlsec: signing: %w", err)
	}
	if sa.ecdsa {
		if value, err = ecdsaRawSignature(s.Key.Public().(*ecdsa.PublicKey), value); err != nil {
			return err
		}
	}
	sv.SetText(base64.StdEncoding.EncodeToString(value))
	return nil
}

func (s Signer) algorithms() (sigAlg, digAlg string, err error) {
	sigAlg, digAlg = s.SignatureAlgorithm, s.DigestAlgorithm
	pub := s.Key.Public()
	if sigAlg == "" {
		switch pub.(type) {
		case *rsa.PublicKey:
			sigAlg = AlgRSASHA256
		case *ecdsa.PublicKey:
			sigAlg = AlgECDSASHA256
		}
	}
	if digAlg == "" {
		digAlg = AlgSHA256
	}
	sa, ok := signatureAlgs[sigAlg]
	if !ok {
		return "", "", fmt.Errorf("%w: signature method %q", ErrAlgorithmNotAllowed, sigAlg)
	}
	if _, ok := digestAlgs[digAlg]; !ok {
		return "", "", fmt.Errorf("%w: digest method %q", ErrAlgorithmNotAllowed, digAlg)
	}
	_, isEC := pub.(*ecdsa.PublicKey)
	_, isRSA := pub.(*rsa.PublicKey)
	if (sa.ecdsa && !isEC) || (!sa.ecdsa && !isRSA) {
		return "", "", fmt.Errorf("xmlsec: key type does not fit signature method %q", sigAlg)
	}
	return sigAlg, digAlg, nil
}

// ecdsaRawSignature turns the ASN.1 DER (r, s) that crypto.Signer returns
// into XML-DSig's r||s, each left-padded to the curve order's byte length.
func ecdsaRawSignature(pub *ecdsa.PublicKey, der []byte) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) > 0 || rs.R == nil || rs.S == nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
		return nil, errors.New("xmlsec: signer returned a malformed ECDSA signature")
	}
	size := (pub.Curve.Params().N.BitLen() + 7) / 8
	if rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("xmlsec: signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// insertChildElementAt inserts child before el's n-th child element, or as
// the last child when n < 0 or n is past the last child element.
func insertChildElementAt(el, child *etree.Element, n int) {
	if n >= 0 {
		seen := 0
		for i, t := range el.Child {
			if _, ok := t.(*etree.Element); ok {
				if seen == n {
					el.InsertChildAt(i, child)
					return
				}
				seen++
			}
		}
	}
	el.AddChild(child)
}
