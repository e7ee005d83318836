// Package cluster runs several real `avouch serve` processes on one real
// PostgreSQL and checks what a cluster must guarantee: shared tokens, shared
// replay cache (exactly once under concurrency), shared keys, and runtime
// settings changed through one node in force on all within 2 seconds.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/testutil/pgtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "avouch-cluster")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "avouch")
	if out, err := exec.Command("go", "build", "-o", binary, "../../cmd/avouch").CombinedOutput(); err != nil {
		panic(string(out))
	}
	defer os.RemoveAll(dir)
	pgtest.Main(m)
}

type node struct {
	base string
	cmd  *exec.Cmd
}

func env(dbURL, masterKey string) []string {
	return append(os.Environ(), "AVOUCH_DATABASE="+dbURL, "AVOUCH_MASTER_KEY="+masterKey, "AVOUCH_ADMIN_PASSWORD=admin-pw")
}

func startNode(t *testing.T, dbURL, masterKey string) *node {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--plain-http")
	cmd.Env = env(dbURL, masterKey)
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (http://\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case base := <-found:
		return &node{base: base, cmd: cmd}
	case <-time.After(20 * time.Second):
		t.Fatalf("node did not start: %s", stderr.String())
	}
	return nil
}

func cli(t *testing.T, dbURL, masterKey string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env(dbURL, masterKey)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("avouch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
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
