package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

// Cookie names: with TLS the __Host- prefix binds the cookie to this host,
// path / and Secure.
const (
	cookieName       = "avouch-console"
	secureCookieName = "__Host-avouch-console"
	csrfHeader       = "X-CSRF-Token"
	sessionKind      = "console"
)

// caller is who makes an API request.
type caller struct {
	Name      string // PRIMARY/admin or token:<name>
	SessionID string // "" for API tokens
	CSRF      string
}

type callerKey struct{}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

type sessionData struct {
	Kind  string   `json:"kind"`
	CSRF  string   `json:"csrf"`
	Roles []string `json:"roles"`
}

// route is one API operation.
type route struct {
	method, pattern string
	public          bool
	handle          func(w http.ResponseWriter, r *http.Request) error
}

// wrap authenticates and authorises a route's requests: 401 without valid
// credentials, 403 without the admin role or without the CSRF token on a
// state-changing request made with the session cookie.
func (h *Handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.public {
			c, err := h.authenticate(w, r)
			if err != nil {
				if he, ok := err.(*httpError); ok && he.status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="avouch admin API"`)
				}
				h.fail(w, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
			h.maybeHousekeep(r.Context())
		}
		if err := rt.handle(w, r); err != nil {
			h.fail(w, r, err)
		}
	})
}

var errUnauthenticated = errStatus(http.StatusUnauthorized, "", "authentication required: log in to the console or send Authorization: Bearer <API token>")

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (caller, error) {
	ctx := r.Context()
	if authz := r.Header.Get("Authorization"); authz != "" {
		scheme, tok, _ := strings.Cut(authz, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return caller{}, errUnauthenticated
		}
		t, err := VerifyAPIToken(ctx, h.o.Store, strings.TrimSpace(tok))
		if errors.Is(err, ErrBadToken) {
			return caller{}, errStatus(http.StatusUnauthorized, "", "invalid API token")
		} else if err != nil {
			return caller{}, err
		}
		return caller{Name: "token:" + t.Name}, nil
	}
	raw := sessionCookie(r)
	if raw == "" {
		return caller{}, errUnauthenticated
	}
	id := sessionID(raw)
	se, err := h.o.Store.GetSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return caller{}, errStatus(http.StatusUnauthorized, "", "session expired: log in again")
	} else if err != nil {
		return caller{}, err
	}
	var d sessionData
	if json.Unmarshal(se.Data, &d) != nil || d.Kind != sessionKind {
		return caller{}, errStatus(http.StatusUnauthorized, "", "not a console session: log in again")
	}
	now := h.o.Now()
	if !now.Before(se.ExpiresAt) {
		_ = h.o.Store.DeleteSession(ctx, id)
		return caller{}, errStatus(http.StatusUnauthorized, "", "session expired: log in again")
	}
	// The admin role is checked on every request: a role removed (or an
	// account disabled) takes effect at once for PRIMARY users; secondary
	// store users keep the roles of their login until the session ends.
	admin := false
	domain, name := identity.SplitDomain(se.User)
	if domain == identity.PrimaryDomain {
		u, err := h.o.Store.GetUser(ctx, name)
		if err == nil && !u.Disabled {
			for _, r := range u.Roles {
				admin = admin || r == AdminRole
			}
		} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return caller{}, err
		}
	} else {
		for _, r := range d.Roles {
			admin = admin || r == AdminRole
		}
	}
	if !admin {
		return caller{}, errStatus(http.StatusForbidden, "", "the admin role is required")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(csrfHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(d.CSRF)) != 1 {
			return caller{}, errStatus(http.StatusForbidden, csrfHeader, "missing or wrong CSRF token (send the X-CSRF-Token header from the login response)")
		}
	}
	idle := h.idleTimeout(ctx)
	_ = h.o.Store.UpdateSession(ctx, id, func(s storage.Session) (storage.Session, error) {
		s.LastSeen, s.ExpiresAt = now.UTC(), now.UTC().Add(idle)
		return s, nil
	})
	return caller{Name: se.User, SessionID: id, CSRF: d.CSRF}, nil
}

func (h *Handler) idleTimeout(ctx context.Context) time.Duration {
	cfg, _, err := h.effective(ctx)
	if err != nil || cfg.SessionIdleTimeout <= 0 {
		return 15 * time.Minute
	}
	return time.Duration(cfg.SessionIdleTimeout)
}

func sessionCookie(r *http.Request) string {
	for _, n := range []string{secureCookieName, cookieName} {
		if c, err := r.Cookie(n); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// sessionID is what storage keys the session by: the hash of the cookie, so
// a copy of the database does not yield live cookies.
func sessionID(raw string) string {
	sum := sha256.Sum256([]byte("avouch console session\x00" + raw))
	return "console-" + hex.EncodeToString(sum[:])
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *Handler) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(h.o.Config.PublicURL, "https://")
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	name := cookieName
	if h.secure(r) {
		name = secureCookieName
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: h.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type sessionInfo struct {
	User               string `json:"user"`
	CSRFToken          string `json:"csrf_token,omitempty"`
	IdleTimeoutSeconds int64  `json:"idle_timeout_seconds,omitempty"`
	Via                string `json:"via"`
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	if strings.TrimSpace(req.Username) == "" {
		return &FieldError{Field: "username", Msg: "required"}
	}
	if req.Password == "" {
		return &FieldError{Field: "password", Msg: "required"}
	}
	ctx := r.Context()
	p, err := h.o.Auth.VerifyPassword(ctx, req.Username, req.Password)
	if errors.Is(err, identity.ErrStoreUnavailable) {
		return errStatus(http.StatusServiceUnavailable, "", "the user store is unavailable; try again")
	}
	if err != nil {
		name := req.Username
		if len(name) > 128 {
			name = name[:128] + "…"
		}
		h.audit(ctx, "anonymous", "console.login.failed", name, "wrong user name or password")
		return errStatus(http.StatusUnauthorized, "", "wrong user name or password")
	}
	user := p.Domain + "/" + p.Name
	if !p.HasRole(AdminRole) {
		h.audit(ctx, user, "console.login.denied", user, "the admin role is required")
		return errStatus(http.StatusForbidden, "", "the admin role is required to use the console")
	}
	raw, csrf := randomToken(), randomToken()
	data, _ := json.Marshal(sessionData{Kind: sessionKind, CSRF: csrf, Roles: p.Roles})
	now := h.o.Now().UTC()
	idle := h.idleTimeout(ctx)
	if err := h.o.Store.CreateSession(ctx, storage.Session{ID: sessionID(raw), User: user, Data: data,
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(idle)}); err != nil {
		return err
	}
	h.setCookie(w, r, raw, 0)
	h.audit(ctx, user, "console.login", user, "")
	writeJSON(w, http.StatusOK, sessionInfo{User: user, CSRFToken: csrf, IdleTimeoutSeconds: int64(idle / time.Second), Via: "session"})
	return nil
}

func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r.Context())
	info := sessionInfo{User: c.Name, Via: "token"}
	if c.SessionID != "" {
		info.Via, info.CSRFToken = "session", c.CSRF
		info.IdleTimeoutSeconds = int64(h.idleTimeout(r.Context()) / time.Second)
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r.Context())
	if c.SessionID == "" {
		return errStatus(http.StatusBadRequest, "Authorization", "API tokens are revoked with DELETE /api/tokens/{id}, not logged out")
	}
	if err := h.o.Store.DeleteSession(r.Context(), c.SessionID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	h.setCookie(w, r, "", -1)
	h.audit(r.Context(), c.Name, "console.logout", c.Name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
