package xmlenc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// ourTransports adds, to the interop set, OAEP parameter mixes that only
// our own implementation is checked against.
var ourTransports = append(slices.Clone(transports),
	transportCase{"rsa-oaep with SHA-256 and MGF1-SHA-1", Options{KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA256, OAEPMGF: MGF1SHA1}, "sha256", "sha1", false},
	transportCase{"rsa-oaep with SHA-512 and MGF1-SHA-512", Options{KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA512}, "sha512", "sha512", false},
	transportCase{"the default key transport", Options{}, "sha1", "sha1", true},
)

// Our own round trip for every data algorithm × key transport, for both a
// libxml2-shaped element and bytes no XML re-serialisation would keep.
func TestEncryptElementRoundTrips(t *testing.T) {
	rp := key(t, "rp")
	for _, da := range dataAlgs {
		for _, tr := range ourTransports {
			for _, pt := range []string{libxml2Form, rawBytes} {
				t.Run(fmt.Sprintf("%s with %s returns the exact %d bytes", da.name, tr.name, len(pt)), func(t *testing.T) {
					o := tr.o
					o.DataAlgorithm = da.uri
					enc, err := EncryptElement([]byte(pt), rp.cert, o)
					if err != nil {
						t.Fatal(err)
					}
					got, err := Decrypt(encryptedData(t, enc), rp.priv, Allowed{})
					if err != nil {
						t.Fatal(err)
					}
					if string(got) != pt {
						t.Fatalf("got %q\nwant %q", got, pt)
					}
				})
			}
		}
	}
}

// XML-Enc padding is 1 to 16 bytes; every plaintext length modulo the block
// size must survive, and GCM must not pad at all.
func TestEncryptElementEveryPaddingLength(t *testing.T) {
	rp := key(t, "rp")
	for _, da := range []struct{ name, uri string }{{"AES-128-CBC", AlgAES128CBC}, {"AES-256-GCM", AlgAES256GCM}} {
		t.Run(da.name+" round-trips plaintexts of 1 to 48 bytes with the expected ciphertext size", func(t *testing.T) {
			for n := 1; n <= 48; n++ {
				pt := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
				enc, err := EncryptElement(pt, rp.cert, Options{DataAlgorithm: da.uri})
				if err != nil {
					t.Fatal(err)
				}
				ed := encryptedData(t, enc)
				ctLen := len(cipherValueOf(t, ed))
				want := 12 + n + 16 // GCM: IV, ciphertext, tag
				if da.uri == AlgAES128CBC {
					want = 16 + (n/16+1)*16 // CBC: IV, then 1 to 16 padding bytes
				}
				if ctLen != want {
					t.Fatalf("%d-byte plaintext: %d-byte ciphertext, want %d", n, ctLen, want)
				}
				got, err := Decrypt(ed, rp.priv, Allowed{})
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%d-byte plaintext: got %q, %v", n, got, err)
				}
			}
		})
	}
}

// checkNamespaces fails unless every element and prefixed attribute of el
// resolves its prefix within el itself.
func checkNamespaces(t *testing.T, el *etree.Element) {
	t.Helper()
	if namespaceURI(el) == "" {
		t.Errorf("element %s:%s has no namespace", el.Space, el.Tag)
	}
	for _, a := range el.Attr {
		if a.Space != "" && a.Space != "xmlns" {
			t.Errorf("unexpected prefixed attribute %s:%s", a.Space, a.Key)
		}
	}
	for _, c := range el.ChildElements() {
		checkNamespaces(t, c)
	}
}

