// Package server wires avouch together: it opens storage and keys, builds the
// core and the protocol front-ends, serves HTTP(S), and shuts down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/metadata"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wholewrite"
	"github.com/avouch/avouch/internal/wssec"
	"github.com/avouch/avouch/internal/wstrust"
)

// Server is a running avouch instance's parts.
type Server struct {
	Config *config.Config
	Store  storage.Storage
	Box    *keys.Box
	Core   *sts.Service
	Auth   *identity.Authenticator
	// Registry holds the service providers; Trust the trust store.
	Registry *registry.Registry
	Trust    keys.TrustStore
	// Signing is the signing key at start; SigningKey() is the one in use now
	// (it changes when a key is rotated through another node).
	Signing *keys.KeyPair
	signing atomic.Pointer[keys.KeyPair]
	Log     *slog.Logger
	Handler http.Handler
	Now     func() time.Time

	metrics *metrics
	audit   *auditor
	// scenario returns the security_scenario in force (re-read at most once
	// a second); metadata states it.
	scenario func() string

	// reloadMu serialises reloadRuntime (the watcher and the admin API both
	// call it) and guards the fingerprints below.
	reloadMu         sync.Mutex
	lastSettings     [32]byte
	lastSigningCerts string // fingerprint of every stored signing certificate
	lastUserStores   [32]byte
}

// userCacheTTL bounds how long a user changed by another process or node
// (the CLI, a second server) may still be served from the in-memory user
// cache; changes through this server are seen at once (docs/PERFORMANCE.md).
const userCacheTTL = time.Second

// Paths of the SOAP endpoint: ours and WSO2's, so existing clients keep working.
var stsPaths = []string{"/services/sts", "/services/wso2carbon-sts"}

// New opens the data directory and builds the server. out receives the
// one-time admin password notice.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, out io.Writer) (*Server, error) {
	store, box, err := OpenData(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{Config: cfg, Box: box, Log: log, Now: time.Now}
	if sq, ok := store.(*sqlite.Store); ok && len(cfg.CheckpointCommand) > 0 {
		args := append(slices.Clip(cfg.CheckpointCommand[1:]), DatabasePath(cfg.DataDir))
		cmd := exec.Command(cfg.CheckpointCommand[0], args...) //nolint:gosec // our own executable, set by `avouch serve`
		cmd.Stderr = os.Stderr
		// Not fatal: the checkpoints then run in this process.
		failed := func(err error) { log.Warn("WAL checkpoints stay in this process", "err", err) }
		if err := sq.CheckpointIn(cmd, failed); err != nil {
			failed(err)
		}
	}
	s.Store = storage.CacheUsers(store, userCacheTTL, func() time.Time { return s.now() })
	if err := s.build(ctx, out); err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(ctx context.Context, out io.Writer) error {
	cfg := s.Config
	if err := bootstrapAdmin(ctx, s.Store, out); err != nil {
		return err
	}
	s.Core = sts.New(sts.Config{}, nil, s.Store, s.now)
	// reloadRuntime loads (on the first start: generates) the signing key
	// and applies the stored settings; every later reload does the same.
	s.Registry = registry.New(s.Store)
	if _, err := s.Registry.Reload(ctx); err != nil {
		return fmt.Errorf("service providers: %w", err)
	}
	s.Trust = keys.TrustStore{Store: s.Store, Cache: keys.NewCertCache()}
	s.Core.SetRelyingParties(s.Registry, s.Trust)
	s.Core.SetIssuerTrust(keys.TrustStore{Store: s.Store}) // uncached: see SetIssuerTrust
	if err := s.reloadRuntime(ctx); err != nil {
		return err
	}
	s.Auth = identity.NewAuthenticator(s.Store, s.Box, identity.Options{
		CacheTTL:         time.Duration(cfg.CredentialCacheTTL),
		LockoutThreshold: cfg.LockoutThreshold,
		LockoutWindow:    time.Duration(cfg.LockoutWindow),
		Now:              s.now,
	})
	if err := s.reloadUserStores(ctx); err != nil {
		return err
	}
	if all, err := s.Store.ListSettings(ctx); err == nil {
		s.lastUserStores = fingerprint(userStoreSettings(all))
	}
	s.metrics = newMetrics()
	s.audit = newAuditor(s.Store)
	s.metrics.auditDropped = s.audit.dropped.Load
	s.Core.OnIssue = func(op string, p *sts.Principal, t *sts.Token) {
		s.metrics.token(op, t.Type)
		s.audit.token(op, p, t, s.now())
	}
	if userLimit := newLimiter(cfg.RateLimitPerUser, cfg.RateLimitBurst); userLimit != nil {
		s.Core.Limit = func(user string) bool {
			ok := userLimit.allow(user, s.now())
			if !ok {
				s.metrics.limited.Add(1)
			}
			return ok
		}
	}
	trust := &wstrust.Handler{
		OnFault: func(code string) { s.metrics.fault(code) },
		Core:    s.Core,
		Security: &wssec.Processor{Auth: s.Auth, Replay: s.Store, Skew: time.Duration(cfg.ClockSkew),
			MaxAge: time.Duration(cfg.MessageMaxAge), RequireTimestamp: cfg.RequireTimestamp, Now: s.now},
		Limits: safexml.Limits{MaxBytes: cfg.MaxBodyBytes, MaxDepth: cfg.MaxXMLDepth},
		Log:    s.Log,
		WSDL: func(endpoint string) []byte {
			if cfg.PublicURL != "" {
				endpoint = strings.TrimRight(cfg.PublicURL, "/") + endpointPath(endpoint)
			}
			return metadata.WSDL(metadata.WSDLOptions{EndpointURL: endpoint, Scenario: s.scenario()})
		},
	}
	s.scenario = s.scenarioSource()
	s.ConfigureCallerAuth(trust.Security)
	mux := http.NewServeMux()
	for _, p := range stsPaths {
		mux.Handle(p, trust)
	}
	if err := s.mountConsole(mux, trust); err != nil {
		return err
	}
	// endpoint returns a WS-Trust endpoint with its own fixed policy (the
	// ADFS paths); it shares the core and the security processor.
	endpoint := func(versions []wstrust.Version, defaultNS bool) *wstrust.Handler {
		h := *trust
		h.Versions, h.DefaultNSAssertions = versions, defaultNS
		return &h
	}
	if err := s.mountMetadata(mux, endpoint); err != nil {
		return err
	}
	if err := s.mountPassive(mux); err != nil {
		return err
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", s.ready)
	mux.Handle("/metrics", s.metrics.handler())
	ipLimit := newLimiter(cfg.RateLimitPerIP, cfg.RateLimitBurst)
	s.Handler = withRequestLog(s.Log, s.metrics, recoverPanics(s.Log, securityHeaders(rateLimitByIP(ipLimit, s.metrics, s.now, mux))))
	return nil
}

// endpointPath keeps the path of an absolute URL.
func endpointPath(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[i+3+j:]
		}
	}
	return ""
}

