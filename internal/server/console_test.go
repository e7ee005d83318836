package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/console"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/testutil"
)

// apiReply is a decoded admin API answer.
type apiReply struct {
	Status int
	Header http.Header
	Raw    string
	JSON   map[string]any
}

func (r apiReply) str(key string) string { s, _ := r.JSON[key].(string); return s }

// apiClient calls the admin API with an API token, or with a console session
// (cookie jar + CSRF token) after login.
type apiClient struct {
	ts    *testServer
	token string
	hc    *http.Client
	csrf  string
}

func (ts *testServer) tokenClient(t testing.TB) *apiClient {
	t.Helper()
	tok, _, err := console.CreateAPIToken(context.Background(), ts.Store, "tests", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{ts: ts, token: tok, hc: http.DefaultClient}
}

func (ts *testServer) sessionClient(t testing.TB, user, password string) (*apiClient, apiReply) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &apiClient{ts: ts, hc: &http.Client{Jar: jar}}
	r := c.do(t, "POST", "/api/session", map[string]string{"username": user, "password": password})
	c.csrf = r.str("csrf_token")
	return c, r
}

func (c *apiClient) do(t testing.TB, method, path string, body any) apiReply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiReply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
}

func (c *apiClient) must(t testing.TB, want int, method, path string, body any) apiReply {
	t.Helper()
	r := c.do(t, method, path, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Raw)
	}
	return r
}

// expectFieldError checks a 400 answer naming field.
func expectFieldError(t *testing.T, r apiReply, field string) {
	t.Helper()
	if r.Status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", r.Status, r.Raw)
	}
	if got := r.str("field"); got != field {
		t.Fatalf("field %q, want %q: %s", got, field, r.Raw)
	}
	if r.str("error") == "" {
		t.Fatalf("no error message: %s", r.Raw)
	}
	if strings.Contains(r.Raw, "goroutine") || strings.Contains(r.Raw, ".go:") {
		t.Fatalf("answer leaks internals: %s", r.Raw)
	}
}

// concrete fills a route pattern's wildcards.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = regexp.MustCompile(`\{[a-z]+(\.\.\.)?\}`).ReplaceAllString(path, "x")
	return method, path
}

func TestEveryAdminAPIRouteRefusesMissingOrWrongCredentials(t *testing.T) {
	ts := newTestServer(t, nil)
	routes := ts.Console().Routes()
	for _, cred := range []struct{ name, header string }{
		{"without credentials", ""},
		{"with an unknown API token", "Bearer avouch_0123456789ab.bogus"},
		{"with a malformed bearer token", "Bearer not-a-token"},
		{"with HTTP Basic credentials", "Basic YWRtaW46YWRtaW4tcHc="},
	} {
		for _, rt := range routes {
			if rt == "GET /api/openapi.json" || rt == "POST /api/session" {
				continue
			}
			method, path := concrete(rt)
			t.Run(rt+" answers 401 "+cred.name, func(t *testing.T) {
				req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/json")
				if cred.header != "" {
					req.Header.Set("Authorization", cred.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
				}
				var e map[string]any
				if json.Unmarshal(body, &e) != nil || e["error"] == "" {
					t.Fatalf("not a JSON error: %s", body)
				}
			})
		}
	}
}

func TestEveryAdminAPIRouteRefusesASessionWithoutTheAdminRole(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "ops", "Ops#pw-123", false, []string{"admin"}, nil)
	c, r := ts.sessionClient(t, "ops", "Ops#pw-123")
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Raw)
	}
	// The role is taken away after login: it takes effect at once.
	if err := ts.Store.UpdateUser(context.Background(), "ops", func(u storage.User) (storage.User, error) {
		u.Roles = []string{"auditor"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, rt := range ts.Console().Routes() {
		if rt == "GET /api/openapi.json" || rt == "POST /api/session" {
			continue
		}
		method, path := concrete(rt)
		t.Run(rt+" answers 403", func(t *testing.T) {
			if r := c.do(t, method, path, map[string]any{}); r.Status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.Status, r.Raw)
			}
		})
	}
}

func TestConsoleLogin(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "reader", "Reader#pw1", false, []string{"everyone"}, nil)
	for _, tc := range []struct {
		name       string
		body       any
		ctype      string
		wantStatus int
		wantField  string
	}{
		{"a wrong password is refused with 401", map[string]string{"username": "admin", "password": "nope"}, "", 401, ""},
		{"an unknown user is refused with 401", map[string]string{"username": "ghost", "password": "nope"}, "", 401, ""},
		{"a user without the admin role is refused with 403", map[string]string{"username": "reader", "password": "Reader#pw1"}, "", 403, ""},
		{"a missing user name is a 400 naming username", map[string]string{"password": "x"}, "", 400, "username"},
		{"a missing password is a 400 naming password", map[string]string{"username": "admin"}, "", 400, "password"},
		{"an unknown field is a 400 naming it", map[string]string{"username": "admin", "password": "x", "remember": "1"}, "", 400, "remember"},
		{"a form post is refused (no cross-site login)", "username=admin&password=admin-pw", "application/x-www-form-urlencoded", 415, "Content-Type"},
		{"the admin gets a session", map[string]string{"username": "admin", "password": "admin-pw"}, "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader
			if s, ok := tc.body.(string); ok {
				rd = strings.NewReader(s)
			} else {
				b, _ := json.Marshal(tc.body)
				rd = bytes.NewReader(b)
			}
			ctype := tc.ctype
			if ctype == "" {
				ctype = "application/json"
			}
			resp, err := http.Post(ts.URL+"/api/session", ctype, rd)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, raw)
			}
			var body map[string]any
			_ = json.Unmarshal(raw, &body)
			if f, _ := body["field"].(string); f != tc.wantField {
				t.Fatalf("field %q, want %q: %s", f, tc.wantField, raw)
			}
			cookies := resp.Cookies()
			if tc.wantStatus != 200 {
				if len(cookies) > 0 {
					t.Fatal("a refused login set a cookie")
				}
				return
			}
			if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/" {
				t.Fatalf("session cookie not HttpOnly, SameSite=Strict, Path=/: %+v", cookies)
			}
			if body["csrf_token"] == "" || body["user"] != "PRIMARY/admin" {
				t.Fatalf("login answer: %s", raw)
			}
		})
	}
}

