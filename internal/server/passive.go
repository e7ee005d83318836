package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/authn"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/wsfed"
)

// Paths of the passive STS: ours and ADFS's, so relying parties configured
// for ADFS work unchanged; and the shared login form's target.
const (
	passivePath     = "/passivests"
	adfsPassivePath = "/adfs/ls/"
	loginPath       = "/login"
)

// sessionSettingsTTL is how long the session settings read from storage
// are reused; a runtime change is in force on every node within it.
var sessionSettingsTTL = time.Second

// mountPassive adds the WS-Federation passive STS (/passivests, /adfs/ls/)
// and the shared browser sign-in pages.
func (s *Server) mountPassive(mux *http.ServeMux) error {
	settings := &sessionSettings{s: s}
	a := authn.New(authn.Options{
		Sessions:  s.Store,
		Directory: directory{s},
		Settings:  settings.get,
		Now:       s.now,
		Log:       s.Log,
		Audit:     s.Store,
		Secure:    s.browserOverTLS,
		RequestID: RequestID,
		LoginPath: loginPath,
	})
	h := &wsfed.Handler{Core: s.Core, RPs: s.Registry, Authn: a, Log: s.Log, Now: s.now, RequestID: RequestID}
	a.RegisterProtocol(wsfed.ProtocolName, h, passivePath, adfsPassivePath)
	mux.Handle(passivePath, h)
	// Exactly /adfs/ls/ (a subtree pattern would also answer /adfs/ls/x).
	mux.Handle(adfsPassivePath+"{$}", h)
	mux.HandleFunc(loginPath, a.ServeLogin)
	return nil
}

// browserOverTLS: the browser talks HTTPS to us, directly or through a
// TLS-terminating proxy announced by an https public_url.
func (s *Server) browserOverTLS(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(s.Config.PublicURL), "https://")
}

// sessionSettings reads the resident IdP's session settings (runtime
// settings: flags and environment win over the database, which wins over
// the file) and keeps them for sessionSettingsTTL.
type sessionSettings struct {
	s    *Server
	mu   sync.Mutex
	at   time.Time // real time of the last read
	have bool
	val  authn.Settings
}

func (c *sessionSettings) get() authn.Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have && time.Since(c.at) < sessionSettingsTTL {
		return c.val
	}
	cfg := c.s.Config
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if stored, err := StoredSettings(ctx, c.s.Store); err != nil {
		c.s.Log.Warn("session settings: stored settings not read; using the last known", "err", err)
		if c.have {
			return c.val
		}
	} else if eff, err := cfg.WithStored(stored); err != nil {
		c.s.Log.Warn("session settings: stored settings invalid; ignoring them", "err", err)
	} else {
		cfg = eff
	}
	c.val = authn.Settings{IdleTimeout: time.Duration(cfg.SessionIdleTimeout), RememberMePeriod: time.Duration(cfg.RememberMePeriod)}
	c.at, c.have = time.Now(), true
	return c.val
}

// directory is the sign-in's view of the user stores.
type directory struct{ s *Server }

func (d directory) VerifyPassword(ctx context.Context, login, password string) (*identity.Principal, error) {
	return d.s.Auth.VerifyPassword(ctx, login, password)
}

// Lookup reads a signed-in user as they are now: a user deleted or disabled
// since signing in gets ErrInvalidCredentials (and loses the session).
func (d directory) Lookup(ctx context.Context, domain, name string) (*identity.Principal, error) {
	if strings.EqualFold(domain, identity.PrimaryDomain) {
		u, err := d.s.Store.GetUser(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, identity.ErrInvalidCredentials
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", identity.ErrStoreUnavailable, err)
		}
		if u.Disabled {
			return nil, identity.ErrInvalidCredentials
		}
		claims := make(map[string]string, len(u.Claims))
		for k, v := range u.Claims {
			claims[k] = v
		}
		return &identity.Principal{Name: u.Name, Domain: identity.PrimaryDomain, Roles: append([]string(nil), u.Roles...), Claims: claims}, nil
	}
	for _, st := range d.s.Auth.Stores() {
		if strings.EqualFold(st.Domain(), domain) {
			return st.Lookup(ctx, name)
		}
	}
	return nil, identity.ErrInvalidCredentials
}

func (d directory) Domains() []string {
	var out []string
	for _, st := range d.s.Auth.Stores() {
		out = append(out, st.Domain())
	}
	return out
}
