package configcode

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/console"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/identity/ldap"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/keys/keystore"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage"
)

// Options tune Apply.
type Options struct {
	// BaseDir resolves relative certificate file paths (the document's
	// directory).
	BaseDir string
	// Prune deletes what the document could declare but does not: service
	// providers, trusted certificates, users, user stores, catalogue
	// entries, stored runtime settings and home realm identifiers.
	Prune bool
	// DryRun validates and reports without writing.
	DryRun bool
	Now    func() time.Time
}

// Change is one thing Apply did (or would do).
type Change struct {
	Kind   string // "service provider", "user", …
	Name   string
	Action string // "created", "updated", "deleted"
}

func (c Change) String() string { return c.Action + " " + c.Kind + " " + c.Name }

// Apply makes storage hold the document's configuration. Everything is
// validated before anything is written; what is already as declared is not
// touched, so applying a document twice changes nothing the second time.
func Apply(ctx context.Context, st storage.Storage, box *keys.Box, base *config.Config, d *Document, o Options) ([]Change, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &planner{ctx: ctx, st: st, box: box, base: base, d: d, o: o}
	if err := p.load(); err != nil {
		return nil, err
	}
	p.plan()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if o.DryRun {
		return p.changes, nil
	}
	for _, w := range p.writes {
		if err := w(); err != nil {
			return nil, err
		}
	}
	return p.changes, nil
}

type planner struct {
	ctx  context.Context
	st   storage.Storage
	box  *keys.Box
	base *config.Config
	d    *Document
	o    Options

	settings map[string]string
	users    map[string]storage.User
	certs    map[string]storage.Certificate
	sps      map[string]*registry.ServiceProvider
	stores   map[string]server.StoredUserStore
	rawStore map[string]string

	errs    []error
	writes  []func() error
	changes []Change
}

func (p *planner) bad(path string, err error) {
	var fe *console.FieldError
	var rfe *registry.FieldError
	switch {
	case errors.As(err, &fe):
		p.errs = append(p.errs, fmt.Errorf("%s.%s: %s", path, fe.Field, fe.Msg))
	case errors.As(err, &rfe):
		p.errs = append(p.errs, fmt.Errorf("%s.%s: %s", path, rfe.Field, rfe.Msg))
	default:
		p.errs = append(p.errs, fmt.Errorf("%s: %w", path, err))
	}
}

func (p *planner) change(kind, name, action string, w func() error) {
	p.changes = append(p.changes, Change{Kind: kind, Name: name, Action: action})
	p.writes = append(p.writes, w)
}

func (p *planner) load() error {
	var err error
	if p.settings, err = p.st.ListSettings(p.ctx); err != nil {
		return err
	}
	p.users = map[string]storage.User{}
	users, err := p.st.ListUsers(p.ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		p.users[u.Name] = u
	}
	p.certs = map[string]storage.Certificate{}
	certs, err := p.st.ListCertificates(p.ctx)
	if err != nil {
		return err
	}
	for _, c := range certs {
		p.certs[c.Alias] = c
	}
	p.sps = map[string]*registry.ServiceProvider{}
	recs, err := p.st.ListServiceProviders(p.ctx)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		sp, err := registry.Decode(rec)
		if err != nil {
			return err
		}
		p.sps[sp.Name] = sp
	}
	p.stores, p.rawStore = map[string]server.StoredUserStore{}, map[string]string{}
	stores, err := server.ListUserStores(p.ctx, p.st)
	if err != nil {
		return err
	}
	for _, us := range stores {
		p.stores[us.LDAP.Domain] = us
		p.rawStore[us.LDAP.Domain] = p.settings[server.UserStorePrefix+us.LDAP.Domain]
	}
	return nil
}

func (p *planner) plan() {
	p.planCatalogue()
	declaredCerts := p.planTrustStore()
	domains := p.planUserStores()
	p.planRuntime(domains)
	p.planServiceProviders(declaredCerts)
	p.planUsers()
	if p.o.Prune {
		p.planPrune(declaredCerts)
	}
}

// putSetting writes a setting unless it already holds value.
func (p *planner) putSetting(kind, name, key, value string) {
	old, ok := p.settings[key]
	if ok && old == value {
		return
	}
	action := "created"
	if ok {
		action = "updated"
	}
	p.change(kind, name, action, func() error { return p.st.PutSetting(p.ctx, key, value) })
}