func TestConsoleSessionNeedsTheCSRFTokenAndEndsWhenIdle(t *testing.T) {
	ts := newTestServer(t, nil)
	c, _ := ts.sessionClient(t, "admin", "admin-pw")
	csrf := c.csrf
	t.Run("a read needs no CSRF token", func(t *testing.T) {
		c.csrf = ""
		c.must(t, 200, "GET", "/api/resident-idp", nil)
	})
	t.Run("a change without the CSRF token is refused with 403", func(t *testing.T) {
		c.csrf = ""
		r := c.must(t, 403, "PUT", "/api/resident-idp", map[string]any{"issuer": "x"})
		if r.str("field") != "X-CSRF-Token" {
			t.Fatalf("answer: %s", r.Raw)
		}
	})
	t.Run("a change with a wrong CSRF token is refused with 403", func(t *testing.T) {
		c.csrf = "wrong"
		c.must(t, 403, "PUT", "/api/resident-idp", map[string]any{"issuer": "x"})
	})
	t.Run("a change with the CSRF token is made", func(t *testing.T) {
		c.csrf = csrf
		c.must(t, 200, "PUT", "/api/resident-idp", map[string]any{"issuer": "urn:csrf-ok"})
	})
	t.Run("the session ends after the resident IdP's idle timeout", func(t *testing.T) {
		c.must(t, 200, "PUT", "/api/resident-idp", map[string]any{"session_idle_timeout": "2m"})
		ts.Clock.Set(time.Now().Add(90 * time.Second))
		c.must(t, 200, "GET", "/api/session", nil) // touched: idle restarts
		ts.Clock.Set(time.Now().Add(90*time.Second + 100*time.Second))
		c.must(t, 200, "GET", "/api/session", nil)
		ts.Clock.Set(time.Now().Add(90*time.Second + 100*time.Second + 3*time.Minute))
		c.must(t, 401, "GET", "/api/session", nil)
		ts.Clock.Set(time.Time{})
	})
	t.Run("logging out ends the session", func(t *testing.T) {
		c2, _ := ts.sessionClient(t, "admin", "admin-pw")
		c2.must(t, 204, "DELETE", "/api/session", nil)
		c2.must(t, 401, "GET", "/api/session", nil)
	})
}

func TestResidentIdentityProviderSettings(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.tokenClient(t)
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"a token lifetime that is not a duration", map[string]any{"token_lifetime": "five minutes"}, "token_lifetime"},
		{"a negative idle timeout", map[string]any{"session_idle_timeout": "-5m"}, "session_idle_timeout"},
		{"a token lifetime above the maximum", map[string]any{"token_lifetime": "10h"}, "token_lifetime"},
		{"a maximum below the token lifetime", map[string]any{"max_token_lifetime": "1m"}, "max_token_lifetime"},
		{"an unknown token type", map[string]any{"default_token_type": "jwt"}, "default_token_type"},
		{"an unknown signature algorithm", map[string]any{"signature_algorithm": "hmac-md5"}, "signature_algorithm"},
		{"an unknown digest algorithm", map[string]any{"digest_algorithm": "md5"}, "digest_algorithm"},
		{"an empty issuer", map[string]any{"issuer": " "}, "issuer"},
		{"a home realm identifier with a space", map[string]any{"home_realm_identifiers": []string{"urn:ok", "not ok"}}, "home_realm_identifiers[1]"},
		{"a home realm identifier listed twice", map[string]any{"home_realm_identifiers": []string{"urn:a", "urn:a"}}, "home_realm_identifiers[1]"},
		{"a list where a string belongs", map[string]any{"issuer": []string{"a"}}, "issuer"},
		{"an unknown setting", map[string]any{"lockout_threshold": 3}, "lockout_threshold"},
	} {
		t.Run("refuses "+tc.name+" naming the field", func(t *testing.T) {
			expectFieldError(t, c.do(t, "PUT", "/api/resident-idp", tc.body), tc.field)
		})
	}
	t.Run("applies valid settings at once and stores them for every node", func(t *testing.T) {
		r := c.must(t, 200, "PUT", "/api/resident-idp", map[string]any{
			"home_realm_identifiers": []string{"urn:avouch:home", "https://idp.example.test"},
			"issuer":                 "https://idp.example.test", "token_lifetime": "10m", "session_idle_timeout": "20m",
			"remember_me_period": "72h", "default_token_type": "saml1.1", "refuse_unknown_relying_parties": true})
		if got := r.JSON["home_realm_identifiers"].([]any); len(got) != 2 || got[0] != "urn:avouch:home" {
			t.Fatalf("answer: %s", r.Raw)
		}
		if r.str("token_lifetime") != "10m0s" || r.str("remember_me_period") != "72h0m0s" || r.JSON["refuse_unknown_relying_parties"] != true {
			t.Fatalf("answer: %s", r.Raw)
		}
		cc := ts.Core.Config()
		if cc.Issuer != "https://idp.example.test" || cc.DefaultLifetime != 10*time.Minute || !cc.RefuseUnknownRP {
			t.Fatalf("core config not applied: %+v", cc)
		}
		v, err := ts.Store.GetSetting(context.Background(), "config.session_idle_timeout")
		if err != nil || v != "20m0s" {
			t.Fatalf("stored idle timeout %q, %v", v, err)
		}
		got := c.must(t, 200, "GET", "/api/resident-idp", nil)
		if got.str("issuer") != "https://idp.example.test" || got.str("default_token_type") != "saml1.1" {
			t.Fatalf("GET: %s", got.Raw)
		}
	})
}

