package server

import (
	"context"
	"crypto/x509"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/authn"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wsfed"
	"github.com/avouch/avouch/internal/xmlenc"
)

// The passive STS tests drive avouch the way a browser does: a cookie jar,
// no automatic redirects (each hop is checked), forms read from the HTML.

const (
	realm1 = "urn:rp:one"
	reply1 = "https://rp1.example/wsfed/callback"
	realm2 = "https://rp2.example/"
	reply2 = "https://rp2.example/signin-wsfed"
	// rp2's front-channel sign-out goes to its own URL.
	signout2 = "https://rp2.example/signout-cleanup"

	emailClaim = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
)

func passiveSPs() []*registry.ServiceProvider {
	return []*registry.ServiceProvider{
		{Name: "RP One", Passive: &registry.Passive{Realm: realm1,
			ReplyURLs: []string{reply1, "https://rp1.example/signed-out", "http://rp1.example:8080/cb?tenant=a"}},
			Claims: registry.ClaimConfig{Always: []string{emailClaim}}},
		{Name: "RP Two", Passive: &registry.Passive{Realm: realm2, ReplyURLs: []string{reply2}, SignOutURL: signout2,
			Token: registry.Token{TokenType: "saml2.0"}},
			Claims: registry.ClaimConfig{Always: []string{emailClaim}}},
	}
}

// newPassiveServer starts avouch with the two relying parties, alice
// (allowed) and bob (no allowed role).
func newPassiveServer(t *testing.T, mutate func(*config.Config)) *testServer {
	t.Helper()
	ts := newTestServer(t, func(c *config.Config) {
		c.AllowedRoles = []string{"staff"}
		if mutate != nil {
			mutate(c)
		}
	})
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"staff"}, map[string]string{emailClaim: "alice@example.test"})
	ts.addUser(t, "bob", "Bob#pw1", false, []string{"guest"}, nil)
	for _, sp := range passiveSPs() {
		if err := ts.Registry.Put(context.Background(), sp); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	jar  *cookiejar.Jar
}

