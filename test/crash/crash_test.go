// Package crash kills avouch with SIGKILL under sustained issue/renew/cancel
// load and checks that nothing a client saw is lost: every token the client
// saw issued still validates (or is cancelled, if the client saw the cancel
// succeed) and can be renewed and cancelled after the restart, and the
// database passes its integrity check.
package crash

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/testutil/avouchtest"
	"github.com/avouch/avouch/internal/testutil/pgtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "avouch-crash")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if binary, err = avouchtest.Build(dir); err != nil {
		panic(err)
	}
	pgtest.Main(m)
}

type node struct {
	url string
	p   *avouchtest.Process
}

func start(t *testing.T, dataDir string, env ...string) *node {
	t.Helper()
	p := avouchtest.Start(t, binary, dataDir, env)
	return &node{url: p.STS(), p: p}
}

func (n *node) kill() { n.p.Kill() }

// seen is what the client observed: tokens issued, and cancels that
// succeeded.
type seen struct {
	mu        sync.Mutex
	tokens    map[string][]byte
	cancelled map[string]bool
}

var idRE = regexp.MustCompile(` ID="([^"]+)"`)

// load runs issue → renew → (every third) cancel loops against n until stop.
func load(n *node, s *seen, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	hc := &http.Client{Timeout: 5 * time.Second}
	o := &client.Options{URL: n.url, User: "admin", Password: "admin-pw", AppliesTo: "urn:crash"}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		_, _, tok, err := client.Issue(context.Background(), hc, o)
		if err != nil {
			return // the server died
		}
		id := string(idRE.FindSubmatch(tok)[1])
		s.mu.Lock()
		s.tokens[id] = tok
		s.mu.Unlock()
		if _, _, err := client.Lifecycle(context.Background(), hc, o, "Renew", tok, false); err != nil {
			return
		}
		if i%3 == 2 {
			if _, _, err := client.Lifecycle(context.Background(), hc, o, "Cancel", tok, false); err != nil {
				return
			}
			s.mu.Lock()
			s.cancelled[id] = true
			s.mu.Unlock()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crashRound loads victim (and others), kills victim mid-load, and returns
// what the client saw.
func crashRound(t *testing.T, victim *node, others ...*node) *seen {
	s := &seen{tokens: map[string][]byte{}, cancelled: map[string]bool{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range append([]*node{victim}, others...) {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go load(n, s, stop, &wg)
		}
	}
	// Kill once the load is under way (a few tokens issued), at a random-ish
	// point of the request stream, whatever the machine's speed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.tokens)
		s.mu.Unlock()
		if n >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	victim.kill()
	close(stop)
	wg.Wait()
	if len(s.tokens) == 0 {
		t.Fatal("no token was issued before the kill")
	}
	return s
}

// check proves every token seen is known after the crash.
func check(t *testing.T, url string, s *seen) {
	t.Helper()
	o := &client.Options{URL: url, User: "admin", Password: "admin-pw", AppliesTo: "urn:crash"}
	ctx := context.Background()
	for id, tok := range s.tokens {
		_, rstr, err := client.Lifecycle(ctx, http.DefaultClient, o, "Validate", tok, true)
		if err != nil {
			t.Fatalf("validate %s: %v", id, err)
		}
		ok, _, reason, _ := client.Status(rstr)
		if s.cancelled[id] {
			if ok || reason != "cancelled" {
				t.Fatalf("token %s was seen cancelled but is valid=%v %q after the crash", id, ok, reason)
			}
			continue
		}
		if !ok && reason != "cancelled" { // a cancel in flight at the kill may have landed
			t.Fatalf("token %s seen issued is invalid after the crash: %s", id, reason)
		}
		if ok {
			if _, _, err := client.Lifecycle(ctx, http.DefaultClient, o, "Renew", tok, false); err != nil {
				t.Fatalf("renew %s after the crash: %v", id, err)
			}
			if _, _, err := client.Lifecycle(ctx, http.DefaultClient, o, "Cancel", tok, false); err != nil {
				t.Fatalf("cancel %s after the crash: %v", id, err)
			}
		}
	}
}

func integrity(t *testing.T, dbPath string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q %v", res, err)
	}
}

const rounds = 20

func TestSIGKILLUnderLoadLosesNothingOnSQLite(t *testing.T) {
	dir := t.TempDir()
	for r := 0; r < rounds; r++ {
		n := start(t, dir)
		s := crashRound(t, n)
		integrity(t, filepath.Join(dir, "avouch.db"))
		after := start(t, dir)
		check(t, after.url, s)
		after.kill()
		t.Logf("round %d: %d tokens seen, %d cancelled, all accounted for", r+1, len(s.tokens), len(s.cancelled))
	}
}

func TestSIGKILLOfOneOfTwoNodesLosesNothingOnPostgreSQL(t *testing.T) {
	db := pgtest.URL(t)
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	env := []string{"AVOUCH_DATABASE=" + db, "AVOUCH_MASTER_KEY=" + base64.StdEncoding.EncodeToString(mk)}
	b := start(t, t.TempDir(), env...)
	for r := 0; r < rounds; r++ {
		a := start(t, t.TempDir(), env...)
		s := crashRound(t, a, b)
		check(t, b.url, s)
		t.Logf("round %d: %d tokens seen on both nodes, %d cancelled, all accounted for on the survivor", r+1, len(s.tokens), len(s.cancelled))
	}

}
