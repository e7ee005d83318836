package console

import (
	"net/http"
)

// routeTable lists every API operation; the OpenAPI document must describe
// exactly these (a test checks it).
func (h *Handler) routeTable() []route {
	return []route{
		{method: "GET", pattern: "/api/openapi.json", public: true, handle: h.openAPI},
		{method: "POST", pattern: "/api/session", public: true, handle: h.login},
		{method: "GET", pattern: "/api/session", handle: h.whoami},
		{method: "DELETE", pattern: "/api/session", handle: h.logout},

		{method: "GET", pattern: "/api/resident-idp", handle: h.getResident},
		{method: "PUT", pattern: "/api/resident-idp", handle: h.putResident},
		{method: "GET", pattern: "/api/sts-policy", handle: h.getPolicy},
		{method: "PUT", pattern: "/api/sts-policy", handle: h.putPolicy},

		{method: "GET", pattern: "/api/service-providers", handle: h.listSPs},
		{method: "POST", pattern: "/api/service-providers", handle: h.createSP},
		{method: "GET", pattern: "/api/service-providers/{name}", handle: h.getSP},
		{method: "PUT", pattern: "/api/service-providers/{name}", handle: h.putSP},
		{method: "DELETE", pattern: "/api/service-providers/{name}", handle: h.deleteSP},

		{method: "GET", pattern: "/api/users", handle: h.listUsers},
		{method: "POST", pattern: "/api/users", handle: h.createUser},
		{method: "GET", pattern: "/api/users/{name}", handle: h.getUser},
		{method: "PUT", pattern: "/api/users/{name}", handle: h.putUser},
		{method: "DELETE", pattern: "/api/users/{name}", handle: h.deleteUser},
		{method: "POST", pattern: "/api/users/{name}/password", handle: h.resetPassword},
		{method: "POST", pattern: "/api/users/{name}/unlock", handle: h.unlockUser},

		{method: "GET", pattern: "/api/roles", handle: h.listRoles},
		{method: "POST", pattern: "/api/roles", handle: h.createRole},
		{method: "DELETE", pattern: "/api/roles/{name}", handle: h.deleteRole},
		{method: "GET", pattern: "/api/claims", handle: h.listClaims},
		{method: "POST", pattern: "/api/claims", handle: h.createClaim},
		{method: "DELETE", pattern: "/api/claims/{uri...}", handle: h.deleteClaim},

		{method: "GET", pattern: "/api/user-stores", handle: h.listUserStores},
		{method: "GET", pattern: "/api/user-stores/{domain}", handle: h.getUserStore},
		{method: "PUT", pattern: "/api/user-stores/{domain}", handle: h.putUserStore},
		{method: "DELETE", pattern: "/api/user-stores/{domain}", handle: h.deleteUserStore},

		{method: "GET", pattern: "/api/keys", handle: h.listKeys},
		{method: "POST", pattern: "/api/keys/signing/rotate", handle: h.rotateKey},
		{method: "POST", pattern: "/api/keys/signing/import", handle: h.importSigningKey},
		{method: "GET", pattern: "/api/truststore", handle: h.listTrusted},
		{method: "POST", pattern: "/api/truststore", handle: h.uploadTrusted},
		{method: "GET", pattern: "/api/truststore/{alias...}", handle: h.getTrusted},
		{method: "DELETE", pattern: "/api/truststore/{alias...}", handle: h.deleteTrusted},

		{method: "GET", pattern: "/api/tracer", handle: h.getTracer},
		{method: "PUT", pattern: "/api/tracer", handle: h.putTracer},
		{method: "DELETE", pattern: "/api/tracer/exchanges", handle: h.clearTracer},

		{method: "GET", pattern: "/api/audit", handle: h.listAudit},

		{method: "GET", pattern: "/api/tokens", handle: h.listTokens},
		{method: "POST", pattern: "/api/tokens", handle: h.createToken},
		{method: "DELETE", pattern: "/api/tokens/{id}", handle: h.revokeToken},
	}
}

// Routes returns "METHOD pattern" of every API operation (for tests and the
// OpenAPI check).
func (h *Handler) Routes() []string {
	out := make([]string, len(h.routes))
	for i, r := range h.routes {
		out[i] = r.method + " " + r.pattern
	}
	return out
}

func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) error {
	b, err := embedded.ReadFile("openapi.json")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
	return nil
}
