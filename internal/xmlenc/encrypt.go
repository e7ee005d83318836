package xmlenc

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // OAEP digests and MGF1 hashes by crypto.Hash
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/beevik/etree"
)

// gcmIVSize and gcmTagSize are fixed by XML-Enc 1.1 §5.2.4: a 96-bit IV
// before the ciphertext and a 128-bit tag after it.
const (
	gcmIVSize  = 12
	gcmTagSize = 16
)

// transport is a resolved key transport choice.
type transport struct {
	alg       string
	digestURI string // written as ds:DigestMethod
	mgfURI    string // written as xenc11:MGF (AlgRSAOAEP only)
	hash, mgf crypto.Hash
}

func (o Options) transport() (transport, error) {
	switch o.KeyTransport {
	case "", AlgRSAOAEPMGF1P:
		if o.OAEPDigest != "" && o.OAEPDigest != DigestSHA1 {
			return transport{}, errors.New("xmlenc: rsa-oaep-mgf1p is written with the SHA-1 digest only; use AlgRSAOAEP for another digest")
		}
		if o.OAEPMGF != "" {
			return transport{}, errors.New("xmlenc: OAEPMGF applies to AlgRSAOAEP only (rsa-oaep-mgf1p always uses MGF1 with SHA-1)")
		}
		return transport{alg: AlgRSAOAEPMGF1P, digestURI: DigestSHA1, hash: crypto.SHA1, mgf: crypto.SHA1}, nil
	case AlgRSAOAEP:
		t := transport{alg: AlgRSAOAEP, digestURI: o.OAEPDigest}
		if t.digestURI == "" {
			t.digestURI = DigestSHA256
		}
		var ok bool
		if t.hash, ok = digestHashes[t.digestURI]; !ok {
			return transport{}, fmt.Errorf("%w: OAEP digest", ErrUnsupportedAlgorithm)
		}
		t.mgfURI = o.OAEPMGF
		if t.mgfURI == "" {
			t.mgfURI = uriOf(mgfHashes, t.hash)
		}
		if t.mgf, ok = mgfHashes[t.mgfURI]; !ok {
			return transport{}, fmt.Errorf("%w: OAEP MGF", ErrUnsupportedAlgorithm)
		}
		return t, nil
	case AlgRSA15:
		return transport{}, ErrRSA15
	default:
		return transport{}, fmt.Errorf("%w: key transport", ErrUnsupportedAlgorithm)
	}
}

func (o Options) dataAlgorithm() (string, blockAlg, error) {
	alg := o.DataAlgorithm
	if alg == "" {
		alg = AlgAES256CBC
	}
	b, ok := blockAlgs[alg]
	if !ok {
		return "", blockAlg{}, fmt.Errorf("%w: data encryption", ErrUnsupportedAlgorithm)
	}
	return alg, b, nil
}

func rsaPublicKey(cert *x509.Certificate) (*rsa.PublicKey, error) {
	if cert == nil {
		return nil, errors.New("xmlenc: no recipient certificate")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("xmlenc: the recipient certificate's key is not RSA")
	}
	return pub, nil
}

// EncryptElement encrypts plaintext, the exact bytes of one serialised XML
// element, for cert's RSA public key. It returns a serialised
// <xenc:EncryptedData Type="...#Element"> whose ds:KeyInfo embeds the
// <xenc:EncryptedKey> carrying a fresh random data key. The bytes are kept
// as given (not re-serialised), so a signature inside them still verifies
// after decryption.
//
// The result declares every namespace it uses (xenc, ds and, for
// AlgRSAOAEP, xenc11) on its root, so it can be embedded anywhere, e.g.
// inside <saml2:EncryptedAssertion>.
func EncryptElement(plaintext []byte, cert *x509.Certificate, o Options) ([]byte, error) {
	alg, b, err := o.dataAlgorithm()
	if err != nil {
		return nil, err
	}
	t, err := o.transport()
	if err != nil {
		return nil, err
	}
	pub, err := rsaPublicKey(cert)
	if err != nil {
		return nil, err
	}
	if len(plaintext) == 0 {
		return nil, errors.New("xmlenc: nothing to encrypt")
	}
	if len(plaintext) > MaxCipherText-aes.BlockSize-gcmIVSize-gcmTagSize {
		return nil, ErrTooLarge
	}
	key := make([]byte, b.keySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, err
	}
	ct, err := encryptData(b, key, plaintext)
	if err != nil {
		return nil, err
	}
	ek, err := encryptedKey(key, pub, cert, t, o.KeyInfo)
	if err != nil {
		return nil, err
	}

	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", NSXenc)
	ed.CreateAttr("xmlns:ds", NSDsig)
	if t.mgfURI != "" {
		ed.CreateAttr("xmlns:xenc11", NSXenc11)
	}
	ed.CreateAttr("Type", TypeElement)
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", alg)
	ed.CreateElement("ds:KeyInfo").AddChild(ek)
	cipherData(ed, ct)
	return serialize(ed)
}

