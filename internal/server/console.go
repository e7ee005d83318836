package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"

	"github.com/avouch/avouch/internal/console"
	"github.com/avouch/avouch/internal/wstrust"
)

// mountConsole adds the admin REST API (/api/…) and the web console
// (/console); trust is the main WS-Trust endpoint: the SOAP tracer sets its
// Tracer, and the ADFS endpoints (copies made after this call) share it.
func (s *Server) mountConsole(mux *http.ServeMux, trust *wstrust.Handler) error {
	tracer := console.NewTracer()
	trust.Tracer = tracer
	h := console.New(console.Options{
		Store:      s.Store,
		Box:        s.Box,
		Registry:   s.Registry,
		Trust:      s.Trust,
		Auth:       s.Auth,
		Config:     s.Config,
		UserStores: userStoreBackend{s},
		Tracer:     tracer,
		Log:        s.Log,
		Now:        s.now,
		ApplyRuntime: func(ctx context.Context) error {
			if err := s.reloadRuntime(ctx); err != nil {
				return err
			}
			_, err := s.Registry.Reload(ctx)
			return err
		},
	})
	h.Register(mux)
	consoles.Store(s, h)
	return nil
}

// consoles holds each server's console handler (server.go owns the Server
// struct; a field there would do the same).
var consoles sync.Map // *Server -> *console.Handler

// Console returns the admin console (nil before build).
func (s *Server) Console() *console.Handler {
	h, _ := consoles.Load(s)
	c, _ := h.(*console.Handler)
	return c
}

// ConsoleHousekeeping deletes rotated-out signing keys whose overlap has
// ended and expired console sessions; housekeeping calls it periodically.
func (s *Server) ConsoleHousekeeping(ctx context.Context) {
	if c := s.Console(); c != nil {
		c.Housekeep(ctx)
	}
}

// userStoreBackend stores secondary user stores for the console.
type userStoreBackend struct{ s *Server }

func (b userStoreBackend) List(ctx context.Context) ([]console.UserStore, error) {
	list, err := ListUserStores(ctx, b.s.Store)
	if err != nil {
		return nil, err
	}
	out := make([]console.UserStore, 0, len(list))
	for _, us := range list {
		out = append(out, console.UserStore{Domain: us.LDAP.Domain, Type: us.Type, Order: us.Order,
			LDAP: console.LDAPSettingsOf(us.LDAP), HasBindPassword: len(us.SealedBindPassword) > 0 || us.LDAP.BindPassword != ""})
	}
	return out, nil
}

func (b userStoreBackend) Save(ctx context.Context, us console.UserStore) error {
	cfg, err := us.LDAP.Config(us.Domain)
	if err != nil {
		return err
	}
	cfg.BindPassword = us.BindPassword
	if cfg.BindPassword == "" && cfg.BindDN != "" {
		// Keep the stored password.
		list, err := ListUserStores(ctx, b.s.Store)
		if err != nil {
			return err
		}
		for _, old := range list {
			if old.LDAP.Domain == cfg.Domain && len(old.SealedBindPassword) > 0 {
				pw, err := b.s.Box.Open(old.SealedBindPassword)
				if err != nil {
					return err
				}
				cfg.BindPassword = string(pw)
			}
		}
	}
	if err := SaveUserStore(ctx, b.s.Store, b.s.Box, StoredUserStore{Order: us.Order, LDAP: cfg}); err != nil {
		return err
	}
	return b.s.reloadUserStores(ctx)
}

func (b userStoreBackend) Delete(ctx context.Context, domain string) error {
	if err := b.s.Store.DeleteSetting(ctx, UserStorePrefix+strings.ToUpper(domain)); err != nil {
		return err
	}
	return b.s.reloadUserStores(ctx)
}

// SealedUserStore is a stored user store with its bind password still
// sealed (base64), for `avouch export`.
func SealedUserStore(us StoredUserStore) console.UserStore {
	out := console.UserStore{Domain: us.LDAP.Domain, Type: us.Type, Order: us.Order, LDAP: console.LDAPSettingsOf(us.LDAP)}
	if len(us.SealedBindPassword) > 0 {
		out.SealedBindPassword = base64.StdEncoding.EncodeToString(us.SealedBindPassword)
	}
	return out
}
