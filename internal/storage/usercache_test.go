package storage_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// twoViews opens one SQLite file twice: "other" stands for the CLI or a
// second node writing the same database behind the cache's back.
func twoViews(t *testing.T, ttl time.Duration) (cached, other storage.Storage, clk *clock) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "avouch.db")
	a, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	clk = &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return storage.CacheUsers(a, ttl, clk.now), b, clk
}

func setPassword(t *testing.T, st storage.Storage, name, hash string) {
	t.Helper()
	if err := st.UpdateUser(t.Context(), name, func(u storage.User) (storage.User, error) {
		u.PasswordHash = hash
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func hashOf(t *testing.T, ctx context.Context, st storage.Storage, name string) string {
	t.Helper()
	u, err := st.GetUser(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

func TestUserCache(t *testing.T) {
	ttl := time.Second
	tests := []struct {
		name string
		// act changes the user "u" (hash "h1") after it was cached, and
		// returns the hash GetUser must now give.
		act func(t *testing.T, cached, other storage.Storage, clk *clock) string
	}{
		{"a write through the cache is seen at once", func(t *testing.T, cached, _ storage.Storage, _ *clock) string {
			setPassword(t, cached, "u", "h2")
			return "h2"
		}},
		{"another process's write is not seen within the TTL", func(t *testing.T, _, other storage.Storage, clk *clock) string {
			setPassword(t, other, "u", "h2")
			clk.t = clk.t.Add(ttl - time.Millisecond)
			return "h1"
		}},
		{"another process's write is seen once the TTL has passed", func(t *testing.T, _, other storage.Storage, clk *clock) string {
			setPassword(t, other, "u", "h2")
			clk.t = clk.t.Add(ttl)
			return "h2"
		}},
		{"a delete through the cache is seen at once", func(t *testing.T, cached, _ storage.Storage, _ *clock) string {
			if err := cached.DeleteUser(t.Context(), "u"); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cached, other, clk := twoViews(t, ttl)
			if err := other.CreateUser(t.Context(), storage.User{Name: "u", PasswordHash: "h1"}); err != nil {
				t.Fatal(err)
			}
			if got := hashOf(t, t.Context(), cached, "u"); got != "h1" {
				t.Fatalf("first read: %q", got)
			}
			want := tc.act(t, cached, other, clk)
			u, err := cached.GetUser(t.Context(), "u")
			if want == "" {
				if err == nil {
					t.Fatalf("deleted user still served: %+v", u)
				}
				return
			}
			if err != nil || u.PasswordHash != want {
				t.Fatalf("GetUser = %q, %v; want %q", u.PasswordHash, err, want)
			}
		})
	}
}

func TestUserCacheUncachedReadsTheStoreAndRefreshes(t *testing.T) {
	cached, other, _ := twoViews(t, time.Hour)
	if err := other.CreateUser(t.Context(), storage.User{Name: "u", PasswordHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	hashOf(t, t.Context(), cached, "u")
	setPassword(t, other, "u", "h2")
	if got := hashOf(t, storage.Uncached(t.Context()), cached, "u"); got != "h2" {
		t.Fatalf("Uncached read = %q, want h2", got)
	}
	if got := hashOf(t, t.Context(), cached, "u"); got != "h2" {
		t.Fatalf("read after the Uncached one = %q, want the refreshed h2", got)
	}
}

func TestUserCacheHandsOutCopies(t *testing.T) {
	cached, _, _ := twoViews(t, time.Hour)
	if err := cached.CreateUser(t.Context(), storage.User{Name: "u", PasswordHash: "h", Roles: []string{"admin"},
		Claims: map[string]string{"c": "v"}}); err != nil {
		t.Fatal(err)
	}
	u, _ := cached.GetUser(t.Context(), "u")
	u.Roles[0] = "mallory"
	u.Claims["c"] = "changed"
	again, _ := cached.GetUser(t.Context(), "u")
	if again.Roles[0] != "admin" || again.Claims["c"] != "v" {
		t.Fatalf("a caller's change reached the cache: %+v", again)
	}
}

func TestUserCacheOffWithZeroTTL(t *testing.T) {
	cached, other, _ := twoViews(t, 0)
	if err := other.CreateUser(t.Context(), storage.User{Name: "u", PasswordHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	hashOf(t, t.Context(), cached, "u")
	setPassword(t, other, "u", "h2")
	if got := hashOf(t, t.Context(), cached, "u"); got != "h2" {
		t.Fatalf("ttl 0 still cached: %q", got)
	}
}
