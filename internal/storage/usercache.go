package storage

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// CacheUsers returns st with GetUser answered from memory for up to ttl.
//
// Why: every UsernameToken request looks its user up, and on SQLite every
// token issued before it has changed the file, so that read goes back to
// the file each time (a few dozen microseconds, a tenth of an ECDSA
// issuance). Changes made through the returned Storage (the admin API, the
// console, lockout) drop the cached record at once. Changes made by another
// process or node on the same database (the CLI, a second server on
// PostgreSQL) are seen within ttl: that is the bound on how long a disabled
// user or an old password can still be served from cache. Callers that
// must see the stored record (a password that did not verify against a
// cached record) pass Uncached(ctx).
//
// Only found users are cached; unknown names always go to the backend.
// Returned users are copies, so callers may change them.
func CacheUsers(st Storage, ttl time.Duration, now func() time.Time) Storage {
	if ttl <= 0 {
		return st
	}
	if now == nil {
		now = time.Now
	}
	return &userCache{Storage: st, ttl: ttl, now: now, m: map[string]cachedUser{}}
}

// Uncached returns a context whose GetUser calls bypass a CacheUsers cache
// (and refresh it).
func Uncached(ctx context.Context) context.Context {
	return context.WithValue(ctx, uncachedKey{}, true)
}

type uncachedKey struct{}

// maxCachedUsers bounds the cache: past it, expired entries are swept, and
// if that is not enough the cache starts over.
const maxCachedUsers = 10000

type cachedUser struct {
	u     User
	until time.Time
}

type userCache struct {
	Storage
	ttl time.Duration
	now func() time.Time

	mu  sync.RWMutex
	m   map[string]cachedUser
	gen uint64 // bumped by every write through this Storage, under mu
}

// copyUser keeps the cached record private: Clone keeps nil apart from
// empty (DigestSecret's nil means "digest not allowed").
func copyUser(u User) User {
	u.Roles = slices.Clone(u.Roles)
	u.Claims = maps.Clone(u.Claims)
	u.DigestSecret = bytes.Clone(u.DigestSecret)
	return u
}

func (c *userCache) GetUser(ctx context.Context, name string) (User, error) {
	now := c.now()
	if ctx.Value(uncachedKey{}) == nil {
		c.mu.RLock()
		e, ok := c.m[name]
		c.mu.RUnlock()
		if ok && now.Before(e.until) {
			return copyUser(e.u), nil
		}
	}
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	u, err := c.Storage.GetUser(ctx, name)
	if err != nil {
		return u, err
	}
	c.mu.Lock()
	// A write through this Storage since the read began may have made u
	// stale: keep it out of the cache then.
	if c.gen == gen {
		if len(c.m) >= maxCachedUsers {
			c.sweep(now)
		}
		c.m[name] = cachedUser{u: copyUser(u), until: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return u, nil
}

// sweep drops expired entries, or all of them when none has expired. c.mu
// is held.
func (c *userCache) sweep(now time.Time) {
	for k, e := range c.m {
		if !now.Before(e.until) {
			delete(c.m, k)
		}
	}
	if len(c.m) >= maxCachedUsers {
		clear(c.m)
	}
}

// forget drops name after a write (whatever its outcome: a failed write may
// still have committed).
func (c *userCache) forget(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.gen++
	c.mu.Unlock()
}

func (c *userCache) CreateUser(ctx context.Context, u User) error {
	defer c.forget(u.Name)
	return c.Storage.CreateUser(ctx, u)
}

func (c *userCache) UpdateUser(ctx context.Context, name string, fn func(User) (User, error)) error {
	defer c.forget(name)
	return c.Storage.UpdateUser(ctx, name, fn)
}

func (c *userCache) DeleteUser(ctx context.Context, name string) error {
	defer c.forget(name)
	return c.Storage.DeleteUser(ctx, name)
}
