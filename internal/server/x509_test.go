package server

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/testutil"
	"github.com/avouch/avouch/internal/wssec"
	"github.com/avouch/avouch/internal/xmlsec"
)

// Caller authentication beyond passwords: X.509-signed requests (with the
// signature-wrapping corpus in testdata/xsw), certificates of trusted CAs,
// security scenarios, and mutual TLS. The helpers at the top build and sign
// WS-Security requests the way clients do; delegation_test.go uses them too.

// Namespaces of the requests the tests build.
const (
	tNSSoap11 = "http://schemas.xmlsoap.org/soap/envelope/"
	tNSWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	tNSWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	tNSWST    = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	tNSWSA    = "http://www.w3.org/2005/08/addressing"
	tStamp    = "2006-01-02T15:04:05Z"
)

// envOpts shapes a WS-Trust 1.3 Issue request with {{BST}} and {{SIG}}
// placeholders in its Security header.
type envOpts struct {
	created   time.Time
	appliesTo string
	wsa       bool   // add wsa:Action and wsa:MessageID (with wsu:Ids "act", "msg")
	secID     bool   // a wsu:Id on the Security header itself
	ut        string // "user:password": a UsernameToken in the Security header
	rstExtra  string // more RST children (ActAs, ...)
}

func rstEnvelope(o envOpts) string {
	var b strings.Builder
	b.WriteString(`<s:Envelope xmlns:s="` + tNSSoap11 + `" xmlns:wsu="` + tNSWSU + `"><s:Header>`)
	if o.wsa {
		b.WriteString(`<wsa:Action xmlns:wsa="` + tNSWSA + `" wsu:Id="act">` + tNSWST + `/RST/Issue</wsa:Action>`)
		b.WriteString(`<wsa:MessageID xmlns:wsa="` + tNSWSA + `" wsu:Id="msg">urn:avouch:test:` + o.created.UTC().Format("20060102T150405") + `</wsa:MessageID>`)
	}
	b.WriteString(`<wsse:Security xmlns:wsse="` + tNSWSSE + `" s:mustUnderstand="1"`)
	if o.secID {
		b.WriteString(` wsu:Id="sec"`)
	}
	b.WriteString(`><wsu:Timestamp wsu:Id="ts"><wsu:Created>` + o.created.UTC().Format(tStamp) + `</wsu:Created>`)
	b.WriteString(`<wsu:Expires>` + o.created.Add(5*time.Minute).UTC().Format(tStamp) + `</wsu:Expires></wsu:Timestamp>{{BST}}`)
	if o.ut != "" {
		u, p, _ := strings.Cut(o.ut, ":")
		b.WriteString(`<wsse:UsernameToken><wsse:Username>` + u + `</wsse:Username><wsse:Password>` + p + `</wsse:Password></wsse:UsernameToken>`)
	}
	b.WriteString(`{{SIG}}</wsse:Security></s:Header><s:Body wsu:Id="body"><wst:RequestSecurityToken xmlns:wst="` + tNSWST + `">`)
	b.WriteString(`<wst:RequestType>` + tNSWST + `/Issue</wst:RequestType><wst:TokenType>urn:oasis:names:tc:SAML:2.0:assertion</wst:TokenType>`)
	if o.appliesTo != "" {
		b.WriteString(`<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="` + tNSWSA +
			`"><wsa:Address>` + o.appliesTo + `</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`)
	}
	b.WriteString(o.rstExtra + `</wst:RequestSecurityToken></s:Body></s:Envelope>`)
	return b.String()
}

// sigSpec says how signRequest signs.
type sigSpec struct {
	key  crypto.Signer
	cert *x509.Certificate
	// keyInfo: "bst" (default: a BinarySecurityToken and a reference to
	// it), "x509data" (the certificate in STR/X509Data, as zeep's
	// Signature does), "issuerserial", "thumbprint", "ski", or raw XML
	// starting with "<" (the whole ds:KeyInfo).
	keyInfo string
	// refs are the IDs referenced; default the Body and the Timestamp. A
	// ref starting with '=' is written as the URI after it, verbatim.
	refs           []string
	sigAlg, digAlg string // default rsa-sha256, sha256
	// transforms replaces the Transforms content of every Reference.
	transforms string
	// hmacKey signs with HMAC-SHA1 instead of the key.
	hmacKey []byte
}

var digestHash = map[string]crypto.Hash{xmlsec.AlgSHA1: crypto.SHA1, xmlsec.AlgSHA256: crypto.SHA256, xmlsec.AlgSHA512: crypto.SHA512}
var sigHash = map[string]crypto.Hash{xmlsec.AlgRSASHA1: crypto.SHA1, xmlsec.AlgRSASHA256: crypto.SHA256, xmlsec.AlgRSASHA512: crypto.SHA512}