func newBrowser(t *testing.T, base string, client *http.Client) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if client != nil {
		c.Transport = client.Transport
	}
	return &browser{t: t, base: base, c: c, jar: jar}
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// cookie returns the value of the browser's cookie name for avouch.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var inputRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hidden returns the page's hidden form fields.
func hidden(body string) map[string]string {
	out := map[string]string{}
	for _, m := range inputRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

func isLoginPage(p page) bool {
	return strings.Contains(p.Body, `<form method="post" action="/login">`)
}

// login submits the login page p with a user's credentials and follows the
// 303 back to the protocol endpoint.
func (b *browser) login(p page, user, password string, remember bool) page {
	b.t.Helper()
	if !isLoginPage(p) {
		b.t.Fatalf("expected the login page, got %d:\n%s", p.Status, p.Body)
	}
	f := hidden(p.Body)
	form := url.Values{"csrf_token": {f["csrf_token"]}, "return": {f["return"]}, "username": {user}, "password": {password}}
	if remember {
		form.Set("remember", "1")
	}
	resp := b.post("/login", form)
	if resp.Status != http.StatusSeeOther {
		return resp
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/") {
		b.t.Fatalf("login redirected off-site to %q", loc)
	}
	return b.get(loc)
}

// autoPost is a parsed auto-POST response.
type autoPost struct {
	Action, WA, WResult, WCtx string
}

var formActionRE = regexp.MustCompile(`<form id="wsfed" method="post" action="([^"]*)">`)

func parseAutoPost(t *testing.T, p page) autoPost {
	t.Helper()
	m := formActionRE.FindStringSubmatch(p.Body)
	if p.Status != http.StatusOK || m == nil {
		t.Fatalf("expected the auto-POST form, got %d:\n%s", p.Status, p.Body)
	}
	f := hidden(p.Body)
	return autoPost{Action: html.UnescapeString(m[1]), WA: f["wa"], WResult: f["wresult"], WCtx: f["wctx"]}
}

func signInQuery(realm, reply, wctx string) string {
	v := url.Values{"wa": {"wsignin1.0"}, "wtrealm": {realm}}
	if reply != "" {
		v.Set("wreply", reply)
	}
	if wctx != "" {
		v.Set("wctx", wctx)
	}
	return "/passivests?" + v.Encode()
}

// checkedToken is what a relying party learns from a wresult.
type checkedToken struct {
	TokenType string
	Assertion *saml.Parsed
	Lifetime  [2]string
}

// checkWResult reads a wresult the way a relying party does: the RSTR in
// the WS-Trust 2005/02 namespace, AppliesTo in WS-Policy 2004/09 naming the
// realm, and RequestedSecurityToken's first child verified against the
// STS's signing certificate.
func checkWResult(t *testing.T, ts *testServer, wresult, realm string) checkedToken {
	t.Helper()
	doc, err := safexml.Parse([]byte(wresult), safexml.Limits{})
	if err != nil {
		t.Fatalf("wresult is not XML: %v", err)
	}
	root := doc.Root()
	if root.Tag != "RequestSecurityTokenResponse" || root.NamespaceURI() != wsfed.NSTrust2005 {
		t.Fatalf("wresult root is {%s}%s, want a WS-Trust 2005/02 RSTR", root.NamespaceURI(), root.Tag)
	}
	var out checkedToken
	var token *etree.Element
	for _, c := range root.ChildElements() {
		switch c.Tag {
		case "TokenType":
			out.TokenType = c.Text()
		case "AppliesTo":
			if c.NamespaceURI() != wsfed.NSPolicy2004 {
				t.Errorf("AppliesTo namespace = %s, want WS-Policy 2004/09", c.NamespaceURI())
			}
			addr := c.FindElement("EndpointReference/Address")
			if addr == nil || addr.Text() != realm {
				t.Errorf("AppliesTo address is not the realm %q", realm)
			}
		case "Lifetime":
			out.Lifetime = [2]string{c.FindElement("Created").Text(), c.FindElement("Expires").Text()}
		case "RequestedSecurityToken":
			if len(c.Child) == 0 {
				t.Fatal("RequestedSecurityToken is empty")
			}
			el, ok := c.Child[0].(*etree.Element)
			if !ok {
				t.Fatal("RequestedSecurityToken's first child is not the token element (whitespace before it?)")
			}
			token = el
		}
	}
	if token == nil {
		t.Fatal("wresult has no RequestedSecurityToken")
	}
	if out.Lifetime[0] == "" || out.Lifetime[1] == "" {
		t.Error("wresult has no Lifetime")
	}
	if token.Tag != "Assertion" {
		return out // encrypted: the caller decrypts
	}
	a, err := saml.Verify(token, saml.VerifyOptions{Certs: []*x509.Certificate{ts.SigningKey().Cert}})
	if err != nil {
		t.Fatalf("token signature: %v", err)
	}
	if !slices.Contains(a.Audiences, realm) {
		t.Errorf("token audiences %v do not include the realm %q", a.Audiences, realm)
	}
	out.Assertion = a
	return out
}

func attr(a *saml.Parsed, name string) []string {
	for _, at := range a.Attributes {
		if at.Name == name || strings.HasSuffix(name, "/"+at.Name) {
			return at.Values
		}
	}
	return nil
}

func TestPassiveSignInSSOAndSignOut(t *testing.T) {
	ts := newPassiveServer(t, nil)
	b := newBrowser(t, ts.URL, nil)

	p := b.get(signInQuery(realm1, reply1, "state-1"))
	if !isLoginPage(p) {
		t.Fatalf("a browser without a session should get the login page, got %d:\n%s", p.Status, p.Body)
	}
	ap := parseAutoPost(t, b.login(p, "alice", "Alice#pw1", false))
	t.Run("the token is posted to the registered reply URL with wa and wctx echoed", func(t *testing.T) {
		if ap.Action != reply1 || ap.WA != "wsignin1.0" || ap.WCtx != "state-1" {
			t.Errorf("form = %+v", ap)
		}
	})
	t.Run("the default token is SAML 1.1, signed, for the realm, with the RP's claims", func(t *testing.T) {
		tok := checkWResult(t, ts, ap.WResult, realm1)
		if tok.TokenType != sts.TokenSAML11 || tok.Assertion.Version != saml.NS11 {
			t.Errorf("token type %s / version %s, want SAML 1.1", tok.TokenType, tok.Assertion.Version)
		}
		if tok.Assertion.Subject != "alice" {
			t.Errorf("subject = %q", tok.Assertion.Subject)
		}
		if v := attr(tok.Assertion, emailClaim); len(v) != 1 || v[0] != "alice@example.test" {
			t.Errorf("email claim = %v (attributes %+v)", v, tok.Assertion.Attributes)
		}
	})

	secret := b.cookie("avouch-session")
	t.Run("a second relying party signs in without a password (single sign-on)", func(t *testing.T) {
		p := b.get(signInQuery(realm2, "", ""))
		ap := parseAutoPost(t, p)
		if ap.Action != reply2 {
			t.Errorf("absent wreply should post to the first registered reply URL, got %q", ap.Action)
		}
		tok := checkWResult(t, ts, ap.WResult, realm2)
		if tok.TokenType != sts.TokenSAML20 || tok.Assertion.Version != saml.NS20 {
			t.Errorf("RP Two's passive token setting asks for SAML 2.0, got %s", tok.TokenType)
		}
		if _, ok := hidden(p.Body)["wctx"]; ok {
			t.Error("wctx was not sent, so it must not be posted")
		}
	})

	t.Run("the session remembers both relying parties", func(t *testing.T) {
		rec, err := ts.Store.GetSession(context.Background(), authn.StorageID(secret))
		if err != nil {
			t.Fatal(err)
		}
		if rec.User != "PRIMARY/alice" || !strings.Contains(string(rec.Data), realm1) || !strings.Contains(string(rec.Data), realm2) {
			t.Errorf("session = %s %s", rec.User, rec.Data)
		}
		if rec.ID == secret || strings.Contains(string(rec.Data), secret) {
			t.Error("storage holds the cookie's secret; it must hold only its hash")
		}
	})

	t.Run("sign-out calls both relying parties front-channel and continues to a registered URL", func(t *testing.T) {
		p := b.get("/passivests?wa=wsignout1.0&wreply=" + url.QueryEscape("https://rp1.example/signed-out"))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "You have signed out") {
			t.Fatalf("sign-out page: %d\n%s", p.Status, p.Body)
		}
		for _, u := range []string{reply1 + "?wa=wsignoutcleanup1.0", signout2 + "?wa=wsignoutcleanup1.0"} {
			if !strings.Contains(p.Body, `<img src="`+u+`"`) {
				t.Errorf("the signed-out page does not load %s", u)
			}
		}
		if !strings.Contains(p.Body, `<meta http-equiv="refresh" content="0;url=https://rp1.example/signed-out">`) {
			t.Errorf("the signed-out page does not continue to wreply:\n%s", p.Body)
		}
		if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src https://rp1.example https://rp2.example") {
			t.Errorf("CSP %q does not allow the cleanup images", csp)
		}
		if _, err := ts.Store.GetSession(context.Background(), authn.StorageID(secret)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session after sign-out: %v, want ErrNotFound", err)
		}
		if b.cookie("avouch-session") != "" {
			t.Error("the session cookie was not cleared")
		}
		if !isLoginPage(b.get(signInQuery(realm1, reply1, ""))) {
			t.Error("after sign-out a sign-in must ask for the password again")
		}
	})
}