// The serialised elements must be embeddable anywhere, e.g. in a
// <saml2:EncryptedAssertion> or a <wst:RequestedProofToken> that declares
// nothing: every prefix they use is declared on their root.
func TestOutputDeclaresItsNamespaces(t *testing.T) {
	rp := key(t, "rp")
	for _, tr := range ourTransports {
		t.Run("EncryptedData and EncryptedKey with "+tr.name+" declare xenc, ds and (only when used) xenc11", func(t *testing.T) {
			enc, err := EncryptElement([]byte(libxml2Form), rp.cert, tr.o)
			if err != nil {
				t.Fatal(err)
			}
			ek, err := EncryptKey(make([]byte, 32), rp.cert, tr.o)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range [][]byte{enc, ek} {
				root := encryptedData(t, b)
				checkNamespaces(t, root)
				usesXenc11 := tr.o.KeyTransport == AlgRSAOAEP
				if got := bytes.Contains(b, []byte(`xmlns:xenc11="`+NSXenc11+`"`)); got != usesXenc11 {
					t.Errorf("xenc11 declared: %v, want %v", got, usesXenc11)
				}
				if bytes.HasPrefix(b, []byte("<?xml")) {
					t.Error("output starts with an XML declaration, so it cannot be embedded")
				}
			}
			ed := encryptedData(t, enc)
			if !is(ed, NSXenc, "EncryptedData") {
				t.Fatalf("root is %s", ed.Tag)
			}
			if typ, _ := attr(ed, "Type"); typ != TypeElement {
				t.Fatalf("Type = %q", typ)
			}
			if !is(encryptedData(t, ek), NSXenc, "EncryptedKey") {
				t.Fatalf("EncryptKey root is not xenc:EncryptedKey: %s", ek)
			}
			// Embedded in a parent that declares the same prefixes for
			// other namespaces, it still resolves to ours.
			doc := parse(t, []byte(`<w xmlns:xenc="urn:not-xenc" xmlns:ds="urn:not-ds">`+string(enc)+`</w>`))
			got, err := Decrypt(doc.Root().ChildElements()[0], rp.priv, Allowed{})
			if err != nil || string(got) != libxml2Form {
				t.Fatalf("embedded: %q, %v", got, err)
			}
		})
	}
}

// Each call draws a fresh data key and IV: encrypting the same element
// twice must not repeat any ciphertext.
func TestEncryptElementIsRandomized(t *testing.T) {
	rp := key(t, "rp")
	for _, alg := range []string{AlgAES256CBC, AlgAES256GCM} {
		a, err1 := EncryptElement([]byte(libxml2Form), rp.cert, Options{DataAlgorithm: alg})
		b, err2 := EncryptElement([]byte(libxml2Form), rp.cert, Options{DataAlgorithm: alg})
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		ea, eb := encryptedData(t, a), encryptedData(t, b)
		if bytes.Equal(cipherValueOf(t, ea)[:12], cipherValueOf(t, eb)[:12]) {
			t.Errorf("%s: same IV twice", alg)
		}
		if bytes.Equal(cipherValueOf(t, mustFind(t, ea, NSXenc, "EncryptedKey")), cipherValueOf(t, mustFind(t, eb, NSXenc, "EncryptedKey"))) {
			t.Errorf("%s: same wrapped key twice", alg)
		}
	}
}

func TestEncryptKeyRoundTrips(t *testing.T) {
	rp := key(t, "rp")
	for _, tr := range ourTransports {
		for _, ki := range []KeyIdentifier{0, KeyIdentifierIssuerSerial, KeyIdentifierCertificate | KeyIdentifierIssuerSerial} {
			t.Run(fmt.Sprintf("a proof key wrapped with %s and key identifier %d unwraps to the same bytes", tr.name, ki), func(t *testing.T) {
				proof := make([]byte, 32)
				rand.Read(proof)
				o := tr.o
				o.KeyInfo = ki
				b, err := EncryptKey(proof, rp.cert, o)
				if err != nil {
					t.Fatal(err)
				}
				wantCert := ki == 0 || ki&KeyIdentifierCertificate != 0
				if got := bytes.Contains(b, []byte("<ds:X509Certificate>")); got != wantCert {
					t.Errorf("X509Certificate present: %v, want %v", got, wantCert)
				}
				wantIS := ki&KeyIdentifierIssuerSerial != 0
				if got := bytes.Contains(b, []byte("<ds:X509IssuerName>"+rp.cert.Issuer.String()+"</ds:X509IssuerName>")); got != wantIS {
					t.Errorf("X509IssuerName present: %v, want %v\n%s", got, wantIS, b)
				}
				got, err := DecryptKey(encryptedData(t, b), rp.priv, Allowed{})
				if err != nil || !bytes.Equal(got, proof) {
					t.Fatalf("got %x, %v; want %x", got, err, proof)
				}
			})
		}
	}
}

