package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// Helpers that build keystores in Go, so limits and corner cases can be
// tested without external tools and FuzzLoad has seeds of every format.

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCert makes a certificate for key, self-signed when parent is nil.
func newCert(t testing.TB, key crypto.Signer, cn string, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  parent == nil,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemCertBytes(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKeyBytes(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// jksEntryIn is an entry for writeJKS: a trusted certificate when key is nil.
type jksEntryIn struct {
	alias   string
	key     crypto.Signer
	keyPass string
	chain   []*x509.Certificate
}

// writeJKS writes a version-2 JKS (or, with magic jceksMagic, a JCEKS whose
// keys use the JKS protector, which Java also reads) exactly as Java's
// JavaKeyStore.engineStore does.
func writeJKS(t testing.TB, magic uint32, storePass string, entries []jksEntryIn) []byte {
	t.Helper()
	var b bytes.Buffer
	u32 := func(v uint32) { _ = binary.Write(&b, binary.BigEndian, v) }
	utf := func(s string) { _ = binary.Write(&b, binary.BigEndian, uint16(len(s))); b.WriteString(s) }
	cert := func(c *x509.Certificate) { utf("X.509"); u32(uint32(len(c.Raw))); b.Write(c.Raw) }
	u32(magic)
	u32(2)
	u32(uint32(len(entries)))
	for _, e := range entries {
		if e.key == nil {
			u32(2)
			utf(e.alias)
			_ = binary.Write(&b, binary.BigEndian, uint64(0))
			cert(e.chain[0])
			continue
		}
		u32(1)
		utf(e.alias)
		_ = binary.Write(&b, binary.BigEndian, uint64(0))
		k := jksProtect(t, e.key, e.keyPass)
		u32(uint32(len(k)))
		b.Write(k)
		u32(uint32(len(e.chain)))
		for _, c := range e.chain {
			cert(c)
		}
	}
	return appendJKSDigest(b.Bytes(), storePass)
}

func appendJKSDigest(body []byte, storePass string) []byte {
	h := sha1.New()
	h.Write(utf16BE(storePass))
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(body)
	return h.Sum(body)
}

// jksProtect is the inverse of jksUnprotect (Sun's KeyProtector.protect).
func jksProtect(t testing.TB, key crypto.Signer, pass string) []byte {
	t.Helper()
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pw := utf16BE(pass)
	salt := make([]byte, sha1.Size)
	_, _ = rand.Read(salt)
	out := append([]byte(nil), salt...)
	digest := salt
	for off := 0; off < len(plain); off += sha1.Size {
		h := sha1.New()
		h.Write(pw)
		h.Write(digest)
		digest = h.Sum(nil)
		for i := 0; i < sha1.Size && off+i < len(plain); i++ {
			out = append(out, plain[off+i]^digest[i])
		}
	}
	h := sha1.New()
	h.Write(pw)
	h.Write(plain)
	out = h.Sum(out)
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidJKSProtector, Parameters: asn1.NullRawValue},
		EncryptedData: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// minimalPFX builds a PKCS#12 whose authenticated safe is empty, with a MAC
// of the given iteration count: enough to test the limits applied before
// the MAC is computed.
func minimalPFX(t testing.TB, macIterations int) []byte {
	t.Helper()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	safe := must(asn1.Marshal([]contentInfo{}))
	octet := must(asn1.Marshal(safe))
	wrapped := must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: octet}))
	type ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	type dig struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	type mac struct {
		Mac        dig
		MacSalt    []byte
		Iterations int
	}
	return must(asn1.Marshal(struct {
		Version  int
		AuthSafe ci
		MacData  mac
	}{3, ci{oidData, asn1.RawValue{FullBytes: wrapped}},
		mac{dig{pkix.AlgorithmIdentifier{Algorithm: oidSHA256}, make([]byte, 32)}, []byte("saltsalt"), macIterations}}))
}

// signAndVerify proves that an entry's key is usable and belongs to its
// certificate: the key signs and the certificate verifies the signature.
func signAndVerify(t *testing.T, e Entry) {
	t.Helper()
	msg := []byte("avouch keystore import: " + e.Alias)
	digest := sha256.Sum256(msg)
	var alg x509.SignatureAlgorithm
	switch e.Key.(type) {
	case *rsa.PrivateKey:
		alg = x509.SHA256WithRSA
	case *ecdsa.PrivateKey:
		alg = x509.ECDSAWithSHA256
	default:
		t.Fatalf("entry %q: unexpected key type %T", e.Alias, e.Key)
	}
	sig, err := e.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("entry %q: sign: %v", e.Alias, err)
	}
	if err := e.Cert.CheckSignature(alg, msg, sig); err != nil {
		t.Fatalf("entry %q: the certificate does not verify the key's signature: %v", e.Alias, err)
	}
}

// allErrors are the distinct failures; a case must match exactly its own.
var allErrors = []error{
	ErrTooLarge, ErrUnsupportedFormat, ErrMalformed, ErrLimit, ErrWrongPassword,
	ErrWrongKeyPassword, ErrUnsupportedKeyAlgorithm, ErrUnsupported, ErrKeyMismatch,
	ErrNoCertificate, ErrNoEntries, ErrNoPrivateKey, ErrAliasNotFound, ErrAmbiguous,
}

// wantOnly fails unless err is want and none of the other sentinel errors,
// and unless its text is free of every secret.
func wantOnly(t *testing.T, err, want error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	for _, e := range allErrors {
		if is := errors.Is(err, e); is != (e == want) {
			t.Fatalf("error %q: errors.Is(%v) = %v, want only %v", err, e, is, want)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q reveals a password", err)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// plainPFX builds a PKCS#12 without MAC or encryption (what `openssl pkcs12
// -export -nomac -keypbe NONE -certpbe NONE` writes) holding cert and key
// with a friendlyName and localKeyId: a seed in which a fuzzer can reach the
// bag parsing, since no MAC or cipher stands in its way.
func plainPFX(t testing.TB, alias string, cert *x509.Certificate, key crypto.Signer) []byte {
	t.Helper()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	explicit0 := func(inner []byte) asn1.RawValue {
		return asn1.RawValue{FullBytes: must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}))}
	}
	set := func(inner []byte) asn1.RawValue {
		return asn1.RawValue{FullBytes: must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: inner}))}
	}
	type attr struct {
		ID     asn1.ObjectIdentifier
		Values asn1.RawValue
	}
	type bag struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
		Attrs []attr `asn1:"set"`
	}
	type ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	name := must(asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagBMPString, Bytes: utf16BE(alias)}))
	id := must(asn1.Marshal([]byte{1, 2, 3, 4}))
	attrs := []attr{{oidFriendlyName, set(name)}, {oidLocalKeyID, set(id)}}
	certBagDER := must(asn1.Marshal(struct {
		ID   asn1.ObjectIdentifier
		Data asn1.RawValue
	}{oidX509Cert, explicit0(must(asn1.Marshal(cert.Raw)))}))
	keyDER := must(x509.MarshalPKCS8PrivateKey(key))
	bags := must(asn1.Marshal([]bag{
		{oidCertBag, explicit0(certBagDER), attrs},
		{oidKeyBag, explicit0(keyDER), attrs},
	}))
	safe := must(asn1.Marshal([]ci{{oidData, explicit0(must(asn1.Marshal(bags)))}}))
	return must(asn1.Marshal(struct {
		Version  int
		AuthSafe ci
	}{3, ci{oidData, explicit0(must(asn1.Marshal(safe)))}}))
}