func TestPassiveTokenTypeChoice(t *testing.T) {
	ts := newPassiveServer(t, nil)
	b := newBrowser(t, ts.URL, nil)
	b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", false)
	wreq := func(tokenType string) string {
		return `<wst:RequestSecurityToken xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512"><wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType><wst:TokenType>` +
			tokenType + `</wst:TokenType></wst:RequestSecurityToken>`
	}
	tests := []struct {
		name, realm, wreq     string
		wantType, wantVersion string
		wantEcho              string
		wantStatus            int
	}{
		{"no wreq gives SAML 1.1", realm1, "", sts.TokenSAML11, saml.NS11, sts.TokenSAML11, 200},
		{"wreq asking for SAML 2.0 by URN gives SAML 2.0", realm1, wreq(sts.TokenSAML20), sts.TokenSAML20, saml.NS20, sts.TokenSAML20, 200},
		{"wreq asking for SAML 2.0 by token profile URI gives SAML 2.0 and echoes the URI", realm1, wreq(wsfed.TokenProfileSAML20), sts.TokenSAML20, saml.NS20, wsfed.TokenProfileSAML20, 200},
		{"the SP's passive token setting gives SAML 2.0", realm2, "", sts.TokenSAML20, saml.NS20, sts.TokenSAML20, 200},
		{"wreq asking for SAML 1.1 wins over the SP's setting", realm2, wreq(wsfed.TokenProfileSAML11), sts.TokenSAML11, saml.NS11, wsfed.TokenProfileSAML11, 200},
		{"wreq asking for an unknown token type is refused", realm1, wreq("urn:example:jwt"), "", "", "", 400},
		{"wreq with a DOCTYPE is refused", realm1, `<!DOCTYPE x [<!ENTITY a "b">]>` + wreq(sts.TokenSAML20), "", "", "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{"wa": {"wsignin1.0"}, "wtrealm": {tc.realm}}
			if tc.wreq != "" {
				v.Set("wreq", tc.wreq)
			}
			p := b.get("/passivests?" + v.Encode())
			if p.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d:\n%s", p.Status, tc.wantStatus, p.Body)
			}
			if tc.wantStatus != 200 {
				return
			}
			tok := checkWResult(t, ts, parseAutoPost(t, p).WResult, tc.realm)
			if tok.TokenType != tc.wantEcho || tok.Assertion.Version != tc.wantVersion {
				t.Errorf("TokenType %s, assertion %s; want %s, %s", tok.TokenType, tok.Assertion.Version, tc.wantEcho, tc.wantVersion)
			}
		})
	}
}