func TestEncryptRefuses(t *testing.T) {
	rp := key(t, "rp")
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ec"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		plaintext []byte
		cert      *x509.Certificate
		o         Options
		want      error // nil: any error
	}{
		{"RSA-1.5 key transport", nil, rp.cert, Options{KeyTransport: AlgRSA15}, ErrRSA15},
		{"an unknown data algorithm", nil, rp.cert, Options{DataAlgorithm: NSXenc + "tripledes-cbc"}, ErrUnsupportedAlgorithm},
		{"an unknown key transport", nil, rp.cert, Options{KeyTransport: NSXenc + "kw-aes256"}, ErrUnsupportedAlgorithm},
		{"an unknown OAEP digest", nil, rp.cert, Options{KeyTransport: AlgRSAOAEP, OAEPDigest: "http://www.w3.org/2001/04/xmldsig-more#md5"}, ErrUnsupportedAlgorithm},
		{"an unknown MGF", nil, rp.cert, Options{KeyTransport: AlgRSAOAEP, OAEPMGF: NSXenc11 + "mgf1md5"}, ErrUnsupportedAlgorithm},
		{"rsa-oaep-mgf1p with a SHA-256 digest, which .NET and xmlsec1 1.2 cannot read", nil, rp.cert, Options{OAEPDigest: DigestSHA256}, nil},
		{"rsa-oaep-mgf1p with an MGF, which is fixed to MGF1-SHA-1", nil, rp.cert, Options{OAEPMGF: MGF1SHA256}, nil},
		{"a certificate with an ECDSA key", nil, ecCert, Options{}, nil},
		{"no certificate", nil, nil, Options{}, nil},
		{"an empty plaintext", []byte{}, rp.cert, Options{}, nil},
		{"a plaintext over MaxCipherText", make([]byte, MaxCipherText), rp.cert, Options{}, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run("it refuses "+tc.name, func(t *testing.T) {
			pt := tc.plaintext
			if pt == nil {
				pt = []byte(libxml2Form)
			}
			out, err := EncryptElement(pt, tc.cert, tc.o)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || out != nil {
				t.Fatalf("EncryptElement = %d bytes, %v; want error %v", len(out), err, tc.want)
			}
			if tc.plaintext != nil {
				return // EncryptKey has no plaintext to refuse
			}
			out, err = EncryptKey(make([]byte, 16), tc.cert, tc.o)
			if tc.o.DataAlgorithm != "" {
				if err != nil { // EncryptKey ignores DataAlgorithm
					t.Fatalf("EncryptKey: %v", err)
				}
				return
			}
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || out != nil {
				t.Fatalf("EncryptKey = %d bytes, %v; want error %v", len(out), err, tc.want)
			}
		})
	}
}

// editCipherValue replaces the CipherValue bytes directly under el.
func editCipherValue(t *testing.T, el *etree.Element, f func([]byte) []byte) {
	t.Helper()
	setCipherValue(t, el, f(bytes.Clone(cipherValueOf(t, el))))
}

func flip(i int) func([]byte) []byte {
	return func(b []byte) []byte {
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0x01
		return b
	}
}

func setAlg(t *testing.T, el *etree.Element, alg string) {
	t.Helper()
	var em *etree.Element
	for _, c := range el.ChildElements() {
		if is(c, NSXenc, "EncryptionMethod") {
			em = c
		}
	}
	if em == nil {
		t.Fatal("no EncryptionMethod")
	}
	em.RemoveAttr("Algorithm")
	em.CreateAttr("Algorithm", alg)
}

func ekOf(t *testing.T, ed *etree.Element) *etree.Element {
	t.Helper()
	return mustFind(t, ed, NSXenc, "EncryptedKey")
}

