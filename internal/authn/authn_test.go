package authn

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

// fakeDirectory knows alice/right in PRIMARY and carol/right in LDAP1, and
// records the login names it was asked about.
type fakeDirectory struct {
	mu      sync.Mutex
	domains []string
	logins  []string
	gone    map[string]bool
}

func (d *fakeDirectory) VerifyPassword(_ context.Context, login, password string) (*identity.Principal, error) {
	d.mu.Lock()
	d.logins = append(d.logins, login)
	d.mu.Unlock()
	domain, name := identity.SplitDomain(login)
	switch {
	case domain == identity.PrimaryDomain && name == "alice" && password == "right":
		return &identity.Principal{Name: "alice", Domain: domain, Roles: []string{"staff"}}, nil
	case domain == "LDAP1" && name == "carol" && password == "right":
		return &identity.Principal{Name: "carol", Domain: domain}, nil
	case name == "down":
		return nil, identity.ErrStoreUnavailable
	}
	return nil, identity.ErrInvalidCredentials
}

func (d *fakeDirectory) Lookup(_ context.Context, domain, name string) (*identity.Principal, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone[name] {
		return nil, identity.ErrInvalidCredentials
	}
	return &identity.Principal{Name: name, Domain: domain}, nil
}

func (d *fakeDirectory) Domains() []string { return d.domains }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fakeProtocol signs participants out at https://<ID>/cleanup, except
// those whose ID starts with "gone".
type fakeProtocol struct{}

func (fakeProtocol) FrontChannelLogout(p Participant) (string, string, bool) {
	if strings.HasPrefix(p.ID, "gone") {
		return "", "", false
	}
	return "RP " + p.ID, "https://" + p.ID + "/cleanup?x=1&y=2", true
}

type env struct {
	svc   *Service
	store *sqlite.Store
	dir   *fakeDirectory
	clock *fakeClock
	mux   *http.ServeMux
}

func newEnv(t *testing.T, mutate func(*Options)) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{store: st, dir: &fakeDirectory{gone: map[string]bool{}}, clock: &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}}
	o := Options{Sessions: st, Directory: e.dir, Now: e.clock.Now, Audit: st}
	if mutate != nil {
		mutate(&o)
	}
	e.svc = New(o)
	e.svc.RegisterProtocol("fake", fakeProtocol{}, "/proto")
	e.mux = http.NewServeMux()
	e.mux.HandleFunc("/login", e.svc.ServeLogin)
	// /proto shows the login page without a session, else "hello NAME".
	e.mux.HandleFunc("/proto", func(w http.ResponseWriter, r *http.Request) {
		se, err := e.svc.Current(r)
		if err != nil {
			t.Errorf("Current: %v", err)
		}
		if se == nil {
			e.svc.ShowLogin(w, r, LoginRequest{ReturnTo: r.URL.RequestURI(), For: "Proto RP", DomainHint: r.URL.Query().Get("hint")})
			return
		}
		if id := r.URL.Query().Get("rp"); id != "" {
			if err := e.svc.AddParticipant(r.Context(), se, Participant{Protocol: "fake", ID: id, Reply: "https://" + id + "/"}); err != nil {
				t.Errorf("AddParticipant: %v", err)
			}
		}
		_, _ = io.WriteString(w, "hello "+se.User())
	})
	e.mux.HandleFunc("/out", func(w http.ResponseWriter, r *http.Request) {
		e.svc.SignOut(w, r, func(se *Session) string { return r.URL.Query().Get("next") })
	})
	return e
}

// client is a browser with a cookie jar that does not follow redirects.
type client struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func (e *env) browser(t *testing.T, useTLS bool) *client {
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(e.mux)
	} else {
		srv = httptest.NewServer(e.mux)
	}
	t.Cleanup(srv.Close)
	c := srv.Client()
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{t: t, srv: srv, c: c}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path string, form url.Values) resp {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, string(b)}
}

var fieldRE = regexp.MustCompile(`name="(csrf_token|return)" value="([^"]*)"`)

