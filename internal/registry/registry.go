// Package registry holds the service providers (relying parties) avouch
// issues tokens for: how an AppliesTo or a passive realm resolves to one, and
// the per-RP token settings (type, lifetime, algorithms, NameID format,
// claims, encryption, allowed key types). Service providers live in storage
// as JSON documents; the registry keeps a read-mostly snapshot that every
// node refreshes when storage changes.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// ServiceProvider is one registered relying party.
type ServiceProvider struct {
	Name        string      `json:"name" yaml:"name"`
	Description string      `json:"description,omitempty" yaml:"description,omitempty"`
	WSTrust     *WSTrust    `json:"wstrust,omitempty" yaml:"wstrust,omitempty"`
	Passive     *Passive    `json:"passive,omitempty" yaml:"passive,omitempty"`
	Claims      ClaimConfig `json:"claims" yaml:"claims"`
	// Version is storage's version of this SP (read-only).
	Version int64 `json:"-" yaml:"-"`
}

// WSTrust is the WS-Trust inbound configuration of a service provider.
type WSTrust struct {
	// Endpoints match AppliesTo exactly (after trimming a trailing slash only
	// when both sides have a path: see Match).
	Endpoints []string `json:"endpoints" yaml:"endpoints"`
	// Patterns are explicit regular expressions, matched against the whole
	// AppliesTo (anchored), for RPs with many addresses.
	Patterns []string `json:"patterns,omitempty" yaml:"patterns,omitempty"`
	Token    Token    `json:"token" yaml:"token"`
}

// Passive is the WS-Federation passive configuration (realm and reply URLs).
type Passive struct {
	Realm      string   `json:"realm" yaml:"realm"`
	ReplyURLs  []string `json:"reply_urls" yaml:"reply_urls"` // exact match; the first is the default
	SignOutURL string   `json:"signout_url,omitempty" yaml:"signout_url,omitempty"`
	Token      Token    `json:"token" yaml:"token"`
}

// Token holds per-RP token settings; empty values take the server defaults.
type Token struct {
	TokenType          string   `json:"token_type,omitempty" yaml:"token_type,omitempty"`
	Lifetime           Duration `json:"lifetime,omitempty" yaml:"lifetime,omitempty"`
	SignatureAlgorithm string   `json:"signature_algorithm,omitempty" yaml:"signature_algorithm,omitempty"`
	DigestAlgorithm    string   `json:"digest_algorithm,omitempty" yaml:"digest_algorithm,omitempty"`
	NameIDFormat       string   `json:"nameid_format,omitempty" yaml:"nameid_format,omitempty"`
	// CertAlias names the RP's certificate in the trust store (encryption,
	// holder-of-key proof keys).
	CertAlias string `json:"cert_alias,omitempty" yaml:"cert_alias,omitempty"`
	Encrypt   bool   `json:"encrypt,omitempty" yaml:"encrypt,omitempty"`
	// DataEncryption and KeyTransport choose XML-Enc algorithms (short names:
	// aes256-cbc, aes128-gcm, …; rsa-oaep-mgf1p, rsa-oaep-sha256).
	DataEncryption string `json:"data_encryption,omitempty" yaml:"data_encryption,omitempty"`
	KeyTransport   string `json:"key_transport,omitempty" yaml:"key_transport,omitempty"`
	// AllowedKeyTypes: Bearer, SymmetricKey, PublicKey; empty = all.
	AllowedKeyTypes []string `json:"allowed_key_types,omitempty" yaml:"allowed_key_types,omitempty"`
	// DefaultNamespace writes assertions ADFS-style (<Assertion xmlns="…">).
	DefaultNamespace bool `json:"default_namespace,omitempty" yaml:"default_namespace,omitempty"`
	// Delegation lists who may obtain tokens for this RP acting as
	// (WS-Trust 1.4 ActAs) or on behalf of (OnBehalfOf) whom. No rule: no
	// delegation.
	Delegation []DelegationRule `json:"delegation,omitempty" yaml:"delegation,omitempty"`
}