// signRequest signs an envelope from rstEnvelope the way WS-Security
// clients do: a ds:Signature in the Security header with one exc-c14n
// Reference per signed element. Digests come from xmlsec.Canonicalize
// (differentially tested against xmlsec1); TestXSWCorpusBaselineVerifiesWithXmlsec1
// has xmlsec1 confirm the result independently.
func signRequest(t testing.TB, env string, s sigSpec) string {
	t.Helper()
	if s.sigAlg == "" {
		s.sigAlg = xmlsec.AlgRSASHA256
	}
	if s.digAlg == "" {
		s.digAlg = xmlsec.AlgSHA256
	}
	if s.refs == nil {
		s.refs = []string{"body", "ts"}
	}
	b64cert := base64.StdEncoding.EncodeToString(s.cert.Raw)
	bst, ki := "", ""
	switch s.keyInfo {
	case "", "bst":
		bst = `<wsse:BinarySecurityToken wsu:Id="x509" ValueType="` + wssec.X509v3 + `" EncodingType="` + wssec.Base64Binary + `">` + b64cert + `</wsse:BinarySecurityToken>`
		ki = `<wsse:SecurityTokenReference><wsse:Reference URI="#x509" ValueType="` + wssec.X509v3 + `"></wsse:Reference></wsse:SecurityTokenReference>`
	case "x509data":
		ki = `<wsse:SecurityTokenReference><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>` + s.cert.Issuer.String() +
			`</ds:X509IssuerName><ds:X509SerialNumber>` + s.cert.SerialNumber.String() + `</ds:X509SerialNumber></ds:X509IssuerSerial>` +
			`<ds:X509Certificate>` + b64cert + `</ds:X509Certificate></ds:X509Data></wsse:SecurityTokenReference>`
	case "issuerserial":
		ki = `<wsse:SecurityTokenReference><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>` + s.cert.Issuer.String() +
			`</ds:X509IssuerName><ds:X509SerialNumber>` + s.cert.SerialNumber.String() + `</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></wsse:SecurityTokenReference>`
	case "thumbprint":
		sum := sha1.Sum(s.cert.Raw)
		ki = `<wsse:SecurityTokenReference><wsse:KeyIdentifier EncodingType="` + wssec.Base64Binary + `" ValueType="` + wssec.ThumbprintSHA1 + `">` +
			base64.StdEncoding.EncodeToString(sum[:]) + `</wsse:KeyIdentifier></wsse:SecurityTokenReference>`
	case "ski":
		ki = `<wsse:SecurityTokenReference><wsse:KeyIdentifier EncodingType="` + wssec.Base64Binary + `" ValueType="` + wssec.X509SKI + `">` +
			base64.StdEncoding.EncodeToString(s.cert.SubjectKeyId) + `</wsse:KeyIdentifier></wsse:SecurityTokenReference>`
	default:
		ki = s.keyInfo
	}
	if !strings.HasPrefix(ki, "<ds:KeyInfo") {
		ki = `<ds:KeyInfo>` + ki + `</ds:KeyInfo>`
	}
	plain := strings.NewReplacer("{{BST}}", bst, "{{SIG}}", "").Replace(env)
	doc, err := safexml.Parse([]byte(plain), safexml.DefaultLimits)
	if err != nil {
		t.Fatalf("template does not parse: %v\n%s", err, plain)
	}
	ids, err := xmlsec.IndexIDs(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	var si strings.Builder
	si.WriteString(`<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="` + xmlsec.AlgExcC14N + `"></ds:CanonicalizationMethod>`)
	si.WriteString(`<ds:SignatureMethod Algorithm="` + s.sigAlg + `"></ds:SignatureMethod>`)
	for _, id := range s.refs {
		uri := "#" + id
		if strings.HasPrefix(id, "=") {
			uri = id[1:]
		}
		digest := "AAAA"
		if el := ids[strings.TrimPrefix(uri, "#")]; el != nil {
			c, err := xmlsec.Canonicalize(el, xmlsec.C14NOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h := digestHash[s.digAlg].New()
			h.Write(c)
			digest = base64.StdEncoding.EncodeToString(h.Sum(nil))
		}
		tr := `<ds:Transform Algorithm="` + xmlsec.AlgExcC14N + `"></ds:Transform>`
		if s.transforms != "" {
			tr = s.transforms
		}
		si.WriteString(`<ds:Reference URI="` + uri + `"><ds:Transforms>` + tr + `</ds:Transforms><ds:DigestMethod Algorithm="` + s.digAlg +
			`"></ds:DigestMethod><ds:DigestValue>` + digest + `</ds:DigestValue></ds:Reference>`)
	}
	si.WriteString(`</ds:SignedInfo>`)
	sig := `<ds:Signature xmlns:ds="` + xmlsec.NamespaceDSig + `">` + si.String() + `<ds:SignatureValue>SIGVALUE</ds:SignatureValue>` + ki + `</ds:Signature>`
	withSig := strings.NewReplacer("{{BST}}", bst, "{{SIG}}", sig).Replace(env)
	doc, err = safexml.Parse([]byte(withSig), safexml.DefaultLimits)
	if err != nil {
		t.Fatalf("signed request does not parse: %v\n%s", err, withSig)
	}
	c, err := xmlsec.Canonicalize(doc.FindElement("//Signature/SignedInfo"), xmlsec.C14NOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var value []byte
	if s.hmacKey != nil {
		m := hmac.New(sha1.New, s.hmacKey)
		m.Write(c)
		value = m.Sum(nil)
	} else {
		hash, ok := sigHash[s.sigAlg]
		if !ok {
			hash = crypto.SHA256
		}
		h := hash.New()
		h.Write(c)
		if value, err = s.key.Sign(rand.Reader, h.Sum(nil), hash); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Replace(withSig, "SIGVALUE", base64.StdEncoding.EncodeToString(value), 1)
}

// ---- keys -----------------------------------------------------------------

var updateXSW = flag.Bool("update-xsw", false, "regenerate internal/server/testdata/xsw (the corpus keys are kept when present)")

const xswDir = "testdata/xsw"

// keyCert is a private key with its certificate.
type keyCert struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// newCert makes a certificate for a fresh RSA key, self-signed when issuer
// is nil.
func newCert(t testing.TB, tmpl *x509.Certificate, issuer *keyCert) keyCert {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	if tmpl.SubjectKeyId == nil {
		sum := sha1.Sum(x509.MarshalPKCS1PublicKey(&k.PublicKey))
		tmpl.SubjectKeyId = sum[:]
	}
	parent, signer := tmpl, crypto.Signer(k)
	if issuer != nil {
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keyCert{k, c}
}

// corpusKey loads a committed corpus key (testdata/xsw/NAME.key, .crt);
// with -update-xsw it creates missing ones.
func corpusKey(t testing.TB, name, cn string) keyCert {
	t.Helper()
	keyFile, certFile := filepath.Join(xswDir, name+".key"), filepath.Join(xswDir, name+".crt")
	kp, errK := os.ReadFile(keyFile)
	cp, errC := os.ReadFile(certFile)
	if errK != nil || errC != nil {
		if !*updateXSW {
			t.Fatalf("corpus key %s missing (run go test ./internal/server -run XSW -update-xsw): %v %v", name, errK, errC)
		}
		kc := newCert(t, &x509.Certificate{SerialNumber: big.NewInt(int64(len(name)) + 1000), Subject: pkix.Name{CommonName: cn, Organization: []string{"avouch tests"}},
			NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, nil)
		if err := os.MkdirAll(xswDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(kc.key)}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kc.cert.Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
		return kc
	}
	kb, _ := pem.Decode(kp)
	cb, _ := pem.Decode(cp)
	if kb == nil || cb == nil {
		t.Fatalf("corpus key %s: not PEM", name)
	}
	k, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return keyCert{k, c}
}

// ---- servers --------------------------------------------------------------

// carolPassword is carol's password; her certificates are registered.
const carolPassword = "Carol#pw1"

// x509Server is a test server with carol (admin) and a security scenario.
func x509Server(t *testing.T, scenario string) *testServer {
	t.Helper()
	ts := newTestServer(t, nil)
	ts.addUser(t, "carol", carolPassword, false, []string{"admin"},
		map[string]string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "carol@example.test"})
	ts.storeScenario(t, scenario)
	return ts
}

// setScenario stores security_scenario as `avouch config set` does, and
// waits out the second for which the server caches the setting.
func (ts *testServer) setScenario(t testing.TB, scenario string) {
	t.Helper()
	ts.storeScenario(t, scenario)
	time.Sleep(1100 * time.Millisecond)
}

// storeScenario stores security_scenario before the server has read it.
func (ts *testServer) storeScenario(t testing.TB, scenario string) {
	t.Helper()
	if err := ts.Store.PutSetting(context.Background(), SettingPrefix+"security_scenario", scenario); err != nil {
		t.Fatal(err)
	}
}

// frag is the part of an algorithm URI after '#'.
func frag(uri string) string { return uri[strings.LastIndexByte(uri, '#')+1:] }

func (ts *testServer) registerUserCert(t testing.TB, login string, c *x509.Certificate) {
	t.Helper()
	if err := ts.Trust.Add(context.Background(), wssec.UserCertAlias(login, c), c); err != nil {
		t.Fatal(err)
	}
}

func (ts *testServer) trustAs(t testing.TB, alias string, c *x509.Certificate) {
	t.Helper()
	if err := ts.Trust.Add(context.Background(), alias, c); err != nil {
		t.Fatal(err)
	}
}

// issued posts a request and returns the token, failing the test on a fault.
func (ts *testServer) issued(t *testing.T, body string) []byte {
	t.Helper()
	r := ts.post(t, "/services/sts", "text/xml; charset=utf-8", []byte(body))
	if r.Status != 200 {
		t.Fatalf("HTTP %d %s: %s", r.Status, faultCode(r.Body), r.Body)
	}
	tok, err := client.ExtractToken([]byte(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ---- the signature-wrapping corpus ------------------------------------------

// xswCase is one file of testdata/xsw and the fault it must get ("ok": a
// token for carol).
type xswCase struct {
	file, fault, about string
	content            string
}

// corpusTime is when the corpus was signed; the test server's clock stands
// a minute later.
var corpusTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// buildCorpus makes the corpus from the committed keys. RSA PKCS#1 v1.5
// and HMAC signatures are deterministic, so it makes the same bytes every
// time: the committed files are checked against it.
func buildCorpus(t testing.TB) []xswCase {
	client := corpusKey(t, "client", "carol-client")
	attacker := corpusKey(t, "attacker", "mallory")
	const rp, evilRP = "https://rp.example/app", "https://evil.example/steal"
	base := envOpts{created: corpusTime, appliesTo: rp}
	env := rstEnvelope(base)
	good := sigSpec{key: client.key, cert: client.cert}
	valid := signRequest(t, env, good)
	body := between(valid, `<s:Body wsu:Id="body">`, `</s:Body>`)
	evil := strings.Replace(between(rstEnvelope(envOpts{created: corpusTime, appliesTo: evilRP}), `<s:Body wsu:Id="body">`, `</s:Body>`),
		` wsu:Id="body"`, "", 1)
	wrap := func(s, what string) string {
		return strings.Replace(s, `<wsse:Security`, `<w:Wrapper xmlns:w="urn:attacker">`+what+`</w:Wrapper><wsse:Security`, 1)
	}
	with := func(o func(*envOpts), s func(*sigSpec)) string {
		e, sp := base, good
		if o != nil {
			o(&e)
		}
		if s != nil {
			s(&sp)
		}
		return signRequest(t, rstEnvelope(e), sp)
	}
	sigValue := between(valid, `<ds:SignatureValue>`, `</ds:SignatureValue>`)
	flipped := "A" + sigValue[1:]
	if sigValue[0] == 'A' {
		flipped = "B" + sigValue[1:]
	}
	signature := between(valid, `<ds:Signature `, `</ds:Signature>`)
	ts := between(valid, `<wsu:Timestamp wsu:Id="ts">`, `</wsu:Timestamp>`)
	fresh := `<wsu:Timestamp><wsu:Created>2026-11-22T12:00:30Z</wsu:Created><wsu:Expires>2026-11-22T12:05:30Z</wsu:Expires></wsu:Timestamp>`
	xpath := `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath xmlns:s="` + tNSSoap11 +
		`">not(ancestor-or-self::s:Header)</ds:XPath></ds:Transform><ds:Transform Algorithm="` + xmlsec.AlgExcC14N + `"></ds:Transform>`
	xslt := `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"></xsl:stylesheet></ds:Transform>` +
		`<ds:Transform Algorithm="` + xmlsec.AlgExcC14N + `"></ds:Transform>`
	enveloped := `<ds:Transform Algorithm="` + xmlsec.AlgEnveloped + `"></ds:Transform><ds:Transform Algorithm="` + xmlsec.AlgExcC14N + `"></ds:Transform>`

	return []xswCase{
		{"00-valid.xml", "ok", "a validly signed request: BinarySecurityToken, RSA-SHA256, Body and Timestamp signed", valid},
		{"01-body-moved-into-header.xml", "wsse:InvalidSecurity", "the signed Body moved into a header, an unsigned Body in its place",
			wrap(strings.Replace(valid, `<s:Body wsu:Id="body">`+body+`</s:Body>`, `<s:Body>`+evil+`</s:Body>`, 1), `<s:Body wsu:Id="body">`+body+`</s:Body>`)},
		{"02-second-body.xml", "s:Client", "a second, unsigned Body after the signed one",
			strings.Replace(valid, `</s:Body>`, `</s:Body><s:Body>`+evil+`</s:Body>`, 1)},
		{"03-duplicate-wsu-id.xml", "wsse:InvalidSecurity", "the signed Body copied into a header, the real Body changed and given the same wsu:Id",
			wrap(strings.Replace(valid, `<s:Body wsu:Id="body">`+body, `<s:Body wsu:Id="body">`+evil, 1), `<s:Body wsu:Id="body">`+body+`</s:Body>`)},
		{"04-signed-copy-in-ds-object.xml", "wsse:InvalidSecurity", "the Reference now resolves to a detached copy of the signed Body in ds:Object; the real Body is unsigned",
			strings.Replace(strings.Replace(valid, `<s:Body wsu:Id="body">`+body+`</s:Body>`, `<s:Body>`+evil+`</s:Body>`, 1),
				`</ds:Signature>`, `<ds:Object><s:Body wsu:Id="body">`+body+`</s:Body></ds:Object></ds:Signature>`, 1)},
		{"05-xpath-transform.xml", "wsse:UnsupportedAlgorithm", "a Reference with an XPath transform before exclusive c14n",
			with(nil, func(s *sigSpec) { s.transforms = xpath })},
		{"06-xslt-transform.xml", "wsse:UnsupportedAlgorithm", "a Reference with an XSLT transform",
			with(nil, func(s *sigSpec) { s.transforms = xslt })},
		{"07-untrusted-certificate.xml", "wsse:FailedAuthentication", "a valid signature by a certificate nobody registered or issued",
			with(nil, func(s *sigSpec) { s.key, s.cert = attacker.key, attacker.cert })},
		{"08-hmac-signature-method.xml", "wsse:UnsupportedAlgorithm", "an HMAC-SHA1 SignatureMethod (a key the attacker chose) with the registered certificate's token",
			with(nil, func(s *sigSpec) {
				s.sigAlg, s.hmacKey = "http://www.w3.org/2000/09/xmldsig#hmac-sha1", []byte("chosen by the attacker")
			})},
		{"09-stale-timestamp.xml", "wsse:MessageExpired", "a validly signed request whose signed Timestamp expired two hours ago",
			with(func(o *envOpts) { o.created = corpusTime.Add(-2 * time.Hour) }, nil)},
		{"10-timestamp-not-signed.xml", "wsse:InvalidSecurity", "only the Body is signed",
			with(nil, func(s *sigSpec) { s.refs = []string{"body"} })},
		{"11-body-not-signed.xml", "wsse:InvalidSecurity", "only the Timestamp is signed",
			with(nil, func(s *sigSpec) { s.refs = []string{"ts"} })},
		{"12-reference-to-security-header.xml", "wsse:InvalidSecurity", "a third Reference to the Security header itself",
			with(func(o *envOpts) { o.secID = true }, func(s *sigSpec) { s.refs = []string{"body", "ts", "sec"} })},
		{"13-keyinfo-attacker-certificate.xml", "wsse:FailedAuthentication", "KeyInfo carries the attacker's certificate (X509Data), for which the signature is valid",
			with(nil, func(s *sigSpec) { s.key, s.cert, s.keyInfo = attacker.key, attacker.cert, "x509data" })},
		{"14-registered-certificate-attacker-key.xml", "wsse:FailedCheck", "the registered certificate as BinarySecurityToken, the signature made with another key",
			with(nil, func(s *sigSpec) { s.key = attacker.key })},
		{"15-body-changed-after-signing.xml", "wsse:FailedCheck", "AppliesTo changed after signing",
			strings.Replace(valid, rp, evilRP, 1)},
		{"16-timestamp-moved-out-of-security.xml", "wsse:InvalidSecurity", "the signed Timestamp moved into another header, a fresh unsigned one in Security",
			wrap(strings.Replace(valid, `<wsu:Timestamp wsu:Id="ts">`+ts+`</wsu:Timestamp>`, fresh, 1), `<wsu:Timestamp wsu:Id="ts">`+ts+`</wsu:Timestamp>`)},
		{"17-two-signatures.xml", "wsse:InvalidSecurity", "a second ds:Signature in the Security header",
			strings.Replace(valid, `</wsse:Security>`, `<ds:Signature `+signature+`</ds:Signature></wsse:Security>`, 1)},
		{"18-wsa-header-not-signed.xml", "wsse:InvalidSecurity", "wsa:Action and wsa:MessageID present but not signed",
			with(func(o *envOpts) { o.wsa = true }, nil)},
		{"19-enveloped-signature-transform.xml", "wsse:UnsupportedAlgorithm", "an enveloped-signature transform on a detached Reference",
			with(nil, func(s *sigSpec) { s.transforms = enveloped })},
		{"20-empty-reference-uri.xml", "wsse:InvalidSecurity", `a Reference URI="" (the whole document) besides Body and Timestamp`,
			with(nil, func(s *sigSpec) { s.refs = []string{"body", "ts", "="} })},
		{"21-id-repeated-as-unprefixed-id.xml", "wsse:InvalidSecurity", "another header carries the Body's ID as an unprefixed Id attribute",
			wrap(valid, `<w:Note Id="body">x</w:Note>`)},
		{"22-signature-value-changed.xml", "wsse:FailedCheck", "one character of the SignatureValue changed",
			strings.Replace(valid, sigValue, flipped, 1)},
		{"23-comment-in-signed-body.xml", "ok", "a comment inserted into the signed AppliesTo (comments are not signed and do not cut the value)",
			strings.Replace(with(func(o *envOpts) { o.created = corpusTime.Add(time.Second) }, nil), "https://rp.example/", "https://rp.example/<!-- ignored -->", 1)},
		{"24-wsa-headers-signed.xml", "ok", "wsa:Action and wsa:MessageID signed too, the registered certificate by thumbprint, RSA-SHA1",
			with(func(o *envOpts) { o.wsa, o.created = true, corpusTime.Add(2*time.Second) }, func(s *sigSpec) {
				s.refs, s.keyInfo, s.sigAlg, s.digAlg = []string{"body", "ts", "act", "msg"}, "thumbprint", xmlsec.AlgRSASHA1, xmlsec.AlgSHA1
			})},
	}
}

// between returns the text of s between the first start and the next end.
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		panic("no " + start)
	}
	rest := s[i+len(start):]
	j := strings.Index(rest, end)
	if j < 0 {
		panic("no " + end)
	}
	return rest[:j]
}

// TestXSWCorpus sends each request of testdata/xsw to a server that
// requires X.509-signed requests and expects the fault in
// testdata/xsw/expected.txt. Each is a variant of one validly signed
// request: signature wrapping (the signed Body or Timestamp moved, copied,
// duplicated, hidden in ds:Object), forbidden transforms and algorithms,
// untrusted or mismatched keys, and missing coverage.
func TestXSWCorpus(t *testing.T) {
	corpus := buildCorpus(t)
	if *updateXSW {
		var table strings.Builder
		table.WriteString("# file\texpected fault (ok: a token for carol)\twhat the request does\n")
		for _, c := range corpus {
			if err := os.WriteFile(filepath.Join(xswDir, c.file), []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			table.WriteString(c.file + "\t" + c.fault + "\t" + c.about + "\n")
		}
		if err := os.WriteFile(filepath.Join(xswDir, "expected.txt"), []byte(table.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(xswDir, "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ file, fault, about string }
	var rows []row
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("expected.txt: bad line %q", line)
		}
		rows = append(rows, row{f[0], f[1], f[2]})
	}
	if refusals := len(rows) - 3; refusals < 12 {
		t.Fatalf("only %d refusal cases", refusals)
	}
	t.Run("the stored corpus is what the generator makes", func(t *testing.T) {
		for _, c := range corpus {
			b, err := os.ReadFile(filepath.Join(xswDir, c.file))
			if err != nil || string(b) != c.content {
				t.Errorf("%s is stale or missing (go test ./internal/server -run TestXSWCorpus -update-xsw): %v", c.file, err)
			}
		}
	})

	ts := x509Server(t, "x509")
	ts.registerUserCert(t, "carol", corpusKey(t, "client", "").cert)
	ts.Clock.Set(corpusTime.Add(time.Minute))
	for _, r := range rows {
		name := r.about + " → " + r.fault
		if r.fault == "ok" {
			name = r.about + " → a token for carol"
		}
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(xswDir, r.file))
			if err != nil {
				t.Fatal(err)
			}
			rep := ts.post(t, "/services/sts", "text/xml; charset=utf-8", body)
			if r.fault == "ok" {
				if rep.Status != 200 {
					t.Fatalf("%s refused: %s", r.file, rep.Body)
				}
				tok, err := client.ExtractToken([]byte(rep.Body))
				if err != nil {
					t.Fatal(err)
				}
				a := checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{"carol"}, audience: "https://rp.example/app"})
				if got := textOf(a, "./AuthnStatement/AuthnContext/AuthnContextClassRef"); got != saml.ACX509 {
					t.Errorf("AuthnContextClassRef %q", got)
				}
				return
			}
			if got := faultCode(rep.Body); got != r.fault {
				t.Fatalf("%s: got %q, want %q\n%s", r.file, got, r.fault, rep.Body)
			}
		})
	}
}

// xmlsec1 verifies the corpus's valid request (and not its tampered
// variant): the refusals are not an artefact of a broken baseline.
func TestXSWCorpusBaselineVerifiesWithXmlsec1(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	verify := func(file string) error {
		out, err := exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "same-doc", "--enabled-key-data", "raw-x509-cert",
			"--pubkey-cert-pem", filepath.Join(xswDir, "client.crt"),
			"--id-attr:Id", tNSSoap11+":Body", "--id-attr:Id", tNSWSU+":Timestamp", filepath.Join(xswDir, file)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := verify("00-valid.xml"); err != nil {
		t.Fatalf("xmlsec1 refuses the baseline: %v", err)
	}
	if err := verify("15-body-changed-after-signing.xml"); err == nil {
		t.Fatal("xmlsec1 accepts the tampered request")
	}
}

// ---- accepted forms ---------------------------------------------------------

func TestSignedRequestsInEveryKeyInfoFormAndAlgorithmGetCarolsToken(t *testing.T) {
	ts := x509Server(t, "x509")
	clientKey := corpusKey(t, "client", "")
	ts.registerUserCert(t, "carol", clientKey.cert)
	now := time.Now().UTC().Truncate(time.Second)
	cases := []struct {
		keyInfo, sigAlg, digAlg string
	}{
		{"bst", xmlsec.AlgRSASHA256, xmlsec.AlgSHA256},
		{"bst", xmlsec.AlgRSASHA512, xmlsec.AlgSHA512},
		{"x509data", xmlsec.AlgRSASHA1, xmlsec.AlgSHA1},
		{"issuerserial", xmlsec.AlgRSASHA256, xmlsec.AlgSHA256},
		{"thumbprint", xmlsec.AlgRSASHA256, xmlsec.AlgSHA1},
		{"ski", xmlsec.AlgRSASHA512, xmlsec.AlgSHA256},
	}
	for i, c := range cases {
		t.Run("KeyInfo "+c.keyInfo+" signed "+frag(c.sigAlg)+" with "+frag(c.digAlg)+" digests gets carol's token", func(t *testing.T) {
			env := rstEnvelope(envOpts{created: now.Add(time.Duration(i) * time.Second), appliesTo: "urn:rp:x509"})
			tok := ts.issued(t, signRequest(t, env, sigSpec{key: clientKey.key, cert: clientKey.cert, keyInfo: c.keyInfo, sigAlg: c.sigAlg, digAlg: c.digAlg}))
			checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{"carol"}, audience: "urn:rp:x509"})
		})
	}
	t.Run("the same signed request sent twice is refused as a replay", func(t *testing.T) {
		req := signRequest(t, rstEnvelope(envOpts{created: now.Add(time.Minute)}), sigSpec{key: clientKey.key, cert: clientKey.cert})
		ts.issued(t, req)
		r := ts.post(t, "/services/sts", "text/xml", []byte(req))
		if got := faultCode(r.Body); got != "wsse:InvalidSecurity" || !strings.Contains(r.Body, "replay") {
			t.Fatalf("replay: %s %s", got, r.Body)
		}
	})
	t.Run("a removed certificate no longer authenticates", func(t *testing.T) {
		if err := ts.Store.DeleteCertificate(context.Background(), wssec.UserCertAlias("carol", clientKey.cert)); err != nil {
			t.Fatal(err)
		}
		req := signRequest(t, rstEnvelope(envOpts{created: now.Add(2 * time.Minute)}), sigSpec{key: clientKey.key, cert: clientKey.cert})
		r := ts.post(t, "/services/sts", "text/xml", []byte(req))
		if got := faultCode(r.Body); got != "wsse:FailedAuthentication" {
			t.Fatalf("got %s %s", got, r.Body)
		}
	})
}

// upnExtension is a subjectAltName with a Microsoft UPN otherName.
func upnExtension(t testing.TB, upn string) pkix.Extension {
	t.Helper()
	value, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	inner, err := asn1.Marshal(struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
	}{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3},
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: value}})
	if err != nil {
		t.Fatal(err)
	}
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(inner, &seq); err != nil {
		t.Fatal(err)
	}
	san, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: seq.Bytes}})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}
}

