package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var tokensTests = []test{
	{"a created token reads back unchanged with times in UTC", testTokenRoundTrip},
	{"creating a token twice fails with ErrAlreadyExists", testTokenDuplicate},
	{"concurrent creates all land; of two with one ID exactly one wins", testTokenCreateConcurrent},
	{"getting a missing token fails with ErrNotFound", testTokenMissing},
	{"UpdateToken applies the change and sets UpdatedAt", testTokenUpdate},
	{"UpdateToken of a missing token fails with ErrNotFound", testTokenUpdateMissing},
	{"an error from the UpdateToken function is returned and nothing changes", testTokenUpdateFnError},
	{"UpdateToken cannot change the ID", testTokenUpdateID},
	{"concurrent UpdateToken calls never lose an update", testTokenUpdateConcurrent},
	{"DeleteTokensExpiredBefore deletes only tokens that expired before the cutoff", testTokenDeleteExpired},
	{"DeleteTokensExpiredBefore deletes thousands (backends may delete in chunks)", testTokenDeleteMany},
}

func sampleToken(id string, expires time.Time) storage.Token {
	return storage.Token{
		ID:               id,
		Type:             "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0",
		Subject:          "alice — Ålesund",
		RelyingParty:     "https://rp.example.org/app?x=1",
		IssuedAt:         expires.Add(-time.Hour),
		ExpiresAt:        expires,
		State:            storage.TokenActive,
		Renewable:        true,
		RenewAfterExpiry: true,
		Data:             []byte("<saml:Assertion>\x00\xff</saml:Assertion>"),
		UpdatedAt:        expires.Add(-time.Hour),
	}
}

func checkToken(t *testing.T, got, want storage.Token) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.Subject != want.Subject ||
		got.RelyingParty != want.RelyingParty || got.State != want.State ||
		got.Renewable != want.Renewable || got.RenewAfterExpiry != want.RenewAfterExpiry ||
		string(got.Data) != string(want.Data) {
		t.Errorf("token = %+v, want %+v", got, want)
	}
	checkTime(t, "IssuedAt", got.IssuedAt, want.IssuedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

func testTokenRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := sampleToken("_a75adf55-01d7-40cc-929f-dbd8372ebdfc", base)
	if err := s.CreateToken(ctx, want); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	got, err := s.GetToken(ctx, want.ID)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	checkToken(t, got, want)
	checkTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)

	// The other flags and an empty relying party round-trip too.
	other := sampleToken("_b", base)
	other.RelyingParty, other.Renewable, other.RenewAfterExpiry = "", false, false
	other.State = storage.TokenCancelled
	if err := s.CreateToken(ctx, other); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if got, err := s.GetToken(ctx, "_b"); err != nil {
		t.Fatalf("GetToken: %v", err)
	} else {
		checkToken(t, got, other)
	}
}

func testTokenDuplicate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	first := sampleToken("t1", base)
	if err := s.CreateToken(ctx, first); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	second := sampleToken("t1", base.Add(time.Hour))
	second.Subject = "mallory"
	if err := s.CreateToken(ctx, second); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second CreateToken = %v, want ErrAlreadyExists", err)
	}
	if got, err := s.GetToken(ctx, "t1"); err != nil {
		t.Fatalf("GetToken: %v", err)
	} else {
		checkToken(t, got, first)
	}
}

// testTokenCreateConcurrent: backends may group concurrent inserts into one
// commit (SQLite does); a duplicate in a group must fail alone, and every
// create that returned nil must be readable.
func testTokenCreateConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const ids = 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins = map[string]int{}
		errs []error
	)
	for i := range 2 * ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%02d", i%ids) // two goroutines per ID
			tok := sampleToken(id, base)
			tok.Subject = fmt.Sprintf("writer-%d", i)
			err := s.CreateToken(ctx, tok)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins[id]++
				wins[id+"/"+tok.Subject]++
			case !errors.Is(err, storage.ErrAlreadyExists):
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	for i := range ids {
		id := fmt.Sprintf("c%02d", i)
		if wins[id] != 1 {
			t.Errorf("%s: %d creates succeeded, want exactly 1", id, wins[id])
			continue
		}
		got, err := s.GetToken(ctx, id)
		if err != nil {
			t.Errorf("GetToken(%s): %v", id, err)
			continue
		}
		if wins[id+"/"+got.Subject] != 1 {
			t.Errorf("%s holds %q, which is not the create that succeeded", id, got.Subject)
		}
	}
}