func TestSecurityPolicy(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.tokenClient(t)
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"a scenario other than UsernameToken", map[string]any{"scenario": "Kerberos", "allowed_roles": []string{"admin"}}, "scenario"},
		{"disabling security", map[string]any{"enabled": false, "scenario": "UsernameToken", "allowed_roles": []string{"admin"}}, "enabled"},
		{"no roles", map[string]any{"scenario": "UsernameToken", "allowed_roles": []string{}}, "allowed_roles"},
		{"a role with a comma", map[string]any{"scenario": "UsernameToken", "allowed_roles": []string{"a,b"}}, "allowed_roles[0]"},
		{"an unknown user-store domain", map[string]any{"scenario": "UsernameToken", "allowed_roles": []string{"admin"}, "allowed_domains": []string{"NOWHERE"}}, "allowed_domains[0]"},
	} {
		t.Run("refuses "+tc.name+" naming the field", func(t *testing.T) {
			expectFieldError(t, c.do(t, "PUT", "/api/sts-policy", tc.body), tc.field)
		})
	}
	t.Run("applies the UsernameToken policy for the given roles and domains", func(t *testing.T) {
		r := c.must(t, 200, "PUT", "/api/sts-policy", map[string]any{"enabled": true, "scenario": "UsernameToken",
			"allowed_roles": []string{"admin", "sts-users"}, "allowed_domains": []string{"primary"}})
		if r.str("scenario") != "UsernameToken" {
			t.Fatalf("answer: %s", r.Raw)
		}
		cc := ts.Core.Config()
		if strings.Join(cc.AllowedRoles, ",") != "admin,sts-users" || strings.Join(cc.AllowedDomains, ",") != "PRIMARY" {
			t.Fatalf("core config: %+v", cc)
		}
		ts.addUser(t, "carol", "Carol#pw1", false, []string{"sts-users"}, nil)
		if _, _, _, err := client.Issue(context.Background(), http.DefaultClient, &client.Options{URL: ts.URL + "/services/sts", User: "carol", Password: "Carol#pw1"}); err != nil {
			t.Fatalf("a user with an allowed role gets no token: %v", err)
		}
	})
}

