package identity

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func setup(t *testing.T, opt Options) (*Authenticator, *sqlite.Store, *keys.Box, *fakeClock) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := keys.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	opt.Now = clk.Now
	a := NewAuthenticator(st, box, opt)
	hash, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := box.Seal([]byte("right"))
	for _, u := range []storage.User{
		{Name: "alice", PasswordHash: hash, Roles: []string{"admin"}, Claims: map[string]string{"urn:c": "v"}, DigestSecret: sealed},
		{Name: "bob", PasswordHash: hash, Roles: []string{"staff"}, Claims: map[string]string{}},
		{Name: "dora", PasswordHash: hash, Roles: []string{"admin"}, Claims: map[string]string{}, Disabled: true},
	} {
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	return a, st, box, clk
}

func TestPasswordChecks(t *testing.T) {
	a, _, _, _ := setup(t, Options{LockoutThreshold: 100, LockoutWindow: time.Minute})
	cases := []struct {
		name, login, password string
		wantErr               error
		wantRoles             []string
	}{
		{"the right password authenticates", "alice", "right", nil, []string{"admin"}},
		{"the PRIMARY domain prefix is accepted", "PRIMARY/alice", "right", nil, []string{"admin"}},
		{"the domain prefix is case-insensitive", "primary/alice", "right", nil, []string{"admin"}},
		{"a wrong password is refused", "alice", "wrong", ErrInvalidCredentials, nil},
		{"an unknown user is refused the same way", "zed", "right", ErrInvalidCredentials, nil},
		{"an unknown domain is refused", "LDAP/alice", "right", ErrUnknownDomain, nil},
		{"a disabled user is refused the same way", "dora", "right", ErrInvalidCredentials, nil},
		{"an empty password is refused", "alice", "", ErrInvalidCredentials, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := a.VerifyPassword(context.Background(), c.login, c.password)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if err == nil && (len(p.Roles) != len(c.wantRoles) || p.Roles[0] != c.wantRoles[0] || p.Domain != PrimaryDomain) {
				t.Fatalf("principal %+v", p)
			}
		})
	}
}

