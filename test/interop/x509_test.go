package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// Caller authentication beyond passwords, against the real binary: python3-
// zeep signs requests with its own WS-Security signature plugin
// (python3-xmlsec underneath), and a Go client presents a client
// certificate to `avouch serve` over TLS. Both get the token of the user the
// certificate is registered to.

// clientCert is a user's certificate and key, as PEM files.
type clientCert struct {
	KeyFile, CertFile string
	Cert              *x509.Certificate
	TLS               tls.Certificate
}

func newClientCert(t *testing.T, cn string) clientCert {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ski := sha1.Sum(x509.MarshalPKCS1PublicKey(&k.PublicKey))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"avouch interop"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), SubjectKeyId: ski[:],
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cc := clientCert{KeyFile: filepath.Join(dir, cn+".key"), CertFile: filepath.Join(dir, cn+".crt"), Cert: c,
		TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}}
	if err := os.WriteFile(cc.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cc.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return cc
}

// registerCert registers a user's certificate with `avouch usercert add`;
// a binary without that command gets the same trust-store entry through
// `avouch keys import --alias user:LOGIN`.
func registerCert(t *testing.T, srv *server, login string, c clientCert) {
	t.Helper()
	out, err := srv.avouch(context.Background(), "usercert", "add", "--data-dir", srv.dataDir, "--user", login, "--file", c.CertFile)
	if err == nil {
		return
	}
	if !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("avouch usercert add: %v\n%s", err, out)
	}
	if _, err := srv.avouch(context.Background(), "keys", "import", "--data-dir", srv.dataDir, "--alias", "user:"+login, "--file", c.CertFile); err != nil {
		t.Fatal(err)
	}
}

// setScenario runs `avouch config set security_scenario`.
func setScenario(t *testing.T, srv *server, scenario string) {
	t.Helper()
	if _, err := srv.avouch(context.Background(), "config", "set", "--data-dir", srv.dataDir, "security_scenario", scenario); err != nil {
		t.Fatal(err)
	}
}

// zeepX509Result is what clients/zeep_x509.py prints.
type zeepX509Result struct {
	OK       bool   `json:"ok"`
	Status   int    `json:"status"`
	Request  string `json:"request"`
	Response string `json:"response"`
	Error    string `json:"error"`
}

func runZeepX509(t *testing.T, srv *server, c clientCert, form, algorithms, appliesTo string) zeepX509Result {
	t.Helper()
	python := testutil.PythonModule(t, "zeep")
	testutil.PythonModule(t, "xmlsec")
	cmd := exec.Command(python, "clients/zeep_x509.py", "--url", srv.STS, "--key", c.KeyFile, "--cert", c.CertFile,
		"--form", form, "--algorithms", algorithms, "--applies-to", appliesTo)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zeep client crashed: %v\n%s", err, stderr.String())
	}
	var r zeepX509Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("zeep client output: %v\n%s\n%s", err, out, stderr.String())
	}
	return r
}

func TestZeepSignedRequestsGetTheCertificateUsersToken(t *testing.T) {
	testutil.PythonModule(t, "zeep")
	testutil.PythonModule(t, "xmlsec")
	srv := startPrivateServer(t)
	tess := newClientCert(t, "tess-laptop")
	stranger := newClientCert(t, "stranger")
	registerCert(t, srv, textUser.Name, tess)
	setScenario(t, srv, "x509")
	// The running server picks the stored scenario up within a second or
	// so: wait until a UsernameToken alone is refused.
	waitUntil(t, 10*time.Second, "security_scenario x509 in force", func() (bool, string) {
		r := rst{User: textUser.Name, Password: textUser.Password}
		status, body, err := post(srv.STS, r.envelope(), r.contentType())
		return err == nil && status == 500 && bytes.Contains(body, []byte("InvalidSecurity")), fmt.Sprintf("HTTP %d %s %v", status, body, err)
	})
	cases := []struct{ form, algorithms string }{
		{"binary", "sha1"}, {"binary", "sha256"}, {"signature", "sha1"}, {"signature", "sha256"},
	}
	for _, c := range cases {
		name := map[string]string{"binary": "BinarySignature (BinarySecurityToken)", "signature": "Signature (X509Data in the token reference)"}[c.form]
		t.Run("zeep's "+name+" with "+c.algorithms+" gets tess's token", func(t *testing.T) {
			appliesTo := "urn:interop:x509:" + c.form + ":" + c.algorithms
			r := runZeepX509(t, srv, tess, c.form, c.algorithms, appliesTo)
			if !r.OK {
				t.Fatalf("refused: HTTP %d %s %s\nrequest:\n%s", r.Status, r.Error, r.Response, r.Request)
			}
			if !strings.Contains(r.Request, "Signature") || !strings.Contains(r.Request, "Timestamp") {
				t.Fatalf("zeep sent no signed Timestamp:\n%s", r.Request)
			}
			assertion, tokenType, err := extractToken([]byte(r.Response))
			if err != nil {
				t.Fatal(err)
			}
			verifyToken(t, srv, assertion, tokenType, expect{SAML: "2.0", User: textUser.Name, Audience: appliesTo, Lifetime: defaultLifetime})
			if !bytes.Contains(assertion, []byte("urn:oasis:names:tc:SAML:2.0:ac:classes:X509")) {
				t.Errorf("AuthnContext is not X509: %s", assertion)
			}
		})
	}
	t.Run("zeep signing with a certificate nobody registered is refused", func(t *testing.T) {
		r := runZeepX509(t, srv, stranger, "binary", "sha256", "urn:interop:x509:stranger")
		f, err := parseFault([]byte(r.Response))
		if r.OK || err != nil || !f.Is(nsWSSE, "FailedAuthentication") {
			t.Fatalf("got HTTP %d %+v %v\n%s", r.Status, f, err, r.Response)
		}
	})
}

