package xmlsec

import (
	"crypto"
	_ "crypto/sha1" // registers crypto.SHA1 for RSA-SHA1 / SHA-1 digests
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
)

// Algorithm identifiers (XML-DSig 1.1, RFC 6931).
const (
	NamespaceDSig = "http://www.w3.org/2000/09/xmldsig#"

	AlgExcC14N             = "http://www.w3.org/2001/10/xml-exc-c14n#"
	AlgExcC14NWithComments = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
	AlgEnveloped           = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

	AlgRSASHA1     = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	AlgRSASHA256   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgRSASHA512   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	AlgECDSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

	AlgSHA1   = "http://www.w3.org/2000/09/xmldsig#sha1"
	AlgSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	AlgSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
)

// DefaultSignatureAlgorithms and DefaultDigestAlgorithms are the allow-lists
// used when VerifyOptions leaves them empty. SHA-1 is absent on purpose.
var (
	DefaultSignatureAlgorithms = []string{AlgRSASHA256, AlgRSASHA512, AlgECDSASHA256}
	DefaultDigestAlgorithms    = []string{AlgSHA256, AlgSHA512}
)

// Typed errors. Verification errors wrap exactly one of them (use errors.Is);
// the wrapped message adds detail such as the offending algorithm URI.
var (
	// ErrNoSignature: the element has no ds:Signature child.
	ErrNoSignature = errors.New("xmlsec: element is not signed")
	// ErrMalformedSignature: the ds:Signature is not of the accepted shape
	// (two signatures, missing or unexpected parts, bad base64, ...).
	ErrMalformedSignature = errors.New("xmlsec: malformed signature")
	// ErrAlgorithmNotAllowed: a signature, digest, canonicalization or
	// transform algorithm is unknown or not in the allow-list.
	ErrAlgorithmNotAllowed = errors.New("xmlsec: algorithm not allowed")
	// ErrBadReference: the Reference does not designate the element itself.
	ErrBadReference = errors.New("xmlsec: reference does not designate the signed element")
	// ErrDuplicateID: an ID value occurs more than once in the document.
	ErrDuplicateID = errors.New("xmlsec: duplicate ID in document")
	// ErrUntrustedKey: KeyInfo names a certificate that is not trusted, or
	// no trusted certificate was given.
	ErrUntrustedKey = errors.New("xmlsec: signing key is not trusted")
	// ErrBadSignature: SignatureValue does not verify with any trusted key.
	ErrBadSignature = errors.New("xmlsec: signature value does not verify")
	// ErrBadDigest: the signed content was changed after signing.
	ErrBadDigest = errors.New("xmlsec: digest mismatch: content was modified")
)

type sigAlg struct {
	hash  crypto.Hash
	ecdsa bool
}

var signatureAlgs = map[string]sigAlg{
	AlgRSASHA1:     {crypto.SHA1, false},
	AlgRSASHA256:   {crypto.SHA256, false},
	AlgRSASHA512:   {crypto.SHA512, false},
	AlgECDSASHA256: {crypto.SHA256, true},
}

var digestAlgs = map[string]crypto.Hash{
	AlgSHA1:   crypto.SHA1,
	AlgSHA256: crypto.SHA256,
	AlgSHA512: crypto.SHA512,
}