func rpCertPEM(t *testing.T) []byte {
	_, c := rpKey(t)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func TestServiceProviders(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.tokenClient(t)
	c.must(t, 201, "POST", "/api/truststore", map[string]any{"alias": "rp1", "pem": string(rpCertPEM(t))})
	good := func() map[string]any {
		return map[string]any{"name": "Payroll", "description": "payroll app",
			"wstrust": map[string]any{"endpoints": []string{"https://payroll.example/"},
				"token": map[string]any{"cert_alias": "rp1", "encrypt": true, "token_type": "saml2.0", "lifetime": "10m"}},
			"claims": map[string]any{"always": []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"a name with a slash", func(m map[string]any) { m["name"] = "a/b" }, "name"},
		{"no endpoint", func(m map[string]any) { m["wstrust"].(map[string]any)["endpoints"] = []string{} }, "wstrust.endpoints"},
		{"an endpoint with spaces", func(m map[string]any) { m["wstrust"].(map[string]any)["endpoints"] = []string{" https://x/ "} }, "wstrust.endpoints[0]"},
		{"a bad pattern", func(m map[string]any) { m["wstrust"].(map[string]any)["patterns"] = []string{"("} }, "wstrust.patterns[0]"},
		{"encryption without a certificate alias", func(m map[string]any) {
			m["wstrust"].(map[string]any)["token"] = map[string]any{"encrypt": true}
		}, "wstrust.token.cert_alias"},
		{"a certificate alias not in the trust store", func(m map[string]any) {
			m["wstrust"].(map[string]any)["token"] = map[string]any{"cert_alias": "nope"}
		}, "wstrust.token.cert_alias"},
		{"a lifetime that is not a duration", func(m map[string]any) {
			m["wstrust"].(map[string]any)["token"] = map[string]any{"lifetime": "soon"}
		}, "wstrust.token.lifetime"},
		{"an unknown key type", func(m map[string]any) {
			m["wstrust"].(map[string]any)["token"] = map[string]any{"allowed_key_types": []string{"Magic"}}
		}, "wstrust.token.allowed_key_types"},
		{"an unknown field", func(m map[string]any) { m["colour"] = "red" }, "colour"},
	} {
		t.Run("refuses "+tc.name+" naming the field", func(t *testing.T) {
			body := good()
			tc.edit(body)
			expectFieldError(t, c.do(t, "POST", "/api/service-providers", body), tc.field)
		})
	}
	t.Run("adds, finds, updates and deletes a service provider", func(t *testing.T) {
		r := c.must(t, 201, "POST", "/api/service-providers", good())
		if r.str("name") != "Payroll" {
			t.Fatalf("answer: %s", r.Raw)
		}
		if sp, err := ts.Registry.MatchAppliesTo("https://payroll.example/"); err != nil || sp.Name != "Payroll" || !sp.WSTrust.Token.Encrypt {
			t.Fatalf("registry: %+v %v", sp, err)
		}
		c.must(t, 409, "POST", "/api/service-providers", good())
		c.must(t, 201, "POST", "/api/service-providers", map[string]any{"name": "Intranet", "wstrust": map[string]any{"endpoints": []string{"https://intranet.example/"}}})
		for q, want := range map[string][]string{"": {"Intranet", "Payroll"}, "payroll.example": {"Payroll"}, "INTRA": {"Intranet"}, "rp1": {"Payroll"}, "zzz": {}} {
			l := c.must(t, 200, "GET", "/api/service-providers?q="+q, nil)
			var names []string
			for _, sp := range l.JSON["service_providers"].([]any) {
				names = append(names, sp.(map[string]any)["name"].(string))
			}
			if strings.Join(names, ",") != strings.Join(want, ",") {
				t.Fatalf("search %q: %v, want %v", q, names, want)
			}
		}
		upd := good()
		upd["wstrust"].(map[string]any)["endpoints"] = []string{"https://payroll2.example/"}
		c.must(t, 200, "PUT", "/api/service-providers/Payroll", upd)
		if _, err := ts.Registry.MatchAppliesTo("https://payroll.example/"); err == nil {
			t.Fatal("the old endpoint still matches")
		}
		upd["name"] = "Renamed"
		expectFieldError(t, c.do(t, "PUT", "/api/service-providers/Payroll", upd), "name")
		c.must(t, 404, "PUT", "/api/service-providers/Nope", good())
		c.must(t, 404, "GET", "/api/service-providers/Nope", nil)
		c.must(t, 409, "DELETE", "/api/truststore/rp1", nil) // in use
		c.must(t, 204, "DELETE", "/api/service-providers/Payroll", nil)
		c.must(t, 404, "DELETE", "/api/service-providers/Payroll", nil)
		c.must(t, 204, "DELETE", "/api/truststore/rp1", nil)
	})
}

func TestUsersRolesAndClaims(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.LockoutThreshold = 2 })
	c := ts.tokenClient(t)
	const email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"a user name with a slash", map[string]any{"name": "CORP/bob", "password": "Bob#pw-123"}, "name"},
		{"a user name with surrounding spaces", map[string]any{"name": " bob", "password": "Bob#pw-123"}, "name"},
		{"no password", map[string]any{"name": "bob"}, "password"},
		{"a short password", map[string]any{"name": "bob", "password": "short"}, "password"},
		{"a role with a comma", map[string]any{"name": "bob", "password": "Bob#pw-123", "roles": []string{"a,b"}}, "roles[0]"},
		{"a claim that is not a URI", map[string]any{"name": "bob", "password": "Bob#pw-123", "claims": map[string]string{"email": "x"}}, "claims.email"},
		{"roles that are not a list", map[string]any{"name": "bob", "password": "Bob#pw-123", "roles": "admin"}, "roles"},
	} {
		t.Run("refuses "+tc.name+" naming the field", func(t *testing.T) {
			expectFieldError(t, c.do(t, "POST", "/api/users", tc.body), tc.field)
		})
	}
	t.Run("creates, lists, searches, updates and deletes users", func(t *testing.T) {
		r := c.must(t, 201, "POST", "/api/users", map[string]any{"name": "bob", "password": "Bob#pw-123", "roles": []string{"sts", "admin"},
			"claims": map[string]string{email: "bob@example.test"}})
		if strings.Contains(r.Raw, "argon2") || strings.Contains(r.Raw, "Bob#pw-123") {
			t.Fatalf("answer shows a secret: %s", r.Raw)
		}
		if roles := r.JSON["roles"].([]any); len(roles) != 2 || roles[0] != "admin" {
			t.Fatalf("roles not sorted: %s", r.Raw)
		}
		c.must(t, 409, "POST", "/api/users", map[string]any{"name": "bob", "password": "Bob#pw-123"})
		l := c.must(t, 200, "GET", "/api/users?q=example.test", nil)
		if users := l.JSON["users"].([]any); len(users) != 1 || users[0].(map[string]any)["name"] != "bob" {
			t.Fatalf("search by claim value: %s", l.Raw)
		}
		c.must(t, 200, "PUT", "/api/users/bob", map[string]any{"roles": []string{"sts"}, "disabled": true})
		u, _ := ts.Store.GetUser(context.Background(), "bob")
		if strings.Join(u.Roles, ",") != "sts" || !u.Disabled {
			t.Fatalf("stored: %+v", u)
		}
		expectFieldError(t, c.do(t, "PUT", "/api/users/bob", map[string]any{"password": "Another#pw1"}), "password")
		expectFieldError(t, c.do(t, "PUT", "/api/users/bob", map[string]any{"allow_digest": true}), "allow_digest")
		c.must(t, 404, "PUT", "/api/users/nobody", map[string]any{"disabled": true})
		c.must(t, 404, "GET", "/api/users/nobody", nil)
	})
	t.Run("resets a password and allows PasswordDigest with it", func(t *testing.T) {
		c.must(t, 200, "PUT", "/api/users/bob", map[string]any{"disabled": false})
		expectFieldError(t, c.do(t, "POST", "/api/users/bob/password", map[string]any{"password": "tiny"}), "password")
		r := c.must(t, 200, "POST", "/api/users/bob/password", map[string]any{"password": "Fresh#pw-456", "allow_digest": true})
		if r.JSON["allow_digest"] != true {
			t.Fatalf("answer: %s", r.Raw)
		}
		if _, err := ts.Auth.VerifyPassword(context.Background(), "bob", "Fresh#pw-456"); err != nil {
			t.Fatalf("new password refused: %v", err)
		}
		c.must(t, 404, "POST", "/api/users/nobody/password", map[string]any{"password": "Fresh#pw-456"})
	})
	t.Run("unlocks an account locked by failed logins", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			_, _ = ts.Auth.VerifyPassword(context.Background(), "bob", "wrong")
		}
		if r := c.must(t, 200, "GET", "/api/users/bob", nil); r.JSON["locked"] != true {
			t.Fatalf("not locked: %s", r.Raw)
		}
		if r := c.must(t, 200, "POST", "/api/users/bob/unlock", nil); r.JSON["locked"] != false {
			t.Fatalf("still locked: %s", r.Raw)
		}
		if _, err := ts.Auth.VerifyPassword(context.Background(), "bob", "Fresh#pw-456"); err != nil {
			t.Fatalf("unlocked account refused: %v", err)
		}
		c.must(t, 404, "POST", "/api/users/nobody/unlock", nil)
	})
	t.Run("keeps a role catalogue and refuses to drop a role in use", func(t *testing.T) {
		expectFieldError(t, c.do(t, "POST", "/api/roles", map[string]any{"name": "a,b"}), "name")
		c.must(t, 201, "POST", "/api/roles", map[string]any{"name": "auditors", "description": "read the audit log"})
		c.must(t, 409, "POST", "/api/roles", map[string]any{"name": "auditors"})
		c.must(t, 201, "POST", "/api/roles", map[string]any{"name": "sts"})
		r := c.must(t, 200, "GET", "/api/roles", nil)
		if !strings.Contains(r.Raw, `"auditors"`) || !strings.Contains(r.Raw, `"bob"`) {
			t.Fatalf("roles: %s", r.Raw)
		}
		c.must(t, 409, "DELETE", "/api/roles/sts", nil)
		c.must(t, 204, "DELETE", "/api/roles/auditors", nil)
		c.must(t, 404, "DELETE", "/api/roles/auditors", nil)
	})
	t.Run("keeps a claim catalogue beside the built-in claims", func(t *testing.T) {
		expectFieldError(t, c.do(t, "POST", "/api/claims", map[string]any{"uri": "not a uri"}), "uri")
		c.must(t, 201, "POST", "/api/claims", map[string]any{"uri": "urn:example:claims:department", "display_name": "Department"})
		r := c.must(t, 200, "GET", "/api/claims", nil)
		if !strings.Contains(r.Raw, "urn:example:claims:department") || !strings.Contains(r.Raw, email) {
			t.Fatalf("claims: %s", r.Raw)
		}
		c.must(t, 204, "DELETE", "/api/claims/urn:example:claims:department", nil)
		c.must(t, 201, "POST", "/api/claims", map[string]any{"uri": email, "display_name": "E-mail"})
		c.must(t, 204, "DELETE", "/api/claims/"+strings.ReplaceAll(email, "/", "%2F"), nil)
		c.must(t, 404, "DELETE", "/api/claims/urn:none", nil)
	})
	t.Run("deletes a user but not the one logged in", func(t *testing.T) {
		s, _ := ts.sessionClient(t, "admin", "admin-pw")
		s.must(t, 409, "DELETE", "/api/users/admin", nil)
		c.must(t, 204, "DELETE", "/api/users/bob", nil)
		c.must(t, 404, "DELETE", "/api/users/bob", nil)
	})
}

