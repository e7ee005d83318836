package server

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
	"github.com/avouch/avouch/internal/sts"
)

func auditStore(t *testing.T) storage.Storage {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func auditTargets(t *testing.T, st storage.Storage) map[string]bool {
	t.Helper()
	evs, err := st.ListAudit(context.Background(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range evs {
		if e.Action == "token.issue" {
			got[e.Target] = true
		}
	}
	return got
}

// TestAuditorWritesEventsWithinItsInterval: buffered issuance events reach
// the audit log on the writer's tick, without a wake-up per event.
func TestAuditorWritesEventsWithinItsInterval(t *testing.T) {
	st := auditStore(t)
	a := newAuditor(st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.run(ctx, t.Logf); close(done) }()
	defer func() { cancel(); <-done }()
	p := &sts.Principal{Name: "alice", Domain: "PRIMARY"}
	for i := range 250 {
		a.token("issue", p, &sts.Token{ID: fmt.Sprintf("_t%03d", i), Type: "t", AppliesTo: "urn:rp"}, time.Now())
	}
	deadline := time.Now().Add(5 * auditInterval)
	for len(auditTargets(t, st)) < 250 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 250 events written after %v", len(auditTargets(t, st)), 5*auditInterval)
		}
		time.Sleep(auditInterval / 4)
	}
}

// TestAuditorWritesWhatIsPendingOnShutdown: events still buffered when the
// server stops are written, not dropped.
func TestAuditorWritesWhatIsPendingOnShutdown(t *testing.T) {
	st := auditStore(t)
	a := newAuditor(st)
	ctx, cancel := context.WithCancel(context.Background())
	p := &sts.Principal{Name: "alice", Domain: "PRIMARY"}
	a.token("issue", p, &sts.Token{ID: "_last", Type: "t", AppliesTo: "urn:rp"}, time.Now())
	cancel() // before the first tick
	a.run(ctx, t.Logf)
	if !auditTargets(t, st)["_last"] {
		t.Fatal("an event pending at shutdown was not written")
	}
}

// TestAuditorDropsAndCountsBeyondItsBound: a store that cannot keep up
// costs audit lines (counted), never memory without bound.
func TestAuditorDropsAndCountsBeyondItsBound(t *testing.T) {
	a := newAuditor(auditStore(t)) // not running: nothing drains
	p := &sts.Principal{Name: "alice", Domain: "PRIMARY"}
	for i := range auditMaxPending + 10 {
		a.token("issue", p, &sts.Token{ID: fmt.Sprint(i)}, time.Now())
	}
	if len(a.pending) != auditMaxPending || a.dropped.Load() != 10 {
		t.Fatalf("pending %d, dropped %d; want %d, 10", len(a.pending), a.dropped.Load(), auditMaxPending)
	}
}
