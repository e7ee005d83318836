package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var sessionsTests = []test{
	{"a created session reads back unchanged with times in UTC", testSessionRoundTrip},
	{"creating a session twice fails with ErrAlreadyExists and keeps the first", testSessionDuplicate},
	{"getting a missing session fails with ErrNotFound", testSessionMissing},
	{"a zero CreatedAt is set to now and a zero LastSeen to CreatedAt", testSessionCreatedNow},
	{"UpdateSession applies the change and keeps CreatedAt", testSessionUpdate},
	{"UpdateSession of a missing session fails with ErrNotFound without calling fn", testSessionUpdateMissing},
	{"an error from the UpdateSession function is returned and nothing changes", testSessionUpdateFnError},
	{"UpdateSession cannot change the ID", testSessionUpdateID},
	{"20 concurrent UpdateSession calls each keep their change", testSessionUpdateConcurrent},
	{"DeleteSession removes the session and a second delete fails with ErrNotFound", testSessionDelete},
	{"DeleteSessionsExpiredBefore deletes only sessions that expired before the cutoff", testSessionDeleteExpired},
}

func sampleSession(id string, expires time.Time) storage.Session {
	return storage.Session{
		ID:   id,
		User: `PRIMARY/alice — Ålesund`,
		// Bytes a JSON-aware column would rewrite or refuse.
		Data:       []byte(`{"rps": ["https://rp.example.org/"],  "z":1, "a":"\u0000"}` + "\x00\xff\n"),
		CreatedAt:  expires.Add(-8 * time.Hour),
		LastSeen:   expires.Add(-time.Hour),
		ExpiresAt:  expires,
		RememberMe: true,
	}
}

func checkSession(t *testing.T, got, want storage.Session) {
	t.Helper()
	if got.ID != want.ID || got.User != want.User || string(got.Data) != string(want.Data) ||
		got.RememberMe != want.RememberMe {
		t.Errorf("session = %q/%q/%q/remember=%v, want %q/%q/%q/remember=%v",
			got.ID, got.User, got.Data, got.RememberMe, want.ID, want.User, want.Data, want.RememberMe)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "LastSeen", got.LastSeen, want.LastSeen)
	checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

func testSessionRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := sampleSession("kJ8v_Zr2-Qm3xw9TnE5aLpYc0dUfGh7s", base)
	if err := s.CreateSession(ctx, want); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	got, err := s.GetSession(ctx, want.ID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	checkSession(t, got, want)

	// The other flag and empty data round-trip too.
	other := sampleSession("s2", base)
	other.RememberMe, other.Data = false, nil
	if err := s.CreateSession(ctx, other); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if got, err := s.GetSession(ctx, "s2"); err != nil {
		t.Fatalf("GetSession: %v", err)
	} else {
		checkSession(t, got, other)
	}
}

func testSessionDuplicate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	first := sampleSession("s1", base)
	if err := s.CreateSession(ctx, first); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	second := sampleSession("s1", base.Add(time.Hour))
	second.User = "PRIMARY/mallory"
	if err := s.CreateSession(ctx, second); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second CreateSession = %v, want ErrAlreadyExists", err)
	}
	if got, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("GetSession: %v", err)
	} else {
		checkSession(t, got, first)
	}
}

func testSessionMissing(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if _, err := s.GetSession(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetSession = %v, want ErrNotFound", err)
	}
	if err := s.CreateSession(ctx, sampleSession("abc", base)); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := s.GetSession(ctx, "ABC"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession(ABC) = %v, want ErrNotFound (IDs are case-sensitive)", err)
	}
}