func TestCertificatesOfATrustedCAMapToUsersByRule(t *testing.T) {
	ts := x509Server(t, "x509")
	ts.addUser(t, "dora@corp.example", "Dora#pw1", false, []string{"admin"}, nil)
	ca := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Corp Users CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil)
	other := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Other CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil)
	leaf := func(cn string, mutate func(*x509.Certificate), issuer *keyCert) keyCert {
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature}
		if mutate != nil {
			mutate(tmpl)
		}
		return newCert(t, tmpl, issuer)
	}
	ts.trustAs(t, "ca:upn:corp", ca.cert)
	now := time.Now().UTC().Truncate(time.Second)
	cases := []struct {
		name  string
		kc    keyCert
		fault string // "" = token for want
		want  string
	}{
		{"a certificate with the UPN of an existing user gets that user's token",
			leaf("Dora", func(c *x509.Certificate) { c.ExtraExtensions = []pkix.Extension{upnExtension(t, "dora@corp.example")} }, &ca), "", "dora@corp.example"},
		{"a certificate whose UPN names no user is refused",
			leaf("Nobody", func(c *x509.Certificate) {
				c.ExtraExtensions = []pkix.Extension{upnExtension(t, "nobody@corp.example")}
			}, &ca), "wsse:FailedAuthentication", ""},
		{"a certificate without a UPN is refused",
			leaf("carol", nil, &ca), "wsse:FailedAuthentication", ""},
		{"a certificate of a CA nobody trusts is refused",
			leaf("Dora", func(c *x509.Certificate) { c.ExtraExtensions = []pkix.Extension{upnExtension(t, "dora@corp.example")} }, &other), "wsse:FailedAuthentication", ""},
		{"an expired certificate of the trusted CA is refused",
			leaf("Dora", func(c *x509.Certificate) {
				c.ExtraExtensions = []pkix.Extension{upnExtension(t, "dora@corp.example")}
				c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
			}, &ca), "wsse:FailedAuthentication", ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := signRequest(t, rstEnvelope(envOpts{created: now.Add(time.Duration(i) * time.Second)}), sigSpec{key: c.kc.key, cert: c.kc.cert})
			r := ts.post(t, "/services/sts", "text/xml", []byte(req))
			if c.fault != "" {
				if got := faultCode(r.Body); got != c.fault {
					t.Fatalf("got %q %s", got, r.Body)
				}
				return
			}
			if r.Status != 200 {
				t.Fatalf("refused: %s", r.Body)
			}
			tok, _ := client.ExtractToken([]byte(r.Body))
			checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{c.want}})
		})
	}
	t.Run("the cn rule maps the subject common name", func(t *testing.T) {
		cnCA := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "CN CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil)
		ts.trustAs(t, "ca:cn:cn-users", cnCA.cert)
		kc := leaf("carol", nil, &cnCA)
		tok := ts.issued(t, signRequest(t, rstEnvelope(envOpts{created: now.Add(time.Minute)}), sigSpec{key: kc.key, cert: kc.cert}))
		checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{"carol"}})
	})
}

