package console

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/storage"
)

func spMatches(sp *registry.ServiceProvider, q string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	hay := []string{sp.Name, sp.Description}
	if sp.WSTrust != nil {
		hay = append(hay, sp.WSTrust.Endpoints...)
		hay = append(hay, sp.WSTrust.Patterns...)
		hay = append(hay, sp.WSTrust.Token.CertAlias)
	}
	if sp.Passive != nil {
		hay = append(hay, sp.Passive.Realm)
		hay = append(hay, sp.Passive.ReplyURLs...)
	}
	for _, s := range hay {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

func (h *Handler) listSPs(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.o.Registry.Reload(r.Context()); err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	out := []*registry.ServiceProvider{}
	for _, sp := range h.o.Registry.List() {
		if spMatches(sp, q) {
			out = append(out, sp)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"service_providers": out})
	return nil
}

func (h *Handler) spByName(ctx context.Context, name string) (*registry.ServiceProvider, error) {
	rec, err := h.o.Store.GetServiceProvider(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound("service provider " + quote(name))
	} else if err != nil {
		return nil, err
	}
	return registry.Decode(rec)
}

func (h *Handler) getSP(w http.ResponseWriter, r *http.Request) error {
	sp, err := h.spByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sp)
	return nil
}

// checkSP validates a service provider, including that the certificates it
// names are in the trust store.
func (h *Handler) checkSP(ctx context.Context, sp *registry.ServiceProvider) error {
	sp.Name = strings.TrimSpace(sp.Name)
	if err := sp.Validate(); err != nil {
		return err
	}
	check := func(field, alias string) error {
		if alias == "" {
			return nil
		}
		if _, err := h.o.Trust.Certificate(ctx, alias); errors.Is(err, storage.ErrNotFound) {
			return &FieldError{Field: field, Msg: "no certificate " + quote(alias) + " in the trust store: upload it first"}
		} else if err != nil {
			return err
		}
		return nil
	}
	if sp.WSTrust != nil {
		if err := check("wstrust.token.cert_alias", sp.WSTrust.Token.CertAlias); err != nil {
			return err
		}
	}
	if sp.Passive != nil {
		if err := check("passive.token.cert_alias", sp.Passive.Token.CertAlias); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) createSP(w http.ResponseWriter, r *http.Request) error {
	var sp registry.ServiceProvider
	if err := decodeChecked(w, r, &sp, 256<<10, checkSPDurations); err != nil {
		return err
	}
	ctx := r.Context()
	if err := h.checkSP(ctx, &sp); err != nil {
		return err
	}
	if _, err := h.o.Store.GetServiceProvider(ctx, sp.Name); err == nil {
		return errStatus(http.StatusConflict, "name", "a service provider named "+quote(sp.Name)+" already exists")
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := h.o.Registry.Put(ctx, &sp); err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "service_provider.create", sp.Name, spSummary(&sp))
	saved, err := h.spByName(ctx, sp.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/service-providers/"+sp.Name)
	writeJSON(w, http.StatusCreated, saved)
	return nil
}

func spSummary(sp *registry.ServiceProvider) string {
	var parts []string
	if sp.WSTrust != nil {
		parts = append(parts, "wstrust endpoints="+strings.Join(sp.WSTrust.Endpoints, " "))
		if sp.WSTrust.Token.CertAlias != "" {
			parts = append(parts, "cert_alias="+sp.WSTrust.Token.CertAlias)
		}
		if sp.WSTrust.Token.Encrypt {
			parts = append(parts, "encrypt")
		}
	}
	if sp.Passive != nil {
		parts = append(parts, "passive realm="+sp.Passive.Realm)
	}
	return strings.Join(parts, "; ")
}

func (h *Handler) putSP(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var sp registry.ServiceProvider
	if err := decodeChecked(w, r, &sp, 256<<10, checkSPDurations); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := h.spByName(ctx, name); err != nil {
		return err
	}
	if sp.Name == "" {
		sp.Name = name
	}
	if sp.Name != name {
		return &FieldError{Field: "name", Msg: "a service provider cannot be renamed (create a new one and delete this one)"}
	}
	if err := h.checkSP(ctx, &sp); err != nil {
		return err
	}
	if err := h.o.Registry.Put(ctx, &sp); err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "service_provider.update", sp.Name, spSummary(&sp))
	saved, err := h.spByName(ctx, sp.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, saved)
	return nil
}

func (h *Handler) deleteSP(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	ctx := r.Context()
	if err := h.o.Registry.Delete(ctx, name); errors.Is(err, storage.ErrNotFound) {
		return notFound("service provider " + quote(name))
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "service_provider.delete", name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func quote(s string) string { return "\"" + s + "\"" }

func checkSPDurations(m map[string]any) error {
	for _, proto := range []string{"wstrust", "passive"} {
		if err := durationAt(m, proto, "token", "lifetime"); err != nil {
			return err
		}
	}
	return nil
}