// EncryptKey wraps key (e.g. a holder-of-key proof key) for cert's RSA
// public key and returns a serialised <xenc:EncryptedKey> declaring every
// namespace it uses. Options.DataAlgorithm is ignored.
func EncryptKey(key []byte, cert *x509.Certificate, o Options) ([]byte, error) {
	t, err := o.transport()
	if err != nil {
		return nil, err
	}
	pub, err := rsaPublicKey(cert)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, errors.New("xmlenc: empty key")
	}
	ek, err := encryptedKey(key, pub, cert, t, o.KeyInfo)
	if err != nil {
		return nil, err
	}
	// encryptedKey sets no attribute on ek, so these come first.
	ek.CreateAttr("xmlns:xenc", NSXenc)
	ek.CreateAttr("xmlns:ds", NSDsig)
	if t.mgfURI != "" {
		ek.CreateAttr("xmlns:xenc11", NSXenc11)
	}
	return serialize(ek)
}

// encryptedKey builds an <xenc:EncryptedKey> (without namespace
// declarations) holding key wrapped by t for pub.
func encryptedKey(key []byte, pub *rsa.PublicKey, cert *x509.Certificate, t transport, ki KeyIdentifier) (*etree.Element, error) {
	wrapped, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, key, &rsa.OAEPOptions{Hash: t.hash, MGFHash: t.mgf})
	if err != nil {
		return nil, fmt.Errorf("xmlenc: wrapping the key: %w", err)
	}
	ek := etree.NewElement("xenc:EncryptedKey")
	em := ek.CreateElement("xenc:EncryptionMethod")
	em.CreateAttr("Algorithm", t.alg)
	em.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", t.digestURI)
	if t.mgfURI != "" {
		em.CreateElement("xenc11:MGF").CreateAttr("Algorithm", t.mgfURI)
	}
	xd := ek.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data")
	if ki == 0 {
		ki = KeyIdentifierCertificate
	}
	if ki&KeyIdentifierIssuerSerial != 0 {
		is := xd.CreateElement("ds:X509IssuerSerial")
		is.CreateElement("ds:X509IssuerName").SetText(cert.Issuer.String())
		is.CreateElement("ds:X509SerialNumber").SetText(cert.SerialNumber.String())
	}
	if ki&KeyIdentifierCertificate != 0 {
		xd.CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(cert.Raw))
	}
	cipherData(ek, wrapped)
	return ek, nil
}

func cipherData(parent *etree.Element, ct []byte) {
	parent.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText(base64.StdEncoding.EncodeToString(ct))
}

func serialize(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	// Escape CR, tab and newline too (the issuer name may hold them), so a
	// parser reads back the same text.
	doc.WriteSettings.CanonicalText = true
	doc.WriteSettings.CanonicalAttrVal = true
	return doc.WriteToBytes()
}

// encryptData encrypts plaintext under key: CBC as IV || ciphertext with
// the XML-Enc padding, GCM as IV || ciphertext || tag.
func encryptData(b blockAlg, key, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if b.gcm {
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		out := make([]byte, gcmIVSize, gcmIVSize+len(plaintext)+gcmTagSize)
		if _, err := io.ReadFull(rand.Reader, out); err != nil {
			return nil, err
		}
		return aead.Seal(out, out[:gcmIVSize], plaintext, nil), nil
	}
	// XML-Enc §5.2 padding: 1 to 16 bytes so the length is a multiple of
	// the block size; the last byte is the number of padding bytes, the
	// others are arbitrary (random here, as ISO 10126 has them).
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	out := make([]byte, aes.BlockSize+len(plaintext)+pad)
	iv, body := out[:aes.BlockSize], out[aes.BlockSize:]
	if _, err := io.ReadFull(rand.Reader, iv); err != nil {
		return nil, err
	}
	copy(body, plaintext)
	if _, err := io.ReadFull(rand.Reader, body[len(plaintext):len(body)-1]); err != nil {
		return nil, err
	}
	body[len(body)-1] = byte(pad)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(body, body)
	return out, nil
}
