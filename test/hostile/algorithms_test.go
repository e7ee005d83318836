package hostile

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/xmlenc"
	"github.com/avouch/avouch/internal/xmlsec"
)

// countingKey is an RSA private key that counts its decryptions: a refusal
// "before any RSA operation" must leave the count at zero, so the refusal
// cannot serve as a padding oracle.
type countingKey struct {
	key *rsa.PrivateKey
	n   atomic.Int32
}

func (c *countingKey) Public() crypto.PublicKey { return c.key.Public() }
func (c *countingKey) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	c.n.Add(1)
	return c.key.Decrypt(r, msg, opts)
}

// TestRSA15KeyTransportIsRefusedBeforeAnyRSAOperation: RSA PKCS#1 v1.5 key
// transport is the Bleichenbacher padding oracle of XML Encryption ("How to
// Break XML Encryption", Jager and Somorovsky, 2011). The EncryptedKey here
// is a genuine v1.5 encryption of the right key, so a decrypter that
// accepted rsa-1_5 would decrypt it; internal/xmlenc must refuse it without
// touching the private key, whatever the allow-list says.
func TestRSA15KeyTransportIsRefusedBeforeAnyRSAOperation(t *testing.T) {
	t.Parallel()
	recipient := getAttacker(t) // any RSA key pair serves as the recipient here
	plaintext := []byte(`<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x"/>`)
	enc, err := xmlenc.EncryptElement(plaintext, recipient.cert, xmlenc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	parse := func(b []byte) *etree.Element {
		doc, err := safexml.Parse(b, safexml.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return doc.Root()
	}
	key := &countingKey{key: recipient.key}

	t.Run("the OAEP original decrypts (the fixture is live)", func(t *testing.T) {
		got, err := xmlenc.Decrypt(parse(enc), key, xmlenc.Allowed{})
		if err != nil || string(got) != string(plaintext) {
			t.Fatalf("%v %q", err, got)
		}
	})
	// Rewrite the EncryptedKey as rsa-1_5 around a real v1.5 encryption of
	// the same data key.
	doc, err := safexml.Parse(enc, safexml.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	ek := doc.FindElement(".//EncryptedKey")
	if ek == nil {
		t.Fatal("test bug: no EncryptedKey")
	}
	dataKey, err := xmlenc.DecryptKey(ek, recipient.key, xmlenc.Allowed{})
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the attack needs a genuine PKCS#1 v1.5 ciphertext
	v15, err := rsa.EncryptPKCS1v15(rand.Reader, &recipient.key.PublicKey, dataKey)
	if err != nil {
		t.Fatal(err)
	}
	method := ek.SelectElement("EncryptionMethod")
	for _, c := range method.ChildElements() {
		method.RemoveChild(c)
	}
	method.CreateAttr("Algorithm", xmlenc.AlgRSA15)
	cv := ek.FindElement("./CipherData/CipherValue")
	cv.SetText(base64.StdEncoding.EncodeToString(v15))
	rsa15, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		allowed xmlenc.Allowed
		cipher  []byte
	}{
		{"with the default allow-list", xmlenc.Allowed{}, nil},
		{"even when the allow-list names rsa-1_5", xmlenc.Allowed{KeyTransports: []string{xmlenc.AlgRSA15}}, nil},
		{"and a ciphertext with broken v1.5 padding gets the very same error", xmlenc.Allowed{}, make([]byte, len(v15))},
	} {
		t.Run("rsa-1_5 is refused "+c.name, func(t *testing.T) {
			doc := rsa15
			if c.cipher != nil {
				doc = []byte(strings.Replace(string(rsa15), base64.StdEncoding.EncodeToString(v15), base64.StdEncoding.EncodeToString(c.cipher), 1))
			}
			key.n.Store(0)
			_, err := xmlenc.Decrypt(parse(doc), key, c.allowed)
			if !errors.Is(err, xmlenc.ErrRSA15) {
				t.Fatalf("got %v, want ErrRSA15", err)
			}
			if n := key.n.Load(); n != 0 {
				t.Fatalf("the private key was used %d times before the refusal", n)
			}
		})
	}
	t.Run("rsa-1_5 is refused by DecryptKey too", func(t *testing.T) {
		key.n.Store(0)
		if _, err := xmlenc.DecryptKey(parse(rsa15).FindElement(".//EncryptedKey"), key, xmlenc.Allowed{}); !errors.Is(err, xmlenc.ErrRSA15) || key.n.Load() != 0 {
			t.Fatalf("%v (%d decryptions)", err, key.n.Load())
		}
	})
}

// TestDowngradedTokensDifferOnlyInTheirAlgorithm proves the corpus's
// algorithm cases live: the rsa-sha1 and SHA-1 digest tokens carry correct
// signatures by the server's key, so the verifier's allow-list is the only
// thing that makes them "bad signature".
func TestDowngradedTokensDifferOnlyInTheirAlgorithm(t *testing.T) {
	t.Parallel()
	h, tokens := corpusServer(t, time.Now())
	certs := []*x509.Certificate{h.SigningKey().Cert}
	withSHA1 := xmlsec.VerifyOptions{Certs: certs,
		SignatureAlgorithms: []string{xmlsec.AlgRSASHA1, xmlsec.AlgRSASHA256},
		DigestAlgorithms:    []string{xmlsec.AlgSHA1, xmlsec.AlgSHA256}}
	for _, xf := range []string{"rsa-sha1", "sha1-digest"} {
		t.Run(xf+" verifies when SHA-1 is allowed and not by default", func(t *testing.T) {
			tok := transform(t, h, xf, string(tokens["alice"])).token
			el, err := parseToken([]byte(tok))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := xmlsec.VerifyEnveloped(el, withSHA1); err != nil {
				t.Fatalf("with SHA-1 allowed: %v", err)
			}
			if _, _, err := xmlsec.VerifyEnveloped(el, xmlsec.VerifyOptions{Certs: certs}); !errors.Is(err, xmlsec.ErrAlgorithmNotAllowed) {
				t.Fatalf("by default: %v, want ErrAlgorithmNotAllowed", err)
			}
		})
	}
	t.Run("the attacker's KeyInfo certificate is the only change to a genuine signature", func(t *testing.T) {
		tok := transform(t, h, "attacker-keyinfo", string(tokens["alice"])).token
		el, err := parseToken([]byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := xmlsec.VerifyEnveloped(el, xmlsec.VerifyOptions{Certs: certs}); !errors.Is(err, xmlsec.ErrUntrustedKey) {
			t.Fatalf("%v, want ErrUntrustedKey", err)
		}
	})
}

// TestXSWVariantsCarryTheGenuineSignedBytes keeps the XSW cases honest:
// each must hold, somewhere in what is sent, the exact bytes the server
// signed, next to a changed (mallory) copy. Otherwise it would be refused
// for a plain digest mismatch and prove nothing about wrapping.
func TestXSWVariantsCarryTheGenuineSignedBytes(t *testing.T) {
	t.Parallel()
	h, tokens := corpusServer(t, time.Now())
	for _, src := range []string{"alice", "alice11"} {
		p := split(t, string(tokens[src]))
		for n := 1; n <= 8; n++ {
			x := transform(t, h, "xsw"+string(rune('0'+n)), string(tokens[src]))
			sent := x.before + x.token + x.after
			if !strings.Contains(sent, p.unsigned()) && !strings.Contains(sent, string(tokens[src])) {
				t.Errorf("%s XSW%d: the genuine signed bytes are not in the message", src, n)
			}
			if !strings.Contains(sent, ">mallory<") {
				t.Errorf("%s XSW%d: no evil copy in the message", src, n)
			}
		}
	}
}
