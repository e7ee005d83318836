package xmlsec

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
)

// testKey is a throw-away key with a self-signed certificate.
type testKey struct {
	key  crypto.Signer
	cert *x509.Certificate
}

var (
	keysOnce sync.Once
	keys     map[string]testKey
)

// key returns a named test key: "rsa", "rsa-other", "ec", "ec-other".
func key(t testing.TB, name string) testKey {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]testKey{}
		for _, n := range []string{"rsa", "rsa-other", "ec", "ec-other"} {
			var k crypto.Signer
			var err error
			if n[0] == 'r' {
				k, err = rsa.GenerateKey(rand.Reader, 2048)
			} else {
				k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			}
			if err != nil {
				panic(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(1),
				Subject:      pkix.Name{CommonName: "avouch test " + n},
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(24 * time.Hour),
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
			if err != nil {
				panic(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				panic(err)
			}
			keys[n] = testKey{k, cert}
		}
	})
	k, ok := keys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

// writePEM writes the key and certificate for xmlsec1 and returns the paths.
func (k testKey) writePEM(t *testing.T, dir string) (keyPath, certPath string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath = filepath.Join(dir, "key.pem")
	certPath = filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyPath, certPath
}

func mustParse(t testing.TB, s string) *etree.Document {
	t.Helper()
	doc, err := safexml.Parse([]byte(s), safexml.DefaultLimits)
	if err != nil {
		t.Fatalf("safexml.Parse: %v", err)
	}
	return doc
}

func serialize(t testing.TB, doc *etree.Document) string {
	t.Helper()
	doc.WriteSettings.CanonicalText = true
	doc.WriteSettings.CanonicalAttrVal = true
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertionXML is an unsigned SAML 2.0 assertion of about 3 KB, the size
// the STS issues.
const assertionXML = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_d71a3a8e9fcc45c9e9d248ef7049393fc8f04e5f75" IssueInstant="2024-05-01T10:00:00.000Z" Version="2.0">
  <saml:Issuer>https://sts.example.com/adfs/services/trust</saml:Issuer>
  <saml:Subject>
    <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.com</saml:NameID>
    <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <saml:SubjectConfirmationData NotOnOrAfter="2024-05-01T10:05:00.000Z" Recipient="https://sp.example.org/saml/acs" InResponseTo="_4fee3b046395c4e751011e97f8900b5273d56685"/>
    </saml:SubjectConfirmation>
  </saml:Subject>
  <saml:Conditions NotBefore="2024-05-01T09:55:00.000Z" NotOnOrAfter="2024-05-01T11:00:00.000Z">
    <saml:AudienceRestriction>
      <saml:Audience>https://sp.example.org/saml/metadata</saml:Audience>
    </saml:AudienceRestriction>
  </saml:Conditions>
  <saml:AuthnStatement AuthnInstant="2024-05-01T09:59:58.000Z" SessionIndex="_be9967abd904ddcae3c0eb4189adbe3f71e327cf93">
    <saml:AuthnContext>
      <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>
    </saml:AuthnContext>
  </saml:AuthnStatement>
  <saml:AttributeStatement>
    <saml:Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      <saml:AttributeValue xsi:type="xs:string">alice@example.com</saml:AttributeValue>
    </saml:Attribute>
    <saml:Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      <saml:AttributeValue xsi:type="xs:string">alice@example.com</saml:AttributeValue>
    </saml:Attribute>
    <saml:Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      <saml:AttributeValue xsi:type="xs:string">Alice Example</saml:AttributeValue>
    </saml:Attribute>
    <saml:Attribute Name="http://schemas.microsoft.com/ws/2008/06/identity/claims/groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      <saml:AttributeValue xsi:type="xs:string">Domain Users</saml:AttributeValue>
      <saml:AttributeValue xsi:type="xs:string">Finance &amp; Accounting</saml:AttributeValue>
      <saml:AttributeValue xsi:type="xs:string">VPN Users</saml:AttributeValue>
    </saml:Attribute>
    <saml:Attribute Name="http://schemas.microsoft.com/ws/2008/06/identity/claims/role" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
      <saml:AttributeValue xsi:type="xs:string">Approver</saml:AttributeValue>
    </saml:Attribute>
  </saml:AttributeStatement>
</saml:Assertion>`

const assertionID = "_d71a3a8e9fcc45c9e9d248ef7049393fc8f04e5f75"

// signedAssertion returns assertionXML signed by k (Signature after Issuer)
// as text, after applying edit to the unsigned tree.
func signedAssertion(t testing.TB, s Signer, edit func(*etree.Element)) string {
	t.Helper()
	doc := mustParse(t, assertionXML)
	if edit != nil {
		edit(doc.Root())
	}
	if err := s.SignEnveloped(doc.Root(), "ID", 1); err != nil {
		t.Fatalf("SignEnveloped: %v", err)
	}
	return serialize(t, doc)
}

func signer(t testing.TB, name string) Signer {
	k := key(t, name)
	return Signer{Key: k.key, Cert: k.cert}
}
