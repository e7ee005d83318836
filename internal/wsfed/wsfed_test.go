package wsfed

import (
	"bytes"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/authn"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/sts"
)

func sp(replies ...string) *registry.ServiceProvider {
	return &registry.ServiceProvider{Name: "RP", Passive: &registry.Passive{Realm: "urn:rp", ReplyURLs: replies}}
}

func TestResolveReply(t *testing.T) {
	const reg = "https://rp.example/signin"
	s := sp(reg, "https://rp.example/other?tenant=1")
	tests := []struct {
		name   string
		wreply string
		given  bool
		want   string
	}{
		{"no wreply posts to the first registered URL", "", false, reg},
		{"the exact registered URL is accepted", reg, true, reg},
		{"the second registered URL, query included, is accepted", "https://rp.example/other?tenant=1", true, "https://rp.example/other?tenant=1"},
		{"a scheme-relative URL is refused", "//evil.example", true, ""},
		{"user info before another host is refused", "https://rp.example@evil.example", true, ""},
		{"backslashes after the scheme are refused", `https:\\evil.example`, true, ""},
		{"a slash-backslash path is refused", `/\evil.example`, true, ""},
		{"an upper-case host is refused", "https://RP.example/signin", true, ""},
		{"an upper-case scheme is refused", "HTTPS://rp.example/signin", true, ""},
		{"percent-encoding is not decoded", "%2F%2Fevil.example", true, ""},
		{"an encoded slash in the registered path is refused", "https://rp.example%2Fsignin", true, ""},
		{"javascript: is refused", "javascript:alert(1)", true, ""},
		{"data: is refused", "data:text/html;base64,PHNjcmlwdD4=", true, ""},
		{"another path on the right host is refused", "https://rp.example/evil", true, ""},
		{"the registered URL plus a suffix is refused", reg + "x", true, ""},
		{"the registered URL plus a slash is refused", reg + "/", true, ""},
		{"the registered URL plus a query is refused", reg + "?a=1", true, ""},
		{"the registered URL with a trailing space is refused", reg + " ", true, ""},
		{"the registered URL with a trailing newline is refused", reg + "\n", true, ""},
		{"the registered URL with a trailing CRLF is refused", reg + "\r\n", true, ""},
		{"the registered URL with a NUL is refused", reg + "\x00", true, ""},
		{"a prefix of the registered URL is refused", "https://rp.example/sign", true, ""},
		{"the registered query's URL without the query is refused", "https://rp.example/other", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveReply(s, tc.wreply, tc.given)
			if tc.want == "" {
				if !errors.Is(err, ErrReplyNotRegistered) || got != "" {
					t.Errorf("got %q, %v; want refusal", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("an SP without passive settings has no reply URL", func(t *testing.T) {
		if _, err := ResolveReply(&registry.ServiceProvider{Name: "x"}, "", false); err == nil {
			t.Error("accepted")
		}
	})
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		name, method, query, body string
		want                      Params
		wantErr                   string
	}{
		{"a GET request's parameters are read from the query", "GET", "wa=wsignin1.0&wtrealm=urn%3Arp&wreply=https%3A%2F%2Frp%2F&wctx=a%26b&whr=LDAP&wfresh=5&wct=2026-11-22T10%3A00%3A00Z", "",
			Params{Action: "wsignin1.0", Realm: "urn:rp", Reply: "https://rp/", ReplyGiven: true, Context: "a&b", HomeRealm: "LDAP", Fresh: "5", CurrentTime: "2026-11-22T10:00:00Z"}, ""},
		{"a POST request's parameters are read from the body", "POST", "", "wa=wsignin1.0&wtrealm=urn%3Arp",
			Params{Action: "wsignin1.0", Realm: "urn:rp"}, ""},
		{"an empty wreply counts as absent", "GET", "wa=wsignin1.0&wtrealm=x&wreply=", "", Params{Action: "wsignin1.0", Realm: "x"}, ""},
		{"a duplicated wreply is refused", "GET", "wa=wsignin1.0&wreply=a&wreply=b", "", Params{}, "more than once"},
		{"a wtrealm in both query and body is refused", "POST", "wtrealm=a", "wa=wsignin1.0&wtrealm=b", Params{}, "more than once"},
		{"an oversized wctx is refused", "GET", "wa=wsignin1.0&wctx=" + strings.Repeat("a", maxParam+1), "", Params{}, "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *http.Request
			if tc.method == "POST" {
				r = httptest.NewRequest("POST", "/passivests?"+tc.query, strings.NewReader(tc.body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest("GET", "/passivests?"+tc.query, nil)
			}
			p, err := ParseParams(httptest.NewRecorder(), r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || *p != tc.want {
				t.Errorf("got %+v, %v\nwant %+v", p, err, tc.want)
			}
		})
	}
}

func rst(ns, children string) string {
	return `<t:RequestSecurityToken xmlns:t="` + ns + `">` + children + `</t:RequestSecurityToken>`
}

func TestParseWreq(t *testing.T) {
	tests := []struct {
		name    string
		wreq    string
		want    TokenRequest
		wantErr bool
	}{
		{"a WS-Trust 1.3 request for SAML 2.0 is read", rst(NSTrust13, `<t:RequestType>`+NSTrust13+`/Issue</t:RequestType><t:TokenType>urn:oasis:names:tc:SAML:2.0:assertion</t:TokenType>`),
			TokenRequest{TokenTypeURI: sts.TokenSAML20, TokenType: sts.TokenSAML20}, false},
		{"a 2005/02 request with the SAML 1.1 profile URI is canonicalised", rst(NSTrust2005, `<t:TokenType>`+TokenProfileSAML11+`</t:TokenType>`),
			TokenRequest{TokenTypeURI: TokenProfileSAML11, TokenType: sts.TokenSAML11}, false},
		{"a WS-Trust 1.4 request is read", rst(NSTrust14, `<t:TokenType>`+TokenProfileSAML20+`</t:TokenType>`),
			TokenRequest{TokenTypeURI: TokenProfileSAML20, TokenType: sts.TokenSAML20}, false},
		{"claims and AppliesTo are read", rst(NSTrust13, `<wsp:AppliesTo xmlns:wsp="`+NSPolicy2004+`"><wsa:EndpointReference xmlns:wsa="`+NSWSA2005+`"><wsa:Address> urn:rp </wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`+
			`<t:Claims Dialect="http://schemas.xmlsoap.org/ws/2005/05/identity"><i:ClaimType xmlns:i="http://schemas.xmlsoap.org/ws/2005/05/identity" Uri="urn:c1"/><i:ClaimType xmlns:i="http://schemas.xmlsoap.org/ws/2005/05/identity" Uri="urn:c2" Optional="true"/></t:Claims>`),
			TokenRequest{AppliesTo: "urn:rp", ClaimsDialect: "http://schemas.xmlsoap.org/ws/2005/05/identity",
				Claims: []sts.ClaimRequest{{URI: "urn:c1"}, {URI: "urn:c2", Optional: true}}}, false},
		{"an unknown token type passes through for the core to refuse", rst(NSTrust13, `<t:TokenType>urn:jwt</t:TokenType>`),
			TokenRequest{TokenTypeURI: "urn:jwt", TokenType: "urn:jwt"}, false},
		{"a DOCTYPE is refused", `<!DOCTYPE t:RequestSecurityToken [<!ENTITY x "y">]>` + rst(NSTrust13, ""), TokenRequest{}, true},
		{"a root other than RequestSecurityToken is refused", `<t:RequestSecurityTokenResponse xmlns:t="` + NSTrust13 + `"/>`, TokenRequest{}, true},
		{"a RequestSecurityToken in a foreign namespace is refused", rst("urn:other", ""), TokenRequest{}, true},
		{"two TokenTypes are refused", rst(NSTrust13, `<t:TokenType>a</t:TokenType><t:TokenType>b</t:TokenType>`), TokenRequest{}, true},
		{"Claims without a Dialect are refused", rst(NSTrust13, `<t:Claims/>`), TokenRequest{}, true},
		{"an AppliesTo without an address is refused", rst(NSTrust13, `<wsp:AppliesTo xmlns:wsp="`+NSPolicy2004+`"/>`), TokenRequest{}, true},
		{"malformed XML is refused", `<t:RequestSecurityToken`, TokenRequest{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWreq(tc.wreq)
			if tc.wantErr {
				var re *RequestError
				if !errors.As(err, &re) {
					t.Errorf("err = %v, want a RequestError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.TokenTypeURI != tc.want.TokenTypeURI || got.TokenType != tc.want.TokenType || got.AppliesTo != tc.want.AppliesTo ||
				got.ClaimsDialect != tc.want.ClaimsDialect || len(got.Claims) != len(tc.want.Claims) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			for i := range got.Claims {
				if got.Claims[i] != tc.want.Claims[i] {
					t.Errorf("claim %d = %+v, want %+v", i, got.Claims[i], tc.want.Claims[i])
				}
			}
		})
	}
}

// token is a stand-in for a signed assertion: any bytes the core returns.
var token = &sts.Token{ID: "_a1", Type: sts.TokenSAML11,
	XML:     []byte(`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" AssertionID="_a1">x&#xD;&amp;y</saml:Assertion>`),
	Created: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), Expires: time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)}

func TestWResult(t *testing.T) {
	const realm = "https://rp.example/?a=1&b=<2>"
	out := WResult(token, "", realm)
	doc, err := safexml.Parse(out, safexml.Limits{})
	if err != nil {
		t.Fatalf("wresult is not well-formed: %v\n%s", err, out)
	}
	root := doc.Root()
	t.Run("the root is a WS-Trust 2005/02 RSTR", func(t *testing.T) {
		if root.Tag != "RequestSecurityTokenResponse" || root.NamespaceURI() != NSTrust2005 {
			t.Errorf("root {%s}%s", root.NamespaceURI(), root.Tag)
		}
	})
	t.Run("children come in ADFS's order", func(t *testing.T) {
		var names []string
		for _, c := range root.ChildElements() {
			names = append(names, c.Tag)
		}
		if got := strings.Join(names, ","); got != "Lifetime,AppliesTo,RequestedSecurityToken,TokenType,RequestType,KeyType" {
			t.Errorf("children %s", got)
		}
	})
	t.Run("AppliesTo is in the WS-Policy 2004/09 namespace and names the realm", func(t *testing.T) {
		at := root.SelectElement("AppliesTo")
		addr := at.FindElement("EndpointReference/Address")
		if at.NamespaceURI() != NSPolicy2004 || addr == nil || addr.NamespaceURI() != NSWSA2005 || safexml.Text(addr) != realm {
			t.Errorf("AppliesTo %s / %v", at.NamespaceURI(), addr)
		}
	})
	t.Run("the token bytes are embedded verbatim as the first child", func(t *testing.T) {
		if !bytes.Contains(out, append([]byte(`<t:RequestedSecurityToken>`), append(token.XML, []byte(`</t:RequestedSecurityToken>`)...)...)) {
			t.Error("token bytes changed or surrounded by whitespace")
		}
	})
	t.Run("Lifetime carries the token's times in UTC with Z", func(t *testing.T) {
		lt := root.SelectElement("Lifetime")
		if c, e := lt.SelectElement("Created"), lt.SelectElement("Expires"); c.Text() != "2026-11-22T10:00:00.000Z" || e.Text() != "2026-11-22T11:00:00.000Z" || c.NamespaceURI() != NSWSU {
			t.Errorf("lifetime %s..%s", c.Text(), e.Text())
		}
	})
	t.Run("TokenType is the canonical type unless the request spelled it", func(t *testing.T) {
		if tt := root.SelectElement("TokenType").Text(); tt != sts.TokenSAML11 {
			t.Errorf("TokenType %s", tt)
		}
		d2, _ := safexml.Parse(WResult(token, TokenProfileSAML11, realm), safexml.Limits{})
		if tt := d2.Root().SelectElement("TokenType").Text(); tt != TokenProfileSAML11 {
			t.Errorf("echoed TokenType %s", tt)
		}
	})
	t.Run("the key type is the 2005/02 bearer NoProofKey", func(t *testing.T) {
		if kt := root.SelectElement("KeyType").Text(); kt != KeyTypeNoProofKey {
			t.Errorf("KeyType %s", kt)
		}
	})
}

func TestAutoPostPage(t *testing.T) {
	result := WResult(token, "", "urn:rp")
	w := httptest.NewRecorder()
	if err := WriteAutoPost(w, &Response{Reply: "https://rp.example/cb?x=1&y=2", Result: result, Context: `ctx"&<`, For: "RP <One>"}, "avouch"); err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	field := func(name string) (string, bool) {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			return "", false
		}
		return html.UnescapeString(m[1]), true
	}
	t.Run("wresult survives HTML escaping byte for byte", func(t *testing.T) {
		if got, _ := field("wresult"); got != string(result) {
			t.Errorf("wresult after unescaping differs:\n%s\n%s", got, result)
		}
	})
	t.Run("wa and wctx are posted, wctx untouched", func(t *testing.T) {
		if wa, _ := field("wa"); wa != "wsignin1.0" {
			t.Errorf("wa %q", wa)
		}
		if ctx, _ := field("wctx"); ctx != `ctx"&<` {
			t.Errorf("wctx %q", ctx)
		}
	})
	t.Run("the form posts to the reply URL", func(t *testing.T) {
		if !strings.Contains(body, `action="https://rp.example/cb?x=1&amp;y=2"`) {
			t.Errorf("action:\n%s", body)
		}
	})
	t.Run("the inline script is the one the CSP allows by hash, and nothing else may run", func(t *testing.T) {
		m := regexp.MustCompile(`<script>(.*?)</script>`).FindAllStringSubmatch(body, -1)
		csp := w.Header().Get("Content-Security-Policy")
		if len(m) != 1 || !strings.Contains(csp, "script-src "+authn.CSPHash(m[0][1])) || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("scripts %v, CSP %q", m, csp)
		}
		if !strings.Contains(csp, "frame-ancestors 'none'") || w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("the page can be framed: %q", csp)
		}
	})
	t.Run("the inline style is the one the CSP allows by hash", func(t *testing.T) {
		m := regexp.MustCompile(`<style>(.*?)</style>`).FindStringSubmatch(body)
		if m == nil || !strings.Contains(w.Header().Get("Content-Security-Policy"), "style-src "+authn.CSPHash(m[1])) {
			t.Error("the page's style would be blocked by its own CSP")
		}
	})
	t.Run("without script a Continue button submits the form", func(t *testing.T) {
		if !regexp.MustCompile(`(?s)<noscript>.*<button type="submit">Continue</button></noscript>\s*</form>`).MatchString(body) {
			t.Errorf("no noscript submit button:\n%s", body)
		}
	})
	t.Run("an absent wctx is not posted", func(t *testing.T) {
		w := httptest.NewRecorder()
		_ = WriteAutoPost(w, &Response{Reply: "https://rp.example/cb", Result: result}, "avouch")
		if strings.Contains(w.Body.String(), `name="wctx"`) {
			t.Error("wctx posted")
		}
	})
}

func TestTokenTypeAndFreshness(t *testing.T) {
	plain := sp("https://rp/")
	saml2 := sp("https://rp/")
	saml2.Passive.Token.TokenType = "saml2.0"
	for _, tc := range []struct {
		name       string
		tr         TokenRequest
		sp         *registry.ServiceProvider
		want, echo string
	}{
		{"with nothing asked the token is SAML 1.1", TokenRequest{}, plain, sts.TokenSAML11, ""},
		{"the SP's passive token type is used when wreq names none", TokenRequest{}, saml2, sts.TokenSAML20, ""},
		{"wreq's token type wins and is echoed as spelled", TokenRequest{TokenTypeURI: TokenProfileSAML11, TokenType: sts.TokenSAML11}, saml2, sts.TokenSAML11, TokenProfileSAML11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, echo, err := chooseTokenType(&tc.tr, tc.sp)
			if err != nil || got != tc.want || echo != tc.echo {
				t.Errorf("got %s %q %v", got, echo, err)
			}
		})
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	se := &authn.Session{AuthnInstant: now.Add(-10 * time.Minute)}
	for _, tc := range []struct {
		wfresh string
		want   bool
	}{{"", true}, {"0", false}, {"5", false}, {"10", true}, {"60", true}, {"junk", true}, {"-1", true}} {
		t.Run("wfresh="+tc.wfresh+" with a 10-minute-old sign-in", func(t *testing.T) {
			if got := fresh(se, tc.wfresh, now); got != tc.want {
				t.Errorf("fresh = %v, want %v", got, tc.want)
			}
		})
	}
}

type realms map[string]*registry.ServiceProvider

func (r realms) MatchRealm(realm string) (*registry.ServiceProvider, error) {
	if sp, ok := r[realm]; ok {
		return sp, nil
	}
	return nil, registry.ErrNoMatch
}

func TestFrontChannelLogout(t *testing.T) {
	withSignOut := sp("https://a.example/cb", "https://a.example/cb2?t=1")
	withSignOut.Passive.SignOutURL = "https://a.example/signout"
	bogus := sp("https://b.example/cb", "https://b.example/cb2")
	bogus.Passive.SignOutURL = "javascript:alert(1)"
	h := &Handler{RPs: realms{"urn:a": withSignOut, "urn:b": bogus, "urn:c": sp("https://c.example/cb", "https://c.example/cb2?t=1")}}
	tests := []struct {
		name string
		p    authn.Participant
		want string
	}{
		{"the SP's sign-out URL is used when set", authn.Participant{ID: "urn:a", Reply: "https://a.example/cb"}, "https://a.example/signout?wa=wsignoutcleanup1.0"},
		{"a sign-out URL that is not http(s) falls back to the reply URL", authn.Participant{ID: "urn:b", Reply: "https://b.example/cb2"}, "https://b.example/cb2?wa=wsignoutcleanup1.0"},
		{"the reply URL the token went to is used, its query kept", authn.Participant{ID: "urn:c", Reply: "https://c.example/cb2?t=1"}, "https://c.example/cb2?t=1&wa=wsignoutcleanup1.0"},
		{"a reply URL no longer registered falls back to the first registered", authn.Participant{ID: "urn:c", Reply: "https://old.example/"}, "https://c.example/cb?wa=wsignoutcleanup1.0"},
		{"a relying party removed since is skipped", authn.Participant{ID: "urn:gone"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, ok := h.FrontChannelLogout(tc.p)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("got %q %v, want %q", got, ok, tc.want)
			}
		})
	}
}

func TestErrorPages(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"a refused request is 400", refuse("x"), 400},
		{"an invalid request from the core is 400", &sts.Error{Code: sts.CodeInvalidRequest, Msg: "m"}, 400},
		{"a policy refusal from the core is 403", &sts.Error{Code: sts.CodeRequestFailed, Msg: "m"}, 403},
		{"an unavailable dependency is 503", &sts.Error{Code: sts.CodeUnavailable, Msg: "m"}, 503},
		{"anything else is 500 without its cause", errors.New("database password is hunter2"), 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, msg := pageFor(tc.err)
			if status != tc.status || strings.Contains(msg, "hunter2") {
				t.Errorf("status %d msg %q", status, msg)
			}
		})
	}
}

func TestReturnToDropsWfresh(t *testing.T) {
	got := returnTo("/passivests", &Params{Action: ActionSignIn, Realm: "urn:rp", Context: "c", Fresh: "0"})
	u, err := url.Parse(got)
	if err != nil || u.Path != "/passivests" || u.Query().Get("wfresh") != "" || u.Query().Get("wctx") != "c" || u.Query().Get("wtrealm") != "urn:rp" {
		t.Errorf("returnTo = %q", got)
	}
}