func testTokenDeleteMany(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const expired = 2500
	for i := range expired {
		if err := s.CreateToken(ctx, sampleToken(fmt.Sprintf("old%04d", i), base.Add(-time.Hour))); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	if err := s.CreateToken(ctx, sampleToken("live", base.Add(time.Hour))); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if n, err := s.DeleteTokensExpiredBefore(ctx, base); err != nil || n != expired {
		t.Fatalf("DeleteTokensExpiredBefore = %d, %v; want %d", n, err, expired)
	}
	if _, err := s.GetToken(ctx, "live"); err != nil {
		t.Fatalf("the live token went too: %v", err)
	}
	if _, err := s.GetToken(ctx, "old2499"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an expired token survived: %v", err)
	}
}

func testTokenMissing(t *testing.T, s storage.Storage) {
	if _, err := s.GetToken(t.Context(), "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetToken = %v, want ErrNotFound", err)
	}
}

func testTokenUpdate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateToken(ctx, sampleToken("t1", base)); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	want := sampleToken("t1", base.Add(8*time.Hour))
	want.State = storage.TokenCancelled
	want.Data = []byte("renewed")
	err := s.UpdateToken(ctx, "t1", func(tok storage.Token) (storage.Token, error) {
		checkToken(t, tok, sampleToken("t1", base))
		tok.State, tok.ExpiresAt, tok.IssuedAt, tok.Data = want.State, want.ExpiresAt, want.IssuedAt, want.Data
		return tok, nil
	})
	if err != nil {
		t.Fatalf("UpdateToken: %v", err)
	}
	got, err := s.GetToken(ctx, "t1")
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	checkToken(t, got, want)
	checkRecent(t, "UpdatedAt", got.UpdatedAt)
}

func testTokenUpdateMissing(t *testing.T, s storage.Storage) {
	called := false
	err := s.UpdateToken(t.Context(), "nope", func(tok storage.Token) (storage.Token, error) {
		called = true
		return tok, nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateToken = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("fn was called for a missing token")
	}
}

func testTokenUpdateFnError(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateToken(ctx, sampleToken("t1", base)); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	err := s.UpdateToken(ctx, "t1", func(tok storage.Token) (storage.Token, error) {
		tok.State = storage.TokenCancelled
		return tok, errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Errorf("UpdateToken = %v, want the fn's error", err)
	}
	if got, err := s.GetToken(ctx, "t1"); err != nil {
		t.Fatalf("GetToken: %v", err)
	} else {
		checkToken(t, got, sampleToken("t1", base))
	}
}

func testTokenUpdateID(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateToken(ctx, sampleToken("t1", base)); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	err := s.UpdateToken(ctx, "t1", func(tok storage.Token) (storage.Token, error) {
		tok.ID = "t2"
		return tok, nil
	})
	if err == nil {
		t.Error("UpdateToken changing the ID succeeded, want an error")
	}
	if _, err := s.GetToken(ctx, "t2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetToken(t2) = %v, want ErrNotFound", err)
	}
}

func testTokenUpdateConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	tok := sampleToken("t1", base)
	tok.Data = nil
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := s.UpdateToken(ctx, "t1", func(tok storage.Token) (storage.Token, error) {
				tok.Data = append(tok.Data, byte('a'+i))
				return tok, nil
			})
			if err != nil {
				t.Errorf("UpdateToken: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetToken(ctx, "t1")
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if len(got.Data) != n {
		t.Errorf("Data = %q, want %d bytes (an update was lost)", got.Data, n)
	}
}

func testTokenDeleteExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	cutoff := base.Truncate(time.Second)
	for i, offset := range []time.Duration{-2 * time.Hour, -time.Second, 0, time.Second, time.Hour} {
		if err := s.CreateToken(ctx, sampleToken(fmt.Sprintf("t%d", i), cutoff.Add(offset))); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	if n, err := s.DeleteTokensExpiredBefore(ctx, cutoff); err != nil || n != 2 {
		t.Fatalf("DeleteTokensExpiredBefore = %d, %v; want 2", n, err)
	}
	if n, err := s.DeleteTokensExpiredBefore(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("second DeleteTokensExpiredBefore = %d, %v; want 0", n, err)
	}
	for i, wantGone := range []bool{true, true, false, false, false} {
		_, err := s.GetToken(ctx, fmt.Sprintf("t%d", i))
		if gone := errors.Is(err, storage.ErrNotFound); gone != wantGone {
			t.Errorf("t%d: GetToken = %v, want gone=%v", i, err, wantGone)
		}
	}
}
