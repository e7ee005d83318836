// Package console drives avouch's web management console in Debian's
// Chromium (through playwright-core) the way an administrator would, then
// checks with a real WS-Trust client that what was clicked together works:
// the token for the new service provider is encrypted for the uploaded
// certificate, and the exchange shows up in the SOAP tracer with the
// password masked.
//
// avouch runs in-process over HTTPS (httptest TLS, so the session cookie is
// Secure and __Host- prefixed). The Node driver is js/console.js; its
// packages are locked in js/package-lock.json and installed with `npm ci`
// when missing. Screenshots of every page go to test/artifacts/console/.
// Missing tools skip the test loudly under `go test` and fail it under
// `make check` (AVOUCH_REQUIRE_TOOLS=1).
package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/testutil"
	"github.com/avouch/avouch/internal/xmlenc"
)

const (
	adminPassword = "Adm1n#Console-Test"
	rpEndpoint    = "https://console-rp.example.test/app/"
	homeRealm     = "urn:avouch:console-test"
)

var (
	jsDir, _        = filepath.Abs("js")
	artifactsDir, _ = filepath.Abs(filepath.Join("..", "artifacts", "console"))
)

// nodeModules installs the locked packages when they are missing.
func nodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "playwright-core", "package.json")); err == nil {
		return
	}
	npm := testutil.Tool(t, "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, npm, "ci", "--prefix", jsDir, "--no-audit", "--no-fund").CombinedOutput()
	if err != nil {
		testutil.Missing(t, fmt.Sprintf("npm packages of test/console/js (npm ci: %v)\n%s", err, out))
	}
}

func rpKeyPair(t *testing.T) (*rsa.PrivateKey, []byte) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2026), Subject: pkix.Name{CommonName: "console-rp.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestAnAdministratorConfiguresARelyingPartyInTheConsoleAndTracesItsToken(t *testing.T) {
	chromium := testutil.Tool(t, "chromium")
	node := testutil.Tool(t, "node")
	nodeModules(t)
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		t.Fatal(err)
	}

	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	t.Setenv("AVOUCH_ADMIN_PASSWORD", adminPassword)
	srv, err := server.New(context.Background(), &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler)
	// Chromium's own probes of the test certificate are no failure.
	hs.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
	hs.StartTLS()
	t.Cleanup(func() { hs.Close(); srv.Close() })

	rpKey, rpCert := rpKeyPair(t)
	work := t.TempDir()
	certFile := filepath.Join(work, "console-rp.pem")
	if err := os.WriteFile(certFile, rpCert, 0o600); err != nil {
		t.Fatal(err)
	}

	// A fresh Chromium profile, removed (with retries: Chromium's helpers
	// may still be writing as they exit) after the driver has stopped.
	profile, err := os.MkdirTemp("", "avouch-console-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 20 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(jsDir, "console.js"))
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "BASE_URL="+hs.URL, "ADMIN_PASSWORD="+adminPassword, "RP_CERT_FILE="+certFile,
		"RP_ENDPOINT="+rpEndpoint, "HOME_REALM="+homeRealm, "SCREENSHOT_DIR="+artifactsDir,
		"USER_DATA_DIR="+profile, "CHROMIUM="+chromium)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		cancel() // kills the driver if the test failed early
		<-exited
	})
	var log strings.Builder
	lines := make(chan string, 64)
	var waitErr error
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = cmd.Wait()
		close(exited)
	}()
	waitFor := func(want string) {
		t.Helper()
		for l := range lines {
			log.WriteString(l + "\n")
			if l == want {
				return
			}
		}
		<-exited
		t.Fatalf("the browser driver stopped before %s (%v):\n%s\nstderr:\n%s", want, waitErr, log.String(), stderr.String())
	}
	waitFor("READY")

	// What was clicked is in force.
	cc := srv.Core.Config()
	if strings.Join(cc.AllowedRoles, ",") != "admin" || strings.Join(cc.AllowedDomains, ",") != "PRIMARY" {
		t.Errorf("policy in force: roles %v, domains %v", cc.AllowedRoles, cc.AllowedDomains)
	}
	if v, err := srv.Store.GetSetting(ctx, "idp.home_realm_identifiers"); err != nil || !strings.Contains(v, homeRealm) {
		t.Errorf("home realm identifier stored: %q, %v", v, err)
	}
	sp, err := srv.Registry.MatchAppliesTo(rpEndpoint)
	if err != nil || !sp.WSTrust.Token.Encrypt || sp.WSTrust.Token.CertAlias != "console-rp" {
		t.Fatalf("service provider: %+v, %v", sp, err)
	}

	// A WS-Trust client gets a token for the endpoint, encrypted for the
	// uploaded certificate.
	_, _, tok, err := client.Issue(ctx, hs.Client(), &client.Options{URL: hs.URL + "/services/sts", User: "admin",
		Password: adminPassword, AppliesTo: rpEndpoint})
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	if bytes.Contains(tok, []byte("admin")) {
		t.Fatal("the token is readable without the RP's key")
	}
	doc, err := safexml.Parse(tok, safexml.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	ed := doc.Root()
	if ed.Tag == "EncryptedAssertion" {
		ed = ed.SelectElement("EncryptedData")
	}
	if ed == nil || ed.Tag != "EncryptedData" {
		t.Fatalf("not encrypted: %.300s", tok)
	}
	plain, err := xmlenc.Decrypt(ed, rpKey, xmlenc.Allowed{})
	if err != nil {
		t.Fatalf("the RP's key does not open the token: %v", err)
	}
	if !bytes.Contains(plain, []byte("Audience>"+rpEndpoint+"</")) || !bytes.Contains(plain, []byte(">admin</")) {
		t.Fatalf("decrypted assertion: %.600s", plain)
	}

	// The browser now finds the exchange in the SOAP tracer, masked.
	if _, err := io.WriteString(stdin, "GO\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	waitFor("DONE")
	<-exited
	if waitErr != nil {
		t.Fatalf("browser driver: %v\n%s\nstderr:\n%s", waitErr, log.String(), stderr.String())
	}
	for _, name := range []string{"01-login", "04-resident", "07-policy-applied", "08-truststore", "10-sp-edit", "12-tracer", "14-audit"} {
		if fi, err := os.Stat(filepath.Join(artifactsDir, name+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s missing: %v", name, err)
		}
	}
}
