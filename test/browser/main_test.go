// Package browser tests avouch's passive STS (WS-Federation browser
// sign-in) against parts nobody on the team wrote: Debian's Chromium driven
// by playwright-core, and passport-wsfed-saml2, a WS-Federation relying
// party library for Node.
//
// Each test starts avouch in-process (internal/server, plain HTTP on a free
// 127.0.0.1 port, a temporary data directory) and, where a relying party is
// needed, small Go relying parties on 127.0.0.1 that verify the posted
// wresult with avouch's own XML-DSig verifier. The Node scripts live in js/
// with a committed package-lock.json; node_modules is installed with
// `npm ci` when missing. Missing tools (chromium, node, npm) skip the tests
// loudly under `go test` and fail them under `make check`
// (AVOUCH_REQUIRE_TOOLS=1).
package browser

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/testutil"
)

const (
	user     = "alice"
	password = "Alice#Browser-1"

	claimEmail     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimGivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
)

// jsDir is test/browser/js (tests run in their package directory).
var jsDir, _ = filepath.Abs("js")

// artifactsDir receives the screenshots (git-ignored).
var artifactsDir, _ = filepath.Abs(filepath.Join("..", "artifacts", "browser"))

var (
	npmOnce sync.Once
	npmErr  error
)

// nodeModules makes sure js/node_modules holds the locked packages,
// running `npm ci` once when they are missing.
func nodeModules(t *testing.T) {
	t.Helper()
	testutil.Tool(t, "node")
	npmOnce.Do(func() {
		have := func(pkg string) bool {
			_, err := os.Stat(filepath.Join(jsDir, "node_modules", pkg, "package.json"))
			return err == nil
		}
		if have("passport-wsfed-saml2") && have("playwright-core") {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--prefix", jsDir, "--no-audit", "--no-fund")
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci --prefix %s: %w\n%s", jsDir, err, out)
		}
	})
	if npmErr != nil {
		testutil.Missing(t, "npm packages of test/browser/js ("+npmErr.Error()+")")
	}
}

// runNode runs a script of js/ with input as JSON on stdin and decodes its
// JSON output into out.
func runNode(t *testing.T, script string, input, out any) {
	t.Helper()
	node := testutil.Tool(t, "node")
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(jsDir, script))
	cmd.Dir = jsDir
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s", script, err, stderr.String(), stdout.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("node %s printed no JSON: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
}

// events is the ordered log of what happened where (avouch logins, tokens
// accepted by relying parties, front-channel sign-out calls).
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) { e.mu.Lock(); e.log = append(e.log, s); e.mu.Unlock() }

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// offsetClock is avouch's clock: real time plus an offset a test may set
// (to issue tokens that are already expired).
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Set(d time.Duration) { c.mu.Lock(); c.offset = d; c.mu.Unlock() }

// gate holds the relying parties' cleanup answers until the browser
// script opens it (or 10 s pass, so a failed script cannot hang a test).
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) wait() {
	select {
	case <-g.ch:
	case <-time.After(10 * time.Second):
	}
}

// avouch is a running in-process avouch.
type avouch struct {
	*server.Server
	URL         string
	Clock       *offsetClock
	Events      *events
	CleanupGate *gate
}

// startAvouch serves avouch on a free 127.0.0.1 port through the server's
// own Serve (the production listener path), with user alice.
func startAvouch(t *testing.T) *avouch {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.PlainHTTP = true
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowedRoles = []string{"staff"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AVOUCH_ADMIN_PASSWORD", "Browser-Admin-1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), &cfg, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := &avouch{Server: srv, Clock: &offsetClock{}, Events: &events{}, CleanupGate: &gate{ch: make(chan struct{})}}
	srv.Now = a.Clock.Now
	// Count password logins: single sign-on must not add any.
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/login" {
			a.Events.add("avouch: password login")
		}
		inner.ServeHTTP(w, r)
	})
	hash, err := identity.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.CreateUser(context.Background(), storage.User{Name: user, PasswordHash: hash, Roles: []string{"staff"},
		Claims: map[string]string{claimEmail: "alice@example.test", claimGivenName: "Alice"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func(base string) { ready <- base }) }()
	select {
	case a.URL = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("avouch did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("avouch Serve: %v", err)
		}
		srv.Close()
	})
	return a
}

// cert is avouch's signing certificate.
func (a *avouch) cert() *x509.Certificate { return a.SigningKey().Cert }

// userAgent is a minimal browser for the tests that need a wresult but not
// a real browser: a cookie jar and the two forms.
type userAgent struct {
	t *testing.T
	c *http.Client
}

func newUserAgent(t *testing.T) *userAgent {
	jar, _ := cookiejar.New(nil)
	return &userAgent{t: t, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

func formFields(body string) map[string]string {
	out := map[string]string{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

func (u *userAgent) read(resp *http.Response, err error) string {
	u.t.Helper()
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		u.t.Fatalf("%s: status %d\n%s", resp.Request.URL, resp.StatusCode, b)
	}
	return string(b)
}

// wresult signs in (with the password when the session does not cover it)
// and returns the auto-POST form's fields.
func (u *userAgent) wresult(base string, q url.Values) map[string]string {
	u.t.Helper()
	body := u.read(u.c.Get(base + "/passivests?" + q.Encode()))
	if strings.Contains(body, `action="/login"`) {
		f := formFields(body)
		body = u.read(u.c.PostForm(base+"/login", url.Values{"csrf_token": {f["csrf_token"]}, "return": {f["return"]},
			"username": {user}, "password": {password}}))
	}
	f := formFields(body)
	if f["wresult"] == "" {
		u.t.Fatalf("no wresult in:\n%s", body)
	}
	return f
}