// DelegationRule lets a caller obtain tokens for the RP about other users.
//
// Caller and Subjects are user patterns: "name" (a user of the PRIMARY
// store), "DOMAIN/name" (domains case-insensitive), where '*' in either part
// matches any run of characters: "svc-*", "LDAP/*", "*/*" (anyone,
// including users of foreign SAML issuers unknown here, whose domain is
// empty).
type DelegationRule struct {
	Caller   string   `json:"caller" yaml:"caller"`
	Subjects []string `json:"subjects" yaml:"subjects"`
	// Kinds restricts the rule to "ActAs" or "OnBehalfOf"; empty allows both.
	Kinds []string `json:"kinds,omitempty" yaml:"kinds,omitempty"`
}

func (r *DelegationRule) validate(field string) error {
	if err := validUserPattern(r.Caller); err != nil {
		return &FieldError{field + ".caller", err.Error()}
	}
	if len(r.Subjects) == 0 {
		return &FieldError{field + ".subjects", "at least one subject pattern is required"}
	}
	for i, s := range r.Subjects {
		if err := validUserPattern(s); err != nil {
			return &FieldError{fmt.Sprintf("%s.subjects[%d]", field, i), err.Error()}
		}
	}
	for _, k := range r.Kinds {
		if k != "ActAs" && k != "OnBehalfOf" {
			return &FieldError{field + ".kinds", "each must be ActAs or OnBehalfOf"}
		}
	}
	return nil
}

func validUserPattern(p string) error {
	if p == "" || strings.TrimSpace(p) != p || strings.ContainsAny(p, " \t\r\n") {
		return errors.New("a user pattern (name, DOMAIN/name, '*' wildcards) without spaces is required")
	}
	if strings.Count(p, "/") > 1 || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return errors.New("a user pattern has at most one '/', between domain and name")
	}
	return nil
}

// Allows reports whether the rule lets caller obtain tokens of the given
// kind about subject. Domains "" (foreign subjects) match only a '*'
// domain pattern; "PRIMARY" also matches a pattern without domain.
func (r *DelegationRule) Allows(kind, callerDomain, callerName, subjectDomain, subjectName string) bool {
	if len(r.Kinds) > 0 {
		ok := false
		for _, k := range r.Kinds {
			ok = ok || k == kind
		}
		if !ok {
			return false
		}
	}
	if !matchUser(r.Caller, callerDomain, callerName) {
		return false
	}
	for _, s := range r.Subjects {
		if matchUser(s, subjectDomain, subjectName) {
			return true
		}
	}
	return false
}

func matchUser(pattern, domain, name string) bool {
	pd, pn := "PRIMARY", pattern
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		pd, pn = pattern[:i], pattern[i+1:]
	}
	if pd != "*" && (domain == "" || !glob(strings.ToUpper(pd), strings.ToUpper(domain))) {
		return false
	}
	return glob(pn, name)
}

// glob matches s against p, where '*' matches any run of characters
// (including none) and everything else matches itself.
func glob(p, s string) bool {
	// Iterative with one backtrack point: linear in practice, no recursion.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// ClaimConfig says which claims an RP gets and under which URIs.
type ClaimConfig struct {
	// Always lists claim URIs (local dialect) included without being asked.
	Always []string `json:"always,omitempty" yaml:"always,omitempty"`
	// Mapping renames local claim URIs to the RP's URIs.
	Mapping map[string]string `json:"mapping,omitempty" yaml:"mapping,omitempty"`
}

// Duration is a time.Duration written "10m" in JSON and YAML.
type Duration time.Duration

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration", s)
	}
	*d = Duration(v)
	return nil
}

// FieldError names the invalid field, for API answers.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$`)

