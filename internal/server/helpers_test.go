package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

// clock is an injectable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time // zero = real time
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

type testServer struct {
	*Server
	URL   string
	Clock *clock
}

// newTestServer starts an in-process avouch on a temp data dir.
func newTestServer(t testing.TB, mutate func(*config.Config)) *testServer {
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
	t.Setenv("AVOUCH_ADMIN_PASSWORD", "admin-pw")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(context.Background(), &cfg, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	srv.Now = clk.Now
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &testServer{Server: srv, URL: hs.URL, Clock: clk}
}

// startServe runs Serve itself (listener, TLS unless mutate sets
// PlainHTTP) on 127.0.0.1:0 and returns the server and its base URL, with
// 127.0.0.1 for localhost; both stop when the test ends.
func startServe(t *testing.T, mutate func(*config.Config)) (*Server, string) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(time.Second)
	if mutate != nil {
		mutate(&cfg)
	}
	t.Setenv("AVOUCH_ADMIN_PASSWORD", "admin-pw")
	srv, err := New(context.Background(), &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	urls := make(chan string, 1)
	go func() { defer close(done); _ = srv.Serve(ctx, func(u string) { urls <- u }) }()
	select {
	case u := <-urls:
		return srv, strings.Replace(u, "localhost", "127.0.0.1", 1)
	case <-time.After(10 * time.Second):
		t.Fatal("no listener")
	}
	return nil, ""
}

func (ts *testServer) addUser(t testing.TB, name, password string, digest bool, roles []string, claims map[string]string) {
	t.Helper()
	hash, err := identity.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := storage.User{Name: name, PasswordHash: hash, Roles: roles, Claims: claims}
	if u.Claims == nil {
		u.Claims = map[string]string{}
	}
	if digest {
		if u.DigestSecret, err = ts.Box.Seal([]byte(password)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.Store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

type reply struct {
	Status int
	Body   string
}

func (ts *testServer) post(t testing.TB, path, contentType string, body []byte) reply {
	t.Helper()
	resp, err := http.Post(ts.URL+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}
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
