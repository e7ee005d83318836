package hostile

import (
	"bufio"
	"context"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/registry"
)

// Open redirects: the passive STS posts a token to wreply, so a wreply the
// relying party did not register sends the user's token to the attacker;
// the sign-out page and the login form redirect too. testdata/wreply.tsv
// holds the variants that have fooled identity providers (prefix matches,
// user info, backslashes, encodings, case folding, control characters).

const (
	webRealm    = "urn:rp:web"
	webReply    = "https://rp.example/app/"
	webReply2   = "https://rp.example/app/other?x=1"
	webSignOut  = "https://rp.example/signout"
	notRegister = "not registered"
)

type redirectCase struct {
	name, kind, value, expect string
}

func loadRedirectCases(t *testing.T) []redirectCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "wreply.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []redirectCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) != 4 {
			t.Fatalf("wreply.tsv:%d: %d fields, want 4", n, len(fs))
		}
		v, err := strconv.Unquote(`"` + fs[2] + `"`)
		if err != nil {
			t.Fatalf("wreply.tsv:%d: value %q: %v", n, fs[2], err)
		}
		out = append(out, redirectCase{fs[0], fs[1], v, fs[3]})
	}
	return out
}

// browser is a client with cookies that does not follow redirects, so the
// test sees every Location the server sends.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, hc *http.Client, u string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, hc, req)
}

// signIn fills in the login form as alice; returnTo is sent as the form's
// hidden return field, exactly as an attacker's copy of the form would.
func (h *harness) signIn(t *testing.T, hc *http.Client, returnTo string) reply {
	t.Helper()
	page := get(t, hc, h.URL+"/login")
	csrf := between(page.Body, `name="csrf_token" value="`, `"`)
	if csrf == "" {
		t.Fatalf("no CSRF token on the login page: %.300s", page.Body)
	}
	form := url.Values{"csrf_token": {csrf}, "username": {"alice"}, "password": {alicePassword}, "return": {returnTo}}
	req, err := http.NewRequest(http.MethodPost, h.URL+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, hc, req)
}

func signInURL(h *harness, kind, value string) string {
	q := "wa=wsignin1.0&wtrealm=" + url.QueryEscape(webRealm)
	switch {
	case kind == "signin-twice":
		q += "&wreply=" + url.QueryEscape(webReply) + "&wreply=" + url.QueryEscape(value)
	case value != "":
		q += "&wreply=" + url.QueryEscape(value)
	}
	return h.URL + "/passivests?" + q
}

// TestOpenRedirectsAreRefused runs testdata/wreply.tsv against /passivests
// and /login.
func TestOpenRedirectsAreRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addUser(t, "alice", alicePassword, false, "admin")
	if err := h.Registry.Put(context.Background(), &registry.ServiceProvider{Name: "Web app",
		Passive: &registry.Passive{Realm: webRealm, ReplyURLs: []string{webReply, webReply2}, SignOutURL: webSignOut}}); err != nil {
		t.Fatal(err)
	}
	signedIn := browser(t)
	if r := h.signIn(t, signedIn, ""); r.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %.300s", r.Status, r.Body)
	}
	noRedirect := func(t *testing.T, r reply) {
		t.Helper()
		if loc := r.Header.Get("Location"); loc != "" {
			t.Errorf("redirects to %q", loc)
		}
	}
	for _, c := range loadRedirectCases(t) {
		t.Run(c.name, func(t *testing.T) {
			switch c.kind {
			case "signin", "signin-twice":
				anon := get(t, browser(t), signInURL(h, c.kind, c.value))
				withSession := get(t, signedIn, signInURL(h, c.kind, c.value))
				noRedirect(t, anon)
				noRedirect(t, withSession)
				if c.expect == "refused" {
					// Refused before the login page: nobody types a password
					// for a request whose token would go elsewhere.
					if anon.Status != http.StatusBadRequest || strings.Contains(anon.Body, `name="password"`) {
						t.Errorf("without a session: %d %.300s", anon.Status, anon.Body)
					}
					if withSession.Status != http.StatusBadRequest || strings.Contains(withSession.Body, "wresult") {
						t.Errorf("with a session: %d, a token may have left: %.300s", withSession.Status, withSession.Body)
					}
					if !strings.Contains(anon.Body, notRegister) && !strings.Contains(anon.Body, "more than once") {
						t.Errorf("the refusal does not say why: %.300s", anon.Body)
					}
					return
				}
				want := c.value
				if want == "" {
					want = webReply
				}
				if anon.Status != http.StatusOK || !strings.Contains(anon.Body, `name="password"`) {
					t.Errorf("without a session, no login page: %d %.300s", anon.Status, anon.Body)
				}
				if withSession.Status != http.StatusOK || !strings.Contains(withSession.Body, `action="`+html.EscapeString(want)+`"`) ||
					!strings.Contains(withSession.Body, "wresult") {
					t.Errorf("with a session, no token posted to %s: %d %.500s", want, withSession.Status, withSession.Body)
				}
			case "signout":
				hc := browser(t)
				h.signIn(t, hc, "")
				r := get(t, hc, h.URL+"/passivests?wa=wsignout1.0&wtrealm="+url.QueryEscape(webRealm)+"&wreply="+url.QueryEscape(c.value))
				noRedirect(t, r)
				mentioned := strings.Contains(r.Body, html.EscapeString(c.value))
				if r.Status != http.StatusOK || mentioned != (c.expect == "accepted") {
					t.Errorf("status %d, continues to %q: %v, want %v: %.500s", r.Status, c.value, mentioned, c.expect == "accepted", r.Body)
				}
			case "return":
				r := h.signIn(t, browser(t), c.value)
				loc := r.Header.Get("Location")
				if c.expect == "accepted" {
					if r.Status != http.StatusSeeOther || loc != c.value {
						t.Errorf("status %d, Location %q, want 303 to %q", r.Status, loc, c.value)
					}
					return
				}
				if r.Status != http.StatusOK || loc != "" {
					t.Errorf("status %d, Location %q: want the signed-in page, no redirect", r.Status, loc)
				}
			default:
				t.Fatalf("test bug: kind %q", c.kind)
			}
		})
	}
}
