package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/avouch/avouch/internal/storage"
)

// ----- SOAP tracer -----

type tracerView struct {
	Enabled   bool    `json:"enabled"`
	Capacity  int     `json:"capacity"`
	Node      string  `json:"node"`
	Exchanges []Trace `json:"exchanges"`
}

func (h *Handler) getTracer(w http.ResponseWriter, r *http.Request) error {
	t := h.o.Tracer
	writeJSON(w, http.StatusOK, tracerView{Enabled: t.Enabled(), Capacity: t.Capacity(), Node: r.Host, Exchanges: t.List()})
	return nil
}

type tracerInput struct {
	Enabled  *bool `json:"enabled,omitempty"`
	Capacity *int  `json:"capacity,omitempty"`
}

func (h *Handler) putTracer(w http.ResponseWriter, r *http.Request) error {
	var in tracerInput
	if err := decode(w, r, &in, 4<<10); err != nil {
		return err
	}
	if in.Capacity != nil {
		if err := h.o.Tracer.SetCapacity(*in.Capacity); err != nil {
			return fieldErr("capacity", "%s", err.Error())
		}
	}
	var detail []string
	if in.Enabled != nil {
		h.o.Tracer.SetEnabled(*in.Enabled)
		detail = append(detail, fmt.Sprintf("enabled=%t", *in.Enabled))
	}
	if in.Capacity != nil {
		detail = append(detail, fmt.Sprintf("capacity=%d", *in.Capacity))
	}
	ctx := r.Context()
	h.audit(ctx, callerOf(ctx).Name, "tracer.update", r.Host, strings.Join(detail, " "))
	return h.getTracer(w, r)
}

func (h *Handler) clearTracer(w http.ResponseWriter, r *http.Request) error {
	h.o.Tracer.Clear()
	ctx := r.Context()
	h.audit(ctx, callerOf(ctx).Name, "tracer.clear", r.Host, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ----- audit log -----

type auditView struct {
	ID     int64  `json:"id"`
	Time   string `json:"time"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Target string `json:"target"`
	Detail string `json:"detail,omitempty"`
}

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) error {
	limit := 200
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5000 {
			return fieldErr("limit", "must be a number between 1 and 5000")
		}
		limit = n
	}
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	events, err := h.o.Store.ListAudit(r.Context(), limit)
	if err != nil {
		return err
	}
	out := []auditView{}
	for _, e := range events {
		if q != "" && !strings.Contains(strings.ToLower(e.Actor+" "+e.Action+" "+e.Target+" "+e.Detail), q) {
			continue
		}
		out = append(out, auditView{ID: e.ID, Time: e.Time.UTC().Format("2006-01-02T15:04:05Z"), Actor: e.Actor,
			Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
	return nil
}

// ----- API tokens -----

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) error {
	list, err := ListAPITokens(r.Context(), h.o.Store)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
	return nil
}

type tokenInput struct {
	Name string `json:"name"`
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) error {
	var in tokenInput
	if err := decode(w, r, &in, 4<<10); err != nil {
		return err
	}
	ctx := r.Context()
	tok, t, err := CreateAPIToken(ctx, h.o.Store, in.Name, h.o.Now())
	if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "api_token.create", t.ID, "name="+t.Name)
	writeJSON(w, http.StatusCreated, map[string]any{"id": t.ID, "name": t.Name, "created": t.Created, "token": tok,
		"note": "the token is shown only this once"})
	return nil
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx := r.Context()
	if err := RevokeAPIToken(ctx, h.o.Store, id); errors.Is(err, storage.ErrNotFound) {
		return notFound("API token " + quote(id))
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "api_token.revoke", id, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ----- user stores -----

func (h *Handler) listUserStores(w http.ResponseWriter, r *http.Request) error {
	list, err := h.o.UserStores.List(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []UserStore{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user_stores": list})
	return nil
}

func (h *Handler) findUserStore(r *http.Request, domain string) (*UserStore, error) {
	list, err := h.o.UserStores.List(r.Context())
	if err != nil {
		return nil, err
	}
	for _, us := range list {
		if strings.EqualFold(us.Domain, domain) {
			return &us, nil
		}
	}
	return nil, notFound("user store " + quote(strings.ToUpper(domain)))
}

func (h *Handler) getUserStore(w http.ResponseWriter, r *http.Request) error {
	us, err := h.findUserStore(r, r.PathValue("domain"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, us)
	return nil
}

func (h *Handler) putUserStore(w http.ResponseWriter, r *http.Request) error {
	domain := strings.ToUpper(r.PathValue("domain"))
	var in UserStore
	if err := decode(w, r, &in, 64<<10); err != nil {
		return err
	}
	if in.Domain == "" {
		in.Domain = domain
	}
	if !strings.EqualFold(in.Domain, domain) {
		return fieldErr("domain", "the domain in the body must match the one in the path")
	}
	if err := ValidateUserStore(&in); err != nil {
		return err
	}
	if _, err := in.LDAP.Config(in.Domain); err != nil {
		return err
	}
	existing, err := h.findUserStore(r, domain)
	var he *httpError
	if err != nil && !(errors.As(err, &he) && he.status == http.StatusNotFound) {
		return err
	}
	if in.LDAP.BindDN != "" && in.BindPassword == "" && (existing == nil || !existing.HasBindPassword) {
		return fieldErr("bind_password", "a bind DN needs its password")
	}
	if in.LDAP.BindDN == "" && in.BindPassword != "" {
		return fieldErr("ldap.bind_dn", "a bind password needs its bind DN")
	}
	ctx := r.Context()
	if err := h.o.UserStores.Save(ctx, in); err != nil {
		return fieldErr("ldap", "%s", err.Error())
	}
	action := "user_store.update"
	status := http.StatusOK
	if existing == nil {
		action, status = "user_store.create", http.StatusCreated
	}
	h.audit(ctx, callerOf(ctx).Name, action, in.Domain, "url="+in.LDAP.URL)
	saved, err := h.findUserStore(r, domain)
	if err != nil {
		return err
	}
	writeJSON(w, status, saved)
	return nil
}

func (h *Handler) deleteUserStore(w http.ResponseWriter, r *http.Request) error {
	domain := strings.ToUpper(r.PathValue("domain"))
	ctx := r.Context()
	if err := h.o.UserStores.Delete(ctx, domain); errors.Is(err, storage.ErrNotFound) {
		return notFound("user store " + quote(domain))
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "user_store.delete", domain, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
