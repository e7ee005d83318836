package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

// maxParticipants bounds what one session remembers: a browser that signs in
// to more relying parties than this keeps the most recent ones.
const maxParticipants = 64

// Session is a signed-in browser session.
type Session struct {
	storageID    string
	Domain       string
	Name         string
	AuthnInstant time.Time
	// OverTLS: the password was sent over HTTPS.
	OverTLS      bool
	RememberMe   bool
	CreatedAt    time.Time
	LastSeen     time.Time
	ExpiresAt    time.Time
	Participants []Participant
}

// User is the session's user as "DOMAIN/name".
func (s *Session) User() string { return s.Domain + "/" + s.Name }

// sessionData is the JSON kept in storage.Session.Data.
type sessionData struct {
	Version      int           `json:"v"`
	Domain       string        `json:"dom"`
	Name         string        `json:"name"`
	AuthnInstant time.Time     `json:"authn"`
	OverTLS      bool          `json:"tls,omitempty"`
	Participants []Participant `json:"rps,omitempty"`
}

// Cookie names. Over HTTPS they carry the __Host- prefix: the browser then
// accepts them only with Secure, Path=/ and no Domain, so a sibling
// subdomain cannot plant or overwrite them.
const (
	sessionCookie = "avouch-session"
	loginCookie   = "avouch-login"
	hostPrefix    = "__Host-"
)

func (s *Service) cookieName(r *http.Request, base string) string {
	if s.opt.Secure(r) {
		return hostPrefix + base
	}
	return base
}

// newSecret returns 32 random bytes, base64url without padding (43 chars).
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// validSecret reports whether v looks like one of our secrets; anything else
// in a cookie is ignored without touching storage.
func validSecret(v string) bool {
	if len(v) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// StorageID is the storage key of the session whose cookie holds secret.
// Only this hash is stored.
func StorageID(secret string) string {
	h := sha256.Sum256([]byte("avouch session\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (s *Service) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(r, base), Value: value, Path: "/", MaxAge: maxAge,
		Secure: s.opt.Secure(r), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Service) clearCookie(w http.ResponseWriter, r *http.Request, base string) {
	s.setCookie(w, r, base, "", -1)
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil || !validSecret(c.Value) {
		return ""
	}
	return c.Value
}

// live reports whether a stored session is still in force at now under the
// settings in force now (an administrator who shortens a timeout shortens
// existing sessions too).
func live(rec storage.Session, now time.Time, st Settings) bool {
	if !now.Before(rec.ExpiresAt) {
		return false
	}
	if rec.RememberMe {
		return now.Before(rec.CreatedAt.Add(st.RememberMePeriod))
	}
	return now.Before(rec.LastSeen.Add(st.IdleTimeout))
}

func decodeSession(rec storage.Session) (*Session, error) {
	var d sessionData
	if err := json.Unmarshal(rec.Data, &d); err != nil {
		return nil, fmt.Errorf("authn: session data: %w", err)
	}
	return &Session{storageID: rec.ID, Domain: d.Domain, Name: d.Name, AuthnInstant: d.AuthnInstant, OverTLS: d.OverTLS,
		RememberMe: rec.RememberMe, CreatedAt: rec.CreatedAt, LastSeen: rec.LastSeen, ExpiresAt: rec.ExpiresAt,
		Participants: d.Participants}, nil
}

func encodeSession(se *Session) ([]byte, error) {
	return json.Marshal(sessionData{Version: 1, Domain: se.Domain, Name: se.Name, AuthnInstant: se.AuthnInstant,
		OverTLS: se.OverTLS, Participants: se.Participants})
}

// lookup reads the request's session; with includeExpired it also returns
// one past its timeout (sign-out still calls that session's relying parties,
// whose own sessions may be alive).
func (s *Service) lookup(r *http.Request, includeExpired bool) (*Session, error) {
	secret := cookieValue(r, s.cookieName(r, sessionCookie))
	if secret == "" {
		return nil, nil
	}
	rec, err := s.opt.Sessions.GetSession(r.Context(), StorageID(secret))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("authn: read session: %w", err)
	}
	if !includeExpired && !live(rec, s.now(), s.settings()) {
		return nil, nil
	}
	se, err := decodeSession(rec)
	if err != nil {
		// Unreadable data (a bug or a foreign writer): the session is
		// unusable, so it goes, and the browser signs in again.
		s.opt.Log.Error("unreadable session deleted", "err", err)
		if derr := s.opt.Sessions.DeleteSession(r.Context(), rec.ID); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
			return nil, fmt.Errorf("authn: delete unreadable session: %w", derr)
		}
		return nil, nil
	}
	return se, nil
}

// Current returns the request's live session, or nil when the browser has
// none (no cookie, unknown, expired). An error means storage failed.
func (s *Service) Current(r *http.Request) (*Session, error) { return s.lookup(r, false) }

// Principal reads the session's user again from the user store. A user that
// is gone or disabled ends the session: the caller gets
// identity.ErrInvalidCredentials and should show the login page.
func (s *Service) Principal(ctx context.Context, se *Session) (*identity.Principal, error) {
	p, err := s.opt.Directory.Lookup(ctx, se.Domain, se.Name)
	if errors.Is(err, identity.ErrInvalidCredentials) {
		if derr := s.opt.Sessions.DeleteSession(ctx, se.storageID); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
			s.opt.Log.Warn("session of a removed user not deleted", "err", derr)
		}
		return nil, err
	}
	return p, err
}

