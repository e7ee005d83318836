package identity

import (
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