func fields(body string) map[string]string {
	out := map[string]string{}
	for _, m := range fieldRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// signIn fills in the login form (returning to /proto) and returns the
// response to its POST.
func (c *client) signIn(user, password string, extra url.Values) resp {
	c.t.Helper()
	f := fields(c.do("GET", "/login?return=%2Fproto", nil).body)
	form := url.Values{"csrf_token": {f["csrf_token"]}, "return": {f["return"]}, "username": {user}, "password": {password}}
	for k, v := range extra {
		form[k] = v
	}
	return c.do("POST", "/login", form)
}

func setCookie(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestLoginStartsASessionAndReturns(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser(t, false)
	r := c.signIn("alice", "right", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/proto" {
		t.Fatalf("status %d Location %q", r.status, r.header.Get("Location"))
	}
	t.Run("the protocol endpoint now sees the session", func(t *testing.T) {
		if got := c.do("GET", "/proto", nil).body; got != "hello PRIMARY/alice" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("the pre-session cookie is dropped after sign-in", func(t *testing.T) {
		if ck := setCookie(r.header, loginCookie); ck == nil || ck.MaxAge >= 0 {
			t.Errorf("pre-session cookie %+v not cleared", ck)
		}
	})
	t.Run("the sign-in is audited", func(t *testing.T) {
		ev, err := e.store.ListAudit(context.Background(), 10)
		if err != nil || len(ev) == 0 || ev[0].Action != "session.login" || ev[0].Actor != "PRIMARY/alice" {
			t.Errorf("audit %+v %v", ev, err)
		}
	})
	t.Run("signing in again replaces the session instead of keeping the old secret", func(t *testing.T) {
		old := setCookie(r.header, sessionCookie).Value
		r2 := c.signIn("alice", "right", nil)
		nu := setCookie(r2.header, sessionCookie).Value
		if nu == old {
			t.Fatal("the session secret was reused")
		}
		if _, err := e.store.GetSession(context.Background(), StorageID(old)); err == nil {
			t.Error("the previous session still exists")
		}
	})
}

func TestReturnURLs(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		rt   string
		want bool
	}{
		{"/proto", true},
		{"/proto?wa=wsignin1.0&wtrealm=urn%3Ax", true},
		{"", false},
		{"/other", false},
		{"/proto/", false},
		{"/proto/../other", false},
		{"/%70roto", false},
		{"//evil.example/proto", false},
		{`/\evil.example/proto`, false},
		{`/proto\x`, false},
		{"https://evil.example/proto", false},
		{"proto", false},
		{"/proto#frag", false},
		{"/proto?a=b c", false},
		{"/proto\n", false},
		{"/proto?" + strings.Repeat("a", MaxReturn), false},
	}
	for _, tc := range tests {
		name := "the return URL " + strings.ReplaceAll(tc.rt, "\n", `\n`)
		if len(name) > 80 {
			name = name[:80] + "…"
		}
		if tc.want {
			name += " is followed"
		} else {
			name += " is refused"
		}
		t.Run(name, func(t *testing.T) {
			if got := e.svc.validReturn(tc.rt); got != tc.want {
				t.Errorf("validReturn = %v", got)
			}
		})
	}
}

func TestSessionLifetime(t *testing.T) {
	st := Settings{IdleTimeout: 15 * time.Minute, RememberMePeriod: 14 * 24 * time.Hour}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plain := storage.Session{CreatedAt: t0, LastSeen: t0, ExpiresAt: t0.Add(15 * time.Minute)}
	remember := storage.Session{CreatedAt: t0, LastSeen: t0, ExpiresAt: t0.Add(14 * 24 * time.Hour), RememberMe: true}
	tests := []struct {
		name string
		rec  storage.Session
		at   time.Duration
		st   Settings
		want bool
	}{
		{"a session is live just before its idle timeout", plain, 15*time.Minute - time.Second, st, true},
		{"a session ends at its idle timeout", plain, 15 * time.Minute, st, false},
		{"a shorter idle timeout set later ends older sessions", plain, 6 * time.Minute, Settings{5 * time.Minute, st.RememberMePeriod}, false},
		{"a remember-me session survives a day idle", remember, 24 * time.Hour, st, true},
		{"a remember-me session ends after its period", remember, 14 * 24 * time.Hour, st, false},
		{"a shorter remember-me period set later ends older sessions", remember, 8 * 24 * time.Hour, Settings{st.IdleTimeout, 7 * 24 * time.Hour}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := live(tc.rec, t0.Add(tc.at), tc.st); got != tc.want {
				t.Errorf("live = %v", got)
			}
		})
	}
	t.Run("use restarts the idle timeout but not a remember-me period", func(t *testing.T) {
		p, r := plain, remember
		touch(&p, t0.Add(10*time.Minute), st)
		touch(&r, t0.Add(10*time.Minute), st)
		if !p.ExpiresAt.Equal(t0.Add(25*time.Minute)) || !r.ExpiresAt.Equal(remember.ExpiresAt) {
			t.Errorf("plain ends %s, remember-me ends %s", p.ExpiresAt, r.ExpiresAt)
		}
	})
}

func TestSessionThroughTheClock(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser(t, false)
	c.signIn("alice", "right", nil)
	e.clock.Add(10 * time.Minute)
	if got := c.do("GET", "/proto?rp=rp1.example", nil).body; !strings.HasPrefix(got, "hello") {
		t.Fatalf("at +10m: %q", got)
	}
	e.clock.Add(14 * time.Minute) // 14 idle minutes since the last use
	if got := c.do("GET", "/proto", nil).body; !strings.HasPrefix(got, "hello") {
		t.Errorf("recording a relying party is use of the session; at +24m it should live: %q", got)
	}
	e.clock.Add(16 * time.Minute)
	if got := c.do("GET", "/proto", nil).body; strings.HasPrefix(got, "hello") {
		t.Error("the session outlived 16 idle minutes")
	}
}

func TestLoginPageAndCSRF(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser(t, false)
	page := c.do("GET", "/proto", nil)
	f := fields(page.body)
	t.Run("the login page's inline style matches its CSP hash", func(t *testing.T) {
		m := regexp.MustCompile(`<style>(.*?)</style>`).FindStringSubmatch(page.body)
		if m == nil || CSPHash(m[1]) != StyleHash || !strings.Contains(page.header.Get("Content-Security-Policy"), "style-src "+StyleHash) {
			t.Error("the style block would be blocked by the page's own CSP")
		}
	})
	t.Run("the CSRF token is bound to the pre-session cookie", func(t *testing.T) {
		pre := setCookie(page.header, loginCookie)
		if pre == nil || f["csrf_token"] != csrfToken(pre.Value) || f["csrf_token"] == csrfToken("x"+pre.Value[1:]) {
			t.Errorf("token %q for cookie %+v", f["csrf_token"], pre)
		}
	})
	t.Run("the pre-session cookie is reused while it lasts, so two tabs both work", func(t *testing.T) {
		again := c.do("GET", "/proto", nil)
		if setCookie(again.header, loginCookie) != nil || fields(again.body)["csrf_token"] != f["csrf_token"] {
			t.Error("a second login page replaced the pre-session")
		}
	})
	t.Run("a login POST with a forged token is refused before the password is checked", func(t *testing.T) {
		e.dir.logins = nil
		r := c.do("POST", "/login", url.Values{"csrf_token": {csrfToken("attacker")}, "return": {"/proto"}, "username": {"alice"}, "password": {"right"}})
		if r.status != http.StatusForbidden || setCookie(r.header, sessionCookie) != nil || len(e.dir.logins) != 0 {
			t.Errorf("status %d, directory asked %v", r.status, e.dir.logins)
		}
	})
	t.Run("GET /login shows the form and a bare sign-in ends on the signed-in page", func(t *testing.T) {
		c2 := e.browser(t, false)
		lf := fields(c2.do("GET", "/login?return=%2F%2Fevil.example", nil).body)
		if lf["return"] != "" {
			t.Errorf("an off-site return %q was kept", lf["return"])
		}
		r := c2.do("POST", "/login", url.Values{"csrf_token": {lf["csrf_token"]}, "username": {"alice"}, "password": {"right"}})
		if r.status != http.StatusOK || !strings.Contains(r.body, "You are signed in as <strong>PRIMARY/alice</strong>") {
			t.Errorf("status %d:\n%s", r.status, r.body)
		}
	})
}

func TestLoginFailures(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, user, password string
		status               int
		msg                  string
	}{
		{"a wrong password is refused with the common message", "alice", "wrong", 200, MsgBadCredentials},
		{"an unknown user is refused with the common message", "nobody", "right", 200, MsgBadCredentials},
		{"an empty password asks for both fields", "alice", "", 200, MsgMissing},
		{"an unreachable user store says so with 503", "down", "x", 503, MsgUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.browser(t, false).signIn(tc.user, tc.password, nil)
			if r.status != tc.status || !strings.Contains(r.body, html.EscapeString(tc.msg)) || setCookie(r.header, sessionCookie) != nil {
				t.Errorf("status %d:\n%s", r.status, r.body)
			}
			if !strings.Contains(r.body, `value="`+tc.user+`"`) || strings.Contains(r.body, `value="`+tc.password+`"`) && tc.password != "" {
				t.Error("the form should keep the user name and never the password")
			}
		})
	}
}