// ---- security policies ------------------------------------------------------

func utRequest(user, password string, created time.Time) string {
	return strings.NewReplacer("{{BST}}", "", "{{SIG}}", "").Replace(rstEnvelope(envOpts{created: created, ut: user + ":" + password}))
}

func TestSecurityScenariosDecideWhatAuthenticates(t *testing.T) {
	clientKey := corpusKey(t, "client", "")
	app := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "billing app"}}, nil)
	mallory := corpusKey(t, "attacker", "")
	type attempt struct {
		name  string
		req   func(now time.Time) string
		fault string // "" = a token for carol
	}
	ut := attempt{"a UsernameToken alone", func(now time.Time) string { return utRequest("carol", carolPassword, now) }, ""}
	signed := attempt{"a request signed with carol's registered certificate", func(now time.Time) string {
		return signRequest(t, rstEnvelope(envOpts{created: now}), sigSpec{key: clientKey.key, cert: clientKey.cert})
	}, ""}
	utSignedByApp := attempt{"a UsernameToken in a request signed by a trusted client application", func(now time.Time) string {
		return signRequest(t, rstEnvelope(envOpts{created: now, ut: "carol:" + carolPassword}), sigSpec{key: app.key, cert: app.cert})
	}, ""}
	utSignedByMallory := attempt{"a UsernameToken in a request signed by an untrusted certificate", func(now time.Time) string {
		return signRequest(t, rstEnvelope(envOpts{created: now, ut: "carol:" + carolPassword}), sigSpec{key: mallory.key, cert: mallory.cert})
	}, "wsse:FailedAuthentication"}
	signedByApp := attempt{"a request signed by a client application that maps to no user", func(now time.Time) string {
		return signRequest(t, rstEnvelope(envOpts{created: now}), sigSpec{key: app.key, cert: app.cert})
	}, "wsse:FailedAuthentication"}
	refused := func(a attempt, fault string) attempt { a.fault = fault; return a }
	cases := []struct {
		scenario string
		attempts []attempt
	}{
		{"usernametoken", []attempt{ut, refused(signed, "wsse:InvalidSecurity")}},
		{"x509", []attempt{signed, refused(ut, "wsse:InvalidSecurity"), signedByApp}},
		{"usernametoken+x509", []attempt{utSignedByApp, refused(ut, "wsse:InvalidSecurity"), refused(signed, "wsse:InvalidSecurity"), utSignedByMallory}},
		{"x509|usernametoken", []attempt{signed, ut}},
	}
	for _, c := range cases {
		ts := x509Server(t, c.scenario)
		ts.registerUserCert(t, "carol", clientKey.cert)
		ts.trustAs(t, wssec.AliasClient+"billing", app.cert)
		now := time.Now().UTC().Truncate(time.Second)
		for i, a := range c.attempts {
			verdict := "gets carol's token"
			if a.fault != "" {
				verdict = "is refused with " + a.fault
			}
			t.Run("under "+c.scenario+" "+a.name+" "+verdict, func(t *testing.T) {
				r := ts.post(t, "/services/sts", "text/xml", []byte(a.req(now.Add(time.Duration(i)*time.Second))))
				if a.fault != "" {
					if got := faultCode(r.Body); got != a.fault {
						t.Fatalf("got %q: %s", got, r.Body)
					}
					return
				}
				if r.Status != 200 {
					t.Fatalf("refused: %s", r.Body)
				}
				tok, _ := client.ExtractToken([]byte(r.Body))
				checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{"carol"}})
			})
		}
	}
}

