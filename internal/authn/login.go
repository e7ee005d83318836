package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

// Messages of the login page. One text covers unknown user, wrong password,
// unknown user store, disabled and locked accounts: the page must not tell
// anyone whether an account exists.
const (
	MsgBadCredentials = "The user name or password is incorrect."
	MsgMissing        = "Enter your user name and password."
	MsgFormExpired    = "This sign-in form has expired or did not come from this site. Please sign in again."
	MsgUnavailable    = "The user store cannot be reached right now. Please try again in a moment."
)

// MaxReturn bounds a return URL (it carries the protocol request, e.g. a
// WS-Federation wreq). The browser sends it back as a request line, which
// the server reads within its 64 KB header limit.
const MaxReturn = 48 << 10

// LoginRequest is what a front-end asks the login page to show.
type LoginRequest struct {
	// ReturnTo is the local URL ("/passivests?wa=…") to continue at once the
	// user has signed in; its path must be one a protocol registered.
	ReturnTo string
	// For names the relying party the user is signing in to.
	For string
	// DomainHint preselects a user store (WS-Federation whr).
	DomainHint string
}

type domainOption struct {
	Name     string
	Selected bool
}

type loginData struct {
	page
	Action, CSRF, ReturnTo, For, Username, Message, RememberFor string
	Remember                                                    bool
	Domains                                                     []domainOption
}

// loginState is a login page to render.
type loginState struct {
	LoginRequest
	Username, Message string
	Remember          bool
	Status            int
}

