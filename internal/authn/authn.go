// Package authn is avouch's browser sign-in, shared by every browser-facing
// protocol front-end (WS-Federation passive now; SAML 2.0 Web SSO and OIDC
// later): the login page, the CSRF guard of its form, the browser session
// (idle timeout, remember-me), the bookkeeping of which relying parties a
// session signed in to (single sign-on) and sign-out with front-channel
// calls to each of them.
//
// It knows no protocol. A front-end validates its request first, then asks
// Current for the session; without one it calls ShowLogin with the local URL
// to come back to once the user has signed in. After issuing a token it
// records the relying party with AddParticipant. At sign-out, SignOut asks
// each registered Protocol for the URL that ends the relying party's own
// session.
//
// Sessions live in storage (shared by every node). The cookie holds a random
// secret; storage holds only its SHA-256, so a copy of the database does not
// let anyone take over a session.
package authn

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

// Settings are the resident identity provider's session settings. They are
// runtime settings, so the service asks for them on every use.
type Settings struct {
	// IdleTimeout ends a session that has not been used for this long.
	IdleTimeout time.Duration
	// RememberMePeriod is how long a session the user asked to keep lasts
	// from sign-in, used or not.
	RememberMePeriod time.Duration
}

// DefaultSettings are used when Options.Settings is nil (the same defaults
// as internal/config).
var DefaultSettings = Settings{IdleTimeout: 15 * time.Minute, RememberMePeriod: 14 * 24 * time.Hour}

// Directory is what the sign-in needs from the user stores.
type Directory interface {
	// VerifyPassword checks a password for "DOMAIN/name" or "name". Unknown
	// user, wrong password, unknown domain, disabled and locked accounts must
	// fail alike (identity.ErrInvalidCredentials).
	VerifyPassword(ctx context.Context, login, password string) (*identity.Principal, error)
	// Lookup reads a signed-in user again (single sign-on issues tokens with
	// the user's roles and claims as they are now, and a disabled or deleted
	// user loses the session). It fails with identity.ErrInvalidCredentials
	// when the user is gone or disabled.
	Lookup(ctx context.Context, domain, name string) (*identity.Principal, error)
	// Domains lists the secondary user-store domains; the login page offers a
	// choice when there is at least one.
	Domains() []string
}

// Participant is a relying party the session signed in to.
type Participant struct {
	// Protocol names the front-end that registered it ("wsfed").
	Protocol string `json:"p"`
	// ID is the relying party's identifier in that protocol (the realm).
	ID string `json:"id"`
	// Reply is where its token was delivered.
	Reply string `json:"r,omitempty"`
	// At is when the session last signed in to it.
	At time.Time `json:"at"`
}

// Protocol turns a participant into its front-channel sign-out call.
type Protocol interface {
	// FrontChannelLogout returns a display name and the URL the signed-out
	// page loads (as an image) so the relying party ends its own session;
	// ok is false when there is none (the relying party was removed).
	FrontChannelLogout(p Participant) (name, url string, ok bool)
}

// Options configure a Service.
type Options struct {
	Sessions  storage.Sessions
	Directory Directory
	// Settings returns the session settings in force (runtime settings).
	Settings func() Settings
	Now      func() time.Time
	Log      *slog.Logger
	// Audit, when set, records sign-ins and sign-outs (never a secret).
	Audit storage.Audit
	// Secure reports whether the browser reached us over HTTPS (cookies get
	// Secure and the __Host- prefix). Default: r.TLS != nil.
	Secure func(r *http.Request) bool
	// RequestID returns the request's ID for error pages (optional).
	RequestID func(ctx context.Context) string
	// LoginPath is where the login form posts (default "/login").
	LoginPath string
	// Product is the name shown in page titles (default "avouch").
	Product string
}

// Service is the shared browser sign-in.
type Service struct {
	opt Options

	mu        sync.RWMutex
	protocols map[string]Protocol
	returns   map[string]bool // local paths a login may return to

	purgeMu   sync.Mutex
	lastPurge time.Time
}

// New returns a sign-in service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Settings == nil {
		o.Settings = func() Settings { return DefaultSettings }
	}
	if o.Secure == nil {
		o.Secure = func(r *http.Request) bool { return r.TLS != nil }
	}
	if o.LoginPath == "" {
		o.LoginPath = "/login"
	}
	if o.Product == "" {
		o.Product = "avouch"
	}
	return &Service{opt: o, protocols: map[string]Protocol{}, returns: map[string]bool{}}
}

// LoginPath is where the login form posts; mount ServeLogin there.
func (s *Service) LoginPath() string { return s.opt.LoginPath }

// RegisterProtocol makes a front-end known: its participants are signed out
// through p, and a login may return to its endpoint paths (exact local
// paths such as "/passivests"; nothing else is ever a return target).
func (s *Service) RegisterProtocol(name string, p Protocol, paths ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.protocols[name] = p
	for _, path := range paths {
		s.returns[path] = true
	}
}

func (s *Service) protocol(name string) Protocol {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.protocols[name]
}

func (s *Service) settings() Settings {
	st := s.opt.Settings()
	if st.IdleTimeout <= 0 {
		st.IdleTimeout = DefaultSettings.IdleTimeout
	}
	if st.RememberMePeriod <= 0 {
		st.RememberMePeriod = DefaultSettings.RememberMePeriod
	}
	return st
}

func (s *Service) now() time.Time { return s.opt.Now().UTC() }

func (s *Service) audit(ctx context.Context, actor, action, detail string) {
	if s.opt.Audit == nil {
		return
	}
	if err := s.opt.Audit.AppendAudit(ctx, storage.AuditEvent{Time: s.now(), Actor: actor, Action: action, Detail: detail}); err != nil {
		s.opt.Log.Warn("audit event not written", "action", action, "err", err)
	}
}