func TestAnInvalidStoredScenarioFailsClosed(t *testing.T) {
	ts := x509Server(t, "kerberos")
	r := ts.post(t, "/services/sts", "text/xml", []byte(utRequest("carol", carolPassword, time.Now())))
	if r.Status == 200 || !strings.Contains(faultCode(r.Body), "RequestFailed") {
		t.Fatalf("an unknown scenario did not fail closed: %d %s", r.Status, r.Body)
	}
}

// ---- mutual TLS -------------------------------------------------------------

// tlsServer serves the test server's handler over TLS with the listener's
// client-certificate configuration (configureClientAuth).
func tlsServer(t *testing.T, ts *testServer) (url string, roots *x509.CertPool) {
	t.Helper()
	srvCert := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, nil)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.cert.Raw}, PrivateKey: srvCert.key, Leaf: srvCert.cert}}}
	ts.configureClientAuth(cfg)
	hs := httptest.NewUnstartedServer(ts.Handler)
	hs.TLS = cfg
	hs.StartTLS()
	t.Cleanup(hs.Close)
	roots = x509.NewCertPool()
	roots.AddCert(srvCert.cert)
	return hs.URL, roots
}

func tlsPost(t *testing.T, url string, roots *x509.CertPool, clientCert *keyCert, body string) reply {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{clientCert.cert.Raw}, PrivateKey: clientCert.key}}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Post(url+"/services/sts", "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}
}