// TestPassiveRefusesOpenRedirects: every reply address that is not
// byte-for-byte a registered one is refused with an error page — no
// Location header, no form, no token — and so is an unregistered realm.
func TestPassiveRefusesOpenRedirects(t *testing.T) {
	ts := newPassiveServer(t, nil)
	b := newBrowser(t, ts.URL, nil)
	// Signed in, so that a wrong answer would be a token, not a login page.
	b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", false)
	tests := []struct{ name, realm, wreply string }{
		{"a scheme-relative URL is refused", realm1, "//evil.example/wsfed/callback"},
		{"user info before another host is refused", realm1, "https://rp1.example@evil.example/wsfed/callback"},
		{"backslashes after the scheme are refused", realm1, `https:\\evil.example\wsfed\callback`},
		{"a slash-backslash path is refused", realm1, `/\evil.example`},
		{"a relative path is refused", realm1, "/wsfed/callback"},
		{"an upper-case host is refused", realm1, "https://RP1.example/wsfed/callback"},
		{"an upper-case scheme is refused", realm1, "HTTPS://rp1.example/wsfed/callback"},
		{"a percent-encoded scheme-relative URL is refused", realm1, "%2F%2Fevil.example"},
		{"a percent-encoded path of the registered URL is refused", realm1, "https://rp1.example/wsfed%2Fcallback"},
		{"a javascript: URL is refused", realm1, "javascript:alert(1)"},
		{"a data: URL is refused", realm1, "data:text/html,<script>alert(1)</script>"},
		{"an unregistered path on the right host is refused", realm1, "https://rp1.example/other"},
		{"the registered URL plus a suffix is refused", realm1, reply1 + "/../../evil"},
		{"the registered URL plus a query is refused", realm1, reply1 + "?next=https://evil.example"},
		{"the registered URL plus a fragment is refused", realm1, reply1 + "#x"},
		{"a host that only starts with the registered host is refused", realm1, "https://rp1.example.evil.example/wsfed/callback"},
		{"the registered URL with a trailing space is refused", realm1, reply1 + " "},
		{"the registered URL with a trailing newline is refused", realm1, reply1 + "\n"},
		{"the registered URL with a leading tab is refused", realm1, "\t" + reply1},
		{"http instead of the registered https is refused", realm1, "http://rp1.example/wsfed/callback"},
		{"another relying party's reply URL is refused", realm1, reply2},
		{"the registered URL without its trailing query is refused", realm1, "http://rp1.example:8080/cb"},
		{"an unregistered realm is refused", "urn:rp:unknown", reply1},
		{"an unregistered realm is refused without wreply too", "urn:rp:unknown", ""},
		{"a realm differing only in case is refused", "URN:RP:ONE", reply1},
	}
	for _, tc := range tests {
		for _, path := range []string{"/passivests", "/adfs/ls/"} {
			t.Run(tc.name+" at "+path, func(t *testing.T) {
				v := url.Values{"wa": {"wsignin1.0"}, "wtrealm": {tc.realm}}
				if tc.wreply != "" {
					v.Set("wreply", tc.wreply)
				}
				p := b.get(path + "?" + v.Encode())
				if p.Status != http.StatusBadRequest {
					t.Errorf("status %d, want 400", p.Status)
				}
				if loc := p.Header.Get("Location"); loc != "" {
					t.Errorf("Location: %q — a refused request must never redirect", loc)
				}
				if strings.Contains(p.Body, "wresult") || strings.Contains(p.Body, "<form") {
					t.Errorf("the refusal carries a form:\n%s", p.Body)
				}
				if !strings.Contains(p.Body, "Sign-in request refused") {
					t.Errorf("not the error page:\n%s", p.Body)
				}
			})
		}
	}
	t.Run("the exact registered URL with a query is accepted", func(t *testing.T) {
		ap := parseAutoPost(t, b.get(signInQuery(realm1, "http://rp1.example:8080/cb?tenant=a", "")))
		if ap.Action != "http://rp1.example:8080/cb?tenant=a" {
			t.Errorf("action = %q", ap.Action)
		}
	})
	t.Run("a wreply sent twice is refused", func(t *testing.T) {
		p := b.get(signInQuery(realm1, reply1, "") + "&wreply=" + url.QueryEscape("https://evil.example/"))
		if p.Status != http.StatusBadRequest || p.Header.Get("Location") != "" {
			t.Errorf("status %d, Location %q", p.Status, p.Header.Get("Location"))
		}
	})
}

