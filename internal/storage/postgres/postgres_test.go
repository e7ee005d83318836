package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/conformance"
	"github.com/avouch/avouch/internal/storage/postgres"
	"github.com/avouch/avouch/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Storage {
		s, err := postgres.Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s // Run closes it
	})
}

// TestTwoNodesOpeningTogetherMigrateOnce: nodes starting at the same moment
// on an empty database all succeed (the advisory lock serialises the
// migrations) and then share one schema.
func TestTwoNodesOpeningTogetherMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	const nodes = 4
	stores := make([]*postgres.Store, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), url)
			if err != nil {
				t.Errorf("node %d: Open: %v", i, err)
				return
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := stores[0].PutSetting(t.Context(), "k", "v"); err != nil {
		t.Fatalf("PutSetting: %v", err)
	}
	if v, err := stores[nodes-1].GetSetting(t.Context(), "k"); err != nil || v != "v" {
		t.Fatalf("GetSetting on another node = %q, %v; want v", v, err)
	}
}

// TestTwoNodesSeeEachOthersWrites: what one Store writes, another Store on
// the same database reads at once.
func TestTwoNodesSeeEachOthersWrites(t *testing.T) {
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	if err := a.CreateUser(ctx, storage.User{Name: "alice", PasswordHash: "h", Roles: []string{"admin"}}); err != nil {
		t.Fatalf("CreateUser on a: %v", err)
	}
	if err := b.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		u.Disabled = true
		return u, nil
	}); err != nil {
		t.Fatalf("UpdateUser on b: %v", err)
	}
	u, err := a.GetUser(ctx, "alice")
	if err != nil || !u.Disabled || u.Version != 2 {
		t.Fatalf("GetUser on a = disabled %v version %d, %v; want b's update", u.Disabled, u.Version, err)
	}
	if err := b.CreateUser(ctx, storage.User{Name: "alice", PasswordHash: "h"}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateUser of a's user on b = %v, want ErrAlreadyExists", err)
	}
	if err := a.ClaimNonce(ctx, "n", time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("ClaimNonce on a: %v", err)
	}
	if err := b.ClaimNonce(ctx, "n", time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("ClaimNonce of a's nonce on b = %v, want ErrAlreadyExists", err)
	}
}

// TestTwoNodesShareTheNonceExactlyOnceGuarantee races claims of one key
// through two Stores, 100 times: exactly one claim may win each round.
func TestTwoNodesShareTheNonceExactlyOnceGuarantee(t *testing.T) {
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	for round := range 100 {
		key := fmt.Sprintf("round-%d", round)
		if won := conformance.ClaimConcurrently(t, key, 8, a, b); won != 1 {
			t.Fatalf("%s: %d claims won across two nodes, want exactly 1", key, won)
		}
	}
}

// TestOpenDoesNotRevealThePassword: a malformed URL's error must not
// repeat the password it contains.
func TestOpenDoesNotRevealThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://avouch:s3cr3t-pw@127.0.0.1:99999999/db",
		"postgres://avouch:s3cr3t-pw@[::1/db",
		"host=127.0.0.1 password=s3cr3t-pw port=notaport",
	} {
		_, err := postgres.Open(ctx, url)
		if err == nil {
			t.Errorf("Open(malformed) succeeded")
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
}