func (s *Server) now() time.Time { return s.Now() }

// OpenData opens (creating when needed) the data directory, the database and
// the master key.
func OpenData(ctx context.Context, cfg *config.Config) (storage.Storage, *keys.Box, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	env, _ := os.LookupEnv("AVOUCH_MASTER_KEY")
	mk, err := keys.LoadMasterKey(cfg.DataDir, env)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	box, err := keys.NewBox(mk)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, box, nil
}

// DatabasePath is the SQLite file inside the data directory.
func DatabasePath(dataDir string) string { return filepath.Join(dataDir, "avouch.db") }

// testListener, when set by a test, wraps the TCP listener of Serve.
var testListener func(net.Listener) net.Listener

// Serve listens and serves until ctx is cancelled, then drains requests in
// flight for up to ShutdownTimeout. ready is called with the base URL once
// the listener is open.
func (s *Server) Serve(ctx context.Context, ready func(baseURL string)) error {
	cfg := s.Config
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: time.Duration(cfg.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(cfg.ReadTimeout),
		WriteTimeout:      time.Duration(cfg.WriteTimeout),
		IdleTimeout:       time.Duration(cfg.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
		// SOAP responses go out in one write (internal/wholewrite).
		ConnContext: wholewrite.ConnContext,
	}
	if testListener != nil {
		ln = testListener(ln)
	}
	ln = wholewrite.Listener(ln)
	scheme := "http"
	if !cfg.PlainHTTP {
		km := &keys.Manager{Store: s.Store, Box: s.Box}
		kp, err := km.Active(ctx, keys.PurposeTLS, keys.ECDSAP256, "localhost")
		if err != nil {
			ln.Close()
			return fmt.Errorf("TLS key: %w", err)
		}
		hs.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// TLS 1.2 only with forward-secret AEAD suites (TLS 1.3 suites
			// are not configurable and all qualify).
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			},
			Certificates: []tls.Certificate{{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Signer, Leaf: kp.Cert}},
		}
		s.configureClientAuth(hs.TLSConfig)
		ln = tls.NewListener(ln, hs.TLSConfig)
		scheme = "https"
	}
	if cfg.PprofListen != "" {
		go servePprof(ctx, cfg.PprofListen, s.Log)
	}
	go s.housekeeping(ctx)
	go s.audit.run(ctx, s.Log.Warn)
	go s.watchRuntime(ctx, time.Second)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready(scheme + "://" + displayAddr(ln.Addr()))
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Log.Info("shutting down: draining requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// displayAddr turns a wildcard listen address into one a person can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// tokenRecordGrace is how long a token record is kept beyond the renew
// window after its token expired.
const tokenRecordGrace = time.Hour

// housekeeping purges expired nonces, browser sessions and token records
// periodically.
func (s *Server) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.purge(ctx, s.now())
		}
	}
}

// purge deletes what has expired by now: nonces, browser sessions, token
// records past any use, and what the console keeps.
func (s *Server) purge(ctx context.Context, now time.Time) {
	if _, err := s.Store.PurgeNonces(ctx, now); err != nil {
		s.Log.Warn("purging nonces failed", "err", err)
	}
	if _, err := s.Store.DeleteSessionsExpiredBefore(ctx, now); err != nil {
		s.Log.Warn("purging browser sessions failed", "err", err)
	}
	// A token record is needed until its token can no longer be renewed
	// (renew_window after expiry); an hour more covers clock skew between
	// nodes. Without this the table grows by every token ever issued.
	keep := s.Core.Config().RenewWindow + tokenRecordGrace
	if _, err := s.Store.DeleteTokensExpiredBefore(ctx, now.Add(-keep)); err != nil {
		s.Log.Warn("purging token records failed", "err", err)
	}
	s.ConsoleHousekeeping(ctx)
}

// Close releases storage.
func (s *Server) Close() error { return s.Store.Close() }

// SigningKey returns the signing key in use now.
func (s *Server) SigningKey() *keys.KeyPair { return s.signing.Load() }

// ready answers 200 when the database answers within 2 seconds, else 503:
// a load balancer takes a node whose database is unreachable out of rotation.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := s.Store.GetSetting(ctx, bootstrapSetting); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "database unavailable\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}