// csrfToken is the login form's anti-forgery token: an HMAC keyed by the
// pre-session cookie's secret. A page on another site can neither read that
// HttpOnly cookie nor, over HTTPS, plant its own (__Host- prefix), so it
// cannot produce a matching token, and a form posted across sites fails.
func csrfToken(pre string) string {
	m := hmac.New(sha256.New, []byte(pre))
	m.Write([]byte("avouch login form v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// preSession returns the browser's pre-session secret, setting a new cookie
// when it has none.
func (s *Service) preSession(w http.ResponseWriter, r *http.Request) (string, error) {
	if v := cookieValue(r, s.cookieName(r, loginCookie)); v != "" {
		return v, nil
	}
	v, err := newSecret()
	if err != nil {
		return "", err
	}
	s.setCookie(w, r, loginCookie, v, 0)
	return v, nil
}

// ShowLogin renders the login page (HTTP 200) for a request a front-end
// could not serve without a signed-in user.
func (s *Service) ShowLogin(w http.ResponseWriter, r *http.Request, lr LoginRequest) {
	if !s.validReturn(lr.ReturnTo) {
		lr.ReturnTo = ""
	}
	s.showLogin(w, r, loginState{LoginRequest: lr, Status: http.StatusOK})
}

func (s *Service) showLogin(w http.ResponseWriter, r *http.Request, ls loginState) {
	pre, err := s.preSession(w, r)
	if err != nil {
		s.opt.Log.Error("pre-session secret not generated", "err", err)
		s.ErrorPage(w, r, http.StatusInternalServerError, "Sign-in unavailable", "The sign-in page could not be prepared. Please try again.")
		return
	}
	var domains []domainOption
	if ds := s.opt.Directory.Domains(); len(ds) > 0 {
		for _, d := range append([]string{identity.PrimaryDomain}, ds...) {
			domains = append(domains, domainOption{Name: d, Selected: strings.EqualFold(d, ls.DomainHint)})
		}
	}
	s.render(w, "login", ls.Status, Policy("form-action 'self'"), loginData{
		page: s.page(), Action: s.opt.LoginPath, CSRF: csrfToken(pre), ReturnTo: ls.ReturnTo, For: ls.For,
		Username: ls.Username, Message: ls.Message, Remember: ls.Remember, Domains: domains,
		RememberFor: humanDuration(s.settings().RememberMePeriod),
	})
}

// validReturn accepts only a local URL on a registered protocol path: no
// scheme, no host, no "//" or "/\" (which browsers read as another host),
// no backslash, control character or space anywhere.
func (s *Service) validReturn(rt string) bool {
	if rt == "" || len(rt) > MaxReturn || rt[0] != '/' || strings.HasPrefix(rt, "//") {
		return false
	}
	for i := 0; i < len(rt); i++ {
		if c := rt[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(rt)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" || u.RawPath != "" {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.returns[u.Path]
}

// ServeLogin serves the login form's target: GET shows the form, POST
// checks the CSRF token and the password, starts a session and continues at
// the form's return URL (303), or shows the form again with a message.
func (s *Service) ServeLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.ShowLogin(w, r, LoginRequest{ReturnTo: r.URL.Query().Get("return")})
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.ErrorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "Use the sign-in form.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.ErrorPage(w, r, http.StatusBadRequest, "Bad request", "The sign-in form could not be read.")
		return
	}
	f := r.PostForm
	ls := loginState{Username: strings.TrimSpace(f.Get("username")), Remember: f.Get("remember") != "", Status: http.StatusOK}
	ls.DomainHint = f.Get("domain")
	if rt := f.Get("return"); s.validReturn(rt) {
		ls.ReturnTo = rt
	}
	pre := cookieValue(r, s.cookieName(r, loginCookie))
	if pre == "" || !hmac.Equal([]byte(f.Get("csrf_token")), []byte(csrfToken(pre))) {
		s.opt.Log.Info("sign-in refused: missing or wrong CSRF token")
		ls.Message, ls.Status = MsgFormExpired, http.StatusForbidden
		s.showLogin(w, r, ls)
		return
	}
	password := f.Get("password")
	if ls.Username == "" || password == "" {
		ls.Message = MsgMissing
		s.showLogin(w, r, ls)
		return
	}
	login := ls.Username
	if d := strings.TrimSpace(ls.DomainHint); d != "" && !strings.Contains(login, "/") {
		login = d + "/" + login
	}
	ctx := r.Context()
	p, err := s.opt.Directory.VerifyPassword(ctx, login, password)
	switch {
	case err == nil:
	case errors.Is(err, identity.ErrStoreUnavailable):
		s.opt.Log.Warn("sign-in failed: user store unavailable", "err", err)
		ls.Message, ls.Status = MsgUnavailable, http.StatusServiceUnavailable
		s.showLogin(w, r, ls)
		return
	case errors.Is(err, identity.ErrInvalidCredentials), errors.Is(err, identity.ErrUnknownDomain), errors.Is(err, identity.ErrDigestNotAllowed):
		s.opt.Log.Info("sign-in failed: invalid credentials")
		ls.Message = MsgBadCredentials
		s.showLogin(w, r, ls)
		return
	default:
		s.opt.Log.Error("sign-in failed", "err", err)
		s.ErrorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "Signing in failed because of an internal error. Please try again.")
		return
	}
	// A new session always gets a new secret: a session ID the browser
	// brought (perhaps planted) is never promoted to a signed-in one.
	if old, err := s.lookup(r, true); err == nil && old != nil {
		if err := s.opt.Sessions.DeleteSession(ctx, old.storageID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.opt.Log.Warn("previous session not deleted", "err", err)
		}
	}
	se, err := s.start(ctx, w, r, p, ls.Remember)
	if err != nil {
		s.opt.Log.Error("session not created", "err", err)
		s.ErrorPage(w, r, http.StatusServiceUnavailable, "Sign-in failed", "Your session could not be created. Please try again.")
		return
	}
	s.clearCookie(w, r, loginCookie)
	s.audit(ctx, se.User(), "session.login", fmt.Sprintf("remember_me=%t", se.RememberMe))
	if ls.ReturnTo != "" {
		http.Redirect(w, r, ls.ReturnTo, http.StatusSeeOther)
		return
	}
	s.render(w, "signedin", http.StatusOK, Policy(), struct {
		page
		User string
	}{s.page(), se.User()})
}

// humanDuration writes a period the way the login page says it.
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}