func TestPassiveSessionTimeouts(t *testing.T) {
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		remember bool
		steps    []time.Duration // clock offsets of single sign-on attempts
		wantSSO  []bool
	}{
		{"a session ends after 15 idle minutes", false, []time.Duration{14 * time.Minute, 30 * time.Minute}, []bool{true, false}},
		{"each use restarts the idle timeout", false, []time.Duration{10 * time.Minute, 20 * time.Minute, 29 * time.Minute}, []bool{true, true, true}},
		{"a remember-me session survives the idle timeout", true, []time.Duration{2 * time.Hour, 7 * 24 * time.Hour}, []bool{true, true}},
		{"a remember-me session ends after 14 days", true, []time.Duration{13 * 24 * time.Hour, 14*24*time.Hour + time.Minute}, []bool{true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newPassiveServer(t, nil)
			ts.Clock.Set(start)
			b := newBrowser(t, ts.URL, nil)
			parseAutoPost(t, b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", tc.remember))
			for i, off := range tc.steps {
				ts.Clock.Set(start.Add(off))
				p := b.get(signInQuery(realm2, "", ""))
				if sso := !isLoginPage(p); sso != tc.wantSSO[i] {
					t.Errorf("at +%s: single sign-on %v, want %v (status %d)", off, sso, tc.wantSSO[i], p.Status)
				}
			}
		})
	}
	t.Run("the remember-me cookie persists for the remember-me period; the other is a browser-session cookie", func(t *testing.T) {
		ts := newPassiveServer(t, nil)
		for _, remember := range []bool{false, true} {
			b := newBrowser(t, ts.URL, nil)
			p := b.get(signInQuery(realm1, "", ""))
			f := hidden(p.Body)
			form := url.Values{"csrf_token": {f["csrf_token"]}, "return": {f["return"]}, "username": {"alice"}, "password": {"Alice#pw1"}}
			if remember {
				form.Set("remember", "1")
			}
			resp := b.post("/login", form)
			c := findSetCookie(resp.Header, "avouch-session")
			if c == nil {
				t.Fatal("no session cookie")
			}
			want := 0
			if remember {
				want = 14 * 24 * 3600
			}
			if c.MaxAge != want {
				t.Errorf("remember=%v: Max-Age %d, want %d", remember, c.MaxAge, want)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Errorf("cookie %+v must be HttpOnly, SameSite=Lax, Path=/", c)
			}
		}
	})
	t.Run("a stored idle timeout setting is in force without a restart", func(t *testing.T) {
		old := sessionSettingsTTL
		sessionSettingsTTL = 0
		t.Cleanup(func() { sessionSettingsTTL = old })
		ts := newPassiveServer(t, nil)
		ts.Clock.Set(start)
		if err := ts.Store.PutSetting(context.Background(), SettingPrefix+"session_idle_timeout", "2m"); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t, ts.URL, nil)
		parseAutoPost(t, b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", false))
		ts.Clock.Set(start.Add(3 * time.Minute))
		if !isLoginPage(b.get(signInQuery(realm2, "", ""))) {
			t.Error("the session outlived a 2m idle timeout")
		}
	})
}

func findSetCookie(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestLoginCSRF(t *testing.T) {
	ts := newPassiveServer(t, nil)
	other := newBrowser(t, ts.URL, nil)
	otherToken := hidden(other.get(signInQuery(realm1, "", "")).Body)["csrf_token"]
	tests := []struct {
		name  string
		token func(own string) string
		noPre bool
	}{
		{"a login POST without a CSRF token is refused", func(string) string { return "" }, false},
		{"a login POST with a wrong CSRF token is refused", func(own string) string { return own[:len(own)-2] + "xx" }, false},
		{"a login POST with another browser's CSRF token is refused", func(string) string { return otherToken }, false},
		{"a login POST without the pre-session cookie is refused", func(own string) string { return own }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, ts.URL, nil)
			f := hidden(b.get(signInQuery(realm1, "", "")).Body)
			if tc.noPre {
				b.jar, _ = cookiejar.New(nil)
				b.c.Jar = b.jar
			}
			resp := b.post("/login", url.Values{"csrf_token": {tc.token(f["csrf_token"])}, "return": {f["return"]},
				"username": {"alice"}, "password": {"Alice#pw1"}})
			if resp.Status != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q; want 403 and no redirect", resp.Status, resp.Header.Get("Location"))
			}
			if findSetCookie(resp.Header, "avouch-session") != nil {
				t.Error("a session cookie was set")
			}
			if !strings.Contains(resp.Body, authn.MsgFormExpired) || !isLoginPage(page{Body: resp.Body}) {
				t.Errorf("the refusal should show the login form again with a fresh token:\n%s", resp.Body)
			}
		})
	}
	t.Run("a login POST with its own CSRF token is accepted", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		parseAutoPost(t, b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", false))
	})
}

