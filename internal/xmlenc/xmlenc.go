// Package xmlenc implements the parts of W3C XML Encryption (1.0 and 1.1)
// that a Security Token Service needs: encrypting an issued token for a
// relying party's X.509 certificate, wrapping a holder-of-key proof key, and
// decrypting both.
//
// Written from the W3C XML Encryption Syntax and Processing Version 1.1
// recommendation (2013); it is not derived from another XML-Enc library.
//
// Supported algorithms:
//
//   - block encryption (§5.2): AES-128/192/256 in CBC mode (XML-Enc 1.0) and
//     in GCM mode (XML-Enc 1.1);
//   - key transport (§5.5): RSA-OAEP, both the XML-Enc 1.0 identifier
//     rsa-oaep-mgf1p (MGF1 always with SHA-1; ds:DigestMethod, default
//     SHA-1, picks the OAEP digest) and the XML-Enc 1.1 identifier rsa-oaep
//     (ds:DigestMethod and xenc11:MGF both explicit; defaults SHA-1 and
//     MGF1-with-SHA-1).
//
// RSA PKCS#1 v1.5 key transport (rsa-1_5) is never produced and always
// refused on decryption, before any RSA operation, because a server that
// decrypts it is a Bleichenbacher oracle.
//
// Decryption is meant for hostile input: it never panics, bounds sizes,
// accepts only allow-listed algorithms, never dereferences a
// CipherReference, and reports every failure that depends on secret data
// (OAEP decoding, wrong key length, CBC padding, GCM authentication) as the
// single ErrDecrypt, so that the errors are no padding or OAEP oracle.
// AES-CBC remains malleable (Jager and Somorovsky, "How to Break XML
// Encryption", 2011): prefer GCM wherever the relying party supports it.
package xmlenc

import (
	"crypto"
	"errors"
	"slices"
)

// Namespaces.
const (
	NSXenc   = "http://www.w3.org/2001/04/xmlenc#"
	NSXenc11 = "http://www.w3.org/2009/xmlenc11#"
	NSDsig   = "http://www.w3.org/2000/09/xmldsig#"
)

// EncryptedData Type values (§3.5.1 and §3.1).
const (
	TypeElement = NSXenc + "Element"
	TypeContent = NSXenc + "Content"
	// TypeEncryptedKey is the ds:RetrievalMethod Type of a reference to an
	// xenc:EncryptedKey (§3.5.1).
	TypeEncryptedKey = NSXenc + "EncryptedKey"
)

// Block encryption algorithms.
const (
	AlgAES128CBC = NSXenc + "aes128-cbc"
	AlgAES192CBC = NSXenc + "aes192-cbc"
	AlgAES256CBC = NSXenc + "aes256-cbc"
	AlgAES128GCM = NSXenc11 + "aes128-gcm"
	AlgAES192GCM = NSXenc11 + "aes192-gcm"
	AlgAES256GCM = NSXenc11 + "aes256-gcm"
)

// Key transport algorithms.
const (
	// AlgRSAOAEPMGF1P is RSA-OAEP with MGF1 over SHA-1 and, by default and
	// as written by EncryptKey, a SHA-1 OAEP digest: what .NET and xmlsec1
	// 1.2 accept.
	AlgRSAOAEPMGF1P = NSXenc + "rsa-oaep-mgf1p"
	// AlgRSAOAEP is XML-Enc 1.1 RSA-OAEP: the OAEP digest (ds:DigestMethod)
	// and mask generation function (xenc11:MGF) are given explicitly.
	AlgRSAOAEP = NSXenc11 + "rsa-oaep"
	// AlgRSA15 is RSA PKCS#1 v1.5: never produced, always refused.
	AlgRSA15 = NSXenc + "rsa-1_5"
)

// Digest method URIs usable as the RSA-OAEP digest.
const (
	DigestSHA1   = "http://www.w3.org/2000/09/xmldsig#sha1"
	DigestSHA224 = "http://www.w3.org/2001/04/xmldsig-more#sha224"
	DigestSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	DigestSHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	DigestSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
)

// Mask generation function URIs of XML-Enc 1.1 RSA-OAEP (§5.5.2).
const (
	MGF1SHA1   = NSXenc11 + "mgf1sha1"
	MGF1SHA224 = NSXenc11 + "mgf1sha224"
	MGF1SHA256 = NSXenc11 + "mgf1sha256"
	MGF1SHA384 = NSXenc11 + "mgf1sha384"
	MGF1SHA512 = NSXenc11 + "mgf1sha512"
)

// MaxCipherText bounds the decoded CipherValue of an EncryptedData (and
// what EncryptElement produces). Tokens are a few kilobytes.
const MaxCipherText = 4 << 20

// maxEncryptedKeys bounds the EncryptedKey candidates tried for one
// EncryptedData, hence the RSA operations a hostile document can cause.
const maxEncryptedKeys = 4