func (p *planner) deleteSetting(kind, name, key string) {
	p.change(kind, name, "deleted", func() error {
		err := p.st.DeleteSetting(p.ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	})
}

func (p *planner) planCatalogue() {
	seen := map[string]bool{}
	for i, r := range p.d.Roles {
		path := fmt.Sprintf("roles[%d]", i)
		if err := console.ValidateRoleName("name", r.Name); err != nil {
			p.bad(path, err)
			continue
		}
		if seen[r.Name] {
			p.bad(path, fmt.Errorf("role %q is declared twice", r.Name))
			continue
		}
		seen[r.Name] = true
		b, _ := json.Marshal(map[string]string{"description": r.Description})
		if r.Description == "" {
			b = []byte("{}")
		}
		p.putSetting("role", r.Name, console.RolePrefix+r.Name, string(b))
	}
	seen = map[string]bool{}
	for i, c := range p.d.Claims {
		path := fmt.Sprintf("claims[%d]", i)
		if err := console.ValidateClaimURI("uri", c.URI); err != nil {
			p.bad(path, err)
			continue
		}
		if seen[c.URI] {
			p.bad(path, fmt.Errorf("claim %q is declared twice", c.URI))
			continue
		}
		seen[c.URI] = true
		b, _ := json.Marshal(map[string]string{"display_name": c.DisplayName})
		if c.DisplayName == "" {
			b = []byte("{}")
		}
		p.putSetting("claim", c.URI, console.ClaimPrefix+c.URI, string(b))
	}
}

func (p *planner) certificate(c Certificate) (*x509.Certificate, error) {
	var raw []byte
	switch {
	case c.PEM != "" && c.File != "":
		return nil, errors.New("give pem or file, not both")
	case c.PEM != "":
		raw = []byte(c.PEM)
	case c.File != "":
		path := c.File
		if !filepath.IsAbs(path) && p.o.BaseDir != "" {
			path = filepath.Join(p.o.BaseDir, path)
		}
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("file: %w", err)
		}
	default:
		return nil, errors.New("pem or file is required")
	}
	entries, err := keystore.Load(raw, "", "")
	if err != nil {
		return nil, err
	}
	if len(entries) != 1 {
		return nil, fmt.Errorf("holds %d certificates: give one per alias", len(entries))
	}
	return entries[0].Cert, nil
}

func (p *planner) planTrustStore() map[string]bool {
	declared := map[string]bool{}
	for i, c := range p.d.TrustStore {
		path := fmt.Sprintf("trust_store[%d]", i)
		if err := console.ValidateAlias("alias", c.Alias); err != nil {
			p.bad(path, err)
			continue
		}
		if declared[c.Alias] {
			p.bad(path, fmt.Errorf("alias %q is declared twice", c.Alias))
			continue
		}
		declared[c.Alias] = true
		cert, err := p.certificate(c)
		if err != nil {
			p.bad(path, err)
			continue
		}
		if old, ok := p.certs[c.Alias]; ok {
			if oc, err := keys.ParseCertPEM(old.PEM); err == nil && bytes.Equal(oc.Raw, cert.Raw) {
				continue
			}
			p.change("trusted certificate", c.Alias, "updated", func() error { return (keys.TrustStore{Store: p.st}).Add(p.ctx, c.Alias, cert) })
			continue
		}
		p.change("trusted certificate", c.Alias, "created", func() error { return (keys.TrustStore{Store: p.st}).Add(p.ctx, c.Alias, cert) })
	}
	return declared
}

