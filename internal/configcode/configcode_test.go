package configcode

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/console"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/identity/ldap"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage"
)

// open opens (creating) a data directory; every one in a test shares the
// master key from AVOUCH_MASTER_KEY.
func open(t *testing.T, dir string) (*config.Config, storage.Storage, *keys.Box) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	st, box, err := server.OpenData(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &cfg, st, box
}

func shareMasterKey(t *testing.T) {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	t.Setenv("AVOUCH_MASTER_KEY", base64.StdEncoding.EncodeToString(k))
}

func certPEM(t *testing.T, cn string) string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// populate fills a store the way the console and the CLI do.
func populate(t *testing.T, st storage.Storage, box *keys.Box) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	upd, realms, err := console.ResidentSettings(console.ResidentIdP{
		HomeRealmIdentifiers: &[]string{"urn:avouch:home", "https://idp.example.test"},
		Issuer:               ptr("https://idp.example.test"), SessionIdleTimeout: ptr("20m"), TokenLifetime: ptr("10m"),
		RefuseUnknownRPs: ptr(true)})
	must(err)
	pol, err := console.PolicySettings(console.Policy{Scenario: "UsernameToken", AllowedRoles: []string{"admin", "sts"},
		AllowedDomains: []string{"PRIMARY", "CORP"}}, []string{"PRIMARY", "CORP"}, false)
	must(err)
	for k, v := range pol {
		upd[k] = v
	}
	must(console.PutRuntime(ctx, st, upd))
	must(console.PutHomeRealms(ctx, st, realms))
	must(console.PutRole(ctx, st, console.Role{Name: "sts", Description: "may request tokens"}))
	must(console.PutRole(ctx, st, console.Role{Name: "auditors"}))
	must(console.PutClaim(ctx, st, console.Claim{URI: "urn:example:department", DisplayName: "Department"}))
	trust := keys.TrustStore{Store: st}
	for _, a := range []string{"payroll", "intranet"} {
		c, _ := keys.ParseCertPEM([]byte(certPEM(t, a+".example")))
		must(trust.Add(ctx, a, c))
	}
	reg := registry.New(st)
	must(reg.Put(ctx, &registry.ServiceProvider{Name: "Payroll", Description: "pays",
		WSTrust: &registry.WSTrust{Endpoints: []string{"https://payroll.example/"}, Patterns: []string{`https://payroll\.example/.*`},
			Token: registry.Token{CertAlias: "payroll", Encrypt: true, TokenType: "saml1.1", Lifetime: registry.Duration(10 * time.Minute),
				AllowedKeyTypes: []string{"Bearer"}}},
		Claims: registry.ClaimConfig{Always: []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"},
			Mapping: map[string]string{"urn:example:department": "http://payroll.example/dept"}}}))
	must(reg.Put(ctx, &registry.ServiceProvider{Name: "Intranet",
		WSTrust: &registry.WSTrust{Endpoints: []string{"https://intranet.example/"}, Token: registry.Token{CertAlias: "intranet"}}}))
	must(server.SaveUserStore(ctx, st, box, server.StoredUserStore{Order: 2, LDAP: ldap.Config{Domain: "corp", URL: "ldap://127.0.0.1:389",
		BindDN: "cn=svc,dc=example,dc=test", BindPassword: "Bind#secret", UserSearchBase: "ou=people,dc=example,dc=test",
		UserFilter: "(&(objectClass=inetOrgPerson)(uid={user}))", UserNameAttribute: "uid",
		GroupSearchBase: "ou=groups,dc=example,dc=test", GroupFilter: "(member={dn})", RoleMapping: map[string]string{"sts-users": "sts"},
		ClaimMapping: map[string]string{"mail": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}, Timeout: 3 * time.Second}}))
	for _, u := range []struct {
		name, pw string
		digest   bool
		roles    []string
		claims   map[string]string
		disabled bool
	}{
		{"admin", "Admin#pw-1", false, []string{"admin"}, nil, false},
		{"alice", "Alice#pw-1", true, []string{"sts"}, map[string]string{"urn:example:department": "finance"}, false},
		{"mallory", "Mallory#pw-1", false, nil, nil, true},
	} {
		hash, err := identity.HashPassword(u.pw)
		must(err)
		su := storage.User{Name: u.name, PasswordHash: hash, Roles: u.roles, Claims: u.claims, Disabled: u.disabled}
		if u.digest {
			su.DigestSecret, err = box.Seal([]byte(u.pw))
			must(err)
		}
		must(st.CreateUser(ctx, su))
	}
}