func TestUserStores(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.tokenClient(t)
	good := func() map[string]any {
		return map[string]any{"type": "ldap", "bind_password": "Bind#secret",
			"ldap": map[string]any{"url": "ldap://127.0.0.1:1", "bind_dn": "cn=svc,dc=example,dc=test",
				"user_search_base": "ou=people,dc=example,dc=test", "user_filter": "(uid={user})", "user_name_attribute": "uid", "timeout": "2s"}}
	}
	for _, tc := range []struct {
		name, domain string
		edit         func(map[string]any)
		field        string
	}{
		{"the PRIMARY domain", "PRIMARY", func(map[string]any) {}, "domain"},
		{"a URL that is not LDAP", "CORP", func(m map[string]any) { m["ldap"].(map[string]any)["url"] = "http://x" }, "ldap.url"},
		{"no user search base", "CORP", func(m map[string]any) { delete(m["ldap"].(map[string]any), "user_search_base") }, "ldap.user_search_base"},
		{"a bind DN without password", "CORP", func(m map[string]any) { delete(m, "bind_password") }, "bind_password"},
		{"a bad timeout", "CORP", func(m map[string]any) { m["ldap"].(map[string]any)["timeout"] = "later" }, "ldap.timeout"},
		{"another type", "CORP", func(m map[string]any) { m["type"] = "jdbc" }, "type"},
	} {
		t.Run("refuses "+tc.name+" naming the field", func(t *testing.T) {
			body := good()
			tc.edit(body)
			expectFieldError(t, c.do(t, "PUT", "/api/user-stores/"+tc.domain, body), tc.field)
		})
	}
	t.Run("stores a user store with its bind password sealed", func(t *testing.T) {
		r := c.must(t, 201, "PUT", "/api/user-stores/corp", good())
		if r.str("domain") != "CORP" || r.JSON["has_bind_password"] != true || strings.Contains(r.Raw, "Bind#secret") {
			t.Fatalf("answer: %s", r.Raw)
		}
		raw, _ := ts.Store.GetSetting(context.Background(), UserStorePrefix+"CORP")
		if strings.Contains(raw, "Bind#secret") {
			t.Fatal("the bind password is stored in clear")
		}
		if len(ts.Auth.Stores()) != 1 {
			t.Fatal("the user store is not in use at once")
		}
		body := good()
		delete(body, "bind_password")
		body["order"] = 3
		r = c.must(t, 200, "PUT", "/api/user-stores/CORP", body)
		if r.JSON["has_bind_password"] != true || r.JSON["order"] != float64(3) {
			t.Fatalf("the stored bind password was not kept: %s", r.Raw)
		}
		p := c.must(t, 200, "GET", "/api/sts-policy", nil)
		if !strings.Contains(p.Raw, `"CORP"`) {
			t.Fatalf("the policy wizard does not offer CORP: %s", p.Raw)
		}
		c.must(t, 200, "GET", "/api/user-stores/corp", nil)
		c.must(t, 204, "DELETE", "/api/user-stores/corp", nil)
		c.must(t, 404, "DELETE", "/api/user-stores/corp", nil)
		c.must(t, 404, "GET", "/api/user-stores/corp", nil)
	})
}

