// Package hostile throws hostile input at an in-process avouch: the corpus
// in testdata/ (cases.tsv, wreply.tsv) and the scenarios that need more than
// one request (replay races, brute force, timing, slow clients).
//
// Every case names the defence it exercises; each would fail if that defence
// were removed. docs/SECURITY.md maps threats to these tests.
package hostile

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage"
)

// clock is the server's injected clock: zero means real time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// syncBuffer collects the server's log lines from concurrent handlers, so a
// test can check that no secret was ever logged.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is an in-process avouch built by server.New, as `avouch serve`
// builds it, behind an httptest server, with its clock injected and its
// log (at debug level, the most talkative) kept.
type harness struct {
	*server.Server
	URL   string
	Clock *clock
	Logs  *syncBuffer
}

// buildMu serialises server.New: it sets package-level state
// (console.BuiltInClaims), a data race when parallel tests build servers.
var buildMu sync.Mutex

func newServer(cfg *config.Config, log *slog.Logger) (*server.Server, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	return server.New(context.Background(), cfg, log, io.Discard)
}

func newHarness(t testing.TB, mutate func(*config.Config)) *harness {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.PlainHTTP = true
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := newServer(&cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	srv.Now = clk.Now
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &harness{Server: srv, URL: hs.URL, Clock: clk, Logs: logs}
}

// addUser creates a PRIMARY user; digest users also get the sealed secret
// PasswordDigest needs.
func (h *harness) addUser(t testing.TB, name, password string, digest bool, roles ...string) {
	t.Helper()
	hash, err := identity.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := storage.User{Name: name, PasswordHash: hash, Roles: roles, Claims: map[string]string{}}
	if digest {
		if u.DigestSecret, err = h.Box.Seal([]byte(password)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

type reply struct {
	Status int
	Header http.Header
	Body   string
}

// post sends body; chunked hides its length, so the server cannot refuse it
// by Content-Length alone and must count what it reads.
func (h *harness) post(t testing.TB, path, contentType string, body []byte, chunked bool) reply {
	t.Helper()
	r, err := h.tryPost(path, contentType, body, chunked)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryPost is post for goroutines other than the test's own (which must not
// call t.Fatal).
func (h *harness) tryPost(path, contentType string, body []byte, chunked bool) (reply, error) {
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // not a *bytes.Reader: net/http sends it chunked
	}
	req, err := http.NewRequest(http.MethodPost, h.URL+path, r)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", contentType)
	return tryDo(http.DefaultClient, req)
}

func do(t testing.TB, hc *http.Client, req *http.Request) reply {
	t.Helper()
	r, err := tryDo(hc, req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tryDo(hc *http.Client, req *http.Request) (reply, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return reply{resp.StatusCode, resp.Header, string(b)}, err
}

// issue gets a token for user through the real client, with Timestamps on
// the server's clock.
func (h *harness) issue(t testing.TB, user, password, samlVersion string) []byte {
	t.Helper()
	o := &client.Options{URL: h.URL + "/services/sts", User: user, Password: password, SAML: samlVersion,
		AppliesTo: "urn:rp:hostile", Now: h.Clock.Now}
	_, _, tok, err := client.Issue(context.Background(), http.DefaultClient, o)
	if err != nil {
		t.Fatalf("issue for %s: %v", user, err)
	}
	return tok
}

// certs are the certificates the server verifies its own tokens with.
func (h *harness) certs() []*x509.Certificate {
	return []*x509.Certificate{h.SigningKey().Cert}
}

// faultCode returns the most specific fault code of a SOAP fault response.
func faultCode(body string) string {
	for _, tag := range []string{"<s:Subcode><s:Value>", "<faultcode>", "<s:Value>"} {
		if i := strings.Index(body, tag); i >= 0 {
			rest := body[i+len(tag):]
			if j := strings.IndexByte(rest, '<'); j >= 0 {
				return rest[:j]
			}
		}
	}
	return ""
}
