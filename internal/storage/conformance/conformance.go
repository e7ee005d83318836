// Package conformance is the behaviour every storage backend must show. Each
// backend's tests call Run unchanged; a backend that passes is a drop-in
// replacement for any other.
//
// Semantics the suite pins down beyond storage.go's comments:
//   - Times are returned in UTC and round-trip to the second (backends keep
//     microseconds).
//   - Roles are stored sorted and unique; Roles and Claims read back non-nil.
//   - DigestSecret keeps nil (digest not allowed) apart from empty.
//   - CreateUser sets Version 1 and UpdatedAt = CreatedAt (now when zero);
//     UpdateUser bumps Version, sets UpdatedAt, keeps CreatedAt and refuses a
//     rename.
//   - A nonce is remembered only until it expires: after expiry a claim of the
//     same key succeeds again (the message timestamp check has rejected any
//     message that old by then).
//   - Concurrent RecordLoginFailure calls for one user return distinct counts.
//   - ListAudit(limit <= 0) returns no events.
//   - Empty results are empty, non-nil slices and maps.
//   - Service-provider Data, certificate PEM and session Data round-trip byte
//     for byte (no JSON normalisation).
//   - PutServiceProvider ignores the caller's Version and UpdatedAt: Version
//     is 1 on the first put of a name and +1 on every later put, also after
//     a delete (a cached version must never come back with other data);
//     UpdatedAt is now.
//   - PutCertificate and CreateSession set a zero CreatedAt to now;
//     CreateSession sets a zero LastSeen to CreatedAt. UpdateSession keeps
//     CreatedAt, refuses an ID change and leaves LastSeen to fn.
//   - Names, aliases and IDs are case-sensitive; lists are in byte order.
package conformance

import (
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// test is one behaviour, run against a fresh, empty store.
type test struct {
	name string
	fn   func(t *testing.T, s storage.Storage)
}

// Run runs the suite. newStore must return a fresh, empty store each call;
// it is called from parallel subtests. Run closes the store when the subtest
// ends; newStore may register its own cleanups (they run after the Close).
func Run(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Users", usersTests},
		{"Replay", replayTests},
		{"LoginFailures", loginFailureTests},
		{"Keys", keysTests},
		{"Settings", settingsTests},
		{"Tokens", tokensTests},
		{"Audit", auditTests},
		{"ServiceProviders", serviceProvidersTests},
		{"Certificates", certificatesTests},
		{"Sessions", sessionsTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					s := newStore(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					tc.fn(t, s)
				})
			}
		})
	}
}

// checkTime fails unless got is in UTC and equals want to the second.
func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, got.Location())
	}
	if !got.Truncate(time.Second).Equal(want.Truncate(time.Second)) {
		t.Errorf("%s: %v, want %v (to the second)", what, got, want)
	}
}

// checkRecent fails unless got is in UTC and within a minute of now.
func checkRecent(t *testing.T, what string, got time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, got.Location())
	}
	if d := time.Since(got); d < -time.Minute || d > time.Minute {
		t.Errorf("%s: %v, want about now", what, got)
	}
}

// notUTC is a fixed zone that makes a backend that forgets to convert to UTC
// fail the time checks.
var notUTC = time.FixedZone("UTC+05:30", 5*3600+30*60)

// base is a fixed instant with sub-second digits, in a non-UTC zone.
var base = time.Date(2026, 11, 22, 17, 20, 0, 123456789, notUTC)