func TestLoginFailuresLookAlike(t *testing.T) {
	ts := newPassiveServer(t, nil)
	tests := []struct{ name, user, password string }{
		{"a wrong password", "alice", "wrong"},
		{"an unknown user", "nobody", "wrong"},
		{"an unknown user store domain", "NOSUCH/alice", "Alice#pw1"},
	}
	var first page
	for i, tc := range tests {
		t.Run(tc.name+" gives the same page as the others", func(t *testing.T) {
			b := newBrowser(t, ts.URL, nil)
			p := b.login(b.get(signInQuery(realm1, "", "")), tc.user, tc.password, false)
			if p.Status != http.StatusOK || !strings.Contains(p.Body, authn.MsgBadCredentials) {
				t.Fatalf("status %d:\n%s", p.Status, p.Body)
			}
			if findSetCookie(p.Header, "avouch-session") != nil {
				t.Error("a failed login set a session cookie")
			}
			// Only the echoed user name and the per-browser token differ.
			norm := strings.ReplaceAll(p.Body, `value="`+html.EscapeString(tc.user)+`"`, `value="USER"`)
			norm = strings.ReplaceAll(norm, hidden(p.Body)["csrf_token"], "TOKEN")
			if i == 0 {
				first = page{Status: p.Status, Body: norm}
			} else if norm != first.Body {
				t.Errorf("the page differs from the wrong-password page:\n%s\n---\n%s", norm, first.Body)
			}
		})
	}
}

func TestLoginPageIsAccessibleAndUnframeable(t *testing.T) {
	ts := newPassiveServer(t, nil)
	p := newBrowser(t, ts.URL, nil).get(signInQuery(realm1, "", ""))
	checks := []struct{ name, want string }{
		{"the page declares its language", `<html lang="en">`},
		{"the user name field has a label", `<label for="username">User name</label>`},
		{"the password field has a label", `<label for="password">Password</label>`},
		{"the remember-me box has a label", `<label for="remember">Keep me signed in for 14 days</label>`},
		{"focus starts in the user name field", `autocomplete="username" autocapitalize="none" spellcheck="false" required value="" autofocus`},
		{"the form works without script (a plain POST)", `<form method="post" action="/login">`},
		{"the page names the relying party", `to continue to <strong>RP One</strong>`},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(p.Body, c.want) {
				t.Errorf("missing %q in:\n%s", c.want, p.Body)
			}
		})
	}
	t.Run("there is no user store choice without secondary stores", func(t *testing.T) {
		if strings.Contains(p.Body, "<select") {
			t.Error("unexpected select")
		}
	})
	t.Run("the page cannot be framed", func(t *testing.T) {
		if p.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("headers %v", p.Header)
		}
	})
	t.Run("the page runs no script", func(t *testing.T) {
		if strings.Contains(p.Body, "<script") || strings.Contains(p.Header.Get("Content-Security-Policy"), "script-src") {
			t.Error("the login page has or allows script")
		}
	})
	t.Run("the pre-session cookie is HttpOnly and SameSite=Lax", func(t *testing.T) {
		c := findSetCookie(p.Header, "avouch-login")
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %+v", c)
		}
	})
	t.Run("after a failed login focus moves to the password and the error is announced", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		f := b.login(b.get(signInQuery(realm1, "", "")), "alice", "wrong", false)
		for _, want := range []string{`role="alert"`, `aria-describedby="login-error"`, `autocomplete="current-password" required autofocus`} {
			if !strings.Contains(f.Body, want) {
				t.Errorf("missing %q", want)
			}
		}
	})
}

func TestPassiveOverTLSSetsSecureHostCookies(t *testing.T) {
	ts := newPassiveServer(t, nil)
	tlsSrv := httptest.NewTLSServer(ts.Handler)
	t.Cleanup(tlsSrv.Close)
	b := newBrowser(t, tlsSrv.URL, tlsSrv.Client())
	p := b.get(signInQuery(realm1, "", ""))
	pre := findSetCookie(p.Header, "__Host-avouch-login")
	if pre == nil || !pre.Secure {
		t.Fatalf("pre-session cookie over TLS: %+v", pre)
	}
	f := hidden(p.Body)
	resp := b.post("/login", url.Values{"csrf_token": {f["csrf_token"]}, "return": {f["return"]}, "username": {"alice"}, "password": {"Alice#pw1"}})
	c := findSetCookie(resp.Header, "__Host-avouch-session")
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("session cookie over TLS: %+v", c)
	}
	ap := parseAutoPost(t, b.get(resp.Header.Get("Location")))
	tok := checkWResult(t, ts, ap.WResult, realm1)
	_ = tok
}