func TestUserStoreChoice(t *testing.T) {
	e := newEnv(t, nil)
	e.dir.domains = []string{"LDAP1"}
	c := e.browser(t, false)
	p := c.do("GET", "/proto?hint=ldap1", nil)
	t.Run("the login page offers PRIMARY and each secondary store, with a label", func(t *testing.T) {
		for _, want := range []string{`<label for="domain">User store</label>`, `<option value="PRIMARY">PRIMARY</option>`, `<option value="LDAP1" selected>LDAP1</option>`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("missing %q", want)
			}
		}
	})
	t.Run("the chosen store is put in front of the user name", func(t *testing.T) {
		e.dir.logins = nil
		r := c.signIn("carol", "right", url.Values{"domain": {"LDAP1"}})
		if r.status != http.StatusSeeOther || len(e.dir.logins) != 1 || e.dir.logins[0] != "LDAP1/carol" {
			t.Errorf("status %d, logins %v", r.status, e.dir.logins)
		}
	})
}

func TestCookiesOverTLS(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser(t, true)
	r := c.signIn("alice", "right", url.Values{"remember": {"1"}})
	ck := setCookie(r.header, hostPrefix+sessionCookie)
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.MaxAge != 14*24*3600 {
		t.Fatalf("session cookie %+v", ck)
	}
	se, err := e.store.GetSession(context.Background(), StorageID(ck.Value))
	if err != nil || !se.RememberMe || !strings.Contains(string(se.Data), `"tls":true`) {
		t.Errorf("stored session %+v %v", se, err)
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, nil)
	c := e.browser(t, false)
	r := c.signIn("alice", "right", nil)
	secret := setCookie(r.header, sessionCookie).Value
	for _, rp := range []string{"rp1.example", "rp2.example:8443", "gone.example", "rp1.example"} {
		c.do("GET", "/proto?rp="+rp, nil)
	}
	out := c.do("GET", "/out?next="+url.QueryEscape("https://rp1.example/bye"), nil)
	t.Run("every relying party the protocol still knows is called once", func(t *testing.T) {
		for _, want := range []string{`RP rp1.example <img src="https://rp1.example/cleanup?x=1&amp;y=2"`, `RP rp2.example:8443 <img src="https://rp2.example:8443/cleanup?x=1&amp;y=2"`} {
			if strings.Count(out.body, want) != 1 {
				t.Errorf("want %q once in:\n%s", want, out.body)
			}
		}
		if strings.Contains(out.body, "gone.example") {
			t.Error("a relying party without a sign-out URL was called")
		}
	})
	t.Run("the CSP allows exactly the relying parties' origins as images", func(t *testing.T) {
		if csp := out.header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "; img-src https://rp1.example https://rp2.example:8443") {
			t.Errorf("CSP %q", csp)
		}
	})
	t.Run("the page continues to the URL the front-end validated", func(t *testing.T) {
		if !strings.Contains(out.body, `content="0;url=https://rp1.example/bye"`) || !strings.Contains(out.body, `href="https://rp1.example/bye"`) {
			t.Errorf("no continuation:\n%s", out.body)
		}
	})
	t.Run("the session is deleted, its cookie cleared and the sign-out audited", func(t *testing.T) {
		if _, err := e.store.GetSession(context.Background(), StorageID(secret)); err == nil {
			t.Error("session still stored")
		}
		if ck := setCookie(out.header, sessionCookie); ck == nil || ck.MaxAge >= 0 {
			t.Errorf("cookie %+v", ck)
		}
		ev, _ := e.store.ListAudit(context.Background(), 1)
		if len(ev) != 1 || ev[0].Action != "session.logout" {
			t.Errorf("audit %+v", ev)
		}
	})
	t.Run("signing out without a session shows the page with nothing to call", func(t *testing.T) {
		p := e.browser(t, false).do("GET", "/out", nil)
		if p.status != 200 || strings.Contains(p.body, "<img") || strings.Contains(p.body, "refresh") {
			t.Errorf("status %d:\n%s", p.status, p.body)
		}
	})
	t.Run("an expired session's relying parties are still called", func(t *testing.T) {
		c := e.browser(t, false)
		c.signIn("alice", "right", nil)
		c.do("GET", "/proto?rp=rp3.example", nil)
		e.clock.Add(time.Hour)
		if p := c.do("GET", "/out", nil); !strings.Contains(p.body, "https://rp3.example/cleanup") {
			t.Errorf("expired session's RP not called:\n%s", p.body)
		}
	})
}

