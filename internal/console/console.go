// Package console is avouch's management plane: the admin REST API (JSON,
// described by an OpenAPI 3 document at /api/openapi.json), the web console
// at /console (embedded assets, no CDN), the SOAP tracer, API tokens and the
// signing-key rotation housekeeping.
//
// Every request to the API is authenticated — a console session cookie
// (with a CSRF token on state-changing requests) or an API token
// (Authorization: Bearer) — and every change is written to the audit log
// (who, what, when; never a secret).
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/storage"
)

// AdminRole is the role the console and the API require.
const AdminRole = "admin"

// Authenticator verifies console logins and knows the secondary stores.
type Authenticator interface {
	VerifyPassword(ctx context.Context, login, password string) (*identity.Principal, error)
	Stores() []identity.UserStore
}

// UserStores stores secondary user store configurations (the server owns
// their sealed form).
type UserStores interface {
	List(ctx context.Context) ([]UserStore, error)
	// Save stores us; an empty BindPassword keeps the stored one.
	Save(ctx context.Context, us UserStore) error
	Delete(ctx context.Context, domain string) error // storage.ErrNotFound
}

// Options are what the console works with.
type Options struct {
	Store    storage.Storage
	Box      *keys.Box
	Registry *registry.Registry
	Trust    keys.TrustStore
	Auth     Authenticator
	// Config is the node's configuration (flags, environment, file); stored
	// runtime settings are applied over it.
	Config     *config.Config
	UserStores UserStores
	Tracer     *Tracer
	Log        *slog.Logger
	Now        func() time.Time
	// ApplyRuntime applies stored runtime settings (and signing keys) on
	// this node at once; other nodes follow within their poll interval.
	ApplyRuntime func(context.Context) error
}

// Handler serves /api/ and /console/.
type Handler struct {
	o        Options
	api      *http.ServeMux
	routes   []route
	lastHK   time.Time
	hkMu     sync.Mutex
	staticFS fs.FS
}

//go:embed assets openapi.json
var embedded embed.FS

// New returns the console handler.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Tracer == nil {
		o.Tracer = NewTracer()
	}
	h := &Handler{o: o, api: http.NewServeMux()}
	h.staticFS, _ = fs.Sub(embedded, "assets")
	h.routes = h.routeTable()
	for _, rt := range h.routes {
		h.api.Handle(rt.method+" "+rt.pattern, h.wrap(rt))
	}
	h.api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API resource: "+r.Method+" "+r.URL.Path, "")
	})
	return h
}

// Tracer is the SOAP tracer.
func (h *Handler) Tracer() *Tracer { return h.o.Tracer }

// Register mounts the API and the console on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("/api/", h.apiHeaders(h.api))
	mux.HandleFunc("/console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
	mux.Handle("/console/", h.consoleHeaders(http.HandlerFunc(h.serveConsole)))
}

// apiHeaders sets the API's security headers and turns a panic into a JSON
// 500 (no stack trace reaches the client).
func (h *Handler) apiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.o.Log.Error("admin API: internal error", "path", r.URL.Path, "panic", slog.AnyValue(v).String())
				writeError(w, http.StatusInternalServerError, "internal error", "")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Housekeep deletes signing keys whose rotation overlap has ended and
// expired console sessions. The server runs it periodically; the API also
// runs it at most once a minute on authenticated requests.
func (h *Handler) Housekeep(ctx context.Context) {
	now := h.o.Now()
	deleted, err := Housekeep(ctx, h.o.Store, now)
	if err != nil {
		h.o.Log.Warn("retiring rotated signing keys failed", "err", err)
	}
	for _, id := range deleted {
		h.audit(ctx, "system", "key.retire", id, "rotated-out signing key deleted after its overlap period")
	}
	if len(deleted) > 0 && h.o.ApplyRuntime != nil {
		if err := h.o.ApplyRuntime(ctx); err != nil {
			h.o.Log.Warn("re-applying signing keys failed", "err", err)
		}
	}
	if _, err := h.o.Store.DeleteSessionsExpiredBefore(ctx, now); err != nil {
		h.o.Log.Warn("purging expired sessions failed", "err", err)
	}
}

