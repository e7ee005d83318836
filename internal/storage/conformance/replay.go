package conformance

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var replayTests = []test{
	{"a fresh nonce can be claimed once and only once", testNonceOnce},
	{"claims of different nonces do not interfere", testNonceIndependent},
	{"exactly one of 50 concurrent claims of a nonce succeeds", testNonceConcurrent},
	{"a nonce recorded with a past expiry can be claimed again", testNoncePastExpiry},
	{"a nonce can be claimed again once it has expired", testNonceReclaimAfterExpiry},
	{"liveness is judged by the caller's clock, not the backend's", testNonceCallerClock},
	{"PurgeNonces deletes only nonces that expired before now and counts them", testNoncePurge},
}

func testNonceOnce(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := s.ClaimNonce(ctx, "n1", time.Now(), exp); err != nil {
		t.Fatalf("first ClaimNonce: %v", err)
	}
	for range 3 {
		if err := s.ClaimNonce(ctx, "n1", time.Now(), exp.Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("repeated ClaimNonce = %v, want ErrAlreadyExists", err)
		}
	}
}

func testNonceIndependent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	// Keys differ only in case, length or Unicode form: all distinct.
	keys := []string{"abc", "ABC", "abc ", "é", "e\u0301", "😀", ""}
	for _, k := range keys {
		if err := s.ClaimNonce(ctx, k, time.Now(), exp); err != nil {
			t.Errorf("ClaimNonce(%q): %v", k, err)
		}
	}
	for _, k := range keys {
		if err := s.ClaimNonce(ctx, k, time.Now(), exp); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("second ClaimNonce(%q) = %v, want ErrAlreadyExists", k, err)
		}
	}
}

// ClaimConcurrently has n goroutines claim key at once through the stores
// (round robin) and returns how many succeeded. Any error other than
// ErrAlreadyExists fails t. Backend tests use it across two Store instances.
func ClaimConcurrently(t *testing.T, key string, n int, stores ...storage.Replay) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		won   atomic.Int32
		start = make(chan struct{})
		exp   = time.Now().Add(time.Hour)
	)
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			switch err := s.ClaimNonce(t.Context(), key, time.Now(), exp); {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, storage.ErrAlreadyExists):
				t.Errorf("ClaimNonce(%q) = %v, want nil or ErrAlreadyExists", key, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(won.Load())
}

func testNonceConcurrent(t *testing.T, s storage.Storage) {
	for i := range 5 {
		key := fmt.Sprintf("nonce-%d", i)
		if won := ClaimConcurrently(t, key, 50, s); won != 1 {
			t.Errorf("%s: %d of 50 concurrent claims succeeded, want exactly 1", key, won)
		}
	}
}

func testNoncePastExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.ClaimNonce(ctx, "n", time.Now(), time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("ClaimNonce with a past expiry: %v", err)
	}
	if err := s.ClaimNonce(ctx, "n", time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("ClaimNonce of the expired nonce = %v, want success", err)
	}
	// The new claim's expiry now applies.
	if err := s.ClaimNonce(ctx, "n", time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("ClaimNonce of the re-claimed nonce = %v, want ErrAlreadyExists", err)
	}
}

func testNonceReclaimAfterExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	exp := time.Now().Add(300 * time.Millisecond)
	if err := s.ClaimNonce(ctx, "n", time.Now(), exp); err != nil {
		t.Fatalf("ClaimNonce: %v", err)
	}
	if err := s.ClaimNonce(ctx, "n", time.Now(), exp); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("ClaimNonce before expiry = %v, want ErrAlreadyExists", err)
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	if err := s.ClaimNonce(ctx, "n", time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("ClaimNonce after expiry = %v, want success", err)
	}
}

func testNoncePurge(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := time.Now()
	for key, exp := range map[string]time.Duration{
		"old-2h": -2 * time.Hour, "old-1h": -time.Hour, "old-1s": -time.Second,
		"live-1h": time.Hour, "live-2h": 2 * time.Hour,
	} {
		if err := s.ClaimNonce(ctx, key, time.Now(), now.Add(exp)); err != nil {
			t.Fatalf("ClaimNonce(%s): %v", key, err)
		}
	}
	if n, err := s.PurgeNonces(ctx, now); err != nil || n != 3 {
		t.Fatalf("PurgeNonces(now) = %d, %v; want 3", n, err)
	}
	if n, err := s.PurgeNonces(ctx, now); err != nil || n != 0 {
		t.Fatalf("second PurgeNonces(now) = %d, %v; want 0", n, err)
	}
	if err := s.ClaimNonce(ctx, "live-1h", time.Now(), now.Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("live nonce after purge: ClaimNonce = %v, want ErrAlreadyExists", err)
	}
	// Purging with a later instant removes what has expired by then.
	if n, err := s.PurgeNonces(ctx, now.Add(90*time.Minute)); err != nil || n != 1 {
		t.Errorf("PurgeNonces(now+90m) = %d, %v; want 1", n, err)
	}
	if n, err := s.PurgeNonces(ctx, now.Add(24*time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeNonces(now+24h) = %d, %v; want 1", n, err)
	}
}

// testNonceCallerClock: a caller with an injected clock in the past (tests
// replaying captured requests) must still see its nonce as live; a backend
// that compared against its own clock would let the replay through.
func testNonceCallerClock(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	then := time.Now().Add(-24 * time.Hour)
	if err := s.ClaimNonce(ctx, "past", then, then.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimNonce(ctx, "past", then.Add(time.Minute), then.Add(11*time.Minute)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("replay within the caller's window = %v, want ErrAlreadyExists", err)
	}
	if err := s.ClaimNonce(ctx, "past", then.Add(10*time.Minute), then.Add(20*time.Minute)); err != nil {
		t.Fatalf("claim after the caller's expiry = %v, want success", err)
	}
}
