// Package identity authenticates users against user stores and tells the core
// who they are: name, domain, roles and claims. It owns password hashing, the
// verified-credential cache and account lockout.
package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// PrimaryDomain is the embedded user store's domain.
const PrimaryDomain = "PRIMARY"

// Errors. ErrInvalidCredentials covers unknown user, wrong password, disabled
// and locked accounts alike, so a caller cannot tell them apart.
var (
	ErrInvalidCredentials = errors.New("authentication failed")
	// ErrDigestNotAllowed: PasswordDigest needs the clear password on the
	// server, which is kept only for users explicitly allowed to use it. Unknown
	// users get this error too (no enumeration).
	ErrDigestNotAllowed = errors.New("PasswordDigest is not enabled for this account; use PasswordText over TLS")
	ErrUnknownDomain    = errors.New("unknown user store domain")
	ErrStoreUnavailable = errors.New("user store unavailable")
)

// Principal is an authenticated user.
type Principal struct {
	Name   string
	Domain string
	Roles  []string
	Claims map[string]string
}

// HasRole reports whether p has role r ("*" matches any authenticated user).
func (p *Principal) HasRole(r string) bool {
	if r == "*" {
		return true
	}
	for _, x := range p.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// SecretBox seals and opens secrets under the server's master key.
type SecretBox interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Store is what the authenticator needs from storage.
type Store interface {
	storage.Users
	storage.LoginFailures
}

// Options tunes the authenticator.
type Options struct {
	CacheTTL         time.Duration // verified-credential cache lifetime; 0 disables
	LockoutThreshold int           // failures within LockoutWindow that lock; 0 disables
	LockoutWindow    time.Duration
	Now              func() time.Time
}

// Authenticator verifies passwords for the embedded store.
type Authenticator struct {
	store  Store
	box    SecretBox
	opt    Options
	cache  *credCache
	stores atomic.Pointer[[]UserStore] // secondary stores, in search order
}

// SetStores replaces the secondary user stores (LDAP, AD), in the order
// names without a domain are searched after PRIMARY.
func (a *Authenticator) SetStores(stores []UserStore) {
	c := append([]UserStore(nil), stores...)
	a.stores.Store(&c)
}

// Stores returns the secondary user stores.
func (a *Authenticator) Stores() []UserStore {
	if p := a.stores.Load(); p != nil {
		return *p
	}
	return nil
}

func (a *Authenticator) storeFor(domain string) UserStore {
	for _, s := range a.Stores() {
		if strings.EqualFold(s.Domain(), domain) {
			return s
		}
	}
	return nil
}

// NewAuthenticator returns an authenticator over store. box may be nil when
// no user is digest-capable.
func NewAuthenticator(store Store, box SecretBox, opt Options) *Authenticator {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Authenticator{store: store, box: box, opt: opt, cache: newCredCache()}
}

// SplitDomain splits "DOMAIN/name" into its parts; a name without a domain
// belongs to PRIMARY. Domains are case-insensitive, as in WSO2.
func SplitDomain(login string) (domain, name string) {
	if i := strings.IndexByte(login, '/'); i > 0 {
		return strings.ToUpper(login[:i]), login[i+1:]
	}
	return PrimaryDomain, login
}

func (a *Authenticator) lookup(ctx context.Context, login string) (storage.User, string, error) {
	domain, name := SplitDomain(login)
	if domain != PrimaryDomain {
		return storage.User{}, "", ErrUnknownDomain
	}
	u, err := a.store.GetUser(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, name, ErrInvalidCredentials
	}
	if err != nil {
		return storage.User{}, name, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return u, name, nil
}

func principalOf(u storage.User) *Principal {
	claims := make(map[string]string, len(u.Claims))
	for k, v := range u.Claims {
		claims[k] = v
	}
	return &Principal{Name: u.Name, Domain: PrimaryDomain, Roles: append([]string(nil), u.Roles...), Claims: claims}
}

// locked reports whether name has reached the failure threshold.
func (a *Authenticator) locked(ctx context.Context, name string) (bool, error) {
	if a.opt.LockoutThreshold <= 0 {
		return false, nil
	}
	n, err := a.store.CountLoginFailures(ctx, name, a.opt.Now(), a.opt.LockoutWindow)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return n >= a.opt.LockoutThreshold, nil
}

func (a *Authenticator) fail(ctx context.Context, name string) error {
	if a.opt.LockoutThreshold > 0 && name != "" {
		if _, err := a.store.RecordLoginFailure(ctx, name, a.opt.Now(), a.opt.LockoutWindow); err != nil {
			return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
	}
	return ErrInvalidCredentials
}

func (a *Authenticator) succeed(ctx context.Context, name string) {
	if a.opt.LockoutThreshold > 0 {
		// Best effort: a failure to clear only keeps old failures counting
		// until they leave the window.
		_ = a.store.ClearLoginFailures(ctx, name)
	}
}

// VerifyPassword checks a clear-text password (UsernameToken PasswordText, the
// browser login form). A cached verification of the same user, password and
// user version skips argon2id and the lockout check: a cache hit proves the
// caller presented the right password within the TTL.
func (a *Authenticator) VerifyPassword(ctx context.Context, login, password string) (*Principal, error) {
	domain, name := SplitDomain(login)
	explicit := strings.Contains(login, "/")
	if domain != PrimaryDomain {
		st := a.storeFor(domain)
		if st == nil {
			_, _ = CheckPassword(dummyHash, password)
			return nil, ErrUnknownDomain
		}
		return a.verifyExternal(ctx, st, name, password)
	}
	u, name, err := a.lookup(ctx, login)
	if errors.Is(err, ErrInvalidCredentials) && !explicit {
		// A name without a domain that PRIMARY does not know: each store in
		// order. A user found in a store is verified there only (no
		// fall-through on a wrong password, so one domain cannot shadow
		// another).
		for _, st := range a.Stores() {
			if _, err := st.Lookup(ctx, name); err == nil {
				return a.verifyExternal(ctx, st, name, password)
			} else if errors.Is(err, ErrStoreUnavailable) {
				return nil, err
			}
		}
	}
	return a.verifyPrimary(ctx, u, name, err, password)
}

// verifyExternal checks a password against a secondary store. The
// verified-credential cache covers these binds too: a hit returns the
// principal cached with it (roles and claims as of the bind, for at most
// the TTL).
func (a *Authenticator) verifyExternal(ctx context.Context, st UserStore, name, password string) (*Principal, error) {
	if password == "" {
		return nil, ErrInvalidCredentials
	}
	key := a.cache.key(strings.ToUpper(st.Domain()), strings.ToLower(strings.TrimSpace(name)), password, 0)
	now := a.opt.Now()
	if a.opt.CacheTTL > 0 {
		if p := a.cache.principal(key, now); p != nil {
			return p, nil
		}
		verify, err := a.cache.join(ctx, key)
		if err != nil {
			return nil, err
		}
		if verify {
			defer a.cache.release(key)
		} else if p := a.cache.principal(key, a.opt.Now()); p != nil {
			return p, nil
		}
	}
	lockName := strings.ToUpper(st.Domain()) + "/" + strings.ToLower(strings.TrimSpace(name))
	if locked, err := a.locked(ctx, lockName); err != nil {
		return nil, err
	} else if locked {
		return nil, ErrInvalidCredentials
	}
	p, err := st.Authenticate(ctx, name, password)
	if errors.Is(err, ErrInvalidCredentials) {
		return nil, a.fail(ctx, lockName)
	}
	if err != nil {
		return nil, err
	}
	a.succeed(ctx, lockName)
	if a.opt.CacheTTL > 0 {
		a.cache.putPrincipal(key, now.Add(a.opt.CacheTTL), now, p)
	}
	return p, nil
}

// verifyPrimary checks a password against the embedded store, given the
// result of looking the user up there.
func (a *Authenticator) verifyPrimary(ctx context.Context, u storage.User, name string, err error, password string) (*Principal, error) {
	return a.checkPrimary(ctx, u, name, err, password, true)
}

// checkPrimary is verifyPrimary. u may come from the storage user cache and
// predate a change made by another process or node (a new password,
// re-enabling): with mayRefresh, a refusal first reads the stored record
// and, if it changed, checks that one instead — before a failure is
// counted towards lockout. Refusals are rare, so the read costs the hot
// path nothing.
func (a *Authenticator) checkPrimary(ctx context.Context, u storage.User, name string, err error, password string, mayRefresh bool) (*Principal, error) {
	if errors.Is(err, ErrInvalidCredentials) {
		_, _ = CheckPassword(dummyHash, password) // equal work for unknown users
		return nil, a.fail(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	refreshed := func() (storage.User, bool) {
		if !mayRefresh {
			return storage.User{}, false
		}
		fresh, err := a.store.GetUser(storage.Uncached(ctx), u.Name)
		return fresh, err == nil && fresh.Version != u.Version
	}
	if u.Disabled {
		if fresh, ok := refreshed(); ok {
			return a.checkPrimary(ctx, fresh, name, nil, password, false)
		}
		_, _ = CheckPassword(dummyHash, password)
		return nil, ErrInvalidCredentials
	}
	key := a.cache.key(PrimaryDomain, u.Name, password, u.Version)
	now := a.opt.Now()
	if a.opt.CacheTTL > 0 {
		if a.cache.hit(key, now) {
			return principalOf(u), nil
		}
		verify, err := a.cache.join(ctx, key)
		if err != nil {
			return nil, err
		}
		if verify {
			defer a.cache.release(key)
		} else if a.cache.hit(key, a.opt.Now()) {
			return principalOf(u), nil
		}
	}
	if locked, err := a.locked(ctx, u.Name); err != nil {
		return nil, err
	} else if locked {
		_, _ = CheckPassword(dummyHash, password)
		return nil, ErrInvalidCredentials
	}
	ok, err := CheckPassword(u.PasswordHash, password)
	if err != nil || !ok {
		if fresh, ok := refreshed(); ok {
			return a.checkPrimary(ctx, fresh, name, nil, password, false)
		}
		return nil, a.fail(ctx, u.Name)
	}
	a.succeed(ctx, u.Name)
	if a.opt.CacheTTL > 0 {
		a.cache.put(key, now.Add(a.opt.CacheTTL), now)
	}
	return principalOf(u), nil
}

// VerifyDigest checks a UsernameToken PasswordDigest:
// Base64(SHA-1(nonce ‖ created ‖ password)). Freshness of created and nonce
// replay are the caller's job.
func (a *Authenticator) VerifyDigest(ctx context.Context, login, digestB64 string, nonce []byte, created string) (*Principal, error) {
	u, _, err := a.lookup(ctx, login)
	if errors.Is(err, ErrInvalidCredentials) {
		return nil, ErrDigestNotAllowed
	}
	if err != nil {
		return nil, err
	}
	if len(u.DigestSecret) == 0 || a.box == nil {
		return nil, ErrDigestNotAllowed
	}
	if u.Disabled {
		return nil, ErrInvalidCredentials
	}
	if locked, err := a.locked(ctx, u.Name); err != nil {
		return nil, err
	} else if locked {
		return nil, ErrInvalidCredentials
	}
	secret, err := a.box.Open(u.DigestSecret)
	if err != nil {
		return nil, fmt.Errorf("identity: open digest secret: %w", err)
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(digestB64))
	if err != nil {
		return nil, a.fail(ctx, u.Name)
	}
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write(secret)
	if subtle.ConstantTimeCompare(h.Sum(nil), got) != 1 {
		return nil, a.fail(ctx, u.Name)
	}
	a.succeed(ctx, u.Name)
	return principalOf(u), nil
}

// credCache remembers successful verifications by an HMAC of the credential,
// never the password itself. Entries expire after the TTL; a user's Version is
// part of the key, so a password or role change makes old entries unreachable.
type credCache struct {
	secret []byte
	mu     sync.Mutex
	m      map[[32]byte]time.Time
	p      map[[32]byte]*Principal // principals of external stores
	// inflight: keys being verified now, each with a channel closed when
	// that verification ends (see claim).
	inflight map[[32]byte]chan struct{}
}

const credCacheMax = 100_000

func newCredCache() *credCache {
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		panic(err)
	}
	return &credCache{secret: s, m: make(map[[32]byte]time.Time), p: make(map[[32]byte]*Principal),
		inflight: make(map[[32]byte]chan struct{})}
}

// claim is called on a cache miss. It returns nil when the caller is to
// verify k itself, and must call release(k) when done; or, when another
// caller is verifying the same credential at this moment, a channel closed
// when that one ends: the caller waits, then looks in the cache again.
//
// Why: when a cached credential expires, every request in flight for that
// user misses at once, and each ran argon2id (19 MiB, ~90 ms): a soak with
// 16 concurrent clients of one user took 16 hashes and ~250 MB of RSS every
// minute, and its worst latencies. Only identical credentials (same HMAC)
// wait for each other; a failed verification is not shared, so the waiters
// of a wrong password each verify it (and count towards lockout) as before.
func (c *credCache) claim(k [32]byte) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.inflight[k]; ok {
		return ch
	}
	c.inflight[k] = make(chan struct{})
	return nil
}

func (c *credCache) release(k [32]byte) {
	c.mu.Lock()
	ch := c.inflight[k]
	delete(c.inflight, k)
	c.mu.Unlock()
	close(ch)
}

// join is claim for a caller that may wait: it returns true when the
// caller is to verify (and release); false after another caller's
// verification of the same credential ended, or ctx ended.
func (c *credCache) join(ctx context.Context, k [32]byte) (verify bool, err error) {
	wait := c.claim(k)
	if wait == nil {
		return true, nil
	}
	select {
	case <-wait:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (c *credCache) key(domain, name, password string, version int64) [32]byte {
	h := hmac.New(sha256.New, c.secret)
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00", domain, name, version)
	h.Write([]byte(password))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

func (c *credCache) hit(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[k]
	if ok && now.Before(exp) {
		return true
	}
	if ok {
		delete(c.m, k)
		delete(c.p, k)
	}
	return false
}

func (c *credCache) principal(k [32]byte, now time.Time) *Principal {
	if !c.hit(k, now) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.p[k]
	if p == nil {
		return nil
	}
	cp := *p
	cp.Roles = append([]string(nil), p.Roles...)
	cp.Claims = make(map[string]string, len(p.Claims))
	for k, v := range p.Claims {
		cp.Claims[k] = v
	}
	return &cp
}

func (c *credCache) putPrincipal(k [32]byte, exp, now time.Time, p *Principal) {
	c.put(k, exp, now)
	c.mu.Lock()
	c.p[k] = p
	c.mu.Unlock()
}

func (c *credCache) put(k [32]byte, exp, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= credCacheMax {
		for kk, e := range c.m {
			if now.After(e) || len(c.m) >= credCacheMax {
				delete(c.m, kk)
				delete(c.p, kk)
			}
		}
	}
	c.m[k] = exp
}