func TestPassiveSignInEdgeCases(t *testing.T) {
	ts := newPassiveServer(t, nil)
	t.Run("a user without an allowed role signs in but gets an access-denied page, not a token", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		p := b.login(b.get(signInQuery(realm1, "", "")), "bob", "Bob#pw1", false)
		if p.Status != http.StatusForbidden || strings.Contains(p.Body, "wresult") {
			t.Errorf("status %d:\n%s", p.Status, p.Body)
		}
	})
	t.Run("the ADFS path /adfs/ls/ signs in the same way", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		p := b.get("/adfs/ls/?wa=wsignin1.0&wtrealm=" + url.QueryEscape(realm1))
		if f := hidden(p.Body); !strings.HasPrefix(f["return"], "/adfs/ls/?") {
			t.Fatalf("return = %q", f["return"])
		}
		checkWResult(t, ts, parseAutoPost(t, b.login(p, "alice", "Alice#pw1", false)).WResult, realm1)
	})
	t.Run("a POSTed sign-in request works and continues as a GET after login", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		p := b.post("/passivests", url.Values{"wa": {"wsignin1.0"}, "wtrealm": {realm1}, "wctx": {"posted"}})
		ap := parseAutoPost(t, b.login(p, "alice", "Alice#pw1", false))
		if ap.WCtx != "posted" {
			t.Errorf("wctx = %q", ap.WCtx)
		}
	})
	t.Run("wfresh=0 asks for the password again even with a session, once", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		parseAutoPost(t, b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", false))
		p := b.get(signInQuery(realm1, "", "") + "&wfresh=0")
		parseAutoPost(t, b.login(p, "alice", "Alice#pw1", false))
	})
	t.Run("a disabled user loses single sign-on", func(t *testing.T) {
		ts.addUser(t, "carol", "Carol#pw1", false, []string{"staff"}, nil)
		b := newBrowser(t, ts.URL, nil)
		parseAutoPost(t, b.login(b.get(signInQuery(realm1, "", "")), "carol", "Carol#pw1", false))
		if err := ts.Store.UpdateUser(context.Background(), "carol", func(u storage.User) (storage.User, error) {
			u.Disabled = true
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
		if !isLoginPage(b.get(signInQuery(realm2, "", ""))) {
			t.Error("a disabled user still got a token through the session")
		}
	})
	t.Run("missing wtrealm, unknown wa and wreqptr are refused", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		for _, q := range []string{"?wa=wsignin1.0", "?wa=wattr1.0&wtrealm=" + realm1, "", "?wa=wsignin1.0&wtrealm=" + realm1 + "&wreqptr=https://evil.example/rst"} {
			if p := b.get("/passivests" + q); p.Status != http.StatusBadRequest {
				t.Errorf("%q: status %d", q, p.Status)
			}
		}
	})
	t.Run("a request that cannot succeed is refused before the password is asked for", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		for name, wreq := range map[string]string{
			"an unsupported token type":     `<t:RequestSecurityToken xmlns:t="http://docs.oasis-open.org/ws-sx/ws-trust/200512"><t:TokenType>urn:ietf:params:oauth:token-type:jwt</t:TokenType></t:RequestSecurityToken>`,
			"an unsupported claims dialect": `<t:RequestSecurityToken xmlns:t="http://docs.oasis-open.org/ws-sx/ws-trust/200512"><t:Claims Dialect="urn:x"/></t:RequestSecurityToken>`,
			"another realm in AppliesTo":    `<t:RequestSecurityToken xmlns:t="http://docs.oasis-open.org/ws-sx/ws-trust/200512"><wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference xmlns:wsa="http://www.w3.org/2005/08/addressing"><wsa:Address>urn:rp:other</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></t:RequestSecurityToken>`,
		} {
			p := b.get(signInQuery(realm1, "", "") + "&wreq=" + url.QueryEscape(wreq))
			if p.Status != http.StatusBadRequest || isLoginPage(p) {
				t.Errorf("%s: status %d, login page %v", name, p.Status, isLoginPage(p))
			}
		}
	})
	t.Run("a HEAD request through a live session issues no token", func(t *testing.T) {
		b := newBrowser(t, ts.URL, nil)
		parseAutoPost(t, b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", false))
		req, _ := http.NewRequest(http.MethodHead, ts.URL+signInQuery(realm1, "", ""), nil)
		if p := b.do(req); p.Status != http.StatusMethodNotAllowed {
			t.Errorf("HEAD: status %d", p.Status)
		}
	})
	t.Run("a login return URL off this site is never followed", func(t *testing.T) {
		for _, rt := range []string{"https://evil.example/", "//evil.example/", `/\evil.example/`, "/healthz", "/passivests/../x"} {
			b := newBrowser(t, ts.URL, nil)
			f := hidden(b.get(signInQuery(realm1, "", "")).Body)
			resp := b.post("/login", url.Values{"csrf_token": {f["csrf_token"]}, "return": {rt}, "username": {"alice"}, "password": {"Alice#pw1"}})
			if resp.Status != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(resp.Body, "You are signed in") {
				t.Errorf("return %q: status %d, Location %q", rt, resp.Status, resp.Header.Get("Location"))
			}
		}
	})
}

