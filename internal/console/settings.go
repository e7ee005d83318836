package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/identity/ldap"
	"github.com/avouch/avouch/internal/storage"
)

// FieldError is a validation error naming the offending field, as the API
// reports it: {"error": Msg, "field": Field}.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Settings keys owned by the console (besides the "config.<key>" runtime
// settings, which the server applies on every node).
const (
	settingPrefixConfig = "config."
	// HomeRealmSetting holds the resident IdP's home realm identifiers (a
	// JSON array of strings).
	HomeRealmSetting = "idp.home_realm_identifiers"
	// RolePrefix and ClaimPrefix hold the role and claim catalogues: names
	// offered in the console (a user may hold any role or claim).
	RolePrefix  = "catalog.role."
	ClaimPrefix = "catalog.claim."
	// RetirePrefix + key ID holds the time a rotated-out signing key is
	// deleted (RFC 3339).
	RetirePrefix = "keys.retire."
)

// ScenarioUsernameToken is the one STS security scenario: WS-Security
// UsernameToken over TLS (WSO2's scenario 1).
const ScenarioUsernameToken = "UsernameToken"

// AllDomains lets users of every user-store domain request tokens.
const AllDomains = "ALL-USER-STORE-DOMAINS"

// ResidentIdP is the resident identity provider: the STS's own identity and
// token defaults. In API updates a nil field is left as it is.
type ResidentIdP struct {
	HomeRealmIdentifiers *[]string `json:"home_realm_identifiers,omitempty" yaml:"home_realm_identifiers,omitempty"`
	Issuer               *string   `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	SessionIdleTimeout   *string   `json:"session_idle_timeout,omitempty" yaml:"session_idle_timeout,omitempty"`
	RememberMePeriod     *string   `json:"remember_me_period,omitempty" yaml:"remember_me_period,omitempty"`
	TokenLifetime        *string   `json:"token_lifetime,omitempty" yaml:"token_lifetime,omitempty"`
	MaxTokenLifetime     *string   `json:"max_token_lifetime,omitempty" yaml:"max_token_lifetime,omitempty"`
	RenewWindow          *string   `json:"renew_window,omitempty" yaml:"renew_window,omitempty"`
	DefaultTokenType     *string   `json:"default_token_type,omitempty" yaml:"default_token_type,omitempty"`
	SignatureAlgorithm   *string   `json:"signature_algorithm,omitempty" yaml:"signature_algorithm,omitempty"`
	DigestAlgorithm      *string   `json:"digest_algorithm,omitempty" yaml:"digest_algorithm,omitempty"`
	RefuseUnknownRPs     *bool     `json:"refuse_unknown_relying_parties,omitempty" yaml:"refuse_unknown_relying_parties,omitempty"`
}

// Policy is the STS security policy: who may request tokens.
type Policy struct {
	// Enabled must be true: the STS always authenticates its callers.
	Enabled        *bool    `json:"enabled,omitempty" yaml:"-"`
	Scenario       string   `json:"scenario" yaml:"scenario"`
	AllowedRoles   []string `json:"allowed_roles,omitempty" yaml:"allowed_roles,omitempty"`
	AllowedDomains []string `json:"allowed_domains,omitempty" yaml:"allowed_domains,omitempty"`
}

type runtimeField struct {
	key      string // config key = JSON field name
	duration bool
	get      func(*ResidentIdP) *string
	set      func(*ResidentIdP, string)
}

func strField(key string, dur bool, f func(*ResidentIdP) **string) runtimeField {
	return runtimeField{key: key, duration: dur,
		get: func(r *ResidentIdP) *string { return *f(r) },
		set: func(r *ResidentIdP, v string) { *f(r) = &v }}
}

// residentFields are the runtime settings the resident IdP form edits, in
// form order.
var residentFields = []runtimeField{
	strField("issuer", false, func(r *ResidentIdP) **string { return &r.Issuer }),
	strField("session_idle_timeout", true, func(r *ResidentIdP) **string { return &r.SessionIdleTimeout }),
	strField("remember_me_period", true, func(r *ResidentIdP) **string { return &r.RememberMePeriod }),
	strField("token_lifetime", true, func(r *ResidentIdP) **string { return &r.TokenLifetime }),
	strField("max_token_lifetime", true, func(r *ResidentIdP) **string { return &r.MaxTokenLifetime }),
	strField("renew_window", true, func(r *ResidentIdP) **string { return &r.RenewWindow }),
	strField("default_token_type", false, func(r *ResidentIdP) **string { return &r.DefaultTokenType }),
	strField("signature_algorithm", false, func(r *ResidentIdP) **string { return &r.SignatureAlgorithm }),
	strField("digest_algorithm", false, func(r *ResidentIdP) **string { return &r.DigestAlgorithm }),
}

// ResidentSettings validates the fields set in r one by one and returns the
// runtime settings to store (normalised: durations as Go writes them) and
// the home realm identifiers (nil when not set in r).
func ResidentSettings(r ResidentIdP) (map[string]string, []string, error) {
	out := map[string]string{}
	for _, f := range residentFields {
		p := f.get(&r)
		if p == nil {
			continue
		}
		v := strings.TrimSpace(*p)
		switch {
		case f.duration:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, nil, fieldErr(f.key, "%q is not a positive duration (e.g. 15m, 8h, 336h)", *p)
			}
			v = d.String()
		case f.key == "issuer":
			if v == "" || len(v) > 1024 || strings.ContainsAny(v, "\r\n\t<>\"") {
				return nil, nil, fieldErr(f.key, "must be a non-empty name or URI, at most 1024 characters, without <, > or quotes")
			}
		case f.key == "default_token_type":
			if _, err := config.TokenTypeURI(v); err != nil {
				return nil, nil, fieldErr(f.key, "use saml2.0 or saml1.1")
			}
		case f.key == "signature_algorithm":
			if _, err := config.SignatureAlgorithmURI(v); err != nil {
				return nil, nil, fieldErr(f.key, "use rsa-sha256, rsa-sha512, rsa-sha1 or ecdsa-sha256")
			}
		case f.key == "digest_algorithm":
			if _, err := config.DigestAlgorithmURI(v); err != nil {
				return nil, nil, fieldErr(f.key, "use sha256, sha512 or sha1")
			}
		}
		out[f.key] = v
	}
	if r.RefuseUnknownRPs != nil {
		out["refuse_unknown_relying_parties"] = strconv.FormatBool(*r.RefuseUnknownRPs)
	}
	var realms []string
	if r.HomeRealmIdentifiers != nil {
		realms = []string{}
		seen := map[string]bool{}
		for i, h := range *r.HomeRealmIdentifiers {
			h = strings.TrimSpace(h)
			if h == "" {
				continue
			}
			if len(h) > 512 || strings.ContainsAny(h, " \t\r\n<>\"") {
				return nil, nil, fieldErr(fmt.Sprintf("home_realm_identifiers[%d]", i), "must be a name or URI without spaces, <, > or quotes (at most 512 characters)")
			}
			if seen[h] {
				return nil, nil, fieldErr(fmt.Sprintf("home_realm_identifiers[%d]", i), "%q is listed twice", h)
			}
			seen[h] = true
			realms = append(realms, h)
		}
	}
	return out, realms, nil
}

// scenarioKey is the runtime setting holding the caller authentication
// scenario, when this build has it (config.IsRuntime tells).
const scenarioKey = "security_scenario"

// ScenarioSupported reports whether scenarios other than UsernameToken can
// be configured (the security_scenario runtime setting exists).
func ScenarioSupported() bool { return config.IsRuntime(scenarioKey) }

// Scenarios are the scenarios the policy wizard offers.
func Scenarios() []string {
	if !ScenarioSupported() {
		return []string{ScenarioUsernameToken}
	}
	return []string{ScenarioUsernameToken, "x509", "mutual-tls", "usernametoken+x509", "x509|usernametoken"}
}

// ScenarioName shows a stored scenario ("usernametoken" as UsernameToken).
func ScenarioName(v string) string {
	if v == "" || strings.EqualFold(v, ScenarioUsernameToken) {
		return ScenarioUsernameToken
	}
	return v
}

// PolicySettings validates a security policy and returns its runtime
// settings. domains are the known user-store domains (PRIMARY and the
// secondary stores). With partial (configuration files), an empty scenario
// and absent lists are left as they are; otherwise all are required.
func PolicySettings(p Policy, domains []string, partial bool) (map[string]string, error) {
	if p.Enabled != nil && !*p.Enabled {
		return nil, fieldErr("enabled", "the STS always authenticates its callers: security cannot be disabled")
	}
	out := map[string]string{}
	scenario := strings.TrimSpace(p.Scenario)
	switch {
	case scenario == "" && partial:
	case strings.EqualFold(scenario, ScenarioUsernameToken):
		if ScenarioSupported() {
			out[scenarioKey] = strings.ToLower(ScenarioUsernameToken)
		}
	case !ScenarioSupported() || scenario == "":
		return nil, fieldErr("scenario", "%q is not a supported scenario; the only one is %s", p.Scenario, ScenarioUsernameToken)
	default:
		out[scenarioKey] = strings.ToLower(scenario)
	}
	if p.AllowedRoles != nil || !partial {
		roles, err := cleanList("allowed_roles", p.AllowedRoles, func(r string) string {
			if strings.ContainsAny(r, ",\r\n\t") || len(r) > 128 {
				return "role names must not contain commas or line breaks (at most 128 characters)"
			}
			return ""
		})
		if err != nil {
			return nil, err
		}
		if len(roles) == 0 {
			return nil, fieldErr("allowed_roles", "name at least one role (or * for any authenticated user)")
		}
		out["allowed_roles"] = strings.Join(roles, ",")
	}
	if p.AllowedDomains != nil || !partial {
		known := map[string]bool{AllDomains: true}
		for _, d := range domains {
			known[strings.ToUpper(d)] = true
		}
		doms, err := cleanList("allowed_domains", p.AllowedDomains, func(d string) string {
			if !known[strings.ToUpper(d)] {
				return fmt.Sprintf("%q is not a user-store domain (known: %s)", d, strings.Join(sortedKeys(known), ", "))
			}
			return ""
		})
		if err != nil {
			return nil, err
		}
		if len(doms) == 0 {
			doms = []string{AllDomains}
		}
		for i := range doms {
			doms[i] = strings.ToUpper(doms[i])
		}
		out["allowed_domains"] = strings.Join(doms, ",")
	}
	return out, nil
}

func cleanList(field string, in []string, check func(string) string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for i, v := range in {
		v = strings.TrimSpace(v)
		if v == "" || seen[v] {
			continue
		}
		if msg := check(v); msg != "" {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), "%s", msg)
		}
		seen[v] = true
		out = append(out, v)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckRuntime merges updates into the stored runtime settings and
// validates the result as the server will (config.WithStored). An error
// names the first updated field that does not fit.
func CheckRuntime(base *config.Config, stored, updates map[string]string) error {
	merged := map[string]string{}
	for k, v := range stored {
		merged[k] = v
	}
	for k, v := range updates {
		merged[k] = v
	}
	if _, err := base.WithStored(merged); err == nil {
		return nil
	} else {
		for _, k := range orderedKeys(updates) {
			one := map[string]string{}
			for k2, v := range stored {
				one[k2] = v
			}
			one[k] = updates[k]
			if _, err := base.WithStored(one); err != nil {
				return fieldErr(apiField(k), "%s", err.Error())
			}
		}
		keys := orderedKeys(updates)
		field := "settings"
		if len(keys) > 0 {
			field = keys[0]
		}
		return fieldErr(apiField(field), "%s", err.Error())
	}
}

// apiField names a runtime setting as the API does.
func apiField(key string) string {
	if key == scenarioKey {
		return "scenario"
	}
	return key
}

// orderedKeys lists keys in config.Runtime order.
func orderedKeys(m map[string]string) []string {
	var out []string
	for _, k := range config.Runtime {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// StoredRuntime returns the runtime settings stored in the database.
func StoredRuntime(all map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if key, ok := strings.CutPrefix(k, settingPrefixConfig); ok {
			out[key] = v
		}
	}
	return out
}

// PutRuntime stores runtime settings.
func PutRuntime(ctx context.Context, st storage.Settings, updates map[string]string) error {
	for _, k := range orderedKeys(updates) {
		if err := st.PutSetting(ctx, settingPrefixConfig+k, updates[k]); err != nil {
			return err
		}
	}
	return nil
}

// HomeRealms reads the stored home realm identifiers.
func HomeRealms(all map[string]string) []string {
	out := []string{}
	if v, ok := all[HomeRealmSetting]; ok {
		_ = json.Unmarshal([]byte(v), &out)
	}
	return out
}

// PutHomeRealms stores the home realm identifiers (none deletes the setting).
func PutHomeRealms(ctx context.Context, st storage.Settings, realms []string) error {
	if len(realms) == 0 {
		err := st.DeleteSetting(ctx, HomeRealmSetting)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}
	b, err := json.Marshal(realms)
	if err != nil {
		return err
	}
	return st.PutSetting(ctx, HomeRealmSetting, string(b))
}

// EffectiveResident is the resident IdP as in force (stored settings over
// the node's configuration).
func EffectiveResident(cfg *config.Config, realms []string) ResidentIdP {
	d := func(v config.Duration) *string { s := time.Duration(v).String(); return &s }
	s := func(v string) *string { return &v }
	refuse := cfg.RefuseUnknownRPs
	return ResidentIdP{
		HomeRealmIdentifiers: &realms,
		Issuer:               s(cfg.Issuer),
		SessionIdleTimeout:   d(cfg.SessionIdleTimeout),
		RememberMePeriod:     d(cfg.RememberMePeriod),
		TokenLifetime:        d(cfg.TokenLifetime),
		MaxTokenLifetime:     d(cfg.MaxTokenLifetime),
		RenewWindow:          d(cfg.RenewWindow),
		DefaultTokenType:     s(cfg.DefaultTokenType),
		SignatureAlgorithm:   s(cfg.SignatureAlgorithm),
		DigestAlgorithm:      s(cfg.DigestAlgorithm),
		RefuseUnknownRPs:     &refuse,
	}
}

// StoredResident is the resident IdP as stored (only what was set), for
// export.
func StoredResident(all map[string]string) ResidentIdP {
	stored := StoredRuntime(all)
	var r ResidentIdP
	for _, f := range residentFields {
		if v, ok := stored[f.key]; ok {
			f.set(&r, v)
		}
	}
	if v, ok := stored["refuse_unknown_relying_parties"]; ok {
		b, err := strconv.ParseBool(v)
		if err == nil {
			r.RefuseUnknownRPs = &b
		}
	}
	if realms := HomeRealms(all); len(realms) > 0 {
		r.HomeRealmIdentifiers = &realms
	}
	return r
}

// IsEmpty reports whether nothing is set.
func (r ResidentIdP) IsEmpty() bool {
	for _, f := range residentFields {
		if f.get(&r) != nil {
			return false
		}
	}
	return r.RefuseUnknownRPs == nil && r.HomeRealmIdentifiers == nil
}

// StoredPolicy is the security policy as stored, nil when none is.
func StoredPolicy(all map[string]string) *Policy {
	stored := StoredRuntime(all)
	roles, okR := stored["allowed_roles"]
	doms, okD := stored["allowed_domains"]
	scen, okS := stored[scenarioKey]
	if !okR && !okD && !okS {
		return nil
	}
	p := &Policy{Scenario: ScenarioName(scen)}
	if okR {
		p.AllowedRoles = splitList(roles)
	}
	if okD {
		p.AllowedDomains = splitList(doms)
	}
	return p
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Role is an entry of the role catalogue.
type Role struct {
	Name        string   `json:"name" yaml:"name"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	Members     []string `json:"members,omitempty" yaml:"-"`
	InCatalogue bool     `json:"in_catalogue" yaml:"-"`
}

