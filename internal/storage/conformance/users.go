package conformance

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var usersTests = []test{
	{"a created user reads back unchanged", testUserRoundTrip},
	{"creating a user twice fails with ErrAlreadyExists and keeps the first", testUserDuplicate},
	{"user names are case-sensitive", testUserCase},
	{"getting a missing user fails with ErrNotFound", testUserMissing},
	{"roles are stored sorted and without duplicates", testUserRolesNormalized},
	{"nil and empty roles and claims read back empty, never nil", testUserEmptyCollections},
	{"a nil DigestSecret stays nil and an empty one stays empty", testUserDigestNilVsEmpty},
	{"a zero CreatedAt is set to now", testUserCreatedNow},
	{"UpdateUser applies the change, bumps Version and keeps CreatedAt", testUserUpdate},
	{"UpdateUser of a missing user fails with ErrNotFound without calling fn", testUserUpdateMissing},
	{"an error from the UpdateUser function is returned and nothing changes", testUserUpdateFnError},
	{"UpdateUser cannot rename a user", testUserUpdateRename},
	{"concurrent UpdateUser calls never lose an update", testUserUpdateConcurrent},
	{"DeleteUser removes the user and a second delete fails with ErrNotFound", testUserDelete},
	{"ListUsers returns every user ordered by name", testUserList},
}

func sampleUser(name string) storage.User {
	return storage.User{
		Name:         name,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
		DigestSecret: []byte{0, 1, 2, 0xff},
		Roles:        []string{"admin", "ops", "Ünïcødé 角色"},
		Claims: map[string]string{
			"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": name + "@example.org",
			"urn:avouch:名前":        "José Ñúñez — 😀",
			"urn:quotes":           `"'<&>` + "\n\t\\",
			"urn:empty-value":      "",
			"urn:avouch:json-like": `{"a":[1,2]}`,
		},
		CreatedAt: base,
	}
}

func checkUser(t *testing.T, got, want storage.User) {
	t.Helper()
	if got.Name != want.Name || got.PasswordHash != want.PasswordHash || got.Disabled != want.Disabled {
		t.Errorf("user = %q/%q/disabled=%v, want %q/%q/disabled=%v",
			got.Name, got.PasswordHash, got.Disabled, want.Name, want.PasswordHash, want.Disabled)
	}
	if (got.DigestSecret == nil) != (want.DigestSecret == nil) || string(got.DigestSecret) != string(want.DigestSecret) {
		t.Errorf("DigestSecret = %#v, want %#v", got.DigestSecret, want.DigestSecret)
	}
	if !slices.Equal(got.Roles, want.Roles) {
		t.Errorf("Roles = %q, want %q", got.Roles, want.Roles)
	}
	if !maps.Equal(got.Claims, want.Claims) {
		t.Errorf("Claims = %q, want %q", got.Claims, want.Claims)
	}
}

func testUserRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := sampleUser("alice")
	if err := s.CreateUser(ctx, want); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	checkUser(t, got, want)
	if got.Version != 1 {
		t.Errorf("Version = %d, want 1", got.Version)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, base)
	checkTime(t, "UpdatedAt", got.UpdatedAt, base)
}

func testUserDuplicate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	first := sampleUser("alice")
	if err := s.CreateUser(ctx, first); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	second := sampleUser("alice")
	second.PasswordHash = "other"
	if err := s.CreateUser(ctx, second); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second CreateUser = %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	checkUser(t, got, first)
}

func testUserCase(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, name := range []string{"alice", "Alice", "ALICE"} {
		u := sampleUser(name)
		u.PasswordHash = "hash-of-" + name
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%q): %v", name, err)
		}
	}
	for _, name := range []string{"alice", "Alice", "ALICE"} {
		u, err := s.GetUser(ctx, name)
		if err != nil || u.PasswordHash != "hash-of-"+name {
			t.Errorf("GetUser(%q) = %q, %v; want its own record", name, u.PasswordHash, err)
		}
	}
	if _, err := s.GetUser(ctx, "aLiCe"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUser(aLiCe) = %v, want ErrNotFound", err)
	}
}

func testUserMissing(t *testing.T, s storage.Storage) {
	if _, err := s.GetUser(t.Context(), "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUser = %v, want ErrNotFound", err)
	}
}

func testUserRolesNormalized(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := sampleUser("alice")
	u.Roles = []string{"zeta", "admin", "zeta", "Émile", "admin", "B"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	// Byte order: upper case before lower case, UTF-8 multi-byte last.
	if want := []string{"B", "admin", "zeta", "Émile"}; !slices.Equal(got.Roles, want) {
		t.Errorf("Roles = %q, want %q", got.Roles, want)
	}
	err = s.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		u.Roles = []string{"b", "a", "b"}
		return u, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got, _ := s.GetUser(ctx, "alice"); !slices.Equal(got.Roles, []string{"a", "b"}) {
		t.Errorf("Roles after update = %q, want [a b]", got.Roles)
	}
}

func testUserEmptyCollections(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := storage.User{Name: "nil-maps", PasswordHash: "h"}
	b := storage.User{Name: "empty-maps", PasswordHash: "h", Roles: []string{}, Claims: map[string]string{}}
	for _, u := range []storage.User{a, b} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Name, err)
		}
		got, err := s.GetUser(ctx, u.Name)
		if err != nil {
			t.Fatalf("GetUser(%s): %v", u.Name, err)
		}
		if got.Roles == nil || len(got.Roles) != 0 {
			t.Errorf("%s: Roles = %#v, want empty non-nil", u.Name, got.Roles)
		}
		if got.Claims == nil || len(got.Claims) != 0 {
			t.Errorf("%s: Claims = %#v, want empty non-nil", u.Name, got.Claims)
		}
		if got.DigestSecret != nil {
			t.Errorf("%s: DigestSecret = %#v, want nil", u.Name, got.DigestSecret)
		}
	}
}

