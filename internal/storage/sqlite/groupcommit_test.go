package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
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
