package ldap

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/testutil/slapdtest"
)

// Claim URIs the tests map attributes to.
const (
	claimEmail     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimGivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	claimSurname   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
)

// startServer runs slapd with testdata/users.ldif. SizeLimit 3 is below the
// number of users, so listing them only works by paging, as against a large
// Active Directory.
func startServer(t *testing.T, tls bool) *slapdtest.Server {
	t.Helper()
	return slapdtest.New(t, slapdtest.Options{LDIF: []string{"testdata/users.ldif"}, TLS: tls, SizeLimit: 3})
}

// testConfig is the store configuration matching testdata/users.ldif.
func testConfig(url string) Config {
	return Config{
		Domain:             "corp",
		URL:                url,
		BindDN:             "cn=sts-reader,ou=services,dc=example,dc=test",
		BindPassword:       "Reader#123",
		UserSearchBase:     "ou=people,dc=example,dc=test",
		UserFilter:         "(&(objectClass=inetOrgPerson)(uid={user}))",
		UserListFilter:     "(objectClass=inetOrgPerson)",
		UserNameAttribute:  "uid",
		GroupSearchBase:    "ou=groups,dc=example,dc=test",
		GroupFilter:        "(&(objectClass=groupOfNames)(member={dn}))",
		GroupNameAttribute: "cn",
		RoleMapping:        map[string]string{"sts-admins": "admin"},
		MapUnlistedGroups:  true,
		ClaimMapping: map[string]string{
			"mail":      claimEmail,
			"givenName": claimGivenName,
			"sn":        claimSurname,
		},
		Timeout:  time.Second,
		PoolSize: 4,
	}
}

func newStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// closedPortURL is an ldap:// URL where nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ldap://" + addr
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantRefused fails unless err is ErrInvalidCredentials and not a store
// failure: a refused login must look the same whatever the reason.
func wantRefused(t *testing.T, p *identity.Principal, err error) {
	t.Helper()
	if !errors.Is(err, identity.ErrInvalidCredentials) || errors.Is(err, identity.ErrStoreUnavailable) {
		t.Fatalf("got principal %+v, error %v; want ErrInvalidCredentials", p, err)
	}
	if p != nil {
		t.Fatalf("refused login returned principal %+v", p)
	}
}

func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, identity.ErrStoreUnavailable) {
		t.Fatalf("error %v; want one wrapping ErrStoreUnavailable", err)
	}
	if errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("error %v wraps ErrInvalidCredentials too", err)
	}
}

func wantPrincipal(t *testing.T, p *identity.Principal, err error, name string, roles []string, claims map[string]string) {
	t.Helper()
	if err != nil {
		t.Fatalf("error %v; want principal %s", err, name)
	}
	if p.Name != name || p.Domain != "CORP" {
		t.Errorf("principal %s/%s, want CORP/%s", p.Domain, p.Name, name)
	}
	if !slices.Equal(p.Roles, roles) {
		t.Errorf("roles %q, want %q", p.Roles, roles)
	}
	for k, v := range claims {
		if p.Claims[k] != v {
			t.Errorf("claim %s = %q, want %q", k, p.Claims[k], v)
		}
	}
	if claims != nil && len(p.Claims) != len(claims) {
		t.Errorf("claims %v, want exactly %v", p.Claims, claims)
	}
}
