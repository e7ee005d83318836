// Package ldap is a read-only secondary user store backed by an LDAP
// directory (OpenLDAP, Active Directory, 389-DS): it verifies passwords by
// binding as the user, maps the user's groups to avouch roles and selected
// attributes to claims. It never writes to the directory.
package ldap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/identity"
	ldapv3 "github.com/go-ldap/ldap/v3"
)

// Config describes one LDAP user store.
type Config struct {
	Domain string // upper-case login domain, e.g. "CORP" (users log in as CORP/alice)

	// URL is ldap://host[:port] or ldaps://host[:port]. Plain ldap:// without
	// StartTLS sends passwords in clear text; use it only on loopback or in
	// tests.
	URL                string
	StartTLS           bool   // upgrade ldap:// with the StartTLS extended operation
	CAFile             string // PEM CA bundle to verify the server; default: system roots
	InsecureSkipVerify bool   // do not verify the server certificate (testing only)

	// BindDN and BindPassword are the service account used for searches.
	// Both empty means anonymous searches. BindDN is passed to the server
	// as is (Active Directory also accepts user@domain here).
	BindDN, BindPassword string

	// UserSearchBase and UserFilter find a user: {user} in the filter is
	// replaced by the login name, escaped for filters (RFC 4515), e.g.
	// "(&(objectClass=inetOrgPerson)(uid={user}))".
	UserSearchBase string
	UserFilter     string
	// UserDNPattern, optional, names the user entry directly, e.g.
	// "uid={user},ou=people,dc=example,dc=test" ({user} escaped for DNs,
	// RFC 4514): the entry is then read at that DN (still required to match
	// UserFilter) instead of searched for under UserSearchBase.
	UserDNPattern string
	// UserListFilter selects the users ListUsers returns, e.g.
	// "(objectClass=inetOrgPerson)"; default: UserFilter with {user} = *.
	UserListFilter string
	// UserNameAttribute holds the login name ("uid"; AD: "sAMAccountName").
	// The principal is named by its value as the directory spells it.
	UserNameAttribute string

	// GroupSearchBase and GroupFilter find the user's groups: {dn} is the
	// user's DN and {user} the user's name, both escaped for filters, e.g.
	// "(&(objectClass=groupOfNames)(member={dn}))" or, for posixGroup,
	// "(memberUid={user})". Both empty: users have no roles.
	GroupSearchBase string
	GroupFilter     string
	// GroupNameAttribute names a group (default "cn").
	GroupNameAttribute string

	// RoleMapping maps group names (compared case-insensitively, as LDAP
	// compares cn) to avouch roles. Groups not listed become roles of their
	// own name if MapUnlistedGroups, else are ignored.
	RoleMapping       map[string]string
	MapUnlistedGroups bool

	// ClaimMapping maps LDAP attributes to claim URIs; the first value of
	// each attribute becomes the claim (text attributes only).
	ClaimMapping map[string]string

	// Timeout bounds connecting and each LDAP operation (default 5s). The
	// caller's context can only shorten it.
	Timeout time.Duration
	// PoolSize is the number of connections kept for searches, and again for
	// password checks (default 4).
	PoolSize int
}

const (
	defaultTimeout   = 5 * time.Second
	defaultPoolSize  = 4
	maxNameBytes     = 256 // longer login names are refused before any search
	userPlaceholder  = "{user}"
	dnPlaceholder    = "{dn}"
	defaultGroupAttr = "cn"
)

// settings is a validated Config in the form the store uses.
type settings struct {
	Config
	address   string      // host:port to dial
	ldaps     bool        // TLS from the first byte
	tls       *tls.Config // nil for plain ldap:// without StartTLS
	roles     map[string]string
	userAttrs []string // attributes read from user entries
}

// validate checks cfg and fills in defaults; every problem is reported, each
// naming the store and the field.
func validate(cfg Config) (*settings, error) {
	s := &settings{Config: cfg}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	s.Domain = strings.ToUpper(strings.TrimSpace(cfg.Domain))
	switch {
	case s.Domain == "":
		bad("Domain is empty")
	case s.Domain == identity.PrimaryDomain:
		bad("Domain %s is the embedded store's; choose another name", identity.PrimaryDomain)
	case strings.ContainsAny(s.Domain, "/ \t"):
		bad("Domain %q must not contain '/' or spaces", cfg.Domain)
	}
	if err := s.parseURL(); err != nil {
		errs = append(errs, err)
	}
	if err := s.tlsConfig(); err != nil {
		errs = append(errs, err)
	}
	if (cfg.BindDN == "") != (cfg.BindPassword == "") {
		// A DN without password is an unauthenticated bind, which servers
		// accept as anonymous: the misconfiguration would go unnoticed.
		bad("BindDN and BindPassword must be set together (both empty for anonymous searches)")
	}
	s.checkUsers(bad)
	s.checkGroups(bad)
	s.checkMappings(bad)

	if s.Timeout == 0 {
		s.Timeout = defaultTimeout
	} else if s.Timeout < 0 {
		bad("Timeout %v is negative", cfg.Timeout)
	}
	if s.PoolSize == 0 {
		s.PoolSize = defaultPoolSize
	} else if s.PoolSize < 0 {
		bad("PoolSize %d is negative", cfg.PoolSize)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("ldap user store %q: invalid configuration: %w", cfg.Domain, errors.Join(errs...))
	}
	return s, nil
}