// planUserStores returns the user-store domains there will be.
func (p *planner) planUserStores() []string {
	domains := []string{identity.PrimaryDomain}
	declared := map[string]bool{}
	for i := range p.d.UserStores {
		us := p.d.UserStores[i]
		path := fmt.Sprintf("user_stores[%d]", i)
		if err := console.ValidateUserStore(&us); err != nil {
			p.bad(path, err)
			continue
		}
		if declared[us.Domain] {
			p.bad(path, fmt.Errorf("domain %s is declared twice", us.Domain))
			continue
		}
		declared[us.Domain] = true
		domains = append(domains, us.Domain)
		cfg, err := us.LDAP.Config(us.Domain)
		if err != nil {
			p.bad(path, err)
			continue
		}
		var sealed []byte
		switch {
		case us.BindPassword != "" && us.SealedBindPassword != "":
			p.bad(path, errors.New("give bind_password or sealed_bind_password, not both"))
			continue
		case us.BindPassword != "":
			cfg.BindPassword = us.BindPassword
		case us.SealedBindPassword != "":
			if sealed, err = base64.StdEncoding.DecodeString(us.SealedBindPassword); err != nil {
				p.bad(path+".sealed_bind_password", errors.New("not base64"))
				continue
			}
			pw, err := p.box.Open(sealed)
			if err != nil {
				p.bad(path+".sealed_bind_password", errors.New("cannot be opened with this master key: use the master key of the database it was exported from (AVOUCH_MASTER_KEY or master.key), or give bind_password"))
				continue
			}
			cfg.BindPassword = string(pw)
		case cfg.BindDN != "":
			old, ok := p.stores[us.Domain]
			if !ok || len(old.SealedBindPassword) == 0 {
				p.bad(path, errors.New("bind_dn needs bind_password (or sealed_bind_password)"))
				continue
			}
			sealed = old.SealedBindPassword
			pw, err := p.box.Open(sealed)
			if err != nil {
				p.bad(path, fmt.Errorf("the stored bind password: %w", err))
				continue
			}
			cfg.BindPassword = string(pw)
		}
		if _, err := ldap.New(cfg); err != nil {
			p.bad(path, err)
			continue
		}
		key := server.UserStorePrefix + us.Domain
		_, existed := p.stores[us.Domain]
		action := map[bool]string{true: "updated", false: "created"}[existed]
		if sealed == nil && cfg.BindPassword != "" {
			// A clear bind password: sealed (afresh) on every apply.
			order := us.Order
			p.change("user store", us.Domain, action, func() error {
				return server.SaveUserStore(p.ctx, p.st, p.box, server.StoredUserStore{Order: order, LDAP: cfg})
			})
			continue
		}
		cfg.BindPassword = ""
		data, err := json.Marshal(server.StoredUserStore{Type: "ldap", Order: us.Order, LDAP: cfg, SealedBindPassword: sealed})
		if err != nil {
			p.bad(path, err)
			continue
		}
		if p.rawStore[us.Domain] == string(data) {
			continue
		}
		p.change("user store", us.Domain, action, func() error { return p.st.PutSetting(p.ctx, key, string(data)) })
	}
	if p.o.Prune {
		for _, dom := range sortedKeys(p.stores) {
			if !declared[dom] {
				p.deleteSetting("user store", dom, server.UserStorePrefix+dom)
			}
		}
	} else {
		for dom := range p.stores {
			if !declared[dom] {
				domains = append(domains, dom)
			}
		}
	}
	return domains
}

func (p *planner) planRuntime(domains []string) {
	updates := map[string]string{}
	section := map[string]string{} // API field -> document section, for errors
	var realms []string
	if r := p.d.ResidentIdP; r != nil {
		upd, rl, err := console.ResidentSettings(*r)
		if err != nil {
			p.bad("resident_idp", err)
			return
		}
		for k, v := range upd {
			updates[k], section[k] = v, "resident_idp"
		}
		realms = rl
	}
	if pol := p.d.SecurityPolicy; pol != nil {
		upd, err := console.PolicySettings(*pol, domains, true)
		if err != nil {
			p.bad("security_policy", err)
			return
		}
		for k, v := range upd {
			updates[k] = v
		}
		section["allowed_roles"], section["allowed_domains"], section["scenario"] = "security_policy", "security_policy", "security_policy"
	}
	for _, k := range sortedKeys(p.d.RuntimeSettings) {
		if !config.IsRuntime(k) {
			p.bad("runtime_settings."+k, fmt.Errorf("not a runtime setting (runtime keys: %s)", strings.Join(config.Runtime, ", ")))
			continue
		}
		if _, dup := updates[k]; dup {
			p.bad("runtime_settings."+k, errors.New("also set in resident_idp or security_policy"))
			continue
		}
		updates[k], section[k] = p.d.RuntimeSettings[k], "runtime_settings"
	}
	stored := console.StoredRuntime(p.settings)
	base := stored
	if p.o.Prune {
		base = map[string]string{}
	}
	if err := console.CheckRuntime(p.base, base, updates); err != nil {
		where := "settings"
		var fe *console.FieldError
		if errors.As(err, &fe) && section[fe.Field] != "" {
			where = section[fe.Field]
		}
		p.bad(where, err)
		return
	}
	for _, k := range sortedKeys(updates) {
		p.putSetting("runtime setting", k, "config."+k, updates[k])
	}
	if realms != nil {
		b, _ := json.Marshal(realms)
		if len(realms) == 0 {
			if _, ok := p.settings[console.HomeRealmSetting]; ok {
				p.deleteSetting("runtime setting", "home_realm_identifiers", console.HomeRealmSetting)
			}
		} else {
			p.putSetting("runtime setting", "home_realm_identifiers", console.HomeRealmSetting, string(b))
		}
	}
	if p.o.Prune {
		for _, k := range sortedKeys(stored) {
			if _, ok := updates[k]; !ok {
				p.deleteSetting("runtime setting", k, "config."+k)
			}
		}
		if _, ok := p.settings[console.HomeRealmSetting]; ok && realms == nil {
			p.deleteSetting("runtime setting", "home_realm_identifiers", console.HomeRealmSetting)
		}
	}
}