// Claim is an entry of the claim catalogue.
type Claim struct {
	URI         string `json:"uri" yaml:"uri"`
	DisplayName string `json:"display_name,omitempty" yaml:"display_name,omitempty"`
	BuiltIn     bool   `json:"built_in,omitempty" yaml:"-"`
}

// ValidateRoleName checks a role name (field names the JSON field).
func ValidateRoleName(field, name string) error {
	if name == "" || strings.TrimSpace(name) != name || len(name) > 128 || strings.ContainsAny(name, ",/\r\n\t") || name == "*" {
		return fieldErr(field, "a role name is 1-128 characters without commas, '/', line breaks or surrounding spaces (and not *)")
	}
	return nil
}

// ValidateClaimURI checks a claim URI.
func ValidateClaimURI(field, uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || strings.ContainsAny(uri, " \t\r\n") || len(uri) > 512 {
		return fieldErr(field, "must be an absolute URI such as http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
	}
	return nil
}

type catalogueEntry struct {
	Description string `json:"description,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// CatalogueRoles returns the roles of the catalogue by name.
func CatalogueRoles(all map[string]string) []Role {
	out := []Role{}
	for _, k := range sortedKeys(all) {
		name, ok := strings.CutPrefix(k, RolePrefix)
		if !ok {
			continue
		}
		var e catalogueEntry
		_ = json.Unmarshal([]byte(all[k]), &e)
		out = append(out, Role{Name: name, Description: e.Description, InCatalogue: true})
	}
	return out
}

// PutRole stores a catalogue role.
func PutRole(ctx context.Context, st storage.Settings, r Role) error {
	b, _ := json.Marshal(catalogueEntry{Description: r.Description})
	return st.PutSetting(ctx, RolePrefix+r.Name, string(b))
}

// CatalogueClaims returns the claims of the catalogue by URI.
func CatalogueClaims(all map[string]string) []Claim {
	out := []Claim{}
	for _, k := range sortedKeys(all) {
		uri, ok := strings.CutPrefix(k, ClaimPrefix)
		if !ok {
			continue
		}
		var e catalogueEntry
		_ = json.Unmarshal([]byte(all[k]), &e)
		out = append(out, Claim{URI: uri, DisplayName: e.DisplayName})
	}
	return out
}

// PutClaim stores a catalogue claim.
func PutClaim(ctx context.Context, st storage.Settings, c Claim) error {
	b, _ := json.Marshal(catalogueEntry{DisplayName: c.DisplayName})
	return st.PutSetting(ctx, ClaimPrefix+c.URI, string(b))
}

// UserStore is a secondary user store as the API and configuration files
// show it: snake_case, durations as strings, the bind password never shown.
type UserStore struct {
	Domain string       `json:"domain" yaml:"domain"`
	Type   string       `json:"type" yaml:"type"`
	Order  int          `json:"order" yaml:"order,omitempty"`
	LDAP   LDAPSettings `json:"ldap" yaml:"ldap"`
	// BindPassword is write-only: given to set or change the service
	// account password; empty keeps the stored one.
	BindPassword    string `json:"bind_password,omitempty" yaml:"bind_password,omitempty"`
	HasBindPassword bool   `json:"has_bind_password" yaml:"-"`
	// SealedBindPassword (configuration files only) is the bind password
	// sealed under the master key, base64, as `avouch export` writes it.
	SealedBindPassword string `json:"-" yaml:"sealed_bind_password,omitempty"`
}

// LDAPSettings mirror ldap.Config (without domain and bind password).
type LDAPSettings struct {
	URL                string            `json:"url" yaml:"url"`
	StartTLS           bool              `json:"start_tls,omitempty" yaml:"start_tls,omitempty"`
	CAFile             string            `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
	InsecureSkipVerify bool              `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
	BindDN             string            `json:"bind_dn,omitempty" yaml:"bind_dn,omitempty"`
	UserSearchBase     string            `json:"user_search_base,omitempty" yaml:"user_search_base,omitempty"`
	UserFilter         string            `json:"user_filter,omitempty" yaml:"user_filter,omitempty"`
	UserDNPattern      string            `json:"user_dn_pattern,omitempty" yaml:"user_dn_pattern,omitempty"`
	UserListFilter     string            `json:"user_list_filter,omitempty" yaml:"user_list_filter,omitempty"`
	UserNameAttribute  string            `json:"user_name_attribute,omitempty" yaml:"user_name_attribute,omitempty"`
	GroupSearchBase    string            `json:"group_search_base,omitempty" yaml:"group_search_base,omitempty"`
	GroupFilter        string            `json:"group_filter,omitempty" yaml:"group_filter,omitempty"`
	GroupNameAttribute string            `json:"group_name_attribute,omitempty" yaml:"group_name_attribute,omitempty"`
	RoleMapping        map[string]string `json:"role_mapping,omitempty" yaml:"role_mapping,omitempty"`
	MapUnlistedGroups  bool              `json:"map_unlisted_groups,omitempty" yaml:"map_unlisted_groups,omitempty"`
	ClaimMapping       map[string]string `json:"claim_mapping,omitempty" yaml:"claim_mapping,omitempty"`
	Timeout            string            `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	PoolSize           int               `json:"pool_size,omitempty" yaml:"pool_size,omitempty"`
}

// LDAPSettingsOf converts a stored LDAP configuration.
func LDAPSettingsOf(c ldap.Config) LDAPSettings {
	s := LDAPSettings{URL: c.URL, StartTLS: c.StartTLS, CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify,
		BindDN: c.BindDN, UserSearchBase: c.UserSearchBase, UserFilter: c.UserFilter, UserDNPattern: c.UserDNPattern,
		UserListFilter: c.UserListFilter, UserNameAttribute: c.UserNameAttribute, GroupSearchBase: c.GroupSearchBase,
		GroupFilter: c.GroupFilter, GroupNameAttribute: c.GroupNameAttribute, RoleMapping: c.RoleMapping,
		MapUnlistedGroups: c.MapUnlistedGroups, ClaimMapping: c.ClaimMapping, PoolSize: c.PoolSize}
	if c.Timeout != 0 {
		s.Timeout = c.Timeout.String()
	}
	if len(s.RoleMapping) == 0 {
		s.RoleMapping = nil
	}
	if len(s.ClaimMapping) == 0 {
		s.ClaimMapping = nil
	}
	return s
}

// Config converts the settings back for domain (the bind password is the
// caller's to fill in).
func (s LDAPSettings) Config(domain string) (ldap.Config, error) {
	c := ldap.Config{Domain: strings.ToUpper(strings.TrimSpace(domain)), URL: s.URL, StartTLS: s.StartTLS,
		CAFile: s.CAFile, InsecureSkipVerify: s.InsecureSkipVerify, BindDN: s.BindDN,
		UserSearchBase: s.UserSearchBase, UserFilter: s.UserFilter, UserDNPattern: s.UserDNPattern,
		UserListFilter: s.UserListFilter, UserNameAttribute: s.UserNameAttribute, GroupSearchBase: s.GroupSearchBase,
		GroupFilter: s.GroupFilter, GroupNameAttribute: s.GroupNameAttribute, RoleMapping: s.RoleMapping,
		MapUnlistedGroups: s.MapUnlistedGroups, ClaimMapping: s.ClaimMapping, PoolSize: s.PoolSize}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d < 0 {
			return c, fieldErr("ldap.timeout", "%q is not a duration (e.g. 5s)", s.Timeout)
		}
		c.Timeout = d
	}
	return c, nil
}

