package conformance

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var loginFailureTests = []test{
	{"RecordLoginFailure counts the failures inside the window including the new one", testFailuresCount},
	{"failures at or before the start of the window do not count", testFailuresWindow},
	{"failures are counted per user, case-sensitively", testFailuresPerUser},
	{"ClearLoginFailures forgets only that user's failures", testFailuresClear},
	{"an unknown user has no failures", testFailuresUnknown},
	{"concurrent failures of one user get distinct counts", testFailuresConcurrent},
}

const window = 5 * time.Minute

func record(t *testing.T, s storage.Storage, user string, at time.Time) int {
	t.Helper()
	n, err := s.RecordLoginFailure(t.Context(), user, at, window)
	if err != nil {
		t.Fatalf("RecordLoginFailure(%s, %v): %v", user, at, err)
	}
	return n
}

func count(t *testing.T, s storage.Storage, user string, now time.Time) int {
	t.Helper()
	n, err := s.CountLoginFailures(t.Context(), user, now, window)
	if err != nil {
		t.Fatalf("CountLoginFailures(%s, %v): %v", user, now, err)
	}
	return n
}

func testFailuresCount(t *testing.T, s storage.Storage) {
	for i := range 4 {
		if n := record(t, s, "alice", base.Add(time.Duration(i)*time.Minute)); n != i+1 {
			t.Errorf("failure %d: RecordLoginFailure = %d, want %d", i+1, n, i+1)
		}
	}
	if n := count(t, s, "alice", base.Add(3*time.Minute)); n != 4 {
		t.Errorf("CountLoginFailures = %d, want 4", n)
	}
}

func testFailuresWindow(t *testing.T, s storage.Storage) {
	record(t, s, "alice", base)
	record(t, s, "alice", base.Add(4*time.Minute))
	// The window is (now-window, now]: the failure at exactly now-window is out.
	if n := count(t, s, "alice", base.Add(window)); n != 1 {
		t.Errorf("count at base+window = %d, want 1", n)
	}
	if n := count(t, s, "alice", base.Add(window-time.Second)); n != 2 {
		t.Errorf("count at base+window-1s = %d, want 2", n)
	}
	if n := count(t, s, "alice", base.Add(4*time.Minute+window)); n != 0 {
		t.Errorf("count after both left the window = %d, want 0", n)
	}
	if n := record(t, s, "alice", base.Add(20*time.Minute)); n != 1 {
		t.Errorf("RecordLoginFailure long after = %d, want 1", n)
	}
}

func testFailuresPerUser(t *testing.T, s storage.Storage) {
	record(t, s, "alice", base)
	record(t, s, "alice", base)
	record(t, s, "Alice", base)
	if n := record(t, s, "bob", base); n != 1 {
		t.Errorf("bob's first failure counted %d, want 1", n)
	}
	for user, want := range map[string]int{"alice": 2, "Alice": 1, "bob": 1} {
		if n := count(t, s, user, base); n != want {
			t.Errorf("count(%s) = %d, want %d", user, n, want)
		}
	}
}

func testFailuresClear(t *testing.T, s storage.Storage) {
	record(t, s, "alice", base)
	record(t, s, "alice", base.Add(time.Second))
	record(t, s, "bob", base)
	if err := s.ClearLoginFailures(t.Context(), "alice"); err != nil {
		t.Fatalf("ClearLoginFailures: %v", err)
	}
	if n := count(t, s, "alice", base.Add(time.Second)); n != 0 {
		t.Errorf("alice after clear = %d, want 0", n)
	}
	if n := count(t, s, "bob", base); n != 1 {
		t.Errorf("bob after clearing alice = %d, want 1", n)
	}
	// Clearing a user without failures is not an error.
	if err := s.ClearLoginFailures(t.Context(), "nobody"); err != nil {
		t.Errorf("ClearLoginFailures(nobody) = %v, want nil", err)
	}
}

func testFailuresUnknown(t *testing.T, s storage.Storage) {
	if n := count(t, s, "nobody", time.Now()); n != 0 {
		t.Errorf("count = %d, want 0", n)
	}
}

// Lockout must hold under a burst of parallel guesses: if two failures could
// both see the same count, a burst could slip past the threshold.
func testFailuresConcurrent(t *testing.T, s storage.Storage) {
	const n = 20
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts []int
	)
	for range n {
		wg.Go(func() {
			c, err := s.RecordLoginFailure(t.Context(), "alice", base, window)
			if err != nil {
				t.Errorf("RecordLoginFailure: %v", err)
				return
			}
			mu.Lock()
			counts = append(counts, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("counts returned = %v, want 1..%d each once", counts, n)
		}
	}
}