func (p *planner) planServiceProviders(declaredCerts map[string]bool) {
	seen := map[string]bool{}
	for i, sp := range p.d.ServiceProviders {
		path := fmt.Sprintf("service_providers[%d]", i)
		if sp == nil {
			p.bad(path, errors.New("empty entry"))
			continue
		}
		if err := sp.Validate(); err != nil {
			p.bad(path, err)
			continue
		}
		if seen[sp.Name] {
			p.bad(path, fmt.Errorf("service provider %q is declared twice", sp.Name))
			continue
		}
		seen[sp.Name] = true
		for field, alias := range certAliases(sp) {
			_, stored := p.certs[alias]
			if !declaredCerts[alias] && (!stored || p.o.Prune) {
				p.bad(path+"."+field, fmt.Errorf("no certificate %q in the trust store: declare it under trust_store", alias))
			}
		}
		if old, ok := p.sps[sp.Name]; ok {
			a, _ := json.Marshal(old)
			b, _ := json.Marshal(sp)
			if bytes.Equal(a, b) {
				continue
			}
		}
		action := map[bool]string{true: "updated", false: "created"}[p.sps[sp.Name] != nil]
		p.change("service provider", sp.Name, action, func() error { return registry.New(p.st).Put(p.ctx, sp) })
	}
	if p.o.Prune {
		for _, name := range sortedKeys(p.sps) {
			if !seen[name] {
				p.change("service provider", name, "deleted", func() error { return p.st.DeleteServiceProvider(p.ctx, name) })
			}
		}
	}
}

func certAliases(sp *registry.ServiceProvider) map[string]string {
	out := map[string]string{}
	if sp.WSTrust != nil && sp.WSTrust.Token.CertAlias != "" {
		out["wstrust.token.cert_alias"] = sp.WSTrust.Token.CertAlias
	}
	if sp.Passive != nil && sp.Passive.Token.CertAlias != "" {
		out["passive.token.cert_alias"] = sp.Passive.Token.CertAlias
	}
	return out
}