// ValidateUserStore checks the parts of a user store the LDAP store does not
// name by field.
func ValidateUserStore(us *UserStore) error {
	us.Domain = strings.ToUpper(strings.TrimSpace(us.Domain))
	if us.Domain == "" || us.Domain == identity.PrimaryDomain || strings.ContainsAny(us.Domain, "/ \t,") || len(us.Domain) > 64 {
		return fieldErr("domain", "a domain is 1-64 characters other than %s, without '/', commas or spaces", identity.PrimaryDomain)
	}
	if us.Type == "" {
		us.Type = "ldap"
	}
	if us.Type != "ldap" {
		return fieldErr("type", "the only user store type is ldap")
	}
	u, err := url.Parse(us.LDAP.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return fieldErr("ldap.url", "must be ldap://host[:port] or ldaps://host[:port]")
	}
	if us.LDAP.UserSearchBase == "" && us.LDAP.UserDNPattern == "" {
		return fieldErr("ldap.user_search_base", "a user search base (or a user DN pattern) is required")
	}
	if !strings.Contains(us.LDAP.UserFilter, "{user}") {
		return fieldErr("ldap.user_filter", "a user filter with {user} is required, e.g. (&(objectClass=inetOrgPerson)(uid={user}))")
	}
	if us.LDAP.UserNameAttribute == "" {
		return fieldErr("ldap.user_name_attribute", "required: the login name attribute (uid; Active Directory: sAMAccountName)")
	}
	if us.Order < 0 || us.Order > 1000 {
		return fieldErr("order", "must be between 0 and 1000")
	}
	return nil
}

// coveredKeys are the runtime settings the resident IdP and the security
// policy hold.
func coveredKeys() map[string]bool {
	out := map[string]bool{"refuse_unknown_relying_parties": true, "allowed_roles": true, "allowed_domains": true, scenarioKey: true}
	for _, f := range residentFields {
		out[f.key] = true
	}
	return out
}

// OtherRuntime returns the stored runtime settings that neither the
// resident IdP nor the security policy holds (settings added later).
func OtherRuntime(stored map[string]string) map[string]string {
	covered := coveredKeys()
	out := map[string]string{}
	for k, v := range stored {
		if !covered[k] && config.IsRuntime(k) {
			out[k] = v
		}
	}
	return out
}