func testSessionCreatedNow(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	se := storage.Session{ID: "s1", User: "PRIMARY/alice", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	got, err := s.GetSession(ctx, "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	checkRecent(t, "CreatedAt", got.CreatedAt)
	checkTime(t, "LastSeen", got.LastSeen, got.CreatedAt)
}

func testSessionUpdate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateSession(ctx, sampleSession("s1", base)); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	want := sampleSession("s1", base.Add(30*24*time.Hour))
	want.CreatedAt = sampleSession("s1", base).CreatedAt
	want.LastSeen = base.Add(time.Minute)
	want.Data = []byte(`{"rps":["https://rp.example.org/","urn:other"]}`)
	want.RememberMe = false
	var seen storage.Session
	err := s.UpdateSession(ctx, "s1", func(se storage.Session) (storage.Session, error) {
		seen = se
		se.LastSeen, se.ExpiresAt, se.Data, se.RememberMe = want.LastSeen, want.ExpiresAt, want.Data, want.RememberMe
		se.CreatedAt = base.AddDate(1, 0, 0) // ignored: creation time is fixed
		return se, nil
	})
	if err != nil {
		t.Fatalf("UpdateSession: %v", err)
	}
	checkSession(t, seen, sampleSession("s1", base))
	got, err := s.GetSession(ctx, "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	checkSession(t, got, want)
}

func testSessionUpdateMissing(t *testing.T, s storage.Storage) {
	called := false
	err := s.UpdateSession(t.Context(), "nope", func(se storage.Session) (storage.Session, error) {
		called = true
		return se, nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateSession = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("fn was called for a missing session")
	}
}

func testSessionUpdateFnError(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateSession(ctx, sampleSession("s1", base)); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	err := s.UpdateSession(ctx, "s1", func(se storage.Session) (storage.Session, error) {
		se.ExpiresAt = base.AddDate(1, 0, 0)
		se.Data = []byte("should-not-stick")
		return se, errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Errorf("UpdateSession = %v, want the fn's error", err)
	}
	if got, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("GetSession: %v", err)
	} else {
		checkSession(t, got, sampleSession("s1", base))
	}
}

func testSessionUpdateID(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateSession(ctx, sampleSession("s1", base)); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	err := s.UpdateSession(ctx, "s1", func(se storage.Session) (storage.Session, error) {
		se.ID = "s2"
		se.Data = []byte("should-not-stick")
		return se, nil
	})
	if err == nil {
		t.Error("UpdateSession changing the ID succeeded, want an error")
	}
	if _, err := s.GetSession(ctx, "s2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession(s2) = %v, want ErrNotFound", err)
	}
	if got, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("GetSession(s1): %v", err)
	} else {
		checkSession(t, got, sampleSession("s1", base))
	}
}

// testSessionUpdateConcurrent: sign-ins to 20 relying parties at once each
// add their marker to Data; a read-then-write outside one transaction
// would lose some.
func testSessionUpdateConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	se := sampleSession("s1", base)
	se.Data = nil
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	const n = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	marker := func(i int) []byte { return fmt.Appendf(nil, "<rp%02d>", i) }
	for i := range n {
		wg.Go(func() {
			<-start
			err := s.UpdateSession(ctx, "s1", func(se storage.Session) (storage.Session, error) {
				se.Data = append(se.Data, marker(i)...)
				return se, nil
			})
			if err != nil {
				t.Errorf("UpdateSession: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	got, err := s.GetSession(ctx, "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	for i := range n {
		if c := bytes.Count(got.Data, marker(i)); c != 1 {
			t.Errorf("marker %s found %d times in %q, want once (an update was lost)", marker(i), c, got.Data)
		}
	}
	if want := n * len(marker(0)); len(got.Data) != want {
		t.Errorf("Data has %d bytes, want %d", len(got.Data), want)
	}
}

func testSessionDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, id := range []string{"s1", "s2"} {
		if err := s.CreateSession(ctx, sampleSession(id, base)); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if err := s.DeleteSession(ctx, "s1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetSession after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteSession = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, "s2"); err != nil {
		t.Errorf("GetSession(s2) = %v, want the untouched session", err)
	}
}

func testSessionDeleteExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	cutoff := base.Truncate(time.Second)
	// Backends keep microseconds, so the boundary is exact to the microsecond.
	offsets := []time.Duration{-2 * time.Hour, -time.Second, -time.Microsecond, 0, time.Microsecond, time.Hour}
	wantGone := []bool{true, true, true, false, false, false}
	for i, offset := range offsets {
		if err := s.CreateSession(ctx, sampleSession(fmt.Sprintf("s%d", i), cutoff.Add(offset))); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if n, err := s.DeleteSessionsExpiredBefore(ctx, cutoff); err != nil || n != 3 {
		t.Fatalf("DeleteSessionsExpiredBefore = %d, %v; want 3", n, err)
	}
	if n, err := s.DeleteSessionsExpiredBefore(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("second DeleteSessionsExpiredBefore = %d, %v; want 0", n, err)
	}
	for i, gone := range wantGone {
		_, err := s.GetSession(ctx, fmt.Sprintf("s%d", i))
		if got := errors.Is(err, storage.ErrNotFound); got != gone {
			t.Errorf("s%d (expiry cutoff%+v): GetSession = %v, want gone=%v", i, offsets[i], err, gone)
		}
	}
	if n, err := s.DeleteSessionsExpiredBefore(ctx, cutoff.Add(2*time.Hour)); err != nil || n != 3 {
		t.Errorf("DeleteSessionsExpiredBefore(later) = %d, %v; want the other 3", n, err)
	}
}
