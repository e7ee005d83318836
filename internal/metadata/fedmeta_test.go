package metadata

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
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/testutil"
	"github.com/avouch/avouch/internal/xmlsec"
)

func newKeyPair(t *testing.T, ec bool) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	var key crypto.Signer
	var err error
	if ec {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "metadata test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func writePEM(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "signing.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func xmlsec1Verify(t *testing.T, certFile string, doc []byte) ([]byte, error) {
	t.Helper()
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	file := filepath.Join(t.TempDir(), "FederationMetadata.xml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	return exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "empty,same-doc",
		"--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", certFile,
		"--id-attr:ID", NSSAMLMetadata+":EntityDescriptor", file).CombinedOutput()
}

var fedEndpoints = []STSEndpoint{
	{Address: "https://sts.example.test/adfs/services/trust/13/usernamemixed", MEX: "https://sts.example.test/adfs/services/trust/mex"},
	{Address: "https://sts.example.test/services/sts", MEX: "https://sts.example.test/services/sts/mex"},
}

func TestFederationMetadataVerifiesWithXMLSec1AndOurVerifier(t *testing.T) {
	for _, c := range []struct {
		name           string
		ec             bool
		sigAlg, digAlg string
	}{
		{"signed with RSA-SHA256 (the default)", false, "", ""},
		{"signed with RSA-SHA512 and a SHA-512 digest", false, xmlsec.AlgRSASHA512, xmlsec.AlgSHA512},
		{"signed with ECDSA-SHA256", true, xmlsec.AlgECDSASHA256, xmlsec.AlgSHA256},
	} {
		t.Run("FederationMetadata "+c.name+" verifies, and one changed address breaks it", func(t *testing.T) {
			key, cert := newKeyPair(t, c.ec)
			doc, err := FederationMetadata(FederationOptions{
				EntityID: "urn:avouch:test", STSEndpoints: fedEndpoints, ClaimTypes: []string{"urn:claim:a"},
				Signer: xmlsec.Signer{Key: key, Cert: cert, SignatureAlgorithm: c.sigAlg, DigestAlgorithm: c.digAlg},
			})
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := safexml.Parse(doc, safexml.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := xmlsec.VerifyEnveloped(parsed.Root(), xmlsec.VerifyOptions{Certs: []*x509.Certificate{cert},
				SignatureAlgorithms: []string{xmlsec.AlgRSASHA256, xmlsec.AlgRSASHA512, xmlsec.AlgECDSASHA256}}); err != nil {
				t.Errorf("our verifier refuses the metadata: %v", err)
			}
			certFile := writePEM(t, cert)
			if out, err := xmlsec1Verify(t, certFile, doc); err != nil {
				t.Errorf("xmlsec1 refuses the metadata: %v\n%s\n%s", err, out, doc)
			}
			tampered := bytes.Replace(doc, []byte("https://sts.example.test/services/sts<"), []byte("https://evil.example.test/services/sts<"), 1)
			if bytes.Equal(tampered, doc) {
				t.Fatal("nothing to tamper with")
			}
			if out, err := xmlsec1Verify(t, certFile, tampered); err == nil {
				t.Errorf("xmlsec1 accepts the metadata after an endpoint address changed:\n%s", out)
			}
		})
	}
}

func TestFederationMetadataDescribesTheSTS(t *testing.T) {
	key, signing := newKeyPair(t, false)
	_, previous := newKeyPair(t, false)
	claims := []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "http://wso2.org/claims/emailaddress"}
	for _, c := range []struct {
		name      string
		certs     []*x509.Certificate
		passive   string
		wantCerts []*x509.Certificate
	}{
		{"one signing key is published once, though also listed among the stored keys",
			[]*x509.Certificate{signing}, "", []*x509.Certificate{signing}},
		{"during a rotation overlap both keys are published, the signing one first",
			[]*x509.Certificate{previous, signing}, "", []*x509.Certificate{signing, previous}},
		{"a passive requestor endpoint appears only when one is configured",
			nil, "https://sts.example.test/passive", []*x509.Certificate{signing}},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, err := FederationMetadata(FederationOptions{
				EntityID: "urn:avouch:test", ID: "_fixed", SigningCerts: c.certs, STSEndpoints: fedEndpoints,
				PassiveRequestorEndpoint: c.passive, ClaimTypes: claims, Signer: xmlsec.Signer{Key: key, Cert: signing},
			})
			if err != nil {
				t.Fatal(err)
			}
			root := parse(t, doc)
			if root.name.Space != NSSAMLMetadata || root.name.Local != "EntityDescriptor" ||
				root.attr("ID") != "_fixed" || root.attr("entityID") != "urn:avouch:test" {
				t.Fatalf("root %v ID=%q entityID=%q", root.name, root.attr("ID"), root.attr("entityID"))
			}
			// SAML metadata schema: ds:Signature is EntityDescriptor's first child.
			if len(root.children) != 2 || root.children[0].name.Space != xmlsec.NamespaceDSig || root.children[0].name.Local != "Signature" {
				t.Fatalf("EntityDescriptor children must be ds:Signature then the RoleDescriptor")
			}
			rd := root.children[1]
			if rd.name.Local != "RoleDescriptor" || rd.attrNS(NSXSI, "type") != "fed:SecurityTokenServiceType" ||
				rd.attr("protocolSupportEnumeration") != NSFederation {
				t.Fatalf("second child is not a fed:SecurityTokenServiceType RoleDescriptor")
			}
			// Children in the order the WS-Federation schema requires.
			var order []string
			for _, ch := range rd.children {
				if len(order) == 0 || order[len(order)-1] != ch.name.Local {
					order = append(order, ch.name.Local)
				}
			}
			want := "KeyDescriptor,TokenTypesOffered,ClaimTypesOffered,SecurityTokenServiceEndpoint"
			if c.passive != "" {
				want += ",PassiveRequestorEndpoint"
			}
			if got := strings.Join(order, ","); got != want {
				t.Errorf("RoleDescriptor children %s, want %s", got, want)
			}

			kds := rd.all(NSSAMLMetadata, "KeyDescriptor")
			if len(kds) != len(c.wantCerts) {
				t.Fatalf("%d KeyDescriptors, want %d", len(kds), len(c.wantCerts))
			}
			for i, kd := range kds {
				x := kd.all(xmlsec.NamespaceDSig, "X509Certificate")
				if kd.attr("use") != "signing" || len(x) != 1 || x[0].text.String() != base64.StdEncoding.EncodeToString(c.wantCerts[i].Raw) {
					t.Errorf("KeyDescriptor %d is not the signing certificate expected there", i)
				}
			}
			var tts []string
			for _, tt := range rd.all(NSFederation, "TokenType") {
				tts = append(tts, tt.attr("Uri"))
			}
			if strings.Join(tts, " ") != TokenTypeSAML20+" "+TokenTypeSAML11 {
				t.Errorf("token types %q, want SAML 2.0 and 1.1", tts)
			}
			var cts []string
			for _, ct := range rd.all(NSAuthz, "ClaimType") {
				cts = append(cts, ct.attr("Uri"))
			}
			if strings.Join(cts, " ") != strings.Join(claims, " ") {
				t.Errorf("claim types %q, want %q", cts, claims)
			}
			eps := rd.all(NSFederation, "SecurityTokenServiceEndpoint")
			if len(eps) != len(fedEndpoints) {
				t.Fatalf("%d STS endpoints, want %d", len(eps), len(fedEndpoints))
			}
			for i, ep := range eps {
				addrs := ep.all(NSAddressing, "Address")
				if len(addrs) != 2 || addrs[0].text.String() != fedEndpoints[i].Address || addrs[1].text.String() != fedEndpoints[i].MEX {
					t.Errorf("STS endpoint %d: want EPR %s with a MetadataReference to %s", i, fedEndpoints[i].Address, fedEndpoints[i].MEX)
				}
				if len(ep.all(NSMEX, "MetadataReference")) != 1 {
					t.Errorf("STS endpoint %d has no wsx:MetadataReference", i)
				}
			}
			passive := rd.all(NSFederation, "PassiveRequestorEndpoint")
			if c.passive == "" && len(passive) != 0 {
				t.Errorf("a PassiveRequestorEndpoint is advertised though none is configured")
			}
			if c.passive != "" && (len(passive) != 1 || passive[0].all(NSAddressing, "Address")[0].text.String() != c.passive) {
				t.Errorf("PassiveRequestorEndpoint, want exactly %s", c.passive)
			}
		})
	}
}

func TestFederationMetadataRefusesWhatItCannotStateTruthfully(t *testing.T) {
	key, cert := newKeyPair(t, false)
	ok := FederationOptions{EntityID: "avouch", STSEndpoints: fedEndpoints, Signer: xmlsec.Signer{Key: key, Cert: cert}}
	for _, c := range []struct {
		name string
		edit func(*FederationOptions)
	}{
		{"no entity ID", func(o *FederationOptions) { o.EntityID = "" }},
		{"no STS endpoint (the schema needs one)", func(o *FederationOptions) { o.STSEndpoints = nil }},
		{"no signing key (metadata is never served unsigned)", func(o *FederationOptions) { o.Signer.Key = nil }},
		{"no certificate to publish", func(o *FederationOptions) { o.Signer.Cert = nil }},
		{"a certificate that does not hold the signing key", func(o *FederationOptions) { _, o.Signer.Cert = newKeyPair(t, false) }},
	} {
		t.Run("metadata with "+c.name+" is an error", func(t *testing.T) {
			o := ok
			c.edit(&o)
			if doc, err := FederationMetadata(o); err == nil {
				t.Errorf("rendered:\n%s", doc)
			}
		})
	}
}
