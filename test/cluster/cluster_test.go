// Package cluster runs several real `avouch serve` processes on one real
// PostgreSQL and checks what a cluster must guarantee: shared tokens, shared
// replay cache (exactly once under concurrency), shared keys, and runtime
// settings changed through one node in force on all within 2 seconds.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/testutil/avouchtest"
	"github.com/avouch/avouch/internal/testutil/pgtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "avouch-cluster")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if binary, err = avouchtest.Build(dir); err != nil {
		panic(err)
	}
	pgtest.Main(m)
}

type node struct{ base string }

func env(dbURL, masterKey string) []string {
	return []string{"AVOUCH_DATABASE=" + dbURL, "AVOUCH_MASTER_KEY=" + masterKey}
}

func startNode(t *testing.T, dbURL, masterKey string) *node {
	t.Helper()
	return &node{base: avouchtest.Start(t, binary, t.TempDir(), env(dbURL, masterKey)).Base}
}

func cli(t *testing.T, dbURL, masterKey string, args ...string) {
	t.Helper()
	avouchtest.CLI(t, binary, env(dbURL, masterKey), args...)
}

func TestTwoNodesOnOnePostgreSQL(t *testing.T) {
	dbURL := pgtest.URL(t)
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	masterKey := base64.StdEncoding.EncodeToString(mk)
	a := startNode(t, dbURL, masterKey)
	b := startNode(t, dbURL, masterKey)
	cli(t, dbURL, masterKey, "user", "add", "--data-dir", t.TempDir(), "--password", "Alice#pw1", "--role", "admin", "--allow-digest", "alice")
	ctx := context.Background()
	opts := func(n *node) *client.Options {
		return &client.Options{URL: n.base + "/services/sts", User: "alice", Password: "Alice#pw1", AppliesTo: "urn:rp:cluster"}
	}

	t.Run("a token issued on A validates, renews and cancels on B", func(t *testing.T) {
		_, _, tok, err := client.Issue(ctx, http.DefaultClient, opts(a))
		if err != nil {
			t.Fatal(err)
		}
		_, rstr, err := client.Lifecycle(ctx, http.DefaultClient, opts(b), "Validate", tok, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, reason, _ := client.Status(rstr); !ok {
			t.Fatalf("B says invalid: %s (are signing keys shared?)", reason)
		}
		if _, _, err := client.Lifecycle(ctx, http.DefaultClient, opts(b), "Renew", tok, false); err != nil {
			t.Fatalf("renew on B: %v", err)
		}
		if _, _, err := client.Lifecycle(ctx, http.DefaultClient, opts(b), "Cancel", tok, false); err != nil {
			t.Fatalf("cancel on B: %v", err)
		}
		_, rstr, _ = client.Lifecycle(ctx, http.DefaultClient, opts(a), "Validate", tok, true)
		if ok, _, reason, _ := client.Status(rstr); ok || reason != "cancelled" {
			t.Fatalf("A after B's cancel: valid=%v %q", ok, reason)
		}
	})

	t.Run("one nonce replayed concurrently against both nodes wins exactly once, 100 times", func(t *testing.T) {
		for round := 0; round < 100; round++ {
			o := opts(a)
			o.Digest = true
			env, ctype, err := client.BuildIssue(o)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			start := make(chan struct{})
			for _, n := range []*node{a, b, a, b} {
				wg.Add(1)
				go func(n *node) {
					defer wg.Done()
					<-start
					if _, err := client.Post(ctx, http.DefaultClient, n.base+"/services/sts", env, ctype); err == nil {
						mu.Lock()
						wins++
						mu.Unlock()
					} else if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wsse:InvalidSecurity" {
						t.Errorf("round %d: unexpected failure %v", round, err)
					}
				}(n)
			}
			close(start)
			wg.Wait()
			if wins != 1 {
				t.Fatalf("round %d: %d requests with one nonce succeeded, want exactly 1", round, wins)
			}
		}
	})

	t.Run("a setting changed through one node is in force on both within 2 seconds", func(t *testing.T) {
		cli(t, dbURL, masterKey, "config", "set", "--data-dir", t.TempDir(), "token_lifetime", "7m")
		deadline := time.Now().Add(2 * time.Second)
		for _, n := range []*node{a, b} {
			for {
				_, rstr, _, err := client.Issue(ctx, http.DefaultClient, opts(n))
				if err != nil {
					t.Fatal(err)
				}
				if lifetimeOf(t, rstr) == 7*time.Minute {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %s still issues %s tokens after 2 s", n.base, lifetimeOf(t, rstr))
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
}

var lifetimeRE = regexp.MustCompile(`<wsu:Created[^>]*>([^<]+)</wsu:Created><wsu:Expires[^>]*>([^<]+)</wsu:Expires>`)

func lifetimeOf(t *testing.T, rstr []byte) time.Duration {
	m := lifetimeRE.FindSubmatch(rstr)
	if m == nil {
		t.Fatalf("no Lifetime in %.300s", rstr)
	}
	c, _ := time.Parse(time.RFC3339Nano, string(m[1]))
	e, _ := time.Parse(time.RFC3339Nano, string(m[2]))
	return e.Sub(c)
}