func (p *planner) planUsers() {
	seen := map[string]bool{}
	for i, du := range p.d.Users {
		path := fmt.Sprintf("users[%d]", i)
		if err := console.ValidateUserName("name", du.Name); err != nil {
			p.bad(path, err)
			continue
		}
		if seen[du.Name] {
			p.bad(path, fmt.Errorf("user %q is declared twice", du.Name))
			continue
		}
		seen[du.Name] = true
		roles, err := console.CleanRoles("roles", du.Roles)
		if err != nil {
			p.bad(path, err)
			continue
		}
		claims, err := console.CleanClaims("claims", du.Claims)
		if err != nil {
			p.bad(path, err)
			continue
		}
		switch {
		case du.PasswordHash != "" && du.Password != "":
			p.bad(path, errors.New("give password_hash or password, not both"))
			continue
		case du.PasswordHash != "" && !phcArgon2id.MatchString(du.PasswordHash):
			p.bad(path+".password_hash", errors.New("not an argon2id hash in PHC form ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"))
			continue
		case du.Password != "":
			if err := console.ValidatePassword("password", du.Password); err != nil {
				p.bad(path, err)
				continue
			}
		}
		var sealed []byte
		if du.SealedDigestSecret != "" {
			if du.Password != "" {
				p.bad(path, errors.New("sealed_digest_secret goes with password_hash, not with password (use allow_digest)"))
				continue
			}
			if sealed, err = base64.StdEncoding.DecodeString(du.SealedDigestSecret); err != nil {
				p.bad(path+".sealed_digest_secret", errors.New("not base64"))
				continue
			}
			if _, err := p.box.Open(sealed); err != nil {
				p.bad(path+".sealed_digest_secret", errors.New("cannot be opened with this master key: use the master key of the database it was exported from (AVOUCH_MASTER_KEY or master.key), or give password with allow_digest"))
				continue
			}
		}
		if du.AllowDigest && du.Password == "" {
			p.bad(path+".allow_digest", errors.New("needs password (an exported user carries sealed_digest_secret instead)"))
			continue
		}
		old, exists := p.users[du.Name]
		if !exists {
			if du.PasswordHash == "" && du.Password == "" {
				p.bad(path, errors.New("a new user needs password_hash or password"))
				continue
			}
			du := du
			p.change("user", du.Name, "created", func() error {
				now := p.o.Now().UTC()
				u := storage.User{Name: du.Name, PasswordHash: du.PasswordHash, DigestSecret: sealed, Roles: roles, Claims: claims,
					Disabled: du.Disabled, CreatedAt: now, UpdatedAt: now}
				if du.Password != "" {
					var err error
					if u.PasswordHash, err = identity.HashPassword(du.Password); err != nil {
						return err
					}
					if du.AllowDigest {
						if u.DigestSecret, err = p.box.Seal([]byte(du.Password)); err != nil {
							return err
						}
					}
				}
				return p.st.CreateUser(p.ctx, u)
			})
			continue
		}
		want := old
		want.Roles, want.Claims, want.Disabled = roles, claims, du.Disabled
		if du.PasswordHash != "" {
			// A declared hash is the password; the digest secret goes with it.
			want.PasswordHash, want.DigestSecret = du.PasswordHash, sealed
		}
		if sameUser(old, want) {
			continue
		}
		p.change("user", du.Name, "updated", func() error {
			return p.st.UpdateUser(p.ctx, want.Name, func(u storage.User) (storage.User, error) {
				u.Roles, u.Claims, u.Disabled = want.Roles, want.Claims, want.Disabled
				u.PasswordHash, u.DigestSecret = want.PasswordHash, want.DigestSecret
				return u, nil
			})
		})
	}
	if p.o.Prune {
		for _, name := range sortedKeys(p.users) {
			if !seen[name] {
				p.change("user", name, "deleted", func() error {
					_ = p.st.ClearLoginFailures(p.ctx, name)
					return p.st.DeleteUser(p.ctx, name)
				})
			}
		}
	}
}

func sameUser(a, b storage.User) bool {
	norm := func(u storage.User) storage.User {
		if len(u.Roles) == 0 {
			u.Roles = nil
		}
		if len(u.Claims) == 0 {
			u.Claims = nil
		}
		if len(u.DigestSecret) == 0 {
			u.DigestSecret = nil
		}
		return u
	}
	a, b = norm(a), norm(b)
	return a.PasswordHash == b.PasswordHash && bytes.Equal(a.DigestSecret, b.DigestSecret) && a.Disabled == b.Disabled &&
		reflect.DeepEqual(a.Roles, b.Roles) && reflect.DeepEqual(a.Claims, b.Claims)
}

func (p *planner) planPrune(declaredCerts map[string]bool) {
	for _, alias := range sortedKeys(p.certs) {
		if !declaredCerts[alias] {
			p.change("trusted certificate", alias, "deleted", func() error { return p.st.DeleteCertificate(p.ctx, alias) })
		}
	}
	roles, claims := map[string]bool{}, map[string]bool{}
	for _, r := range p.d.Roles {
		roles[r.Name] = true
	}
	for _, c := range p.d.Claims {
		claims[c.URI] = true
	}
	for _, k := range sortedKeys(p.settings) {
		if name, ok := strings.CutPrefix(k, console.RolePrefix); ok && !roles[name] {
			p.deleteSetting("role", name, k)
		}
		if uri, ok := strings.CutPrefix(k, console.ClaimPrefix); ok && !claims[uri] {
			p.deleteSetting("claim", uri, k)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