func ptr[T any](v T) *T { return &v }

func exportBytes(t *testing.T, st storage.Storage) []byte {
	t.Helper()
	d, err := Export(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportThenApplyIntoAnEmptyDataDirReproducesTheConfiguration(t *testing.T) {
	shareMasterKey(t)
	_, src, srcBox := open(t, t.TempDir())
	populate(t, src, srcBox)
	first := exportBytes(t, src)
	for _, secret := range []string{"Bind#secret", "Alice#pw-1", "Admin#pw-1"} {
		if bytes.Contains(first, []byte(secret)) {
			t.Fatalf("the export holds the secret %q in clear", secret)
		}
	}
	doc, err := Parse(first)
	if err != nil {
		t.Fatalf("the export does not parse: %v\n%s", err, first)
	}
	cfg, dst, dstBox := open(t, t.TempDir())
	ctx := context.Background()
	changes, err := Apply(ctx, dst, dstBox, cfg, doc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 {
		t.Fatal("nothing applied")
	}
	second := exportBytes(t, dst)
	if !bytes.Equal(first, second) {
		t.Fatalf("export → apply → export differs:\n--- first\n%s\n--- second\n%s", first, second)
	}
	t.Run("applying again changes nothing", func(t *testing.T) {
		changes, err := Apply(ctx, dst, dstBox, cfg, doc, Options{})
		if err != nil || len(changes) != 0 {
			t.Fatalf("changes %v, %v", changes, err)
		}
	})
	t.Run("the applied users log in with their passwords, PasswordDigest included", func(t *testing.T) {
		a := identity.NewAuthenticator(dst, dstBox, identity.Options{})
		if _, err := a.VerifyPassword(ctx, "alice", "Alice#pw-1"); err != nil {
			t.Fatal(err)
		}
		u, _ := dst.GetUser(ctx, "alice")
		pw, err := dstBox.Open(u.DigestSecret)
		if err != nil || string(pw) != "Alice#pw-1" {
			t.Fatalf("digest secret: %v", err)
		}
	})
	t.Run("the applied user store opens its bind password", func(t *testing.T) {
		stores, err := server.OpenUserStores(ctx, dst, dstBox)
		if err != nil || len(stores) != 1 || stores[0].Domain() != "CORP" {
			t.Fatalf("%v %v", stores, err)
		}
	})
}

func TestApplyIsIdempotentAndPrunes(t *testing.T) {
	shareMasterKey(t)
	dir := t.TempDir()
	cert := certPEM(t, "rp.example")
	if err := os.WriteFile(filepath.Join(dir, "rp.pem"), []byte(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlDoc := `version: 1
resident_idp:
  home_realm_identifiers: [urn:home]
  issuer: urn:issuer
security_policy:
  scenario: UsernameToken
  allowed_roles: [admin]
trust_store:
  - alias: rp
    file: rp.pem
service_providers:
  - name: RP
    wstrust:
      endpoints: [https://rp.example/]
      token: {cert_alias: rp, encrypt: true}
    claims: {}
users:
  - name: bob
    password: Bob#pw-123
    allow_digest: true
    roles: [admin]
`
	doc, err := Parse([]byte(yamlDoc))
	if err != nil {
		t.Fatal(err)
	}
	cfg, st, box := open(t, t.TempDir())
	ctx := context.Background()
	changes, err := Apply(ctx, st, box, cfg, doc, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 7 {
		t.Fatalf("changes: %v", changes)
	}
	u, err := st.GetUser(ctx, "bob")
	if err != nil || len(u.DigestSecret) == 0 {
		t.Fatalf("bob: %+v %v", u, err)
	}
	t.Run("an initial password is not reset by a second apply", func(t *testing.T) {
		if err := st.UpdateUser(ctx, "bob", func(u storage.User) (storage.User, error) {
			u.PasswordHash, _ = identity.HashPassword("Changed#pw-1")
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
		changes, err := Apply(ctx, st, box, cfg, doc, Options{BaseDir: dir})
		if err != nil || len(changes) != 0 {
			t.Fatalf("changes %v, %v", changes, err)
		}
	})
	t.Run("a dry run reports without writing", func(t *testing.T) {
		if err := registry.New(st).Put(ctx, &registry.ServiceProvider{Name: "Extra", WSTrust: &registry.WSTrust{Endpoints: []string{"urn:x"}}}); err != nil {
			t.Fatal(err)
		}
		changes, err := Apply(ctx, st, box, cfg, doc, Options{BaseDir: dir, Prune: true, DryRun: true})
		if err != nil || len(changes) != 1 || changes[0].String() != "deleted service provider Extra" {
			t.Fatalf("changes %v, %v", changes, err)
		}
		if _, err := st.GetServiceProvider(ctx, "Extra"); err != nil {
			t.Fatal("a dry run deleted")
		}
	})
	t.Run("prune deletes what the document does not declare", func(t *testing.T) {
		if err := st.PutSetting(ctx, "config.renew_window", "1h"); err != nil {
			t.Fatal(err)
		}
		changes, err := Apply(ctx, st, box, cfg, doc, Options{BaseDir: dir, Prune: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range changes {
			got = append(got, c.String())
		}
		if strings.Join(got, "; ") != "deleted runtime setting renew_window; deleted service provider Extra" {
			t.Fatalf("changes: %v", got)
		}
	})
}

func TestApplyRefusesInvalidDocumentsNamingThePlace(t *testing.T) {
	shareMasterKey(t)
	cfg, st, box := open(t, t.TempDir())
	otherKey := make([]byte, 32)
	_, _ = rand.Read(otherKey)
	foreign, _ := keys.NewBox(otherKey)
	sealedElsewhere, _ := foreign.Seal([]byte("x"))
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"a token lifetime that is no duration", "version: 1\nresident_idp: {token_lifetime: soon}\n", "resident_idp.token_lifetime"},
		{"a maximum lifetime below the default", "version: 1\nresident_idp: {max_token_lifetime: 1m}\n", "max_token_lifetime"},
		{"an unknown policy domain", "version: 1\nsecurity_policy: {scenario: UsernameToken, allowed_domains: [NOPE]}\n", "security_policy.allowed_domains[0]"},
		{"another scenario", "version: 1\nsecurity_policy: {scenario: Kerberos}\n", "security_policy.scenario"},
		{"a certificate alias nobody declared", "version: 1\nservice_providers:\n  - name: A\n    wstrust: {endpoints: [urn:a], token: {cert_alias: nope}}\n    claims: {}\n", "service_providers[0].wstrust.token.cert_alias"},
		{"a service provider without endpoints", "version: 1\nservice_providers:\n  - name: A\n    wstrust: {endpoints: []}\n    claims: {}\n", "service_providers[0].wstrust.endpoints"},
		{"a certificate that is no PEM", "version: 1\ntrust_store:\n  - alias: a\n    pem: hello\n", "trust_store[0]"},
		{"a password hash that is no argon2id", "version: 1\nusers:\n  - name: u\n    password_hash: md5$abc\n", "users[0].password_hash"},
		{"a new user without a password", "version: 1\nusers:\n  - name: u\n", "users[0]: a new user needs password_hash or password"},
		{"a short initial password", "version: 1\nusers:\n  - name: u\n    password: short\n", "users[0].password"},
		{"a digest secret sealed under another master key", "version: 1\nusers:\n  - name: u\n    password_hash: $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA\n    sealed_digest_secret: " +
			base64.StdEncoding.EncodeToString(sealedElsewhere) + "\n", "users[0].sealed_digest_secret: cannot be opened with this master key"},
		{"a user store bind password sealed under another master key", "version: 1\nuser_stores:\n  - domain: corp\n    type: ldap\n    ldap: {url: 'ldap://h', bind_dn: 'cn=a', user_search_base: 'dc=x', user_filter: '(uid={user})', user_name_attribute: uid}\n    sealed_bind_password: " +
			base64.StdEncoding.EncodeToString(sealedElsewhere) + "\n", "user_stores[0].sealed_bind_password"},
		{"a user declared twice", "version: 1\nusers:\n  - {name: u, password: Long#pw-123}\n  - {name: u, password: Long#pw-123}\n", "users[1]: user \"u\" is declared twice"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			doc, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			changes, err := Apply(context.Background(), st, box, cfg, doc, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q (changes %v)", err, tc.want, changes)
			}
		})
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"an unknown key", "version: 1\nservice_provider: []\n", "field service_provider not found"},
		{"another version", "version: 2\n", "version: 2 is not supported"},
		{"an empty document", "", "empty"},
	} {
		t.Run("does not parse "+tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if users, _ := st.ListUsers(context.Background()); len(users) != 0 {
		t.Fatal("a refused document wrote something")
	}
}
