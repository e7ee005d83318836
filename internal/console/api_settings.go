package console

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/avouch/avouch/internal/identity"
)

// residentView is the resident IdP in force, with the settings this node
// fixes by flag or environment (stored values for those do not apply here).
type residentView struct {
	ResidentIdP
	Fixed []string `json:"fixed,omitempty"`
}

func (h *Handler) fixed(keys ...string) []string {
	var out []string
	for _, k := range keys {
		if h.o.Config.Fixed[k] {
			out = append(out, k)
		}
	}
	return out
}

func (h *Handler) getResident(w http.ResponseWriter, r *http.Request) error {
	cfg, all, err := h.effective(r.Context())
	if err != nil {
		return err
	}
	keys := []string{"refuse_unknown_relying_parties"}
	for _, f := range residentFields {
		keys = append(keys, f.key)
	}
	writeJSON(w, http.StatusOK, residentView{EffectiveResident(cfg, HomeRealms(all)), h.fixed(keys...)})
	return nil
}

func (h *Handler) putResident(w http.ResponseWriter, r *http.Request) error {
	var in ResidentIdP
	if err := decode(w, r, &in, 64<<10); err != nil {
		return err
	}
	ctx := r.Context()
	updates, realms, err := ResidentSettings(in)
	if err != nil {
		return err
	}
	if err := h.storeRuntime(ctx, updates); err != nil {
		return err
	}
	if realms != nil {
		if err := PutHomeRealms(ctx, h.o.Store, realms); err != nil {
			return err
		}
	}
	changed := orderedKeys(updates)
	if realms != nil {
		changed = append([]string{"home_realm_identifiers"}, changed...)
	}
	h.audit(ctx, callerOf(ctx).Name, "resident_idp.update", "resident", "changed: "+strings.Join(changed, ", "))
	return h.getResident(w, r)
}

// storeRuntime validates runtime updates against the stored settings, stores
// them and applies them on this node.
func (h *Handler) storeRuntime(ctx context.Context, updates map[string]string) error {
	if len(updates) == 0 {
		return nil
	}
	all, err := h.o.Store.ListSettings(ctx)
	if err != nil {
		return err
	}
	if err := CheckRuntime(h.o.Config, StoredRuntime(all), updates); err != nil {
		return err
	}
	if err := PutRuntime(ctx, h.o.Store, updates); err != nil {
		return err
	}
	if h.o.ApplyRuntime != nil {
		return h.o.ApplyRuntime(ctx)
	}
	return nil
}

// policyView is the security policy in force with the choices the wizard
// offers.
type policyView struct {
	Enabled        bool     `json:"enabled"`
	Scenario       string   `json:"scenario"`
	AllowedRoles   []string `json:"allowed_roles"`
	AllowedDomains []string `json:"allowed_domains"`
	Scenarios      []string `json:"scenarios"`
	Domains        []string `json:"domains"`
	Roles          []string `json:"roles"`
	Fixed          []string `json:"fixed,omitempty"`
}

// domains lists PRIMARY and the secondary user-store domains.
func (h *Handler) domains(ctx context.Context) ([]string, error) {
	out := []string{identity.PrimaryDomain}
	if h.o.UserStores == nil {
		return out, nil
	}
	list, err := h.o.UserStores.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, us := range list {
		out = append(out, us.Domain)
	}
	return out, nil
}

func (h *Handler) getPolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	cfg, all, err := h.effective(ctx)
	if err != nil {
		return err
	}
	doms, err := h.domains(ctx)
	if err != nil {
		return err
	}
	roles, err := h.roleNames(ctx, all)
	if err != nil {
		return err
	}
	allowedDomains := cfg.AllowedDomains
	if len(allowedDomains) == 0 {
		allowedDomains = []string{AllDomains}
	}
	scenario, _ := cfg.Get(scenarioKey)
	writeJSON(w, http.StatusOK, policyView{Enabled: true, Scenario: ScenarioName(scenario),
		AllowedRoles: cfg.AllowedRoles, AllowedDomains: allowedDomains, Scenarios: Scenarios(),
		Domains: append([]string{AllDomains}, doms...), Roles: roles,
		Fixed: h.fixed("allowed_roles", "allowed_domains", scenarioKey)})
	return nil
}

// roleNames are the roles the console offers: the catalogue, the roles
// users hold and the ones already allowed.
func (h *Handler) roleNames(ctx context.Context, all map[string]string) ([]string, error) {
	set := map[string]bool{AdminRole: true}
	for _, r := range CatalogueRoles(all) {
		set[r.Name] = true
	}
	users, err := h.o.Store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		for _, r := range u.Roles {
			set[r] = true
		}
	}
	out := sortedKeys(set)
	sort.Strings(out)
	return out, nil
}

func (h *Handler) putPolicy(w http.ResponseWriter, r *http.Request) error {
	var in Policy
	if err := decode(w, r, &in, 64<<10); err != nil {
		return err
	}
	ctx := r.Context()
	doms, err := h.domains(ctx)
	if err != nil {
		return err
	}
	updates, err := PolicySettings(in, doms, false)
	if err != nil {
		return err
	}
	if err := h.storeRuntime(ctx, updates); err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "sts_policy.update", ScenarioName(updates[scenarioKey]),
		"allowed_roles="+updates["allowed_roles"]+" allowed_domains="+updates["allowed_domains"])
	return h.getPolicy(w, r)
}