func TestRemovedUserAndBadData(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("a user removed from the directory loses the session", func(t *testing.T) {
		c := e.browser(t, false)
		r := c.signIn("alice", "right", nil)
		secret := setCookie(r.header, sessionCookie).Value
		se, err := decodeSessionByID(e, secret)
		if err != nil {
			t.Fatal(err)
		}
		e.dir.gone["alice"] = true
		defer delete(e.dir.gone, "alice")
		if _, err := e.svc.Principal(context.Background(), se); err != identity.ErrInvalidCredentials {
			t.Errorf("Principal: %v", err)
		}
		if _, err := e.store.GetSession(context.Background(), StorageID(secret)); err == nil {
			t.Error("the removed user's session is still stored")
		}
	})
	t.Run("an unreadable session is deleted and treated as none", func(t *testing.T) {
		secret, _ := newSecret()
		now := e.clock.Now()
		if err := e.store.CreateSession(context.Background(), storage.Session{ID: StorageID(secret), User: "PRIMARY/x", Data: []byte("not json"),
			CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/proto", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: secret})
		if se, err := e.svc.Current(req); se != nil || err != nil {
			t.Errorf("Current = %v, %v", se, err)
		}
		if _, err := e.store.GetSession(context.Background(), StorageID(secret)); err == nil {
			t.Error("the unreadable session is still stored")
		}
	})
	t.Run("a cookie that is not one of our secrets never reaches storage", func(t *testing.T) {
		for _, v := range []string{"", "abc", strings.Repeat("!", 43), strings.Repeat("A", 44), strings.Repeat("A", 42) + "="} {
			if validSecret(v) {
				t.Errorf("%q accepted", v)
			}
		}
	})
}

func decodeSessionByID(e *env, secret string) (*Session, error) {
	rec, err := e.store.GetSession(context.Background(), StorageID(secret))
	if err != nil {
		return nil, err
	}
	return decodeSession(rec)
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		14 * 24 * time.Hour: "14 days", 24 * time.Hour: "1 day", 8 * time.Hour: "8 hours",
		30 * time.Minute: "30 minutes", 90 * time.Second: "1m30s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