// mtlsRST is an Issue request with only a Timestamp in its Security header:
// the TLS client certificate is the credential.
func mtlsRST(appliesTo string) []byte {
	now := time.Now().UTC()
	return []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="` + nsWSU + `"><s:Header>` +
		`<wsse:Security xmlns:wsse="` + nsWSSE + `" s:mustUnderstand="1"><wsu:Timestamp><wsu:Created>` + zulu(now) +
		`</wsu:Created><wsu:Expires>` + zulu(now.Add(5*time.Minute)) + `</wsu:Expires></wsu:Timestamp></wsse:Security></s:Header>` +
		`<s:Body><wst:RequestSecurityToken xmlns:wst="` + nsWST + `"><wst:RequestType>` + nsWST + `/Issue</wst:RequestType>` +
		`<wst:TokenType>urn:oasis:names:tc:SAML:2.0:assertion</wst:TokenType><wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy">` +
		`<wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>` + appliesTo +
		`</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken></s:Body></s:Envelope>`)
}

// mtlsPost posts over a fresh TLS connection presenting cert (none when nil).
func mtlsPost(h *httpsServer, cert *clientCert, body []byte) (int, []byte, error) {
	tr := h.HTTP.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS}
	}
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := c.Post(h.STS, "text/xml; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestMutualTLSClientCertificateGetsTheUsersToken(t *testing.T) {
	h := startHTTPSServer(t)
	tess := newClientCert(t, "tess-device")
	stranger := newClientCert(t, "stranger")
	registerCert(t, h.server, textUser.Name, tess)
	setScenario(t, h.server, "mutual-tls")
	const appliesTo = "urn:interop:mtls"
	var body []byte
	waitUntil(t, 10*time.Second, "a token over mutual TLS", func() (bool, string) {
		status, b, err := mtlsPost(h, &tess, mtlsRST(appliesTo))
		body = b
		return err == nil && status == 200, fmt.Sprintf("HTTP %d %s %v", status, b, err)
	})
	t.Run("the registered client certificate gets tess's token", func(t *testing.T) {
		assertion, tokenType, err := extractToken(body)
		if err != nil {
			t.Fatal(err)
		}
		verifyToken(t, h.server, assertion, tokenType, expect{SAML: "2.0", User: textUser.Name, Audience: appliesTo, Lifetime: defaultLifetime})
		if !bytes.Contains(assertion, []byte("urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient")) {
			t.Errorf("AuthnContext is not TLSClient: %s", assertion)
		}
	})
	refusals := []struct {
		name string
		cert *clientCert
		want string
	}{
		{"a certificate nobody registered is refused", &stranger, "FailedAuthentication"},
		{"no client certificate is refused", nil, "InvalidSecurity"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			status, b, err := mtlsPost(h, c.cert, mtlsRST(appliesTo))
			if err != nil {
				t.Fatal(err)
			}
			f, perr := parseFault(b)
			if status != 500 || perr != nil || !f.Is(nsWSSE, c.want) {
				t.Fatalf("got HTTP %d %+v %v\n%s", status, f, perr, b)
			}
		})
	}
}