func testUserDigestNilVsEmpty(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	cases := map[string][]byte{"nil": nil, "empty": {}, "zero-byte": {0}, "bytes": []byte("sealed")}
	for name, digest := range cases {
		u := sampleUser(name)
		u.DigestSecret = digest
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s): %v", name, err)
		}
		got, err := s.GetUser(ctx, name)
		if err != nil {
			t.Fatalf("GetUser(%s): %v", name, err)
		}
		if (got.DigestSecret == nil) != (digest == nil) || string(got.DigestSecret) != string(digest) {
			t.Errorf("%s: DigestSecret = %#v, want %#v", name, got.DigestSecret, digest)
		}
	}
	// Withdrawing digest permission must really clear the secret.
	err := s.UpdateUser(ctx, "bytes", func(u storage.User) (storage.User, error) {
		u.DigestSecret = nil
		return u, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got, _ := s.GetUser(ctx, "bytes"); got.DigestSecret != nil {
		t.Errorf("DigestSecret after clearing = %#v, want nil", got.DigestSecret)
	}
}

func testUserCreatedNow(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{Name: "alice", PasswordHash: "h"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	checkRecent(t, "CreatedAt", got.CreatedAt)
	checkTime(t, "UpdatedAt", got.UpdatedAt, got.CreatedAt)
}

func testUserUpdate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, sampleUser("alice")); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	want := sampleUser("alice")
	want.PasswordHash = "new-hash"
	want.Disabled = true
	want.Roles = []string{"user"}
	want.Claims = map[string]string{"urn:x": "ÿ"}
	var seen storage.User
	err := s.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		seen = u
		u.PasswordHash, u.Disabled, u.Roles, u.Claims = want.PasswordHash, want.Disabled, want.Roles, want.Claims
		u.Version = 999                     // ignored: the backend bumps it
		u.CreatedAt = base.AddDate(1, 0, 0) // ignored: creation time is fixed
		return u, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	checkUser(t, seen, sampleUser("alice"))
	if seen.Version != 1 {
		t.Errorf("fn saw Version %d, want 1", seen.Version)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	checkUser(t, got, want)
	if got.Version != 2 {
		t.Errorf("Version = %d, want 2", got.Version)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, base)
	checkRecent(t, "UpdatedAt", got.UpdatedAt)
}

func testUserUpdateMissing(t *testing.T, s storage.Storage) {
	called := false
	err := s.UpdateUser(t.Context(), "nobody", func(u storage.User) (storage.User, error) {
		called = true
		return u, nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateUser = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("fn was called for a missing user")
	}
}

var errRefused = errors.New("conformance: refused by fn")

func testUserUpdateFnError(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, sampleUser("alice")); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	err := s.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		u.PasswordHash = "should-not-stick"
		return u, errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Errorf("UpdateUser = %v, want the fn's error", err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	checkUser(t, got, sampleUser("alice"))
	if got.Version != 1 {
		t.Errorf("Version = %d, want 1 (unchanged)", got.Version)
	}
}

func testUserUpdateRename(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, sampleUser("alice")); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	err := s.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
		u.Name = "mallory"
		return u, nil
	})
	if err == nil {
		t.Error("UpdateUser renaming the user succeeded, want an error")
	}
	if _, err := s.GetUser(ctx, "mallory"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUser(mallory) = %v, want ErrNotFound", err)
	}
	if got, err := s.GetUser(ctx, "alice"); err != nil || got.Version != 1 {
		t.Errorf("GetUser(alice) = version %d, %v; want unchanged", got.Version, err)
	}
}

func testUserUpdateConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := sampleUser("alice")
	u.Claims = map[string]string{"urn:counter": "0"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.UpdateUser(ctx, "alice", func(u storage.User) (storage.User, error) {
				c, err := strconv.Atoi(u.Claims["urn:counter"])
				if err != nil {
					return u, err
				}
				u.Claims["urn:counter"] = strconv.Itoa(c + 1)
				return u, nil
			})
			if err != nil {
				t.Errorf("UpdateUser: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if c := got.Claims["urn:counter"]; c != strconv.Itoa(n) {
		t.Errorf("counter = %s, want %d (an update was lost)", c, n)
	}
	if got.Version != n+1 {
		t.Errorf("Version = %d, want %d", got.Version, n+1)
	}
}

func testUserDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, name := range []string{"alice", "bob"} {
		if err := s.CreateUser(ctx, sampleUser(name)); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUser after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteUser = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUser(ctx, "bob"); err != nil {
		t.Errorf("GetUser(bob) = %v, want the untouched user", err)
	}
	// The name is free again.
	if err := s.CreateUser(ctx, sampleUser("alice")); err != nil {
		t.Errorf("CreateUser after delete: %v", err)
	}
}

func testUserList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	users, err := s.ListUsers(ctx)
	if err != nil || users == nil || len(users) != 0 {
		t.Fatalf("ListUsers on an empty store = %#v, %v; want empty, non-nil", users, err)
	}
	names := []string{"zoe", "émile", "alice", "Alice", "bob", "alice2", "_svc"}
	for i, name := range names {
		u := sampleUser(name)
		u.CreatedAt = base.Add(time.Duration(i) * time.Hour)
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%q): %v", name, err)
		}
	}
	users, err = s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Name)
		checkUser(t, u, sampleUser(u.Name))
	}
	// Byte order, independent of any database collation.
	want := []string{"Alice", "_svc", "alice", "alice2", "bob", "zoe", "émile"}
	if !slices.Equal(got, want) {
		t.Errorf("ListUsers order = %q, want %q", got, want)
	}
}
