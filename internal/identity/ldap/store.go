package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/avouch/avouch/internal/identity"
	ldapv3 "github.com/go-ldap/ldap/v3"
)

// Store is an LDAP user store. It is safe for concurrent use.
type Store struct {
	cfg    *settings
	search *pool // bound as the service account; searches only
	binds  *pool // password checks only

	// userBinds counts password checks sent to the server and dials the
	// connections opened; tests assert that refused requests never reach
	// the server and that connections are reused.
	userBinds, dials atomic.Int64
}

var _ identity.UserStore = (*Store)(nil)

// New validates cfg and returns a store. It does not contact the server:
// connections are made on first use, so avouch can start while the
// directory is down and the store starts working when it comes up.
func New(cfg Config) (*Store, error) {
	st, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: st}
	s.search = newPool(s, true)
	s.binds = newPool(s, false)
	return s, nil
}

// Domain is the upper-case login domain.
func (s *Store) Domain() string { return s.cfg.Domain }

// Close closes the pooled connections. Later calls fail with an error
// wrapping identity.ErrStoreUnavailable.
func (s *Store) Close() error {
	s.search.close()
	s.binds.close()
	return nil
}

// Authenticate finds the user with the service account, checks the password
// by binding as the user's DN, then reads groups and claims.
func (s *Store) Authenticate(ctx context.Context, name, password string) (*identity.Principal, error) {
	// An empty password makes a simple bind an "unauthenticated bind"
	// (RFC 4513 section 5.1.2) that many servers answer with success, so it
	// must be refused here, before anything is sent.
	if password == "" || !plausibleName(name) {
		return nil, identity.ErrInvalidCredentials
	}
	entry, err := s.findUser(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := s.checkPassword(ctx, entry.DN, password); err != nil {
		return nil, err
	}
	return s.principal(ctx, name, entry)
}

// Lookup returns the user's principal without checking a password.
func (s *Store) Lookup(ctx context.Context, name string) (*identity.Principal, error) {
	if !plausibleName(name) {
		return nil, identity.ErrInvalidCredentials
	}
	entry, err := s.findUser(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.principal(ctx, name, entry)
}

// ListUsers returns up to limit user names matching UserListFilter, sorted.
func (s *Store) ListUsers(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("ldap store %s: ListUsers limit %d must be positive", s.cfg.Domain, limit)
	}
	req := ldapv3.NewSearchRequest(s.cfg.UserSearchBase, ldapv3.ScopeWholeSubtree, ldapv3.NeverDerefAliases,
		0, s.timeLimit(), false, s.cfg.UserListFilter, []string{s.cfg.UserNameAttribute}, nil)
	entries, err := s.searchPaged(ctx, *req, limit)
	if err != nil && resultCode(err) != ldapv3.LDAPResultSizeLimitExceeded {
		return nil, s.searchFailed("list users", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if v := e.GetEqualFoldAttributeValue(s.cfg.UserNameAttribute); v != "" {
			names = append(names, v)
		}
	}
	slices.Sort(names)
	return names, nil
}

// findUser returns the one entry for name, or ErrInvalidCredentials when
// there is none — or more than one: guessing whose password to check would
// let one user log in as another.
func (s *Store) findUser(ctx context.Context, name string) (*ldapv3.Entry, error) {
	base, scope := s.cfg.UserSearchBase, ldapv3.ScopeWholeSubtree
	if s.cfg.UserDNPattern != "" {
		base, scope = fill(s.cfg.UserDNPattern, escapeDN(name), ""), ldapv3.ScopeBaseObject
	}
	filter := fill(s.cfg.UserFilter, escapeFilter(name), "")
	req := ldapv3.NewSearchRequest(base, scope, ldapv3.NeverDerefAliases,
		2, s.timeLimit(), false, filter, s.cfg.userAttrs, nil)
	res, err := s.searchOnce(ctx, req)
	code := resultCode(err)
	switch {
	case code == ldapv3.LDAPResultSizeLimitExceeded:
		return nil, identity.ErrInvalidCredentials
	case s.cfg.UserDNPattern != "" && (code == ldapv3.LDAPResultNoSuchObject || code == ldapv3.LDAPResultInvalidDNSyntax):
		return nil, identity.ErrInvalidCredentials // no entry at the pattern's DN
	case err != nil:
		return nil, s.searchFailed("find user", err)
	case len(res.Entries) != 1:
		return nil, identity.ErrInvalidCredentials
	}
	return res.Entries[0], nil
}

// checkPassword binds as dn on a bind-pool connection.
func (s *Store) checkPassword(ctx context.Context, dn, password string) error {
	err := s.binds.run(ctx, func(c *conn) error {
		s.userBinds.Add(1)
		return c.do(ctx, s.cfg.Timeout, func() error { return c.l.Bind(dn, password) })
	})
	switch {
	case err == nil:
		return nil
	case !answered(err):
		return err // already wraps ErrStoreUnavailable
	case serverTrouble(resultCode(err)):
		return s.unavailable(fmt.Errorf("bind as %q: %w", dn, err))
	default:
		// invalidCredentials, and what servers answer for locked, disabled
		// or expired accounts (unwillingToPerform, constraintViolation ...).
		return identity.ErrInvalidCredentials
	}
}

// serverTrouble reports result codes that say the server could not do the
// work, as opposed to refusing the credentials.
func serverTrouble(code uint16) bool {
	switch code {
	case ldapv3.LDAPResultOperationsError, ldapv3.LDAPResultProtocolError, ldapv3.LDAPResultTimeLimitExceeded,
		ldapv3.LDAPResultAdminLimitExceeded, ldapv3.LDAPResultBusy, ldapv3.LDAPResultUnavailable, ldapv3.LDAPResultOther:
		return true
	}
	return false
}

// principal builds the user's principal. The name is the directory's
// spelling of UserNameAttribute (LDAP matches names case-insensitively, so
// "ALICE" logs in as "alice"), falling back to the login name.
func (s *Store) principal(ctx context.Context, login string, entry *ldapv3.Entry) (*identity.Principal, error) {
	name := entry.GetEqualFoldAttributeValue(s.cfg.UserNameAttribute)
	if name == "" {
		name = login
	}
	roles, err := s.roles(ctx, entry.DN, name)
	if err != nil {
		return nil, err
	}
	claims := make(map[string]string, len(s.cfg.ClaimMapping))
	for attr, claim := range s.cfg.ClaimMapping {
		if v := entry.GetEqualFoldAttributeValue(attr); v != "" {
			claims[claim] = v
		}
	}
	return &identity.Principal{Name: name, Domain: s.cfg.Domain, Roles: roles, Claims: claims}, nil
}

// roles maps the user's groups to roles, sorted and without duplicates.
func (s *Store) roles(ctx context.Context, dn, name string) ([]string, error) {
	if s.cfg.GroupFilter == "" {
		return nil, nil
	}
	filter := fill(s.cfg.GroupFilter, escapeFilter(name), escapeFilter(dn))
	req := ldapv3.NewSearchRequest(s.cfg.GroupSearchBase, ldapv3.ScopeWholeSubtree, ldapv3.NeverDerefAliases,
		0, s.timeLimit(), false, filter, []string{s.cfg.GroupNameAttribute}, nil)
	groups, err := s.searchPaged(ctx, *req, 0)
	if err != nil {
		// Including a size limit hit: a partial group list could silently
		// drop a role, so no principal rather than a wrong one.
		return nil, s.searchFailed("find groups", err)
	}
	var roles []string
	for _, g := range groups {
		group := g.GetEqualFoldAttributeValue(s.cfg.GroupNameAttribute)
		if role, ok := s.cfg.roles[strings.ToLower(group)]; ok {
			roles = append(roles, role)
		} else if s.cfg.MapUnlistedGroups && group != "" {
			roles = append(roles, group)
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles), nil
}
