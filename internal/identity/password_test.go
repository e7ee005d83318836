package identity

import (
	"strings"
	"sync"
	"testing"
)

// TestArgon2idRunsAtMostSlotsAtOnce: a burst of wrong passwords (a spray)
// must not run more argon2id computations at once than there are slots,
// each holding 19 MiB.
func TestArgon2idRunsAtMostSlotsAtOnce(t *testing.T) {
	hash, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running, peak := 0, 0
	onArgon = func(d int) {
		mu.Lock()
		running += d
		peak = max(peak, running)
		mu.Unlock()
	}
	defer func() { onArgon = nil }()
	const burst = 12
	var wg sync.WaitGroup
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := CheckPassword(hash, "wrong"); ok || err != nil {
				t.Errorf("CheckPassword(wrong) = %v, %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if limit := cap(argonSlots); peak > limit || peak < 1 {
		t.Fatalf("peak of %d argon2id computations at once, want 1..%d", peak, limit)
	}
}

// TestDummyHashCostsWhatARealOneCosts: the hash checked for unknown users is
// accepted by CheckPassword (an unrecognised hash would return before any
// argon2id work, and timing would tell unknown users apart) and carries the
// parameters HashPassword uses today.
func TestDummyHashCostsWhatARealOneCosts(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	params := func(h string) string { return strings.Join(strings.Split(h, "$")[:4], "$") }
	if params(dummyHash) != params(h) {
		t.Fatalf("dummy hash parameters %q, HashPassword's %q", params(dummyHash), params(h))
	}
	var ran int
	onArgon = func(d int) {
		if d > 0 {
			ran++
		}
	}
	defer func() { onArgon = nil }()
	if ok, err := CheckPassword(dummyHash, "avouch-dummy-password"); ok || err != nil {
		t.Fatalf("CheckPassword(dummyHash) = %v, %v; want false, nil", ok, err)
	}
	if ran != 1 {
		t.Fatalf("argon2id ran %d times for the dummy hash, want 1", ran)
	}
}
