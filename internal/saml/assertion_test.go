package saml

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
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/testutil"
	"github.com/avouch/avouch/internal/xmlsec"
)

func testCert(t testing.TB, key crypto.Signer, signer any) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testAssertion(defaultNS bool) *Assertion {
	now := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)
	return &Assertion{
		ID: NewID(), Issuer: "https://sts.example/<&>", IssueInstant: now, NotBefore: now,
		NotOnOrAfter: now.Add(5 * time.Minute), Subject: "alice \"&\" <bob>\r\n\tend",
		Audiences: []string{"urn:rp:one", "https://rp.example/?a=1&b=2"}, AuthnInstant: now,
		Attributes: []Attribute{
			{Name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", Values: []string{"alice@example.test"}},
			{Name: "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", Values: []string{"admin", "staff & co"}},
			{Name: "urn-without-slash", Values: []string{"ünïcødé ✓"}},
		},
		DefaultNS: defaultNS,
	}
}

// The builders claim to write exclusive-canonical XML directly. If they do,
// canonicalising what they wrote (minus the signature) gives back the same
// bytes, and the signature verifies with the general verifier.
func TestBuildersWriteCanonicalXMLThatVerifies(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert, ecCert := testCert(t, rsaKey, rsaKey), testCert(t, ecKey, ecKey)
	type build func(*Signer, *Assertion) ([]byte, error)
	builders := map[string]struct {
		b      build
		idAttr string
	}{
		"SAML 2.0": {(*Signer).Build20, "ID"},
		"SAML 1.1": {(*Signer).Build11, "AssertionID"},
	}
	algs := []struct {
		name      string
		key       crypto.Signer
		cert      *x509.Certificate
		sig, dig  string
		allowSHA1 bool
	}{
		{"rsa-sha256", rsaKey, rsaCert, AlgRSASHA256, AlgSHA256, false},
		{"rsa-sha512", rsaKey, rsaCert, AlgRSASHA512, AlgSHA512, false},
		{"rsa-sha1", rsaKey, rsaCert, AlgRSASHA1, AlgSHA1, true},
		{"ecdsa-sha256", ecKey, ecCert, AlgECDSASHA256, AlgSHA256, false},
	}
	for bname, bd := range builders {
		for _, alg := range algs {
			for _, defaultNS := range []bool{false, true} {
				name := bname + " signed " + alg.name
				if defaultNS {
					name += " in the default namespace"
				}
				t.Run(name+" is canonical and verifies", func(t *testing.T) {
					s, err := NewSigner(alg.key, alg.cert, alg.sig, alg.dig)
					if err != nil {
						t.Fatal(err)
					}
					a := testAssertion(defaultNS)
					out, err := bd.b(s, a)
					if err != nil {
						t.Fatal(err)
					}
					doc, err := safexml.Parse(out, safexml.DefaultLimits)
					if err != nil {
						t.Fatalf("output does not parse: %v\n%s", err, out)
					}
					root := doc.Root()
					sig := root.SelectElement("Signature")
					if sig == nil {
						t.Fatal("no Signature")
					}
					canon, err := xmlsec.Canonicalize(root, xmlsec.C14NOptions{Exclude: sig})
					if err != nil {
						t.Fatal(err)
					}
					start, end := strings.Index(string(out), "<ds:Signature"), strings.Index(string(out), "</ds:Signature>")+len("</ds:Signature>")
					if unsigned := string(out[:start]) + string(out[end:]); unsigned != string(canon) {
						t.Fatalf("builder output is not canonical:\nwrote:     %s\ncanonical: %s", unsigned, canon)
					}
					opts := xmlsec.VerifyOptions{Certs: []*x509.Certificate{alg.cert}, IDAttribute: bd.idAttr}
					if alg.allowSHA1 {
						opts.SignatureAlgorithms = []string{AlgRSASHA1}
						opts.DigestAlgorithms = []string{AlgSHA1}
					}
					verified, _, err := xmlsec.VerifyEnveloped(root, opts)
					if err != nil {
						t.Fatalf("does not verify: %v", err)
					}
					// The subject, with every character that needs escaping, comes
					// through whole.
					var subj string
					for _, e := range verified.FindElements("//NameID") {
						subj = e.Text()
					}
					for _, e := range verified.FindElements("//NameIdentifier") {
						subj = e.Text()
					}
					if want := strings.ReplaceAll(a.Subject, "\r\n", "\r\n"); subj != want {
						t.Errorf("subject %q, want %q", subj, want)
					}
					// One changed byte in signed content breaks the signature.
					tampered := strings.Replace(string(out), "urn:rp:one", "urn:rp:two", 1)
					tdoc, err := safexml.Parse([]byte(tampered), safexml.DefaultLimits)
					if err != nil {
						t.Fatal(err)
					}
					if _, _, err := xmlsec.VerifyEnveloped(tdoc.Root(), opts); err == nil {
						t.Fatal("tampered assertion verified")
					}
				})
			}
		}
	}
}