func TestTrustStoreAndSigningKeyRotation(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.tokenClient(t)
	certPEM := rpCertPEM(t)
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"an empty upload", map[string]any{"alias": "x"}, "content"},
		{"content that is not base64", map[string]any{"content": "%%%"}, "content"},
		{"a file that is no keystore", map[string]any{"content": "aGVsbG8gd29ybGQ="}, "content"},
		{"an alias with a control character", map[string]any{"alias": "a\nb", "pem": string(certPEM)}, "alias"},
		{"an entry the keystore lacks", map[string]any{"entry": "nope", "pem": string(certPEM)}, "entry"},
	} {
		t.Run("refuses "+tc.name+" naming the field", func(t *testing.T) {
			expectFieldError(t, c.do(t, "POST", "/api/truststore", tc.body), tc.field)
		})
	}
	t.Run("uploads, shows and deletes a certificate", func(t *testing.T) {
		r := c.must(t, 201, "POST", "/api/truststore", map[string]any{"alias": "rp-a", "pem": string(certPEM)})
		if !strings.Contains(r.Raw, "rp.example") {
			t.Fatalf("answer: %s", r.Raw)
		}
		c.must(t, 409, "POST", "/api/truststore", map[string]any{"alias": "rp-a", "pem": string(certPEM)})
		c.must(t, 201, "POST", "/api/truststore", map[string]any{"alias": "rp-a", "pem": string(certPEM), "replace": true})
		g := c.must(t, 200, "GET", "/api/truststore/rp-a", nil)
		if !strings.Contains(g.str("pem"), "BEGIN CERTIFICATE") {
			t.Fatalf("answer: %s", g.Raw)
		}
		c.must(t, 204, "DELETE", "/api/truststore/rp-a", nil)
		c.must(t, 404, "GET", "/api/truststore/rp-a", nil)
	})
	t.Run("rotates the signing key and retires the old one after the overlap", func(t *testing.T) {
		expectFieldError(t, c.do(t, "POST", "/api/keys/signing/rotate", map[string]any{"overlap": "1h"}), "overlap")
		expectFieldError(t, c.do(t, "POST", "/api/keys/signing/rotate", map[string]any{"overlap": "later"}), "overlap")
		old := ts.SigningKey()
		r := c.must(t, 201, "POST", "/api/keys/signing/rotate", map[string]any{"overlap": "8h"})
		if ts.SigningKey().ID == old.ID {
			t.Fatal("the new key is not in use")
		}
		if got := r.JSON["retiring"].([]any); len(got) != 1 || got[0] != old.ID {
			t.Fatalf("answer: %s", r.Raw)
		}
		k := c.must(t, 200, "GET", "/api/keys", nil)
		if n := len(k.JSON["signing"].([]any)); n != 2 {
			t.Fatalf("%d signing keys during the overlap, want 2: %s", n, k.Raw)
		}
		ctx := context.Background()
		ts.Console().Housekeep(ctx)
		if _, err := ts.Store.GetKey(ctx, old.ID); err != nil {
			t.Fatal("the old key was deleted during the overlap")
		}
		ts.Clock.Set(time.Now().Add(8*time.Hour + time.Minute))
		defer ts.Clock.Set(time.Time{})
		ts.ConsoleHousekeeping(ctx)
		if _, err := ts.Store.GetKey(ctx, old.ID); err == nil {
			t.Fatal("the old key outlived its overlap")
		}
		if certs, _ := keys.SigningCerts(ctx, ts.Store); len(certs) != 1 {
			t.Fatalf("%d published signing certificates, want 1", len(certs))
		}
		a := c.must(t, 200, "GET", "/api/audit?q=key.retire", nil)
		if !strings.Contains(a.Raw, old.ID) {
			t.Fatalf("retirement not audited: %s", a.Raw)
		}
	})
}