// AddParticipant records that the session signed in to p and counts as use
// of the session (the idle timeout starts again).
func (s *Service) AddParticipant(ctx context.Context, se *Session, p Participant) error {
	now := s.now()
	st := s.settings()
	p.At = now
	err := s.opt.Sessions.UpdateSession(ctx, se.storageID, func(rec storage.Session) (storage.Session, error) {
		cur, err := decodeSession(rec)
		if err != nil {
			return rec, err
		}
		out := make([]Participant, 0, len(cur.Participants)+1)
		for _, q := range cur.Participants {
			if q.Protocol != p.Protocol || q.ID != p.ID {
				out = append(out, q)
			}
		}
		out = append(out, p)
		if len(out) > maxParticipants {
			out = out[len(out)-maxParticipants:]
		}
		cur.Participants = out
		if rec.Data, err = encodeSession(cur); err != nil {
			return rec, err
		}
		touch(&rec, now, st)
		return rec, nil
	})
	if err != nil {
		return fmt.Errorf("authn: update session: %w", err)
	}
	return nil
}

// touch marks use at now: a session without remember-me gets a fresh idle
// timeout; a remember-me session keeps its end, fixed at sign-in.
func touch(rec *storage.Session, now time.Time, st Settings) {
	rec.LastSeen = now
	if !rec.RememberMe {
		rec.ExpiresAt = now.Add(st.IdleTimeout)
	}
}

// start creates a session for p and sets its cookie.
func (s *Service) start(ctx context.Context, w http.ResponseWriter, r *http.Request, p *identity.Principal, remember bool) (*Session, error) {
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	now := s.now()
	st := s.settings()
	se := &Session{storageID: StorageID(secret), Domain: p.Domain, Name: p.Name, AuthnInstant: now,
		OverTLS: s.opt.Secure(r), RememberMe: remember, CreatedAt: now, LastSeen: now}
	maxAge := 0 // a browser-session cookie: gone when the browser closes
	if remember {
		se.ExpiresAt = now.Add(st.RememberMePeriod)
		maxAge = int(st.RememberMePeriod / time.Second)
	} else {
		se.ExpiresAt = now.Add(st.IdleTimeout)
	}
	data, err := encodeSession(se)
	if err != nil {
		return nil, err
	}
	if err := s.opt.Sessions.CreateSession(ctx, storage.Session{ID: se.storageID, User: se.User(), Data: data,
		CreatedAt: now, LastSeen: now, ExpiresAt: se.ExpiresAt, RememberMe: remember}); err != nil {
		return nil, fmt.Errorf("authn: create session: %w", err)
	}
	s.setCookie(w, r, sessionCookie, secret, maxAge)
	s.purgeExpired(ctx, now)
	return se, nil
}

// purgeExpired deletes expired sessions now and then (at most every ten
// minutes per node), so storage does not grow with abandoned sessions.
func (s *Service) purgeExpired(ctx context.Context, now time.Time) {
	s.purgeMu.Lock()
	due := now.Sub(s.lastPurge) >= 10*time.Minute || now.Before(s.lastPurge)
	if due {
		s.lastPurge = now
	}
	s.purgeMu.Unlock()
	if !due {
		return
	}
	if n, err := s.opt.Sessions.DeleteSessionsExpiredBefore(ctx, now); err != nil {
		s.opt.Log.Warn("expired sessions not purged", "err", err)
	} else if n > 0 {
		s.opt.Log.Debug("expired sessions purged", "count", n)
	}
}

// end clears the request's session cookie and deletes its session (if
// any). The cookie goes even when storage fails, but the failure is
// returned: a session that may still be usable must not be reported as
// ended.
func (s *Service) end(ctx context.Context, w http.ResponseWriter, r *http.Request, se *Session) error {
	if _, err := r.Cookie(s.cookieName(r, sessionCookie)); err == nil {
		s.clearCookie(w, r, sessionCookie)
	}
	if se == nil {
		return nil
	}
	if err := s.opt.Sessions.DeleteSession(ctx, se.storageID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("authn: delete session: %w", err)
	}
	return nil
}