func TestPassiveSignOutContinuation(t *testing.T) {
	ts := newPassiveServer(t, nil)
	tests := []struct {
		name      string
		query     string
		signedIn  bool
		wantGoTo  string
		wantCalls int
	}{
		{"a reply URL of the session's relying party is followed", "wreply=" + url.QueryEscape(reply1), true, reply1, 1},
		{"an unregistered wreply leaves the browser on the signed-out page", "wreply=" + url.QueryEscape("https://evil.example/"), true, "", 1},
		{"a registered URL of the SP named by wtrealm is followed without a session", "wtrealm=" + url.QueryEscape(realm2) + "&wreply=" + url.QueryEscape(signout2), false, signout2, 0},
		{"without a session or wtrealm no wreply is followed", "wreply=" + url.QueryEscape(reply1), false, "", 0},
		{"wsignoutcleanup1.0 ends the session too", "", true, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, ts.URL, nil)
			if tc.signedIn {
				parseAutoPost(t, b.login(b.get(signInQuery(realm1, "", "")), "alice", "Alice#pw1", false))
			}
			wa := "wsignout1.0"
			if tc.query == "" {
				wa = "wsignoutcleanup1.0"
			}
			p := b.get("/passivests?wa=" + wa + "&" + tc.query)
			if p.Status != http.StatusOK || p.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q", p.Status, p.Header.Get("Location"))
			}
			refresh := regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]*)">`).FindStringSubmatch(p.Body)
			switch {
			case tc.wantGoTo == "" && refresh != nil:
				t.Errorf("the page continues to %q", refresh[1])
			case tc.wantGoTo != "" && (refresh == nil || html.UnescapeString(refresh[1]) != tc.wantGoTo):
				t.Errorf("the page does not continue to %q:\n%s", tc.wantGoTo, p.Body)
			}
			if n := strings.Count(p.Body, "wa=wsignoutcleanup1.0"); n != tc.wantCalls {
				t.Errorf("%d front-channel calls, want %d", n, tc.wantCalls)
			}
			if tc.signedIn && !isLoginPage(b.get(signInQuery(realm1, "", ""))) {
				t.Error("the session survived")
			}
		})
	}
}

func TestPassiveEncryptedToken(t *testing.T) {
	sp := &registry.ServiceProvider{Name: "Encrypted RP", Passive: &registry.Passive{Realm: "urn:rp:enc",
		ReplyURLs: []string{"https://enc.example/cb"}, Token: registry.Token{TokenType: "saml2.0", Encrypt: true, CertAlias: "rp-cert"}}}
	rs := newRPServer(t, sp)
	b := newBrowser(t, rs.URL, nil)
	ap := parseAutoPost(t, b.login(b.get(signInQuery("urn:rp:enc", "", "")), "alice", "Alice#pw1", false))
	doc, err := safexml.Parse([]byte(ap.WResult), safexml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ed := doc.FindElement("//RequestedSecurityToken/EncryptedAssertion/EncryptedData")
	if ed == nil {
		t.Fatalf("the token for an RP with encryption on is not an EncryptedAssertion:\n%s", ap.WResult)
	}
	plain, err := xmlenc.Decrypt(ed, rs.key, xmlenc.Allowed{})
	if err != nil {
		t.Fatal(err)
	}
	pd, err := safexml.Parse(plain, safexml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := saml.Verify(pd.Root(), saml.VerifyOptions{Certs: []*x509.Certificate{rs.SigningKey().Cert}})
	if err != nil || !slices.Contains(a.Audiences, "urn:rp:enc") {
		t.Fatalf("decrypted assertion: %v %+v", err, a)
	}
}