func TestKeystoreUploadsInDERAndPKCS12(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.tokenClient(t)
	key, cert := rpKey(t)
	t.Run("a DER certificate is trusted under the given alias", func(t *testing.T) {
		r := c.must(t, 201, "POST", "/api/truststore", map[string]any{"alias": "der-rp", "content": base64.StdEncoding.EncodeToString(cert.Raw)})
		if !strings.Contains(r.Raw, `"der-rp"`) {
			t.Fatalf("answer: %s", r.Raw)
		}
	})
	openssl := testutil.Tool(t, "openssl")
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "k.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(dir, "rp.p12")
	if out, err := exec.Command(openssl, "pkcs12", "-export", "-inkey", filepath.Join(dir, "k.pem"), "-in", filepath.Join(dir, "c.pem"),
		"-name", "rp-entry", "-passout", "pass:P12#pass", "-out", p12).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(p12)
	content := base64.StdEncoding.EncodeToString(raw)
	t.Run("a PKCS#12 file with the wrong password is refused naming the password", func(t *testing.T) {
		r := c.do(t, "POST", "/api/truststore", map[string]any{"content": content, "password": "Not#The#Pass"})
		expectFieldError(t, r, "password")
		if strings.Contains(r.Raw, "Not#The#Pass") {
			t.Fatal("the answer echoes the password")
		}
	})
	t.Run("a PKCS#12 file keeps its entry alias and only the certificate", func(t *testing.T) {
		r := c.must(t, 201, "POST", "/api/truststore", map[string]any{"content": content, "password": "P12#pass"})
		if !strings.Contains(r.Raw, `"rp-entry"`) {
			t.Fatalf("answer: %s", r.Raw)
		}
		if e, err := ts.Store.GetCertificate(context.Background(), "rp-entry"); err != nil || strings.Contains(string(e.PEM), "PRIVATE") {
			t.Fatalf("stored: %v", err)
		}
	})
	t.Run("a PKCS#12 key becomes the signing key and the old one is retired after the overlap", func(t *testing.T) {
		old := ts.SigningKey()
		r := c.must(t, 201, "POST", "/api/keys/signing/import", map[string]any{"content": content, "password": "P12#pass", "overlap": "9h"})
		if ts.SigningKey().Cert.Equal(old.Cert) || !ts.SigningKey().Cert.Equal(cert) {
			t.Fatal("the imported key is not in use")
		}
		if got := r.JSON["retiring"].([]any); len(got) != 1 || got[0] != old.ID {
			t.Fatalf("answer: %s", r.Raw)
		}
		a := c.must(t, 200, "GET", "/api/audit?q=key.import", nil)
		if strings.Contains(a.Raw, "P12#pass") || !strings.Contains(a.Raw, "rp-entry") {
			t.Fatalf("audit: %s", a.Raw)
		}
	})
}