func TestMutualTLSAuthenticatesByClientCertificate(t *testing.T) {
	ts := x509Server(t, "mutual-tls")
	carolCert := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "carol"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, nil)
	stranger := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "stranger"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, nil)
	ts.registerUserCert(t, "carol", carolCert.cert)
	url, roots := tlsServer(t, ts)
	noSecurity := `<s:Envelope xmlns:s="` + tNSSoap11 + `"><s:Body><wst:RequestSecurityToken xmlns:wst="` + tNSWST + `"><wst:RequestType>` +
		tNSWST + `/Issue</wst:RequestType></wst:RequestSecurityToken></s:Body></s:Envelope>`
	withTimestamp := func() string {
		return strings.NewReplacer("{{BST}}", "", "{{SIG}}", "").Replace(rstEnvelope(envOpts{created: time.Now(), appliesTo: "urn:rp:mtls"}))
	}
	t.Run("a registered client certificate gets carol's token without any WS-Security header", func(t *testing.T) {
		r := tlsPost(t, url, roots, &carolCert, noSecurity)
		if r.Status != 200 {
			t.Fatalf("refused: %s", r.Body)
		}
		tok, _ := client.ExtractToken([]byte(r.Body))
		a := checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{"carol"}})
		if got := textOf(a, "./AuthnStatement/AuthnContext/AuthnContextClassRef"); got != saml.ACTLSClient {
			t.Errorf("AuthnContextClassRef %q", got)
		}
	})
	t.Run("a registered client certificate with a Timestamp header gets carol's token", func(t *testing.T) {
		if r := tlsPost(t, url, roots, &carolCert, withTimestamp()); r.Status != 200 {
			t.Fatalf("refused: %s", r.Body)
		}
	})
	t.Run("a client certificate nobody registered is refused", func(t *testing.T) {
		r := tlsPost(t, url, roots, &stranger, noSecurity)
		if got := faultCode(r.Body); got != "wsse:FailedAuthentication" {
			t.Fatalf("got %q %s", got, r.Body)
		}
	})
	t.Run("no client certificate is refused", func(t *testing.T) {
		r := tlsPost(t, url, roots, nil, withTimestamp())
		if got := faultCode(r.Body); got != "wsse:InvalidSecurity" {
			t.Fatalf("got %q %s", got, r.Body)
		}
	})
	t.Run("a UsernameToken is refused when only mutual TLS is allowed", func(t *testing.T) {
		r := tlsPost(t, url, roots, nil, utRequest("carol", carolPassword, time.Now()))
		if got := faultCode(r.Body); got != "wsse:InvalidSecurity" {
			t.Fatalf("got %q %s", got, r.Body)
		}
	})
	t.Run("under the usernametoken scenario the handshake asks for no certificate", func(t *testing.T) {
		ts.setScenario(t, "usernametoken")
		asked := false
		cfg := &tls.Config{RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &tls.Certificate{}, nil
		}}
		conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if asked {
			t.Fatal("the server asked for a client certificate")
		}
		r := tlsPost(t, url, roots, nil, utRequest("carol", carolPassword, time.Now()))
		if r.Status != 200 {
			t.Fatalf("UsernameToken over TLS refused: %s", r.Body)
		}
	})
}