func TestLockoutAfterRepeatedFailures(t *testing.T) {
	a, _, _, clk := setup(t, Options{LockoutThreshold: 3, LockoutWindow: 15 * time.Minute})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := a.VerifyPassword(ctx, "bob", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	if _, err := a.VerifyPassword(ctx, "bob", "right"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("locked account accepted the right password: %v", err)
	}
	clk.t = clk.t.Add(16 * time.Minute)
	if _, err := a.VerifyPassword(ctx, "bob", "right"); err != nil {
		t.Fatalf("lock did not expire with the window: %v", err)
	}
}

func TestCredentialCacheIsDroppedOnPasswordOrRoleChange(t *testing.T) {
	a, st, _, _ := setup(t, Options{CacheTTL: time.Minute})
	ctx := context.Background()
	if _, err := a.VerifyPassword(ctx, "alice", "right"); err != nil {
		t.Fatal(err)
	}
	if len(a.cache.m) != 1 {
		t.Fatalf("cache has %d entries after a success", len(a.cache.m))
	}
	newHash, _ := HashPassword("new")
	if err := st.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		u.PasswordHash = newHash
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyPassword(ctx, "alice", "right"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password still accepted after a change: %v", err)
	}
	if _, err := a.VerifyPassword(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		u.Roles = []string{"staff"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	p, err := a.VerifyPassword(ctx, "alice", "new")
	if err != nil || len(p.Roles) != 1 || p.Roles[0] != "staff" {
		t.Fatalf("role change not seen: %+v %v", p, err)
	}
}

func digestOf(nonce []byte, created, pw string) string {
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(pw))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestPasswordDigest(t *testing.T) {
	a, _, _, _ := setup(t, Options{})
	nonce, created := []byte("0123456789abcdef"), "2026-11-22T12:00:00Z"
	cases := []struct {
		name, login, digest string
		wantErr             error
	}{
		{"a right digest for a digest-capable user authenticates", "alice", digestOf(nonce, created, "right"), nil},
		{"a wrong digest is refused", "alice", digestOf(nonce, created, "wrong"), ErrInvalidCredentials},
		{"a digest over another Created is refused", "alice", digestOf(nonce, "2026-11-22T12:00:01Z", "right"), ErrInvalidCredentials},
		{"a user without a digest secret gets the clear refusal", "bob", digestOf(nonce, created, "right"), ErrDigestNotAllowed},
		{"an unknown user gets the same refusal (no enumeration)", "zed", digestOf(nonce, created, "right"), ErrDigestNotAllowed},
		{"garbage base64 is refused", "alice", "%%%", ErrInvalidCredentials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.VerifyDigest(context.Background(), c.login, c.digest, nonce, created)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestPasswordHashesAreSaltedAndCheckable(t *testing.T) {
	h1, _ := HashPassword("pw")
	h2, _ := HashPassword("pw")
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, c := range []struct {
		hash, pw string
		ok       bool
		err      bool
	}{{h1, "pw", true, false}, {h1, "pW", false, false}, {"$argon2i$v=19$m=1,t=1,p=1$AA$AA", "pw", false, true}, {"garbage", "pw", false, true},
		{"$argon2id$v=19$m=999999999,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "pw", false, true}} {
		ok, err := CheckPassword(c.hash, c.pw)
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("CheckPassword(%.20s…, %q) = %v, %v", c.hash, c.pw, ok, err)
		}
	}
}

// TestNewPasswordFromAnotherProcessWorksAtOnceThroughTheUserCache: the
// server reads users through storage.CacheUsers, which may serve a record
// up to its TTL old. A password changed by another process (the CLI) must
// still verify at once: a refusal is checked against the stored record.
func TestNewPasswordFromAnotherProcessWorksAtOnceThroughTheUserCache(t *testing.T) {
	_, st, box, clk := setup(t, Options{})
	cached := storage.CacheUsers(st, time.Hour, clk.Now) // a TTL far longer than the test
	a := NewAuthenticator(cached, box, Options{CacheTTL: time.Minute, LockoutThreshold: 3,
		LockoutWindow: time.Minute, Now: clk.Now})
	ctx := context.Background()
	if _, err := a.VerifyPassword(ctx, "alice", "right"); err != nil {
		t.Fatal(err)
	}
	// Two failures of three: the refresh must come before a failure is
	// counted, or the new password would lock the account.
	for range 2 {
		if _, err := a.VerifyPassword(ctx, "alice", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	// Behind the cache's back, as another process would.
	newHash, _ := HashPassword("new")
	if err := st.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		u.PasswordHash = newHash
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyPassword(ctx, "alice", "new"); err != nil {
		t.Fatalf("the new password was refused while the cache held the old record: %v", err)
	}
	if _, err := a.VerifyPassword(ctx, "alice", "right"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("the old password still works after the refresh: %v", err)
	}
}

// TestConcurrentMissesShareOneVerification: requests in flight together
// with the same credential, when the cache has none (first use, or the
// entry expired), cost one argon2id, not one each; a wrong password is
// verified (and counted) for each request.
func TestConcurrentMissesShareOneVerification(t *testing.T) {
	a, _, _, clk := setup(t, Options{CacheTTL: time.Minute, LockoutThreshold: 100, LockoutWindow: time.Minute})
	var mu sync.Mutex
	started := 0
	onArgon = func(d int) {
		if d > 0 {
			mu.Lock()
			started++
			mu.Unlock()
		}
	}
	defer func() { onArgon = nil }()
	run := func(password string) (ok, failed int) {
		const n = 8
		errs := make(chan error, n)
		ready := make(chan struct{})
		for range n {
			go func() {
				<-ready
				_, err := a.VerifyPassword(t.Context(), "alice", password)
				errs <- err
			}()
		}
		close(ready)
		for range n {
			if err := <-errs; err == nil {
				ok++
			} else if errors.Is(err, ErrInvalidCredentials) {
				failed++
			} else {
				t.Fatal(err)
			}
		}
		return ok, failed
	}
	for round, tc := range []struct {
		password       string
		wantOK, hashes int
	}{
		{"right", 8, 1},
		{"wrong", 0, 8},
	} {
		started = 0
		clk.t = clk.t.Add(2 * time.Minute) // every cached entry has expired
		ok, failed := run(tc.password)
		if ok != tc.wantOK || ok+failed != 8 {
			t.Fatalf("round %d (%s): %d accepted, %d refused; want %d accepted", round, tc.password, ok, failed, tc.wantOK)
		}
		if started != tc.hashes {
			t.Fatalf("round %d (%s): argon2id ran %d times for 8 concurrent requests, want %d", round, tc.password, started, tc.hashes)
		}
	}
}