func TestSOAPTracerMasksSecrets(t *testing.T) {
	rs := newRPServer(t, &registry.ServiceProvider{Name: "enc", WSTrust: &registry.WSTrust{
		Endpoints: []string{"https://rp.example/"}, Token: registry.Token{CertAlias: "rp-cert", Encrypt: true}}})
	c := rs.tokenClient(t)
	expectFieldError(t, c.do(t, "PUT", "/api/tracer", map[string]any{"capacity": 0}), "capacity")
	expectFieldError(t, c.do(t, "PUT", "/api/tracer", map[string]any{"enabled": "yes"}), "enabled")
	if _, _, err := rs.issue(t, client.Options{AppliesTo: "https://rp.example/"}, nil); err != nil {
		t.Fatal(err)
	}
	if r := c.must(t, 200, "GET", "/api/tracer", nil); len(r.JSON["exchanges"].([]any)) != 0 {
		t.Fatal("traced while off")
	}
	c.must(t, 200, "PUT", "/api/tracer", map[string]any{"enabled": true, "capacity": 2})
	for _, o := range []client.Options{{AppliesTo: "https://rp.example/"}, {Digest: true}} {
		_, _, _ = rs.issue(t, o, nil)
	}
	_, _, _ = rs.issue(t, client.Options{}, func(s string) string { return strings.Replace(s, "Alice#pw1", "Wrong#pw9", 1) })
	r := c.must(t, 200, "GET", "/api/tracer", nil)
	ex := r.JSON["exchanges"].([]any)
	if len(ex) != 2 {
		t.Fatalf("%d exchanges kept, want the capacity 2", len(ex))
	}
	newest := ex[0].(map[string]any)
	if newest["fault"] == "" || newest["caller"] != "" {
		t.Fatalf("the failed exchange: %v", newest)
	}
	for _, secret := range []string{"Alice#pw1", "Wrong#pw9"} {
		if strings.Contains(r.Raw, secret) {
			t.Fatalf("the tracer shows the password %q", secret)
		}
	}
	if !strings.Contains(r.Raw, console.Mask) {
		t.Fatal("no mask in the traced messages")
	}
	c.must(t, 204, "DELETE", "/api/tracer/exchanges", nil)
	if r := c.must(t, 200, "GET", "/api/tracer", nil); len(r.JSON["exchanges"].([]any)) != 0 {
		t.Fatal("not cleared")
	}
	c.must(t, 200, "PUT", "/api/tracer", map[string]any{"enabled": false})
	if rs.Console().Tracer().Enabled() {
		t.Fatal("still on")
	}
}

func TestAPITokensAndTheAuditLog(t *testing.T) {
	ts := newTestServer(t, nil)
	c, _ := ts.sessionClient(t, "admin", "admin-pw")
	expectFieldError(t, c.do(t, "POST", "/api/tokens", map[string]any{"name": ""}), "name")
	r := c.must(t, 201, "POST", "/api/tokens", map[string]any{"name": "deploy bot"})
	tok, id := r.str("token"), r.str("id")
	l := c.must(t, 200, "GET", "/api/tokens", nil)
	if strings.Contains(l.Raw, tok) || strings.Contains(l.Raw, strings.SplitN(tok, ".", 2)[1]) || !strings.Contains(l.Raw, "deploy bot") {
		t.Fatalf("token list: %s", l.Raw)
	}
	bot := &apiClient{ts: ts, token: tok, hc: http.DefaultClient}
	bot.must(t, 201, "POST", "/api/users", map[string]any{"name": "dave", "password": "Dave#pw-123"})
	bot.must(t, 200, "POST", "/api/users/dave/password", map[string]any{"password": "Dave#pw-456"})
	c.must(t, 204, "DELETE", "/api/tokens/"+id, nil)
	bot.must(t, 401, "GET", "/api/users", nil)
	c.must(t, 404, "DELETE", "/api/tokens/"+id, nil)
	expectFieldError(t, c.do(t, "GET", "/api/audit?limit=0", nil), "limit")
	a := c.must(t, 200, "GET", "/api/audit", nil)
	var actions []string
	for _, e := range a.JSON["events"].([]any) {
		ev := e.(map[string]any)
		actions = append(actions, ev["actor"].(string)+" "+ev["action"].(string))
		if ev["time"] == "" {
			t.Fatalf("event without time: %v", ev)
		}
	}
	sort.Strings(actions)
	for _, want := range []string{"PRIMARY/admin api_token.create", "PRIMARY/admin api_token.revoke", "PRIMARY/admin console.login",
		"token:deploy bot user.create", "token:deploy bot user.password_reset"} {
		if !strings.Contains(strings.Join(actions, "\n"), want) {
			t.Errorf("audit log lacks %q: %v", want, actions)
		}
	}
	for _, secret := range []string{"Dave#pw-123", "Dave#pw-456", "admin-pw", tok} {
		if strings.Contains(a.Raw, secret) {
			t.Fatalf("the audit log holds a secret")
		}
	}
}

func TestOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	ts := newTestServer(t, nil)
	resp, err := http.Get(ts.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document: %v", err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented[strings.ToUpper(m)+" "+p] = true
			}
		}
	}
	routed := map[string]bool{}
	for _, rt := range ts.Console().Routes() {
		rt = strings.ReplaceAll(rt, "...}", "}")
		routed[rt] = true
		if !documented[rt] {
			t.Errorf("%s is not in the OpenAPI document", rt)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("the OpenAPI document describes %s, which is not served", d)
		}
	}
}

func TestConsolePagesCarrySecurityHeaders(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct{ path, ctype string }{
		{"/console/", "text/html"},
		{"/console/static/app.js", "text/javascript"},
		{"/console/static/app.css", "text/css"},
		{"/api/openapi.json", "application/json"},
	} {
		t.Run(tc.path+" is served with a strict CSP, no framing and nosniff", func(t *testing.T) {
			resp, err := http.Get(ts.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Fatalf("CSP %q", csp)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("headers: %v", resp.Header)
			}
			if tc.ctype == "text/html" && regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).Match(body) {
				t.Fatal("inline script in the console page")
			}
			if regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).Match(body) {
				t.Fatal("the console loads something from elsewhere")
			}
		})
	}
	t.Run("an unknown API path is a JSON 404", func(t *testing.T) {
		c := ts.tokenClient(t)
		r := c.must(t, 404, "GET", "/api/nothing", nil)
		if r.str("error") == "" {
			t.Fatalf("answer: %s", r.Raw)
		}
	})
}
