package xmlenc

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// testKey is a throw-away RSA key with a self-signed certificate.
type testKey struct {
	priv *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	keysOnce sync.Once
	keys     map[string]testKey
)

// key returns a named test key: "rp" (the relying party) or "other".
func key(t testing.TB, name string) testKey {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]testKey{}
		for i, n := range []string{"rp", "other"} {
			priv, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(int64(1000 + i)),
				Subject:      pkix.Name{CommonName: "avouch xmlenc test " + n, Organization: []string{"Avouch, Tests"}},
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(24 * time.Hour),
				KeyUsage:     x509.KeyUsageKeyEncipherment,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
			if err != nil {
				panic(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				panic(err)
			}
			keys[n] = testKey{priv, cert}
		}
	})
	k, ok := keys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

// writePEM writes the key (PKCS#8) and certificate and returns their paths.
func (k testKey) writePEM(t *testing.T, dir string) (keyPath, certPath string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPath = filepath.Join(dir, "rp.key")
	certPath = filepath.Join(dir, "rp.crt")
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	writeFile(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw}))
	return keyPath, certPath
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runTool runs a program and returns its stdout and stderr together.
func runTool(path string, args ...string) ([]byte, error) {
	cmd := exec.Command(path, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

func parse(t testing.TB, b []byte) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("parsing %q: %v", excerpt(b), err)
	}
	return doc
}

func excerpt(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// find returns the first element (depth first, el included) named ns:local.
func find(el *etree.Element, ns, local string) *etree.Element {
	if is(el, ns, local) {
		return el
	}
	for _, c := range el.ChildElements() {
		if f := find(c, ns, local); f != nil {
			return f
		}
	}
	return nil
}

func mustFind(t testing.TB, el *etree.Element, ns, local string) *etree.Element {
	t.Helper()
	f := find(el, ns, local)
	if f == nil {
		t.Fatalf("no %s element", local)
	}
	return f
}

// encryptedData parses EncryptElement's output and returns its root.
func encryptedData(t testing.TB, b []byte) *etree.Element {
	t.Helper()
	return parse(t, b).Root()
}

// serializeEl writes el (as the root of its own document) for re-parsing.
func serializeEl(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cipherValueOf returns the decoded CipherValue directly under el's
// CipherData.
func cipherValueOf(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	for _, c := range el.ChildElements() {
		if is(c, NSXenc, "CipherData") {
			s := strings.Join(strings.Fields(mustFind(t, c, NSXenc, "CipherValue").Text()), "")
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatal("no CipherData")
	return nil
}

func setCipherValue(t testing.TB, el *etree.Element, ct []byte) {
	t.Helper()
	for _, c := range el.ChildElements() {
		if is(c, NSXenc, "CipherData") {
			mustFind(t, c, NSXenc, "CipherValue").SetText(base64.StdEncoding.EncodeToString(ct))
			return
		}
	}
	t.Fatal("no CipherData")
}

// countingDecrypter counts the private-key operations, to prove that a
// refusal happens before any of them.
type countingDecrypter struct {
	crypto.Decrypter
	calls atomic.Int64
}

func (c *countingDecrypter) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	c.calls.Add(1)
	return c.Decrypter.Decrypt(r, msg, opts)
}

// Plaintexts.
const (
	// libxml2Form is an element already in the form libxml2 serialises
	// (ASCII, double quotes, "&gt;" in text), so xmlsec1's Type=Element
	// output, which re-serialises the decrypted node, must reproduce it
	// byte for byte.
	libxml2Form = `<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_a75adf55-01d7-40cc-929f-dbd8372ebdfc" IssueInstant="2026-01-02T03:04:05Z" Version="2.0">` +
		`<saml2:Issuer>https://sts.avouch.example/</saml2:Issuer>` +
		`<saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">alice &amp; bob &lt;x&gt;</saml2:NameID></saml2:Subject>` +
		`<saml2:AttributeStatement><saml2:Attribute Name="groups"><saml2:AttributeValue>admins</saml2:AttributeValue><saml2:AttributeValue>users</saml2:AttributeValue></saml2:Attribute></saml2:AttributeStatement>` +
		`</saml2:Assertion>`
	// rawBytes is an element whose exact bytes no re-serialisation keeps
	// (single quotes, non-ASCII, a character reference, a tab, a CR
	// reference): decryption must return exactly these bytes.
	rawBytes = "<t:Token xmlns:t='urn:avouch:test'\tId='x'>Grüße, 東京 &#13;\n\t<t:Empty></t:Empty><!-- signed comment --></t:Token>"
)

// wrapperOpen and wrapperClose embed an EncryptedData as SAML 2.0 does.
const (
	wrapperOpen  = `<saml2:EncryptedAssertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion">`
	wrapperClose = `</saml2:EncryptedAssertion>`
)

// dataAlgs are all block encryption algorithms, with the xmlsec1
// --session-key name of a key of their size.
var dataAlgs = []struct {
	name, uri, sessionKey string
	keySize               int
}{
	{"AES-128-CBC", AlgAES128CBC, "aes-128", 16},
	{"AES-192-CBC", AlgAES192CBC, "aes-192", 24},
	{"AES-256-CBC", AlgAES256CBC, "aes-256", 32},
	{"AES-128-GCM", AlgAES128GCM, "aes-128", 16},
	{"AES-192-GCM", AlgAES192GCM, "aes-192", 24},
	{"AES-256-GCM", AlgAES256GCM, "aes-256", 32},
}

// transports are the key transport choices the interop tests cover, with
// the openssl pkeyutl digest names of their OAEP parameters.
type transportCase struct {
	name             string
	o                Options
	oaepMD, mgf1MD   string
	xmlsec1Supported bool // by xmlsec1 1.2.37 (Debian 12)
}

var transports = []transportCase{
	{"rsa-oaep-mgf1p", Options{KeyTransport: AlgRSAOAEPMGF1P}, "sha1", "sha1", true},
	{"rsa-oaep with SHA-1 and MGF1-SHA-1", Options{KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA1}, "sha1", "sha1", false},
	{"rsa-oaep with SHA-256 and MGF1-SHA-256", Options{KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA256}, "sha256", "sha256", false},
}
