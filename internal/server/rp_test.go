package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/bench"
	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/psha1"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/xmlenc"
)

func rpKey(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "rp.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

type rpServer struct {
	*testServer
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newRPServer(t *testing.T, sps ...*registry.ServiceProvider) *rpServer {
	return newRPServerWith(t, nil, sps...)
}

// newRPServerWith is newRPServer with a change to the server's settings.
func newRPServerWith(t *testing.T, mutate func(*config.Config), sps ...*registry.ServiceProvider) *rpServer {
	ts := newTestServer(t, mutate)
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin"}, map[string]string{
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "alice@example.test",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname":    "Alice"})
	k, c := rpKey(t)
	ctx := context.Background()
	if err := ts.Trust.Add(ctx, "rp-cert", c); err != nil {
		t.Fatal(err)
	}
	for _, sp := range sps {
		if err := ts.Registry.Put(ctx, sp); err != nil {
			t.Fatal(err)
		}
	}
	return &rpServer{ts, k, c}
}

func (rs *rpServer) issue(t *testing.T, o client.Options, edit func(string) string) ([]byte, []byte, error) {
	t.Helper()
	o.URL, o.User, o.Password = rs.URL+"/services/sts", "alice", "Alice#pw1"
	env, ctype, err := client.BuildIssue(&o)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		env = []byte(edit(string(env)))
	}
	rstr, err := client.Post(context.Background(), http.DefaultClient, o.URL, env, ctype)
	if err != nil {
		return rstr, nil, err
	}
	tok, err := client.ExtractToken(rstr)
	return rstr, tok, err
}

// decrypt opens an EncryptedAssertion / EncryptedData with the RP's key.
func (rs *rpServer) decrypt(t *testing.T, tok []byte) []byte {
	t.Helper()
	doc, err := safexml.Parse(tok, safexml.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	ed := doc.Root()
	if ed.Tag == "EncryptedAssertion" {
		ed = ed.SelectElement("EncryptedData")
	}
	if ed == nil || ed.Tag != "EncryptedData" {
		t.Fatalf("not encrypted: %.200s", tok)
	}
	plain, err := xmlenc.Decrypt(ed, rs.key, xmlenc.Allowed{})
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func TestTokensForARegisteredRPAreEncryptedForItsCertificate(t *testing.T) {
	for _, v := range []struct{ name, saml, alg, kt string }{
		{"SAML 2.0 with the defaults", "2.0", "", ""},
		{"SAML 1.1 with the defaults", "1.1", "", ""},
		{"SAML 2.0 with AES-128-GCM and RSA-OAEP SHA-256", "2.0", "aes128-gcm", "rsa-oaep-sha256"},
	} {
		t.Run(v.name, func(t *testing.T) {
			rs := newRPServer(t, &registry.ServiceProvider{Name: "enc", WSTrust: &registry.WSTrust{
				Endpoints: []string{"https://rp.example/"},
				Token:     registry.Token{CertAlias: "rp-cert", Encrypt: true, DataEncryption: v.alg, KeyTransport: v.kt}}})
			rstr, tok, err := rs.issue(t, client.Options{SAML: v.saml, AppliesTo: "https://rp.example/"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(tok), "alice") {
				t.Fatal("the subject is readable in the encrypted token")
			}
			plain := rs.decrypt(t, tok)
			a := checkToken(t, rs.testServer, plain, tokenExpectations{saml11: v.saml == "1.1", subjectOneOf: []string{"alice"}, audience: "https://rp.example/"})
			id := a.SelectAttrValue("ID", a.SelectAttrValue("AssertionID", ""))
			if !strings.Contains(string(rstr), ">"+id+"</wsse:KeyIdentifier>") {
				t.Fatal("RequestedAttachedReference does not name the encrypted assertion's ID")
			}
			// Another key cannot open it.
			other, _ := rpKey(t)
			doc, _ := safexml.Parse(tok, safexml.DefaultLimits)
			ed := doc.Root()
			if ed.Tag == "EncryptedAssertion" {
				ed = ed.SelectElement("EncryptedData")
			}
			if _, err := xmlenc.Decrypt(ed, other, xmlenc.Allowed{}); err == nil {
				t.Fatal("decrypted with another key")
			}
		})
	}
}

func TestUnknownRelyingPartiesFollowThePolicy(t *testing.T) {
	rs := newRPServer(t)
	if _, tok, err := rs.issue(t, client.Options{AppliesTo: "urn:unregistered"}, nil); err != nil || strings.Contains(string(tok), "EncryptedData") {
		t.Fatalf("default policy should issue unencrypted: %v", err)
	}
	cfg := rs.Core.Config()
	cfg.RefuseUnknownRP = true
	rs.Core.SetConfig(cfg)
	_, _, err := rs.issue(t, client.Options{AppliesTo: "urn:unregistered"}, nil)
	if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wst:RequestFailed" || !strings.Contains(fe.Reason, "urn:unregistered") {
		t.Fatalf("refuse policy: %v", err)
	}
}

func TestRPClaimConfiguration(t *testing.T) {
	rs := newRPServer(t, &registry.ServiceProvider{Name: "claims", WSTrust: &registry.WSTrust{Endpoints: []string{"urn:claims"}},
		Claims: registry.ClaimConfig{
			Always:  []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"},
			Mapping: map[string]string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "urn:rp:mail"}}})
	_, tok, err := rs.issue(t, client.Options{AppliesTo: "urn:claims", Claims: []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, rs.testServer, tok, tokenExpectations{subjectOneOf: []string{"alice"}, audience: "urn:claims", claims: map[string]string{
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": "Alice", // always, without asking
		"urn:rp:mail": "alice@example.test", // renamed for the RP
	}})
	if strings.Contains(string(tok), `Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"`) {
		t.Fatal("the mapped claim also appears under its local URI")
	}
}

var (
	serverEntropyRE = regexp.MustCompile(`<wst:Entropy><wst:BinarySecret[^>]*>([^<]+)<`)
	binarySecretRE  = regexp.MustCompile(`<wst:RequestedProofToken><wst:BinarySecret[^>]*>([^<]+)<`)
)

func TestHolderOfKeySymmetricProofKeys(t *testing.T) {
	hok := &registry.ServiceProvider{Name: "hok", WSTrust: &registry.WSTrust{Endpoints: []string{"urn:hok"},
		Token: registry.Token{CertAlias: "rp-cert"}}}
	bearerOnly := &registry.ServiceProvider{Name: "bearer", WSTrust: &registry.WSTrust{Endpoints: []string{"urn:bearer"},
		Token: registry.Token{CertAlias: "rp-cert", AllowedKeyTypes: []string{"Bearer"}}}}
	nocert := &registry.ServiceProvider{Name: "nocert", WSTrust: &registry.WSTrust{Endpoints: []string{"urn:nocert"}}}
	rs := newRPServer(t, hok, bearerOnly, nocert)
	symmetric := func(entropy []byte, keySize string) func(string) string {
		return func(s string) string {
			extra := ""
			if entropy != nil {
				extra += `<wst:Entropy><wst:BinarySecret Type="http://docs.oasis-open.org/ws-sx/ws-trust/200512/Nonce">` + base64.StdEncoding.EncodeToString(entropy) + `</wst:BinarySecret></wst:Entropy>`
			}
			if keySize != "" {
				extra += `<wst:KeySize>` + keySize + `</wst:KeySize>`
			}
			s = strings.Replace(s, "200512/Bearer", "200512/SymmetricKey", 1)
			return strings.Replace(s, "</wst:RequestSecurityToken>", extra+"</wst:RequestSecurityToken>", 1)
		}
	}
	// proofKeyInAssertion decrypts the EncryptedKey of the confirmation.
	proofKeyInAssertion := func(t *testing.T, tok []byte) []byte {
		doc, err := safexml.Parse(tok, safexml.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		ek := doc.FindElement("//SubjectConfirmation//KeyInfo/EncryptedKey") // 2.0: in SubjectConfirmationData; 1.1: directly
		if ek == nil {
			t.Fatalf("no EncryptedKey in the confirmation: %.600s", tok)
		}
		k, err := xmlenc.DecryptKey(ek, rs.key, xmlenc.Allowed{})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	t.Run("with client entropy the proof key is P_SHA1 of both entropies", func(t *testing.T) {
		clientEntropy := make([]byte, 32)
		_, _ = rand.Read(clientEntropy)
		rstr, tok, err := rs.issue(t, client.Options{AppliesTo: "urn:hok"}, symmetric(clientEntropy, ""))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(rstr), "<wst:ComputedKey>http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1</wst:ComputedKey>") {
			t.Fatalf("no ComputedKey: %.300s", rstr)
		}
		m := serverEntropyRE.FindSubmatch(rstr)
		if m == nil {
			t.Fatal("no server Entropy")
		}
		serverEntropy, _ := base64.StdEncoding.DecodeString(string(m[1]))
		want, err := psha1.Key(clientEntropy, serverEntropy, 256)
		if err != nil {
			t.Fatal(err)
		}
		if got := proofKeyInAssertion(t, tok); string(got) != string(want) {
			t.Fatal("the proof key encrypted for the RP differs from the one the client computes")
		}
		checkToken(t, rs.testServer, tok, tokenExpectations{subjectOneOf: []string{"alice"}, audience: "urn:hok"})
		if !strings.Contains(string(tok), "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key") {
			t.Fatal("confirmation is not holder-of-key")
		}
	})
	for _, size := range []struct {
		keySize string
		bytes   int
	}{{"", 32}, {"128", 16}, {"512", 64}} {
		t.Run("without entropy the returned key is the one encrypted for the RP (KeySize "+size.keySize+")", func(t *testing.T) {
			rstr, tok, err := rs.issue(t, client.Options{AppliesTo: "urn:hok", SAML: "1.1"}, symmetric(nil, size.keySize))
			if err != nil {
				t.Fatal(err)
			}
			m := binarySecretRE.FindSubmatch(rstr)
			if m == nil {
				t.Fatalf("no BinarySecret proof token: %.300s", rstr)
			}
			key, _ := base64.StdEncoding.DecodeString(string(m[1]))
			if len(key) != size.bytes {
				t.Fatalf("key of %d bytes, want %d", len(key), size.bytes)
			}
			if got := proofKeyInAssertion(t, tok); string(got) != string(key) {
				t.Fatal("returned proof key differs from the one in the assertion")
			}
			checkToken(t, rs.testServer, tok, tokenExpectations{saml11: true, subjectOneOf: []string{"alice"}, audience: "urn:hok"})
		})
	}
	refusals := []struct {
		name, appliesTo, keySize string
	}{
		{"KeySize 1024 is refused", "urn:hok", "1024"},
		{"KeySize 100 is refused", "urn:hok", "100"},
		{"SymmetricKey for an RP that allows only Bearer is refused", "urn:bearer", ""},
		{"SymmetricKey for an RP without a certificate is refused", "urn:nocert", ""},
		{"SymmetricKey without a relying party is refused", "urn:unregistered", ""},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := rs.issue(t, client.Options{AppliesTo: c.appliesTo}, symmetric(nil, c.keySize))
			if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wst:InvalidRequest" {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestHolderOfKeyPublicKeyCarriesTheClientsCertificate(t *testing.T) {
	rs := newRPServer(t)
	_, clientCert := rpKey(t)
	b64 := base64.StdEncoding.EncodeToString(clientCert.Raw)
	useKey := func(s string) string {
		s = strings.Replace(s, "200512/Bearer", "200512/PublicKey", 1)
		return strings.Replace(s, "</wst:RequestSecurityToken>", `<wst:UseKey><wsse:BinarySecurityToken ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3">`+b64+`</wsse:BinarySecurityToken></wst:UseKey></wst:RequestSecurityToken>`, 1)
	}
	_, tok, err := rs.issue(t, client.Options{AppliesTo: "urn:any"}, useKey)
	if err != nil {
		t.Fatal(err)
	}
	a := checkToken(t, rs.testServer, tok, tokenExpectations{subjectOneOf: []string{"alice"}, audience: "urn:any"})
	xc := a.FindElement("./Subject/SubjectConfirmation/SubjectConfirmationData/KeyInfo/X509Data/X509Certificate")
	if xc == nil || xc.Text() != b64 {
		t.Fatal("the confirmation does not carry the client's certificate")
	}
	if m := a.FindElement("./Subject/SubjectConfirmation"); m.SelectAttrValue("Method", "") != "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key" {
		t.Fatal("not holder-of-key")
	}
	// Without UseKey: refused.
	_, _, err = rs.issue(t, client.Options{AppliesTo: "urn:any"}, func(s string) string { return strings.Replace(s, "200512/Bearer", "200512/PublicKey", 1) })
	if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wst:InvalidRequest" {
		t.Fatalf("PublicKey without UseKey: %v", err)
	}
}

// A relying party's own token lifetime applies to renewals too, not only to
// the first issue.
func TestRenewalUsesTheRelyingPartysLifetime(t *testing.T) {
	rs := newRPServer(t, &registry.ServiceProvider{Name: "long", WSTrust: &registry.WSTrust{Endpoints: []string{"urn:long"},
		Token: registry.Token{Lifetime: registry.Duration(20 * time.Minute)}}})
	_, tok, err := rs.issue(t, client.Options{AppliesTo: "urn:long"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, rs.testServer, tok, tokenExpectations{subjectOneOf: []string{"alice"}, audience: "urn:long", lifetime: 20 * time.Minute})
	o := &client.Options{URL: rs.URL + "/services/sts", User: "alice", Password: "Alice#pw1"}
	_, rstr, err := client.Lifecycle(context.Background(), http.DefaultClient, o, "Renew", tok, false)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := client.ExtractToken(rstr)
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, rs.testServer, renewed, tokenExpectations{subjectOneOf: []string{"alice"}, audience: "urn:long", lifetime: 20 * time.Minute})
}

// TestBenchIssuesEncryptedTokens: `avouch bench --scenario issue-encrypted`
// counts only tokens encrypted for the relying party, measures a key like
// the STS's signing key (found in its metadata, since the token's KeyInfo
// names the RP's key), and refuses a relying party without encryption.
// The STS signs with ECDSA and the RP's key is RSA: the measured key
// shows where bench looked.
func TestBenchIssuesEncryptedTokens(t *testing.T) {
	ts := newRPServerWith(t, func(c *config.Config) { c.SigningKeyAlgorithm = "ecdsa-p256" },
		&registry.ServiceProvider{Name: "enc", WSTrust: &registry.WSTrust{
			Endpoints: []string{"https://rp.example/"}, Token: registry.Token{CertAlias: "rp-cert", Encrypt: true}}})
	o := bench.Options{URL: ts.URL + "/services/sts", User: "alice", Password: "Alice#pw1", Scenario: bench.IssueEncrypted,
		AppliesTo: "https://rp.example/", Concurrency: 2, Requests: 6, SignMeasure: 100 * time.Millisecond}
	res, err := bench.Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 6 || res.Errors != 0 || res.KeyAlgorithm != "ECDSA-P256" {
		t.Fatalf("%d requests, %d errors, key %s; want 6, 0, ECDSA-P256 (the STS's)", res.Requests, res.Errors, res.KeyAlgorithm)
	}
	o.AppliesTo = "urn:not:registered"
	if _, err := bench.Run(t.Context(), o); err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("a relying party without encryption: err = %v", err)
	}
	o.AppliesTo, o.Scenario = "https://rp.example/", bench.IssueSAML20
	if _, err := bench.Run(t.Context(), o); err == nil || !strings.Contains(err.Error(), "issue-encrypted") {
		t.Fatalf("an encrypting relying party in a plain scenario: err = %v", err)
	}
}

// TestAReplacedRPCertificateIsPickedUp: the certificate of a relying party
// is cached, and one replaced behind the server's back (the CLI, another
// node) is used from the runtime watcher's next round on.
func TestAReplacedRPCertificateIsPickedUp(t *testing.T) {
	rs := newRPServer(t, &registry.ServiceProvider{Name: "enc", WSTrust: &registry.WSTrust{
		Endpoints: []string{"https://rp.example/"}, Token: registry.Token{CertAlias: "rp-cert", Encrypt: true}}})
	issue := func() *etree.Element {
		t.Helper()
		_, tok, err := rs.issue(t, client.Options{AppliesTo: "https://rp.example/"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := safexml.Parse(tok, safexml.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return doc.Root().SelectElement("EncryptedData")
	}
	if _, err := xmlenc.Decrypt(issue(), rs.key, xmlenc.Allowed{}); err != nil { // and cached now
		t.Fatal(err)
	}

	newKey, newCert := rpKey(t)
	if err := rs.Store.PutCertificate(t.Context(), storage.Certificate{Alias: "rp-cert", CreatedAt: time.Now(),
		PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newCert.Raw})}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { rs.watchRuntime(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := xmlenc.Decrypt(issue(), newKey, xmlenc.Allowed{}); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("tokens are still encrypted for the replaced certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