// Errors. Their messages never quote the input. Everything that depends on
// secret data is ErrDecrypt and nothing more.
var (
	// ErrDecrypt reports any failure of the decryption itself: OAEP
	// decoding (e.g. another RSA key), a key of the wrong length, bad CBC
	// padding, failed GCM authentication.
	ErrDecrypt = errors.New("xmlenc: decryption failed")
	// ErrRSA15 reports RSA PKCS#1 v1.5 key transport, which is refused
	// whatever Allowed says.
	ErrRSA15 = errors.New("xmlenc: RSA PKCS#1 v1.5 key transport (rsa-1_5) is refused")
	// ErrUnsupportedAlgorithm reports an algorithm (or OAEP digest or MGF)
	// this package does not implement.
	ErrUnsupportedAlgorithm = errors.New("xmlenc: unsupported algorithm")
	// ErrNotAllowed reports a supported algorithm left out of Allowed.
	ErrNotAllowed = errors.New("xmlenc: algorithm not allowed")
	// ErrMalformed reports an element that does not have the XML-Enc
	// structure this package accepts.
	ErrMalformed = errors.New("xmlenc: malformed encrypted element")
	// ErrTooLarge reports a ciphertext over MaxCipherText.
	ErrTooLarge = errors.New("xmlenc: ciphertext too large")
	// ErrNoKey reports an EncryptedData without an EncryptedKey that
	// carries its key.
	ErrNoKey = errors.New("xmlenc: no EncryptedKey found for the encrypted data")
)

// KeyIdentifier says how an EncryptedKey's ds:KeyInfo names the recipient's
// certificate. Values combine with |.
type KeyIdentifier uint8

const (
	// KeyIdentifierCertificate writes ds:X509Data/ds:X509Certificate.
	KeyIdentifierCertificate KeyIdentifier = 1 << iota
	// KeyIdentifierIssuerSerial writes ds:X509Data/ds:X509IssuerSerial.
	KeyIdentifierIssuerSerial
)

// Options choose the algorithms of EncryptElement and EncryptKey. The zero
// value means AES-256-CBC with rsa-oaep-mgf1p (SHA-1), the recipient named
// by its certificate: what every relying party (.NET, Shibboleth, xmlsec1)
// decrypts.
type Options struct {
	// DataAlgorithm is the block encryption algorithm (EncryptElement
	// only); default AlgAES256CBC.
	DataAlgorithm string
	// KeyTransport is AlgRSAOAEPMGF1P (default) or AlgRSAOAEP.
	KeyTransport string
	// OAEPDigest is the OAEP digest URI (DigestSHA1 ... DigestSHA512) for
	// AlgRSAOAEP; default DigestSHA256. With AlgRSAOAEPMGF1P it must be
	// empty or DigestSHA1, the only digest .NET and xmlsec1 1.2 accept there.
	OAEPDigest string
	// OAEPMGF is the MGF URI (MGF1SHA1 ... MGF1SHA512) for AlgRSAOAEP;
	// default MGF1 with the OAEP digest's hash. Must be empty otherwise.
	OAEPMGF string
	// KeyInfo says how the recipient's certificate is identified; zero
	// means KeyIdentifierCertificate.
	KeyInfo KeyIdentifier
}

// Allowed is the allow-list applied by Decrypt and DecryptKey. A nil or
// empty list means every algorithm of that kind this package supports.
// AlgRSA15 is refused even when listed.
type Allowed struct {
	// DataAlgorithms are block encryption algorithm URIs.
	DataAlgorithms []string
	// KeyTransports are key transport algorithm URIs.
	KeyTransports []string
	// OAEPHashes are the hashes accepted as OAEP digest and as MGF1 hash;
	// default SHA-1, SHA-224, SHA-256, SHA-384, SHA-512.
	OAEPHashes []crypto.Hash
}

func (a Allowed) data(alg string) bool {
	return len(a.DataAlgorithms) == 0 || slices.Contains(a.DataAlgorithms, alg)
}

func (a Allowed) transport(alg string) bool {
	return len(a.KeyTransports) == 0 || slices.Contains(a.KeyTransports, alg)
}

func (a Allowed) hash(h crypto.Hash) bool {
	return len(a.OAEPHashes) == 0 || slices.Contains(a.OAEPHashes, h)
}

// blockAlg describes a block encryption algorithm.
type blockAlg struct {
	keySize int
	gcm     bool
}

var blockAlgs = map[string]blockAlg{
	AlgAES128CBC: {16, false},
	AlgAES192CBC: {24, false},
	AlgAES256CBC: {32, false},
	AlgAES128GCM: {16, true},
	AlgAES192GCM: {24, true},
	AlgAES256GCM: {32, true},
}

var digestHashes = map[string]crypto.Hash{
	DigestSHA1:   crypto.SHA1,
	DigestSHA224: crypto.SHA224,
	DigestSHA256: crypto.SHA256,
	DigestSHA384: crypto.SHA384,
	DigestSHA512: crypto.SHA512,
}

var mgfHashes = map[string]crypto.Hash{
	MGF1SHA1:   crypto.SHA1,
	MGF1SHA224: crypto.SHA224,
	MGF1SHA256: crypto.SHA256,
	MGF1SHA384: crypto.SHA384,
	MGF1SHA512: crypto.SHA512,
}

// uriOf returns the key in m whose value is h.
func uriOf(m map[string]crypto.Hash, h crypto.Hash) string {
	for u, v := range m {
		if v == h {
			return u
		}
	}
	return ""
}
