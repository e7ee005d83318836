// Package storage defines what avouch persists, one interface per concern, and
// the errors every backend returns. Backends live in sub-packages (sqlite,
// postgres) and must pass the suite in storage/conformance unchanged.
package storage

import (
	"context"
	"errors"
	"time"
)

// Errors every backend returns (wrapped or bare; callers use errors.Is).
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrAlreadyExists = errors.New("storage: already exists")
)

// User is an account of the embedded (PRIMARY) user store.
type User struct {
	Name string // unique, case-sensitive as stored
	// PasswordHash is a PHC-format argon2id string; never logged.
	PasswordHash string
	// DigestSecret is the password sealed under the server's master key, kept only
	// for users allowed to use WS-Security PasswordDigest (which needs the clear
	// password on the server). Nil when digest is not allowed.
	DigestSecret []byte
	Roles        []string          // sorted, unique
	Claims       map[string]string // claim URI -> value
	Disabled     bool
	// Version increases on every update; credential caches key on it so a
	// password or role change invalidates cached verifications at once.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Users is the embedded user store.
type Users interface {
	CreateUser(ctx context.Context, u User) error // ErrAlreadyExists
	GetUser(ctx context.Context, name string) (User, error)
	// UpdateUser applies fn to the stored user atomically and bumps Version.
	// It keeps Name (a rename is an error) and CreatedAt, and sets UpdatedAt.
	// fn must not call the store (a backend may hold its write lock).
	UpdateUser(ctx context.Context, name string, fn func(User) (User, error)) error
	DeleteUser(ctx context.Context, name string) error
	ListUsers(ctx context.Context) ([]User, error) // ordered by name
}

// Replay is the nonce cache of WS-Security freshness checks. It is shared by
// every node on one database, so claiming is a unique insert, never
// read-then-write.
type Replay interface {
	// ClaimNonce records key until expires. now is the caller's clock (the
	// clock that computed expires; tests inject one): a recorded key whose
	// expiry is not after now may be claimed again. It returns ErrAlreadyExists when key
	// is already recorded and not yet expired; exactly one of any number of
	// concurrent claims of one key succeeds. Once expires has passed the key
	// may be claimed again (by then the freshness check rejects the message).
	ClaimNonce(ctx context.Context, key string, now, expires time.Time) error
	// PurgeNonces deletes nonces that expired before now.
	PurgeNonces(ctx context.Context, now time.Time) (int64, error)
}

// LoginFailures backs account lockout.
type LoginFailures interface {
	// RecordLoginFailure stores a failed attempt at `at` and returns the number of
	// failures for user with time > at-window (including this one).
	RecordLoginFailure(ctx context.Context, user string, at time.Time, window time.Duration) (int, error)
	// CountLoginFailures returns the number of failures for user with time > now-window.
	CountLoginFailures(ctx context.Context, user string, now time.Time, window time.Duration) (int, error)
	// ClearLoginFailures forgets user's failures (after a success or an unlock).
	ClearLoginFailures(ctx context.Context, user string) error
}

// Key is a private key with its certificate. PrivateKey is sealed under the
// server's master key by the caller; storage treats it as opaque bytes.
type Key struct {
	ID         string // e.g. "signing-2026-11-22T17:20:00Z"
	Purpose    string // "signing" or "tls"
	PrivateKey []byte // sealed PKCS#8 DER
	CertPEM    []byte
	Active     bool // the key in use for Purpose; at most one active per purpose
	CreatedAt  time.Time
}

// Keys stores the server's own keys, shared by every node on one database.
type Keys interface {
	PutKey(ctx context.Context, k Key) error // insert or replace by ID
	GetKey(ctx context.Context, id string) (Key, error)
	ListKeys(ctx context.Context, purpose string) ([]Key, error) // by CreatedAt
	// ActivateKey makes id the only active key of its purpose.
	ActivateKey(ctx context.Context, id string) error
	DeleteKey(ctx context.Context, id string) error
}

// Settings is a small key/value store for server-wide settings.
type Settings interface {
	GetSetting(ctx context.Context, key string) (string, error) // ErrNotFound
	PutSetting(ctx context.Context, key, value string) error
	ListSettings(ctx context.Context) (map[string]string, error)
	DeleteSetting(ctx context.Context, key string) error // ErrNotFound
}

// TokenState is the lifecycle state of an issued token.
type TokenState string

const (
	TokenActive    TokenState = "active"
	TokenCancelled TokenState = "cancelled"
)

// Token is the record of an issued security token.
type Token struct {
	ID           string // the assertion ID
	Type         string // token type URI
	Subject      string
	RelyingParty string // AppliesTo address, "" when none
	IssuedAt     time.Time
	ExpiresAt    time.Time
	State        TokenState
	// Renewal policy granted at issue: Renewable false = never; RenewAfterExpiry
	// true = may be renewed after ExpiresAt within the renewal window.
	Renewable        bool
	RenewAfterExpiry bool
	// Data is what the core needs to re-issue the token (opaque to storage).
	Data      []byte
	UpdatedAt time.Time
}

// Tokens records issued tokens for renew, validate and cancel.
type Tokens interface {
	CreateToken(ctx context.Context, t Token) error // ErrAlreadyExists
	GetToken(ctx context.Context, id string) (Token, error)
	// UpdateToken applies fn to the stored token atomically; the ID cannot
	// change and UpdatedAt is set. fn must not call the store.
	UpdateToken(ctx context.Context, id string, fn func(Token) (Token, error)) error
	// DeleteTokensExpiredBefore deletes records with ExpiresAt < before.
	DeleteTokensExpiredBefore(ctx context.Context, before time.Time) (int64, error)
}

// AuditEvent is one entry of the audit log. It never holds a secret.
type AuditEvent struct {
	ID     int64 // assigned by the backend
	Time   time.Time
	Actor  string // who (user name, "system")
	Action string // e.g. "token.issue", "user.create"
	Target string // what (token ID, user name, RP)
	Detail string // free text, no secrets
}

// Audit is the append-only audit log.
type Audit interface {
	// AppendAudit appends events in one transaction (a batch is one write).
	AppendAudit(ctx context.Context, events ...AuditEvent) error
	// ListAudit returns the newest events first, at most limit (none when
	// limit <= 0).
	ListAudit(ctx context.Context, limit int) ([]AuditEvent, error)
}

// ServiceProvider is a registered service provider (relying party). Its
// protocol configurations are opaque JSON owned by the registry package, so
// new protocols need no schema change.
type ServiceProvider struct {
	Name      string // unique
	Data      []byte // JSON
	Version   int64  // increases on every put
	UpdatedAt time.Time
}

// ServiceProviders is the registry of service providers.
type ServiceProviders interface {
	// PutServiceProvider inserts or replaces by Name and bumps Version.
	PutServiceProvider(ctx context.Context, sp ServiceProvider) error
	GetServiceProvider(ctx context.Context, name string) (ServiceProvider, error) // ErrNotFound
	ListServiceProviders(ctx context.Context) ([]ServiceProvider, error)          // ordered by Name
	DeleteServiceProvider(ctx context.Context, name string) error                 // ErrNotFound
}

// Certificate is a trust-store entry: a certificate (PEM) under an alias.
type Certificate struct {
	Alias     string // unique
	PEM       []byte
	CreatedAt time.Time
}

// Certificates is the trust store.
type Certificates interface {
	PutCertificate(ctx context.Context, c Certificate) error // insert or replace by Alias
	GetCertificate(ctx context.Context, alias string) (Certificate, error)
	ListCertificates(ctx context.Context) ([]Certificate, error) // ordered by Alias
	DeleteCertificate(ctx context.Context, alias string) error   // ErrNotFound
}

// Session is a browser sign-in session (passive STS, console).
type Session struct {
	ID         string // random, unguessable; the cookie holds it
	User       string // DOMAIN/name
	Data       []byte // JSON owned by the authn package (relying parties signed in to, …)
	CreatedAt  time.Time
	LastSeen   time.Time
	ExpiresAt  time.Time // absolute end (idle timeout or remember-me period)
	RememberMe bool
}

// Sessions stores browser sessions, shared by every node.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error // ErrAlreadyExists
	GetSession(ctx context.Context, id string) (Session, error)
	// UpdateSession applies fn atomically (touch LastSeen/ExpiresAt, add RPs).
	// The ID cannot change and CreatedAt is kept. fn must not call the store.
	UpdateSession(ctx context.Context, id string, fn func(Session) (Session, error)) error
	DeleteSession(ctx context.Context, id string) error // ErrNotFound
	// DeleteSessionsExpiredBefore deletes sessions with ExpiresAt < before.
	DeleteSessionsExpiredBefore(ctx context.Context, before time.Time) (int64, error)
}

// Storage is everything a backend provides.
type Storage interface {
	Users
	Replay
	LoginFailures
	Keys
	Settings
	Tokens
	Audit
	ServiceProviders
	Certificates
	Sessions
	// Close releases the backend.
	Close() error
}