func (h *Handler) maybeHousekeep(ctx context.Context) {
	h.hkMu.Lock()
	now := h.o.Now()
	due := now.Sub(h.lastHK) >= time.Minute || now.Before(h.lastHK)
	if due {
		h.lastHK = now
	}
	h.hkMu.Unlock()
	if due {
		h.Housekeep(ctx)
	}
}

// audit appends an event; a failure is logged (the change itself was made).
func (h *Handler) audit(ctx context.Context, actor, action, target, detail string) {
	err := h.o.Store.AppendAudit(ctx, storage.AuditEvent{Time: h.o.Now().UTC(), Actor: actor, Action: action,
		Target: target, Detail: detail})
	if err != nil {
		h.o.Log.Error("audit log write failed", "action", action, "target", target, "err", err)
	}
}

// effective returns the configuration in force: stored runtime settings over
// the node's.
func (h *Handler) effective(ctx context.Context) (*config.Config, map[string]string, error) {
	all, err := h.o.Store.ListSettings(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := h.o.Config.WithStored(StoredRuntime(all))
	if err != nil {
		// Stored settings the server refuses too: show the node's own.
		return h.o.Config, all, nil
	}
	return cfg, all, nil
}

// ----- errors and JSON -----

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// httpError carries a status for the error path.
type httpError struct {
	status int
	msg    string
	field  string
}

func (e *httpError) Error() string { return e.msg }

func errStatus(status int, field, msg string) error {
	return &httpError{status: status, msg: msg, field: field}
}

func notFound(what string) error { return errStatus(http.StatusNotFound, "", what+" not found") }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, apiError{Error: msg, Field: field})
}

// fail answers err: field errors are 400, missing things 404, conflicts
// 409; anything else is logged and answered with a bare 500.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var fe *FieldError
	var rfe *registry.FieldError
	switch {
	case errors.As(err, &he):
		writeError(w, he.status, he.msg, he.field)
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Error(), fe.Field)
	case errors.As(err, &rfe):
		writeError(w, http.StatusBadRequest, rfe.Error(), rfe.Field)
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, registry.ErrNoMatch):
		writeError(w, http.StatusNotFound, "not found", "")
	case errors.Is(err, storage.ErrAlreadyExists):
		writeError(w, http.StatusConflict, "already exists", "")
	case errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, "request cancelled", "")
	default:
		h.o.Log.Error("admin API: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", "")
	}
}

// decode reads a JSON body into v: application/json only, bounded, unknown
// fields refused (naming them).
func decode(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decodeChecked(w, r, v, limit, nil)
}

// decodeChecked is decode with a check of the raw JSON first, for values
// whose own decoding errors cannot name their field (durations).
func decodeChecked(w http.ResponseWriter, r *http.Request, v any, limit int64, pre func(map[string]any) error) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != "application/json" {
		return errStatus(http.StatusUnsupportedMediaType, "Content-Type", "send the request body as application/json")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errStatus(http.StatusRequestEntityTooLarge, "body", "request body too large")
		}
		return &FieldError{Field: "body", Msg: "could not read the request body"}
	}
	if pre != nil {
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			if err := pre(m); err != nil {
				return err
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			f := te.Field
			if f == "" {
				f = "body"
			}
			return &FieldError{Field: f, Msg: "expected " + te.Type.String() + ", got a JSON " + te.Value}
		case errors.As(err, &se):
			return &FieldError{Field: "body", Msg: "not valid JSON: " + se.Error()}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &FieldError{Field: f, Msg: "unknown field"}
		case errors.Is(err, io.EOF):
			return &FieldError{Field: "body", Msg: "a JSON object is required"}
		default:
			return &FieldError{Field: "body", Msg: "could not read the JSON body"}
		}
	}
	if dec.More() {
		return &FieldError{Field: "body", Msg: "one JSON object expected"}
	}
	return nil
}

// durationAt checks that the value at path (if present) is a Go duration.
func durationAt(m map[string]any, path ...string) error {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = mm[p]; !ok {
			return nil
		}
	}
	field := strings.Join(path, ".")
	s, ok := cur.(string)
	if !ok {
		return &FieldError{Field: field, Msg: "expected a duration such as 10m"}
	}
	if _, err := time.ParseDuration(s); err != nil {
		return &FieldError{Field: field, Msg: quote(s) + " is not a duration (e.g. 10m, 1h)"}
	}
	return nil
}
