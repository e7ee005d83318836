package identity

import "context"

// UserStore is a secondary user store (LDAP, Active Directory) serving one
// domain. The embedded PRIMARY store is not a UserStore: it is built into the
// Authenticator because it owns hashes, digest secrets and lockout.
//
// Implementations must return ErrInvalidCredentials for an unknown user and a
// wrong password alike, and an error wrapping ErrStoreUnavailable when the
// backing service cannot be reached (so the front-end can say "user store
// unavailable" and the caller can retry); they must never block longer than
// their configured timeouts, and must recover by themselves when the service
// comes back.
type UserStore interface {
	// Domain is the upper-case domain name users log in with (DOMAIN/name).
	Domain() string
	// Authenticate verifies name's password and returns the principal with
	// roles (from groups) and claims (from mapped attributes). Domain of the
	// returned principal is Domain().
	Authenticate(ctx context.Context, name, password string) (*Principal, error)
	// Lookup returns the principal without a password (for renew, delegation);
	// ErrNotFound-like failures return ErrInvalidCredentials.
	Lookup(ctx context.Context, name string) (*Principal, error)
	// ListUsers lists up to limit user names (for `avouch user list --domain`).
	ListUsers(ctx context.Context, limit int) ([]string, error)
	// Close releases pooled connections.
	Close() error
}