// Validate checks a service provider before it is stored.
func (sp *ServiceProvider) Validate() error {
	if !nameRE.MatchString(sp.Name) {
		return &FieldError{"name", "1-128 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit"}
	}
	if sp.WSTrust != nil {
		if len(sp.WSTrust.Endpoints) == 0 && len(sp.WSTrust.Patterns) == 0 {
			return &FieldError{"wstrust.endpoints", "at least one endpoint address or pattern is required"}
		}
		for i, e := range sp.WSTrust.Endpoints {
			if strings.TrimSpace(e) == "" || strings.TrimSpace(e) != e {
				return &FieldError{fmt.Sprintf("wstrust.endpoints[%d]", i), "must be a non-empty address without surrounding spaces"}
			}
		}
		for i, p := range sp.WSTrust.Patterns {
			if _, err := regexp.Compile("^(?:" + p + ")$"); err != nil {
				return &FieldError{fmt.Sprintf("wstrust.patterns[%d]", i), "not a valid regular expression"}
			}
		}
		if err := sp.WSTrust.Token.validate("wstrust.token"); err != nil {
			return err
		}
	}
	if sp.Passive != nil {
		if strings.TrimSpace(sp.Passive.Realm) == "" {
			return &FieldError{"passive.realm", "required"}
		}
		if len(sp.Passive.ReplyURLs) == 0 {
			return &FieldError{"passive.reply_urls", "at least one reply URL is required"}
		}
		for i, r := range sp.Passive.ReplyURLs {
			u, err := url.Parse(r)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
				return &FieldError{fmt.Sprintf("passive.reply_urls[%d]", i), "must be an absolute http(s) URL without user info or fragment"}
			}
		}
		if err := sp.Passive.Token.validate("passive.token"); err != nil {
			return err
		}
	}
	for k, v := range sp.Claims.Mapping {
		if k == "" || v == "" {
			return &FieldError{"claims.mapping", "keys and values must be claim URIs"}
		}
	}
	return nil
}

func (t *Token) validate(field string) error {
	if t.Lifetime < 0 {
		return &FieldError{field + ".lifetime", "must not be negative"}
	}
	if t.Encrypt && t.CertAlias == "" {
		return &FieldError{field + ".cert_alias", "encryption needs the RP's certificate alias"}
	}
	if _, err := t.EncryptionOptions(); err != nil {
		fe := err.(*FieldError)
		return &FieldError{field + "." + fe.Field, fe.Msg}
	}
	for _, k := range t.AllowedKeyTypes {
		switch k {
		case "Bearer", "SymmetricKey", "PublicKey":
		default:
			return &FieldError{field + ".allowed_key_types", "each must be Bearer, SymmetricKey or PublicKey"}
		}
	}
	for i := range t.Delegation {
		if err := t.Delegation[i].validate(fmt.Sprintf("%s.delegation[%d]", field, i)); err != nil {
			return err
		}
	}
	return nil
}

// Registry resolves AppliesTo addresses and realms to service providers.
type Registry struct {
	store storage.ServiceProviders
	snap  atomic.Pointer[snapshot]
}

type compiled struct {
	sp       *ServiceProvider
	patterns []*regexp.Regexp
}

type snapshot struct {
	list     []*compiled
	byName   map[string]*ServiceProvider
	versions string
}

// New returns a registry over store; call Reload before use.
func New(store storage.ServiceProviders) *Registry {
	r := &Registry{store: store}
	r.snap.Store(&snapshot{byName: map[string]*ServiceProvider{}})
	return r
}

// Decode parses a stored service provider.
func Decode(rec storage.ServiceProvider) (*ServiceProvider, error) {
	var sp ServiceProvider
	if err := json.Unmarshal(rec.Data, &sp); err != nil {
		return nil, fmt.Errorf("service provider %s: %w", rec.Name, err)
	}
	sp.Name, sp.Version = rec.Name, rec.Version
	return &sp, nil
}