func (s *settings) parseURL() error {
	u, err := url.Parse(s.URL)
	if err != nil || s.URL == "" {
		return fmt.Errorf("URL %q is not ldap://host:port or ldaps://host:port", s.URL)
	}
	port := "389"
	switch strings.ToLower(u.Scheme) {
	case "ldap":
	case "ldaps":
		s.ldaps, port = true, "636"
	default:
		return fmt.Errorf("URL %q: scheme must be ldap or ldaps", s.URL)
	}
	if u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("URL %q must be just scheme://host[:port] (no user, DN, filter or query)", s.URL)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	s.address = net.JoinHostPort(u.Hostname(), port)
	return nil
}

func (s *settings) tlsConfig() error {
	usesTLS := s.ldaps || s.StartTLS
	switch {
	case s.ldaps && s.StartTLS:
		return errors.New("StartTLS is for ldap:// URLs; an ldaps:// connection is TLS already")
	case !usesTLS && s.CAFile != "":
		return errors.New("CAFile is set but the connection is not TLS: use ldaps:// or StartTLS")
	case !usesTLS && s.InsecureSkipVerify:
		return errors.New("InsecureSkipVerify is set but the connection is not TLS: use ldaps:// or StartTLS")
	case !usesTLS:
		return nil
	}
	host, _, _ := net.SplitHostPort(s.address)
	s.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.InsecureSkipVerify}
	if s.CAFile == "" {
		return nil // system roots
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return fmt.Errorf("CAFile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("CAFile %s holds no PEM certificate", s.CAFile)
	}
	s.tls.RootCAs = pool
	return nil
}

func (s *settings) checkUsers(bad func(string, ...any)) {
	if _, err := ldapv3.ParseDN(s.UserSearchBase); err != nil || s.UserSearchBase == "" {
		bad("UserSearchBase %q is not a DN", s.UserSearchBase)
	}
	if !strings.Contains(s.UserFilter, userPlaceholder) {
		bad("UserFilter %q must contain %s", s.UserFilter, userPlaceholder)
	} else if err := checkFilter(s.UserFilter); err != nil {
		bad("UserFilter %q: %w", s.UserFilter, err)
	}
	if s.UserDNPattern != "" {
		if !strings.Contains(s.UserDNPattern, userPlaceholder) {
			bad("UserDNPattern %q must contain %s", s.UserDNPattern, userPlaceholder)
		} else if _, err := ldapv3.ParseDN(fill(s.UserDNPattern, "x", "")); err != nil {
			bad("UserDNPattern %q is not a DN: %w", s.UserDNPattern, err)
		}
	}
	if s.UserListFilter == "" && strings.Contains(s.UserFilter, userPlaceholder) {
		// (uid={user}) becomes the presence filter (uid=*).
		s.UserListFilter = strings.ReplaceAll(s.UserFilter, userPlaceholder, "*")
	}
	if err := checkFilter(s.UserListFilter); err != nil {
		bad("UserListFilter %q: %w", s.UserListFilter, err)
	}
	if !validAttribute(s.UserNameAttribute) {
		bad("UserNameAttribute %q is not an attribute name", s.UserNameAttribute)
	}
}

func (s *settings) checkGroups(bad func(string, ...any)) {
	if s.GroupNameAttribute == "" {
		s.GroupNameAttribute = defaultGroupAttr
	}
	if !validAttribute(s.GroupNameAttribute) {
		bad("GroupNameAttribute %q is not an attribute name", s.GroupNameAttribute)
	}
	if s.GroupSearchBase == "" && s.GroupFilter == "" {
		return
	}
	if _, err := ldapv3.ParseDN(s.GroupSearchBase); err != nil || s.GroupSearchBase == "" {
		bad("GroupSearchBase %q is not a DN (GroupSearchBase and GroupFilter go together)", s.GroupSearchBase)
	}
	if !strings.Contains(s.GroupFilter, dnPlaceholder) && !strings.Contains(s.GroupFilter, userPlaceholder) {
		bad("GroupFilter %q must contain %s or %s", s.GroupFilter, dnPlaceholder, userPlaceholder)
	} else if err := checkFilter(s.GroupFilter); err != nil {
		bad("GroupFilter %q: %w", s.GroupFilter, err)
	}
}

func (s *settings) checkMappings(bad func(string, ...any)) {
	s.roles = make(map[string]string, len(s.RoleMapping))
	for group, role := range s.RoleMapping {
		key := strings.ToLower(group)
		if group == "" || role == "" {
			bad("RoleMapping %q -> %q: group and role must not be empty", group, role)
		} else if prev, dup := s.roles[key]; dup && prev != role {
			bad("RoleMapping maps group %q twice (names differing only in case) to different roles", group)
		}
		s.roles[key] = role
	}
	s.userAttrs = []string{s.UserNameAttribute}
	for attr, claim := range s.ClaimMapping {
		if !validAttribute(attr) || claim == "" {
			bad("ClaimMapping %q -> %q: need an attribute name and a claim URI", attr, claim)
		}
		s.userAttrs = append(s.userAttrs, attr)
	}
}

// checkFilter compiles a filter template with harmless placeholder values.
func checkFilter(template string) error {
	_, err := ldapv3.CompileFilter(fill(template, "x", "x"))
	return err
}

// attributeDescription is an attribute name (letter, then letters, digits,
// hyphens) or a numeric OID, with optional ;options (RFC 4512 section 2.5).
var attributeDescription = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*$`)

func validAttribute(a string) bool { return attributeDescription.MatchString(a) }
