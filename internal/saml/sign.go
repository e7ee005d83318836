// Package saml builds SAML 1.1 and 2.0 assertions. Builders write the
// assertion directly in exclusive-canonical form (sorted attributes, no empty
// element shorthand, canonical escaping, every prefix declared where it is
// used), so the bytes we digest are exactly the bytes we send: no parse, no
// re-serialisation and no canonicalisation on the hot path. Tests check that
// the general canonicaliser in xmlsec, xmlsec1 and OpenSAML agree.
package saml

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math/big"
)

// XML-DSig algorithm URIs we sign with.
const (
	NSDSig = "http://www.w3.org/2000/09/xmldsig#"

	AlgRSASHA1     = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	AlgRSASHA256   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgRSASHA512   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	AlgECDSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

	AlgSHA1   = "http://www.w3.org/2000/09/xmldsig#sha1"
	AlgSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	AlgSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

	AlgExcC14N   = "http://www.w3.org/2001/10/xml-exc-c14n#"
	AlgEnveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
)

// Signer signs assertions with one key.
type Signer struct {
	Key                crypto.Signer
	Cert               *x509.Certificate
	SignatureAlgorithm string // one of the Alg*SHA* signature URIs
	DigestAlgorithm    string // one of AlgSHA1/256/512

	certB64 string
}

// NewSigner checks the algorithm choice against the key and prepares the
// KeyInfo certificate once.
func NewSigner(key crypto.Signer, cert *x509.Certificate, sigAlg, digestAlg string) (*Signer, error) {
	if _, err := hashFor(digestAlg); err != nil {
		return nil, err
	}
	if _, err := sigHashFor(sigAlg); err != nil {
		return nil, err
	}
	switch key.(type) {
	case *rsa.PrivateKey:
		if sigAlg == AlgECDSASHA256 {
			return nil, errors.New("saml: ecdsa-sha256 needs an ECDSA key")
		}
	case *ecdsa.PrivateKey:
		if sigAlg != AlgECDSASHA256 {
			return nil, errors.New("saml: an ECDSA key signs only with ecdsa-sha256")
		}
	default:
		return nil, fmt.Errorf("saml: unsupported key type %T", key)
	}
	return &Signer{Key: key, Cert: cert, SignatureAlgorithm: sigAlg, DigestAlgorithm: digestAlg,
		certB64: base64.StdEncoding.EncodeToString(cert.Raw)}, nil
}

func hashFor(alg string) (crypto.Hash, error) {
	switch alg {
	case AlgSHA1:
		return crypto.SHA1, nil
	case AlgSHA256:
		return crypto.SHA256, nil
	case AlgSHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("saml: unsupported digest algorithm %q", alg)
}

func sigHashFor(alg string) (crypto.Hash, error) {
	switch alg {
	case AlgRSASHA1:
		return crypto.SHA1, nil
	case AlgRSASHA256, AlgECDSASHA256:
		return crypto.SHA256, nil
	case AlgRSASHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("saml: unsupported signature algorithm %q", alg)
}

// SignatureValue signs digest (of canonical SignedInfo) the XML-DSig way:
// PKCS#1 v1.5 for RSA, fixed-width r‖s for ECDSA (not DER).
func SignatureValue(key crypto.Signer, h crypto.Hash, digest []byte) ([]byte, error) {
	sig, err := key.Sign(rand.Reader, digest, h)
	if err != nil {
		return nil, err
	}
	if k, ok := key.(*ecdsa.PrivateKey); ok {
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(sig, &rs); err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		rs.R.FillBytes(out[:size])
		rs.S.FillBytes(out[size:])
		return out, nil
	}
	return sig, nil
}

// sign completes an enveloped signature over an element written as head‖tail
// (the canonical element without its signature), with the Signature to go
// between them. It returns head‖Signature‖tail.
func (s *Signer) sign(head, tail []byte, id string) ([]byte, error) {
	dh, _ := hashFor(s.DigestAlgorithm)
	d := dh.New()
	d.Write(head)
	d.Write(tail)
	digest := base64.StdEncoding.EncodeToString(d.Sum(nil))

	var si bytes.Buffer
	si.Grow(700)
	// The SignedInfo as it appears inside ds:Signature (which declares ds).
	writeSignedInfo := func(b *bytes.Buffer, declareNS bool) {
		b.WriteString(`<ds:SignedInfo`)
		if declareNS {
			b.WriteString(` xmlns:ds="` + NSDSig + `"`)
		}
		b.WriteString(`><ds:CanonicalizationMethod Algorithm="` + AlgExcC14N + `"></ds:CanonicalizationMethod>`)
		b.WriteString(`<ds:SignatureMethod Algorithm="`)
		b.WriteString(s.SignatureAlgorithm)
		b.WriteString(`"></ds:SignatureMethod><ds:Reference URI="#`)
		b.WriteString(id)
		b.WriteString(`"><ds:Transforms>`)
		b.WriteString(`<ds:Transform Algorithm="` + AlgEnveloped + `"></ds:Transform>`)
		b.WriteString(`<ds:Transform Algorithm="` + AlgExcC14N + `"></ds:Transform>`)
		b.WriteString(`</ds:Transforms><ds:DigestMethod Algorithm="`)
		b.WriteString(s.DigestAlgorithm)
		b.WriteString(`"></ds:DigestMethod><ds:DigestValue>`)
		b.WriteString(digest)
		b.WriteString(`</ds:DigestValue></ds:Reference></ds:SignedInfo>`)
	}
	// Exclusive c14n of SignedInfo as a subset renders the ds declaration on it.
	writeSignedInfo(&si, true)
	sh, _ := sigHashFor(s.SignatureAlgorithm)
	var hh hash.Hash = sh.New()
	hh.Write(si.Bytes())
	sv, err := SignatureValue(s.Key, sh, hh.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("saml: sign: %w", err)
	}

	var out bytes.Buffer
	out.Grow(len(head) + len(tail) + 1200 + len(s.certB64))
	out.Write(head)
	out.WriteString(`<ds:Signature xmlns:ds="` + NSDSig + `">`)
	writeSignedInfo(&out, false)
	out.WriteString(`<ds:SignatureValue>`)
	out.Write(base64.StdEncoding.AppendEncode(out.AvailableBuffer(), sv))
	out.WriteString(`</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>`)
	out.WriteString(s.certB64)
	out.WriteString(`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>`)
	out.Write(tail)
	return out.Bytes(), nil
}