// Reload reads every service provider from storage; it reports whether
// anything changed.
func (r *Registry) Reload(ctx context.Context) (bool, error) {
	recs, err := r.store.ListServiceProviders(ctx)
	if err != nil {
		return false, err
	}
	var sig strings.Builder
	for _, rec := range recs {
		fmt.Fprintf(&sig, "%s@%d;", rec.Name, rec.Version)
	}
	if old := r.snap.Load(); old != nil && old.versions == sig.String() && old.list != nil {
		return false, nil
	}
	s := &snapshot{byName: map[string]*ServiceProvider{}, versions: sig.String(), list: []*compiled{}}
	for _, rec := range recs {
		sp, err := Decode(rec)
		if err != nil {
			return false, err
		}
		c := &compiled{sp: sp}
		if sp.WSTrust != nil {
			for _, p := range sp.WSTrust.Patterns {
				re, err := regexp.Compile("^(?:" + p + ")$")
				if err != nil {
					return false, fmt.Errorf("service provider %s: pattern %q: %w", sp.Name, p, err)
				}
				c.patterns = append(c.patterns, re)
			}
		}
		s.list = append(s.list, c)
		s.byName[sp.Name] = sp
	}
	r.snap.Store(s)
	return true, nil
}

// ErrNoMatch: no service provider matches.
var ErrNoMatch = errors.New("registry: no service provider matches")

// ErrAmbiguous: more than one service provider matches exactly.
var ErrAmbiguous = errors.New("registry: AppliesTo matches more than one service provider")

// MatchAppliesTo finds the service provider whose WS-Trust endpoints list
// appliesTo exactly; failing that, the first (by name) whose explicit pattern
// matches. Exact beats pattern, and never a prefix match.
func (r *Registry) MatchAppliesTo(appliesTo string) (*ServiceProvider, error) {
	s := r.snap.Load()
	var exact []*ServiceProvider
	for _, c := range s.list {
		if c.sp.WSTrust == nil {
			continue
		}
		for _, e := range c.sp.WSTrust.Endpoints {
			if e == appliesTo {
				exact = append(exact, c.sp)
				break
			}
		}
	}
	switch len(exact) {
	case 1:
		return exact[0], nil
	case 0:
	default:
		return nil, ErrAmbiguous
	}
	for _, c := range s.list {
		for _, re := range c.patterns {
			if re.MatchString(appliesTo) {
				return c.sp, nil
			}
		}
	}
	return nil, ErrNoMatch
}

// MatchRealm finds the service provider with this passive realm (exact).
func (r *Registry) MatchRealm(realm string) (*ServiceProvider, error) {
	for _, c := range r.snap.Load().list {
		if c.sp.Passive != nil && c.sp.Passive.Realm == realm {
			return c.sp, nil
		}
	}
	return nil, ErrNoMatch
}

// Get returns a service provider by name from the snapshot.
func (r *Registry) Get(name string) (*ServiceProvider, error) {
	if sp, ok := r.snap.Load().byName[name]; ok {
		return sp, nil
	}
	return nil, ErrNoMatch
}

// List returns the snapshot's service providers by name.
func (r *Registry) List() []*ServiceProvider {
	s := r.snap.Load()
	out := make([]*ServiceProvider, 0, len(s.list))
	for _, c := range s.list {
		out = append(out, c.sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Put validates and stores a service provider, then reloads.
func (r *Registry) Put(ctx context.Context, sp *ServiceProvider) error {
	if err := sp.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	if err := r.store.PutServiceProvider(ctx, storage.ServiceProvider{Name: sp.Name, Data: data, UpdatedAt: time.Now().UTC()}); err != nil {
		return err
	}
	_, err = r.Reload(ctx)
	return err
}

// Delete removes a service provider, then reloads.
func (r *Registry) Delete(ctx context.Context, name string) error {
	if err := r.store.DeleteServiceProvider(ctx, name); err != nil {
		return err
	}
	_, err := r.Reload(ctx)
	return err
}