func TestSAML11AttributesSplitAtTheLastSlash(t *testing.T) {
	cases := []struct{ uri, ns, name string }{
		{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims", "emailaddress"},
		{"http://wso2.org/claims/role", "http://wso2.org/claims", "role"},
		{"urn-without-slash", "urn:avouch:claims", "urn-without-slash"},
		{"http://x/trailing/", "urn:avouch:claims", "http://x/trailing/"},
	}
	for _, c := range cases {
		t.Run(c.uri, func(t *testing.T) {
			ns, name := splitClaimURI(c.uri)
			if ns != c.ns || name != c.name {
				t.Fatalf("got (%q, %q), want (%q, %q)", ns, name, c.ns, c.name)
			}
		})
	}
}

func TestSignerRefusesMismatchedAlgorithms(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name     string
		key      crypto.Signer
		sig, dig string
	}{
		{"an RSA key cannot sign ecdsa-sha256", rsaKey, AlgECDSASHA256, AlgSHA256},
		{"an ECDSA key cannot sign rsa-sha256", ecKey, AlgRSASHA256, AlgSHA256},
		{"an unknown signature algorithm is refused", rsaKey, "http://www.w3.org/2000/09/xmldsig#hmac-sha1", AlgSHA256},
		{"an unknown digest algorithm is refused", rsaKey, AlgRSASHA256, "http://www.w3.org/2001/04/xmldsig-more#md5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewSigner(c.key, &x509.Certificate{Raw: []byte{1}}, c.sig, c.dig); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// A token obtained ActAs/OnBehalfOf names the caller in a SAML 2.0
// del:DelegationRestrictionType condition. xsi:type refers to the del
// prefix, which exclusive c14n keeps only with PrefixList "del": the builder
// must write exactly that canonical form (xmlns:del and xmlns:xsi on the
// Condition, sorted; no redeclaration on del:Delegate; no self-closing
// tags), sign with that PrefixList, and the result must verify here, with
// xmlsec1 and with OpenSAML's samlsign, for bearer and holder-of-key tokens.
func TestDelegationConditionIsCanonicalAndVerifies(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	delegatedAt := time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC)
	keyInfo := []byte(`<ds:KeyInfo xmlns:ds="` + NSDSig + `"><ds:KeyValue><ds:RSAKeyValue><ds:Modulus>AQAB</ds:Modulus>` +
		`<ds:Exponent>AQAB</ds:Exponent></ds:RSAKeyValue></ds:KeyValue></ds:KeyInfo>`)
	cases := []struct {
		name      string
		key       crypto.Signer
		sig       string
		defaultNS bool
		hok       bool
	}{
		{"a bearer token signed rsa-sha256", rsaKey, AlgRSASHA256, false, false},
		{"a bearer token in the default namespace", rsaKey, AlgRSASHA256, true, false},
		{"a holder-of-key token", rsaKey, AlgRSASHA256, false, true},
		{"a holder-of-key token in the default namespace", rsaKey, AlgRSASHA256, true, true},
		{"a bearer token signed ecdsa-sha256", ecKey, AlgECDSASHA256, false, false},
	}
	for _, c := range cases {
		t.Run(c.name+" names its delegate canonically and verifies", func(t *testing.T) {
			cert := testCert(t, c.key, c.key)
			s, err := NewSigner(c.key, cert, c.sig, AlgSHA256)
			if err != nil {
				t.Fatal(err)
			}
			a := testAssertion(c.defaultNS)
			a.Delegate, a.DelegationInstant = `svc-frontend <&"`, delegatedAt
			if c.hok {
				a.KeyInfo = keyInfo
			}
			out, err := s.Build20(a)
			if err != nil {
				t.Fatal(err)
			}
			p := "saml2:"
			if c.defaultNS {
				p = ""
			}
			wantCondition := `<` + p + `Condition xmlns:del="` + NSDelegation + `" xmlns:xsi="` + NSXSI +
				`" xsi:type="del:DelegationRestrictionType"><del:Delegate DelegationInstant="2026-11-22T10:00:01.000Z">` +
				`<` + p + `NameID Format="` + NameIDUnspecified + `">svc-frontend &lt;&amp;"</` + p + `NameID></del:Delegate></` + p + `Condition>`
			if !strings.Contains(string(out), wantCondition) {
				t.Fatalf("no delegation condition of the expected form\nwant %s\nin   %s", wantCondition, out)
			}
			if strings.Contains(string(out), "/>") {
				t.Fatalf("self-closing tag in %s", out)
			}
			doc, err := safexml.Parse(out, safexml.DefaultLimits)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			root := doc.Root()
			sig := root.SelectElement("Signature")
			if sig == nil {
				t.Fatal("no Signature")
			}
			canon, err := xmlsec.Canonicalize(root, xmlsec.C14NOptions{Exclude: sig, InclusivePrefixes: []string{"del"}})
			if err != nil {
				t.Fatal(err)
			}
			start, end := strings.Index(string(out), "<ds:Signature"), strings.Index(string(out), "</ds:Signature>")+len("</ds:Signature>")
			if unsigned := string(out[:start]) + string(out[end:]); unsigned != string(canon) {
				t.Fatalf("builder output is not canonical (PrefixList del):\nwrote:     %s\ncanonical: %s", unsigned, canon)
			}
			if !strings.Contains(string(out), `PrefixList="del"`) {
				t.Fatal("the signature does not carry PrefixList del")
			}
			verified, _, err := xmlsec.VerifyEnveloped(root, xmlsec.VerifyOptions{Certs: []*x509.Certificate{cert}})
			if err != nil {
				t.Fatalf("does not verify: %v", err)
			}
			cond := verified.FindElement("./Conditions/Condition")
			if cond == nil || cond.SelectAttrValue("xsi:type", "") != "del:DelegationRestrictionType" {
				t.Fatalf("verified element has no delegation condition")
			}
			// The QName in xsi:type resolves in the verified element too.
			if ns := cond.SelectAttr("xmlns:del"); ns == nil || ns.Value != NSDelegation {
				t.Fatalf("xmlns:del is not declared on the verified Condition")
			}
			if got := cond.FindElement("./Delegate/NameID"); got == nil || got.Text() != `svc-frontend <&"` {
				t.Fatalf("delegate NameID %v", got)
			}
			verifyWithTools(t, out, cert)
			tampered := strings.Replace(string(out), "svc-frontend", "svc-frontenD", 1)
			tdoc, err := safexml.Parse([]byte(tampered), safexml.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := xmlsec.VerifyEnveloped(tdoc.Root(), xmlsec.VerifyOptions{Certs: []*x509.Certificate{cert}}); err == nil {
				t.Fatal("a changed delegate verified")
			}
		})
	}
}

// verifyWithTools has xmlsec1 and samlsign check a SAML 2.0 token, when
// they are installed (testutil policy).
func verifyWithTools(t *testing.T, tok []byte, cert *x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	certFile, tokFile := filepath.Join(dir, "sts.crt"), filepath.Join(dir, "token.xml")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	if out, err := exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "empty,same-doc",
		"--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", certFile,
		"--id-attr:ID", NS20+":Assertion", tokFile).CombinedOutput(); err != nil {
		t.Fatalf("xmlsec1 refused the token: %v\n%s", err, out)
	}
	samlsign := testutil.Tool(t, "samlsign")
	if out, err := exec.Command(samlsign, "-c", certFile, "-f", tokFile).CombinedOutput(); err != nil {
		t.Fatalf("samlsign refused the token: %v\n%s", err, out)
	}
}

// TestNewID: an NCName with 128 random bits, unique, and ordered by time
// (the token store relies on the order to append to its ID index).
func TestNewID(t *testing.T) {
	shape := regexp.MustCompile(`^_[0-9a-f]{44}$`)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		id := NewID()
		if !shape.MatchString(id) {
			t.Fatalf("NewID() = %q, want _ and 44 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
		if prev != "" && id[:13] < prev[:13] {
			t.Fatalf("time prefix went back: %q after %q", id, prev)
		}
		prev = id
		if i%500 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	a, b := NewID(), NewID()
	if a[13:] == b[13:] {
		t.Fatal("random parts repeat")
	}
}