// rsa15Key rewrites the EncryptedKey as a genuine RSA-1.5 one.
func rsa15Key(t *testing.T, ek *etree.Element) {
	t.Helper()
	// A real RSA-1.5 ciphertext, so that only the algorithm check can
	// stop it.
	//lint:ignore SA1019 the test needs the attack's input
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &key(t, "rp").priv.PublicKey, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	setAlg(t, ek, AlgRSA15)
	em := mustFind(t, ek, NSXenc, "EncryptionMethod")
	em.Child = nil
	setCipherValue(t, ek, ct)
}

// Decrypt must refuse hostile and broken input with the right error, and
// everything decidable without the private key before any RSA operation.
func TestDecryptRefuses(t *testing.T) {
	rp, other := key(t, "rp"), key(t, "other")
	tests := []struct {
		name     string
		o        Options
		allowed  Allowed
		priv     *rsa.PrivateKey
		mutate   func(t *testing.T, ed *etree.Element)
		want     error
		rsaCalls int64
	}{
		{name: "data encrypted for another RSA key", priv: other.priv, want: ErrDecrypt, rsaCalls: 1},
		{name: "a GCM ciphertext with one bit flipped", o: Options{DataAlgorithm: AlgAES256GCM},
			mutate: func(t *testing.T, ed *etree.Element) { editCipherValue(t, ed, flip(20)) }, want: ErrDecrypt, rsaCalls: 1},
		{name: "a GCM tag with one bit flipped", o: Options{DataAlgorithm: AlgAES128GCM},
			mutate: func(t *testing.T, ed *etree.Element) { editCipherValue(t, ed, flip(-1)) }, want: ErrDecrypt, rsaCalls: 1},
		{name: "a GCM IV with one bit flipped", o: Options{DataAlgorithm: AlgAES192GCM},
			mutate: func(t *testing.T, ed *etree.Element) { editCipherValue(t, ed, flip(0)) }, want: ErrDecrypt, rsaCalls: 1},
		{name: "an EncryptedKey with one bit flipped",
			mutate: func(t *testing.T, ed *etree.Element) { editCipherValue(t, ekOf(t, ed), flip(100)) }, want: ErrDecrypt, rsaCalls: 1},
		{name: "an EncryptedKey stating another OAEP digest than it was made with", o: Options{KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA256},
			mutate: func(t *testing.T, ed *etree.Element) {
				dm := mustFind(t, ekOf(t, ed), NSDsig, "DigestMethod")
				dm.RemoveAttr("Algorithm")
				dm.CreateAttr("Algorithm", DigestSHA1)
			}, want: ErrDecrypt, rsaCalls: 1},
		{name: "an EncryptedKey stating another MGF than it was made with", o: Options{KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA256},
			mutate: func(t *testing.T, ed *etree.Element) {
				m := mustFind(t, ekOf(t, ed), NSXenc11, "MGF")
				m.RemoveAttr("Algorithm")
				m.CreateAttr("Algorithm", MGF1SHA1)
			}, want: ErrDecrypt, rsaCalls: 1},
		// The key length is checked, not left to the cipher: AES-128 data
		// and key relabelled AES-256 must not decrypt (a downgrade).
		{name: "a 128-bit key and data relabelled as AES-256-GCM", o: Options{DataAlgorithm: AlgAES128GCM},
			mutate: func(t *testing.T, ed *etree.Element) { setAlg(t, ed, AlgAES256GCM) }, want: ErrDecrypt, rsaCalls: 1},
		{name: "a 256-bit key and data relabelled as AES-128-CBC", o: Options{DataAlgorithm: AlgAES256CBC},
			mutate: func(t *testing.T, ed *etree.Element) { setAlg(t, ed, AlgAES128CBC) }, want: ErrDecrypt, rsaCalls: 1},
		{name: "an RSA-1.5 EncryptedKey", mutate: func(t *testing.T, ed *etree.Element) { rsa15Key(t, ekOf(t, ed)) }, want: ErrRSA15},
		{name: "an RSA-1.5 EncryptedKey even when the allow-list names RSA-1.5",
			allowed: Allowed{KeyTransports: []string{AlgRSA15, AlgRSAOAEPMGF1P}},
			mutate:  func(t *testing.T, ed *etree.Element) { rsa15Key(t, ekOf(t, ed)) }, want: ErrRSA15},
		{name: "an RSA-1.5 EncryptedKey after a good one (recipients are all checked first)",
			mutate: func(t *testing.T, ed *etree.Element) {
				ek := ekOf(t, ed)
				bad := ek.Copy()
				ek.Parent().AddChild(bad)
				rsa15Key(t, bad)
			}, want: ErrRSA15},
		{name: "an unknown data algorithm", mutate: func(t *testing.T, ed *etree.Element) { setAlg(t, ed, NSXenc+"tripledes-cbc") }, want: ErrUnsupportedAlgorithm},
		{name: "an unknown key transport", mutate: func(t *testing.T, ed *etree.Element) { setAlg(t, ekOf(t, ed), NSXenc+"kw-aes256") }, want: ErrUnsupportedAlgorithm},
		{name: "an EncryptionMethod without Algorithm", mutate: func(t *testing.T, ed *etree.Element) {
			mustFind(t, ed, NSXenc, "EncryptionMethod").RemoveAttr("Algorithm")
		}, want: ErrUnsupportedAlgorithm},
		{name: "an unknown OAEP digest", mutate: func(t *testing.T, ed *etree.Element) {
			dm := mustFind(t, ekOf(t, ed), NSDsig, "DigestMethod")
			dm.RemoveAttr("Algorithm")
			dm.CreateAttr("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#md5")
		}, want: ErrUnsupportedAlgorithm},
		{name: "an unknown MGF", o: Options{KeyTransport: AlgRSAOAEP}, mutate: func(t *testing.T, ed *etree.Element) {
			m := mustFind(t, ekOf(t, ed), NSXenc11, "MGF")
			m.RemoveAttr("Algorithm")
			m.CreateAttr("Algorithm", NSXenc11+"mgf1md5")
		}, want: ErrUnsupportedAlgorithm},
		{name: "an MGF under rsa-oaep-mgf1p, whose MGF is fixed", mutate: func(t *testing.T, ed *etree.Element) {
			m := mustFind(t, ekOf(t, ed), NSXenc, "EncryptionMethod").CreateElement("xenc11:MGF")
			m.CreateAttr("xmlns:xenc11", NSXenc11)
			m.CreateAttr("Algorithm", MGF1SHA256)
		}, want: ErrMalformed},
		{name: "a data algorithm left out of the allow-list", o: Options{DataAlgorithm: AlgAES256CBC},
			allowed: Allowed{DataAlgorithms: []string{AlgAES256GCM}}, want: ErrNotAllowed},
		{name: "a key transport left out of the allow-list", o: Options{KeyTransport: AlgRSAOAEPMGF1P},
			allowed: Allowed{KeyTransports: []string{AlgRSAOAEP}}, want: ErrNotAllowed},
		{name: "an OAEP digest left out of the allow-list", o: Options{KeyTransport: AlgRSAOAEPMGF1P},
			allowed: Allowed{OAEPHashes: []crypto.Hash{crypto.SHA256}}, want: ErrNotAllowed},
		{name: "an MGF hash left out of the allow-list", o: Options{KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA256, OAEPMGF: MGF1SHA1},
			allowed: Allowed{OAEPHashes: []crypto.Hash{crypto.SHA256}}, want: ErrNotAllowed},
		{name: "a CBC ciphertext truncated to its IV", o: Options{DataAlgorithm: AlgAES128CBC},
			mutate: func(t *testing.T, ed *etree.Element) { editCipherValue(t, ed, func(b []byte) []byte { return b[:16] }) }, want: ErrMalformed},
		{name: "a CBC ciphertext that is not whole blocks", o: Options{DataAlgorithm: AlgAES128CBC},
			mutate: func(t *testing.T, ed *etree.Element) {
				editCipherValue(t, ed, func(b []byte) []byte { return b[:len(b)-1] })
			}, want: ErrMalformed},
		{name: "a GCM ciphertext shorter than IV and tag", o: Options{DataAlgorithm: AlgAES128GCM},
			mutate: func(t *testing.T, ed *etree.Element) { editCipherValue(t, ed, func(b []byte) []byte { return b[:27] }) }, want: ErrMalformed},
		{name: "a truncated EncryptedKey ciphertext",
			mutate: func(t *testing.T, ed *etree.Element) {
				editCipherValue(t, ekOf(t, ed), func(b []byte) []byte { return b[:len(b)-1] })
			}, want: ErrMalformed},
		{name: "an EncryptedKey ciphertext longer than the modulus",
			mutate: func(t *testing.T, ed *etree.Element) {
				editCipherValue(t, ekOf(t, ed), func(b []byte) []byte { return append(b, 0) })
			}, want: ErrTooLarge},
		{name: "a data ciphertext over MaxCipherText",
			mutate: func(t *testing.T, ed *etree.Element) { setCipherValue(t, ed, make([]byte, MaxCipherText+16)) }, want: ErrTooLarge},
		{name: "an empty CipherValue",
			mutate: func(t *testing.T, ed *etree.Element) { setCipherValue(t, ed, nil) }, want: ErrMalformed},
		{name: "a CipherValue that is not base64",
			mutate: func(t *testing.T, ed *etree.Element) {
				mustFind(t, mustFind(t, ed, NSXenc, "CipherData"), NSXenc, "CipherValue").SetText("%%%%")
			}, want: ErrMalformed},
		{name: "a CipherReference, which would make us fetch a URI",
			mutate: func(t *testing.T, ed *etree.Element) {
				cd := ed.ChildElements()[len(ed.ChildElements())-1]
				cd.Child = nil
				cd.CreateElement("xenc:CipherReference").CreateAttr("URI", "http://169.254.169.254/")
			}, want: ErrMalformed},
		{name: "an EncryptedData without EncryptionMethod",
			mutate: func(t *testing.T, ed *etree.Element) { ed.RemoveChild(ed.ChildElements()[0]) }, want: ErrMalformed},
		{name: "an EncryptedData with two CipherData",
			mutate: func(t *testing.T, ed *etree.Element) {
				ed.AddChild(ed.ChildElements()[len(ed.ChildElements())-1].Copy())
			}, want: ErrMalformed},
		{name: "an unexpected child element",
			mutate: func(t *testing.T, ed *etree.Element) { ed.CreateElement("xenc:Bogus") }, want: ErrMalformed},
		{name: "a KeySize that contradicts the algorithm", o: Options{DataAlgorithm: AlgAES256CBC},
			mutate: func(t *testing.T, ed *etree.Element) {
				mustFind(t, ed, NSXenc, "EncryptionMethod").CreateElement("xenc:KeySize").SetText("128")
			}, want: ErrMalformed},
		{name: "an EncryptedData without any EncryptedKey",
			mutate: func(t *testing.T, ed *etree.Element) {
				ki := mustFind(t, ed, NSDsig, "KeyInfo")
				ki.Child = nil
				ki.CreateElement("ds:KeyName").SetText("k")
			}, want: ErrNoKey},
		{name: "a RetrievalMethod to a key that is not there",
			mutate: func(t *testing.T, ed *etree.Element) {
				ki := mustFind(t, ed, NSDsig, "KeyInfo")
				ki.Child = nil
				ki.CreateElement("ds:RetrievalMethod").CreateAttr("URI", "#nowhere")
			}, want: ErrMalformed},
		{name: "a RetrievalMethod to another document",
			mutate: func(t *testing.T, ed *etree.Element) {
				ki := mustFind(t, ed, NSDsig, "KeyInfo")
				ki.Child = nil
				ki.CreateElement("ds:RetrievalMethod").CreateAttr("URI", "http://evil.example/key.xml")
			}, want: ErrMalformed},
		{name: "five EncryptedKeys (the bound on RSA operations is four)",
			mutate: func(t *testing.T, ed *etree.Element) {
				ek := ekOf(t, ed)
				for range 4 {
					ek.Parent().AddChild(ek.Copy())
				}
			}, want: ErrMalformed},
		{name: "an element that is not xenc:EncryptedData",
			mutate: func(t *testing.T, ed *etree.Element) { ed.Tag = "EncryptedKey" }, want: ErrMalformed},
		{name: "an EncryptedData in another namespace",
			mutate: func(t *testing.T, ed *etree.Element) {
				ed.RemoveAttr("xmlns:xenc")
				ed.CreateAttr("xmlns:xenc", "http://www.w3.org/2001/04/xmlenc")
			}, want: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run("it refuses "+tc.name, func(t *testing.T) {
			enc, err := EncryptElement([]byte(libxml2Form), rp.cert, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			ed := encryptedData(t, enc)
			if tc.mutate != nil {
				tc.mutate(t, ed)
			}
			priv := tc.priv
			if priv == nil {
				priv = rp.priv
			}
			cd := &countingDecrypter{Decrypter: priv}
			got, err := Decrypt(ed, cd, tc.allowed)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Decrypt = %q, %v; want %v", got, err, tc.want)
			}
			if n := cd.calls.Load(); n != tc.rsaCalls {
				t.Fatalf("%d RSA operations, want %d", n, tc.rsaCalls)
			}
			// A failure that depends on the secret is the bare ErrDecrypt:
			// nothing in the error tells an attacker which check failed.
			if errors.Is(err, ErrDecrypt) && err != ErrDecrypt {
				t.Fatalf("secret-dependent failure carries detail: %v", err)
			}
		})
	}
}

// CBC is malleable: a tampered ciphertext may decrypt to garbage instead of
// failing. What must hold: no panic, never the original plaintext, and
// every failure is the same bare ErrDecrypt, whatever the padding byte
// came out as (no padding oracle in the error).
func TestDecryptTamperedCBCIsGarbageOrOneError(t *testing.T) {
	rp := key(t, "rp")
	enc, err := EncryptElement([]byte(libxml2Form), rp.cert, Options{DataAlgorithm: AlgAES256CBC})
	if err != nil {
		t.Fatal(err)
	}
	orig := cipherValueOf(t, encryptedData(t, enc))
	failures, garbage := 0, 0
	// Every value of the byte that XORs into the last padding byte (the
	// second-to-last block's last byte), plus flips across IV and body.
	var variants [][]byte
	for v := range 256 {
		b := bytes.Clone(orig)
		b[len(b)-17] = byte(v)
		variants = append(variants, b)
	}
	for _, i := range []int{0, 7, 15, 16, 40, len(orig) - 1} {
		variants = append(variants, flip(i)(bytes.Clone(orig)))
	}
	for _, ct := range variants {
		if bytes.Equal(ct, orig) {
			continue
		}
		ed := encryptedData(t, enc)
		setCipherValue(t, ed, ct)
		got, err := Decrypt(ed, rp.priv, Allowed{})
		switch {
		case err == nil:
			garbage++
			if string(got) == libxml2Form {
				t.Fatal("tampered ciphertext decrypted to the original")
			}
		case err == ErrDecrypt:
			failures++
		default:
			t.Fatalf("tampered ciphertext: error %v, want the bare ErrDecrypt", err)
		}
	}
	// 16 of the 256 padding values are valid; the rest must fail.
	if failures < 200 || garbage < 10 {
		t.Fatalf("%d failures, %d garbage decryptions: the padding check is not what XML-Enc says", failures, garbage)
	}
}

func TestDecryptKeyRefuses(t *testing.T) {
	rp, other := key(t, "rp"), key(t, "other")
	fresh := func(t *testing.T) *etree.Element {
		b, err := EncryptKey(make([]byte, 32), rp.cert, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return encryptedData(t, b)
	}
	tests := []struct {
		name     string
		priv     *rsa.PrivateKey
		mutate   func(t *testing.T, ek *etree.Element)
		want     error
		rsaCalls int64
	}{
		{"a key wrapped for another RSA key", other.priv, nil, ErrDecrypt, 1},
		{"an RSA-1.5 key, before any RSA operation", rp.priv, rsa15Key, ErrRSA15, 0},
		{"a tampered wrapped key", rp.priv, func(t *testing.T, ek *etree.Element) { editCipherValue(t, ek, flip(9)) }, ErrDecrypt, 1},
		{"a truncated wrapped key", rp.priv, func(t *testing.T, ek *etree.Element) {
			editCipherValue(t, ek, func(b []byte) []byte { return b[:200] })
		}, ErrMalformed, 0},
		{"an AES key wrap, which is not RSA key transport", rp.priv, func(t *testing.T, ek *etree.Element) { setAlg(t, ek, NSXenc+"kw-aes128") }, ErrUnsupportedAlgorithm, 0},
		{"an EncryptedData passed as EncryptedKey", rp.priv, func(t *testing.T, ek *etree.Element) { ek.Tag = "EncryptedData" }, ErrMalformed, 0},
	}
	for _, tc := range tests {
		t.Run("it refuses "+tc.name, func(t *testing.T) {
			ek := fresh(t)
			if tc.mutate != nil {
				tc.mutate(t, ek)
			}
			cd := &countingDecrypter{Decrypter: tc.priv}
			got, err := DecryptKey(ek, cd, Allowed{})
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("DecryptKey = %x, %v; want %v", got, err, tc.want)
			}
			if n := cd.calls.Load(); n != tc.rsaCalls {
				t.Fatalf("%d RSA operations, want %d", n, tc.rsaCalls)
			}
		})
	}
	if _, err := DecryptKey(nil, rp.priv, Allowed{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecryptKey(nil) = %v", err)
	}
	if _, err := Decrypt(nil, rp.priv, Allowed{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Decrypt(nil) = %v", err)
	}
}

// Producers wrap base64 at 64 or 76 columns and indent; the OAEPparams
// label, when present, takes part in OAEP.
func TestDecryptAcceptsWhitespaceAndOAEPLabel(t *testing.T) {
	rp := key(t, "rp")
	enc, err := EncryptElement([]byte(rawBytes), rp.cert, Options{DataAlgorithm: AlgAES128GCM})
	if err != nil {
		t.Fatal(err)
	}
	ed := encryptedData(t, enc)
	for _, el := range []*etree.Element{ed, ekOf(t, ed)} {
		s := base64.StdEncoding.EncodeToString(cipherValueOf(t, el))
		var wrapped strings.Builder
		for i := 0; i < len(s); i += 64 {
			wrapped.WriteString("\r\n\t  " + s[i:min(i+64, len(s))])
		}
		mustFind(t, el.ChildElements()[len(el.ChildElements())-1], NSXenc, "CipherValue").SetText(wrapped.String() + "\n")
	}
	got, err := Decrypt(ed, rp.priv, Allowed{})
	if err != nil || string(got) != rawBytes {
		t.Fatalf("line-wrapped base64: %q, %v", got, err)
	}

	// A key wrapped with a label decrypts only when OAEPparams gives it.
	label := []byte("avouch label")
	ct, err := rsa.EncryptOAEP(crypto.SHA1.New(), rand.Reader, &rp.priv.PublicKey, []byte("0123456789abcdef"), label)
	if err != nil {
		t.Fatal(err)
	}
	ek := encryptedData(t, must(EncryptKey([]byte("x"), rp.cert, Options{})))
	setCipherValue(t, ek, ct)
	if _, err := DecryptKey(ek, rp.priv, Allowed{}); err != ErrDecrypt {
		t.Fatalf("without OAEPparams: %v, want ErrDecrypt", err)
	}
	mustFind(t, ek, NSXenc, "EncryptionMethod").CreateElement("xenc:OAEPparams").SetText(base64.StdEncoding.EncodeToString(label))
	if k, err := DecryptKey(ek, rp.priv, Allowed{}); err != nil || string(k) != "0123456789abcdef" {
		t.Fatalf("with OAEPparams: %q, %v", k, err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
