package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// TestGroupCommitPanicStrandsNoCaller: if a group commit panics, every
// caller waiting on it returns an error (none hangs), the panic reaches the
// leader's caller, and later tokens still commit.
func TestGroupCommitPanicStrandsNoCaller(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "avouch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var once sync.Once
	testCommitHook = func() { once.Do(func() { panic("injected") }) }
	defer func() { testCommitHook = nil }()

	tok := func(id string) storage.Token {
		return storage.Token{ID: id, Type: "t", Subject: "s", RelyingParty: "rp", IssuedAt: time.Now(),
			ExpiresAt: time.Now().Add(time.Hour), Data: []byte("{}")}
	}
	const n = 6
	results := make(chan error, n)
	for i := range n {
		go func() {
			defer func() {
				if v := recover(); v != nil {
					results <- fmt.Errorf("panicked: %v", v)
				}
			}()
			results <- s.CreateToken(t.Context(), tok(fmt.Sprintf("p%d", i)))
		}()
	}
	panics := 0
	for range n {
		select {
		case err := <-results:
			if err != nil && err.Error() == "panicked: injected" {
				panics++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a CreateToken caller hung after a commit panicked")
		}
	}
	if panics != 1 {
		t.Fatalf("%d callers saw the panic, want exactly the leader", panics)
	}
	if err := s.CreateToken(t.Context(), tok("after")); err != nil {
		t.Fatalf("CreateToken after the panic: %v", err)
	}
	if _, err := s.GetToken(t.Context(), "after"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(t.Context(), tok("after")); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate after the panic: %v", err)
	}
}

// TestGroupCommitBatches: a batch goes in as one multi-row INSERT when it
// fits one statement; a duplicate ID, in the store or within the batch,
// fails that token only, and the others are stored as given.
func TestGroupCommitBatches(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "avouch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.UnixMicro(time.Now().UnixMicro())
	tok := func(id string) storage.Token {
		return storage.Token{ID: id, Type: "type-" + id, Subject: "sub-" + id, RelyingParty: "rp-" + id,
			IssuedAt: at, ExpiresAt: at.Add(time.Hour), State: storage.TokenActive, Renewable: len(id)%2 == 0,
			Data: []byte(`{"id":"` + id + `"}`), UpdatedAt: at}
	}
	if err := s.CreateToken(t.Context(), tok("existing")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		size    int
		dups    map[int]string // position → ID that is taken
		oneStmt bool           // inserted by one statement (batches without a taken ID)
	}{
		{"two", 2, nil, true},
		{"seven", 7, nil, true},
		{"largest statement", tokenStmtRows, nil, true},
		{"over a statement", tokenStmtRows + 1, nil, false},
		{"taken in the store", 5, map[int]string{2: "existing"}, false},
		{"taken within the batch", 4, map[int]string{3: "taken within the batch-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := make([]*tokenWrite, tc.size)
			for i := range batch {
				id := fmt.Sprintf("%s-%d", tc.name, i)
				if d, ok := tc.dups[i]; ok {
					id = d
				}
				batch[i] = &tokenWrite{t: tok(id)}
			}
			s.commitTokens(t.Context(), batch)
			for i, b := range batch {
				if _, dup := tc.dups[i]; dup {
					if !errors.Is(b.err, storage.ErrAlreadyExists) {
						t.Errorf("token %d (a taken ID): %v, want ErrAlreadyExists", i, b.err)
					}
					continue
				}
				if b.err != nil {
					t.Fatalf("token %d: %v", i, b.err)
				}
				got, err := s.GetToken(t.Context(), b.t.ID)
				if err != nil {
					t.Fatalf("token %d: %v", i, err)
				}
				want := b.t
				if got.Type != want.Type || got.Subject != want.Subject || got.RelyingParty != want.RelyingParty ||
					!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.State != want.State ||
					got.Renewable != want.Renewable || string(got.Data) != string(want.Data) || !got.UpdatedAt.Equal(want.UpdatedAt) {
					t.Fatalf("token %d stored as %+v, want %+v", i, got, want)
				}
			}
			s.tokenStmtsMu.Lock()
			_, prepared := s.tokenStmts[tc.size]
			s.tokenStmtsMu.Unlock()
			if tc.dups == nil && tc.oneStmt != prepared {
				t.Errorf("a statement of %d rows prepared: %v, want %v", tc.size, prepared, tc.oneStmt)
			}
		})
	}
}

// TestRunnableRequestsJoinTheCommit: on one processor, tokens whose requests
// are ready to run when a leader starts go into its commit, even when the
// last commit carried one token (under load that was every other commit:
// each request, run to its signature in turn, committed alone).
func TestRunnableRequestsJoinTheCommit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "avouch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var commits atomic.Int64
	testCommitHook = func() { commits.Add(1) }
	defer func() { testCommitHook = nil }()
	tok := func(id string) storage.Token {
		return storage.Token{ID: id, Type: "t", Subject: "s", RelyingParty: "rp", IssuedAt: time.Now(),
			ExpiresAt: time.Now().Add(time.Hour), Data: []byte("{}")}
	}
	// A lone token first: the last commit carried one.
	if err := s.CreateToken(t.Context(), tok("lone")); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		commits.Store(0)
		const others = 6
		errs := make(chan error, others)
		for i := range others {
			// Runnable, not running: this goroutine keeps the one processor
			// until it blocks in CreateToken.
			go func() { errs <- s.CreateToken(context.Background(), tok(fmt.Sprintf("r%d-%d", round, i))) }()
		}
		if err := s.CreateToken(t.Context(), tok(fmt.Sprintf("leader%d", round))); err != nil {
			t.Fatal(err)
		}
		for range others {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		// One commit, or two when the scheduler's fairness rule (every 61st
		// schedule takes the global queue first) resumes the leader early.
		// Committing one by one would take seven.
		if n := commits.Load(); n > 2 {
			t.Errorf("round %d: %d commits for %d tokens, want 1 (2 at most)", round, n, others+1)
		}
		// And the next commit starts from a lone one again.
		if err := s.CreateToken(t.Context(), tok(fmt.Sprintf("lone%d", round))); err != nil {
			t.Fatal(err)
		}
	}
}
