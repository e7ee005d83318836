package console

import (
	"context"
	"errors"
	"fmt"
	"github.com/avouch/avouch/internal/sts"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

// User is a PRIMARY user as the API shows it (never a password hash).
type User struct {
	Name        string            `json:"name"`
	Domain      string            `json:"domain"`
	Roles       []string          `json:"roles"`
	Claims      map[string]string `json:"claims"`
	Disabled    bool              `json:"disabled"`
	AllowDigest bool              `json:"allow_digest"`
	Locked      bool              `json:"locked"`
	Created     time.Time         `json:"created,omitzero"`
	Updated     time.Time         `json:"updated,omitzero"`
}

// userInput creates or updates a user; nil fields are left as they are.
type userInput struct {
	Name        string             `json:"name"`
	Password    *string            `json:"password,omitempty"`
	Roles       *[]string          `json:"roles,omitempty"`
	Claims      *map[string]string `json:"claims,omitempty"`
	Disabled    *bool              `json:"disabled,omitempty"`
	AllowDigest *bool              `json:"allow_digest,omitempty"`
}

// ValidateUserName checks a PRIMARY user name.
func ValidateUserName(field, name string) error {
	if name == "" || strings.TrimSpace(name) != name || strings.ContainsAny(name, "/\x00\r\n\t") || len(name) > 256 {
		return fieldErr(field, "a user name is 1-256 characters without '/', line breaks or surrounding spaces")
	}
	return nil
}

// ValidatePassword checks a new password.
func ValidatePassword(field, pw string) error {
	if len(pw) < 8 || len(pw) > 1024 {
		return fieldErr(field, "a password has 8 to 1024 characters")
	}
	return nil
}

// CleanRoles validates and sorts roles.
func CleanRoles(field string, in []string) ([]string, error) {
	set := map[string]bool{}
	for i, r := range in {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if err := ValidateRoleName(fmt.Sprintf("%s[%d]", field, i), r); err != nil {
			return nil, err
		}
		set[r] = true
	}
	return sortedKeys(set), nil
}

// CleanClaims validates claim URIs and values.
func CleanClaims(field string, in map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range sortedKeys(in) {
		if err := ValidateClaimURI(field+"."+k, k); err != nil {
			return nil, err
		}
		if len(in[k]) > 4096 {
			return nil, fieldErr(field+"."+k, "a claim value has at most 4096 characters")
		}
		out[k] = in[k]
	}
	return out, nil
}

func (h *Handler) userView(ctx context.Context, u storage.User) User {
	v := User{Name: u.Name, Domain: identity.PrimaryDomain, Roles: u.Roles, Claims: u.Claims, Disabled: u.Disabled,
		AllowDigest: len(u.DigestSecret) > 0, Created: u.CreatedAt.UTC(), Updated: u.UpdatedAt.UTC()}
	if v.Roles == nil {
		v.Roles = []string{}
	}
	if v.Claims == nil {
		v.Claims = map[string]string{}
	}
	cfg := h.o.Config
	if cfg.LockoutThreshold > 0 {
		n, err := h.o.Store.CountLoginFailures(ctx, u.Name, h.o.Now(), time.Duration(cfg.LockoutWindow))
		v.Locked = err == nil && n >= cfg.LockoutThreshold
	}
	return v
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	domain := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("domain")))
	if domain != "" && domain != identity.PrimaryDomain {
		for _, st := range h.o.Auth.Stores() {
			if st.Domain() != domain {
				continue
			}
			names, err := st.ListUsers(ctx, 1000)
			if err != nil {
				return errStatus(http.StatusBadGateway, "domain", "user store "+domain+" could not be listed: "+err.Error())
			}
			out := []User{}
			for _, n := range names {
				if q == "" || strings.Contains(strings.ToLower(n), q) {
					out = append(out, User{Name: n, Domain: domain, Roles: []string{}, Claims: map[string]string{}})
				}
			}
			writeJSON(w, http.StatusOK, map[string]any{"users": out, "read_only": true})
			return nil
		}
		return &FieldError{Field: "domain", Msg: "no user store " + quote(domain)}
	}
	users, err := h.o.Store.ListUsers(ctx)
	if err != nil {
		return err
	}
	out := []User{}
	for _, u := range users {
		if q != "" && !userMatches(u, q) {
			continue
		}
		out = append(out, h.userView(ctx, u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "read_only": false})
	return nil
}

func userMatches(u storage.User, q string) bool {
	if strings.Contains(strings.ToLower(u.Name), q) {
		return true
	}
	for _, r := range u.Roles {
		if strings.Contains(strings.ToLower(r), q) {
			return true
		}
	}
	for _, v := range u.Claims {
		if strings.Contains(strings.ToLower(v), q) {
			return true
		}
	}
	return false
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.o.Store.GetUser(r.Context(), r.PathValue("name"))
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("user " + quote(r.PathValue("name")))
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.userView(r.Context(), u))
	return nil
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) error {
	var in userInput
	if err := decode(w, r, &in, 256<<10); err != nil {
		return err
	}
	if err := ValidateUserName("name", in.Name); err != nil {
		return err
	}
	if in.Password == nil {
		return fieldErr("password", "required for a new user")
	}
	if err := ValidatePassword("password", *in.Password); err != nil {
		return err
	}
	u := storage.User{Name: in.Name, Roles: []string{}, Claims: map[string]string{}}
	var err error
	if in.Roles != nil {
		if u.Roles, err = CleanRoles("roles", *in.Roles); err != nil {
			return err
		}
	}
	if in.Claims != nil {
		if u.Claims, err = CleanClaims("claims", *in.Claims); err != nil {
			return err
		}
	}
	if in.Disabled != nil {
		u.Disabled = *in.Disabled
	}
	if u.PasswordHash, err = identity.HashPassword(*in.Password); err != nil {
		return err
	}
	if in.AllowDigest != nil && *in.AllowDigest {
		if u.DigestSecret, err = h.o.Box.Seal([]byte(*in.Password)); err != nil {
			return err
		}
	}
	ctx := r.Context()
	u.CreatedAt = h.o.Now().UTC()
	u.UpdatedAt = u.CreatedAt
	if err := h.o.Store.CreateUser(ctx, u); errors.Is(err, storage.ErrAlreadyExists) {
		return errStatus(http.StatusConflict, "name", "a user named "+quote(u.Name)+" already exists")
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "user.create", identity.PrimaryDomain+"/"+u.Name, "roles="+strings.Join(u.Roles, ","))
	saved, err := h.o.Store.GetUser(ctx, u.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/users/"+u.Name)
	writeJSON(w, http.StatusCreated, h.userView(ctx, saved))
	return nil
}

func (h *Handler) putUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var in userInput
	if err := decode(w, r, &in, 256<<10); err != nil {
		return err
	}
	if in.Name != "" && in.Name != name {
		return fieldErr("name", "a user cannot be renamed")
	}
	if in.Password != nil {
		return fieldErr("password", "use POST /api/users/{name}/password to reset a password")
	}
	var roles []string
	var claims map[string]string
	var err error
	if in.Roles != nil {
		if roles, err = CleanRoles("roles", *in.Roles); err != nil {
			return err
		}
	}
	if in.Claims != nil {
		if claims, err = CleanClaims("claims", *in.Claims); err != nil {
			return err
		}
	}
	ctx := r.Context()
	var changed []string
	err = h.o.Store.UpdateUser(ctx, name, func(u storage.User) (storage.User, error) {
		changed = changed[:0]
		if in.Roles != nil {
			u.Roles = roles
			changed = append(changed, "roles="+strings.Join(roles, ","))
		}
		if in.Claims != nil {
			u.Claims = claims
			changed = append(changed, "claims="+strings.Join(sortedKeys(claims), " "))
		}
		if in.Disabled != nil {
			u.Disabled = *in.Disabled
			changed = append(changed, fmt.Sprintf("disabled=%t", u.Disabled))
		}
		if in.AllowDigest != nil {
			if *in.AllowDigest && len(u.DigestSecret) == 0 {
				return u, fieldErr("allow_digest", "PasswordDigest needs the password: reset the password with allow_digest set")
			}
			if !*in.AllowDigest {
				u.DigestSecret = nil
				changed = append(changed, "allow_digest=false")
			}
		}
		return u, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("user " + quote(name))
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "user.update", identity.PrimaryDomain+"/"+name, strings.Join(changed, "; "))
	u, err := h.o.Store.GetUser(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.userView(ctx, u))
	return nil
}

type passwordInput struct {
	Password    string `json:"password"`
	AllowDigest *bool  `json:"allow_digest,omitempty"`
}

func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var in passwordInput
	if err := decode(w, r, &in, 64<<10); err != nil {
		return err
	}
	if err := ValidatePassword("password", in.Password); err != nil {
		return err
	}
	hash, err := identity.HashPassword(in.Password)
	if err != nil {
		return err
	}
	// The new password is sealed for PasswordDigest when asked, or when the
	// user had PasswordDigest and allow_digest is not given.
	sealed, err := h.o.Box.Seal([]byte(in.Password))
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = h.o.Store.UpdateUser(ctx, name, func(u storage.User) (storage.User, error) {
		digest := len(u.DigestSecret) > 0
		if in.AllowDigest != nil {
			digest = *in.AllowDigest
		}
		u.PasswordHash, u.DigestSecret = hash, nil
		if digest {
			u.DigestSecret = sealed
		}
		return u, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("user " + quote(name))
	} else if err != nil {
		return err
	}
	_ = h.o.Store.ClearLoginFailures(ctx, name)
	h.audit(ctx, callerOf(ctx).Name, "user.password_reset", identity.PrimaryDomain+"/"+name, "password changed")
	u, err := h.o.Store.GetUser(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.userView(ctx, u))
	return nil
}

func (h *Handler) unlockUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	ctx := r.Context()
	if _, err := h.o.Store.GetUser(ctx, name); errors.Is(err, storage.ErrNotFound) {
		return notFound("user " + quote(name))
	} else if err != nil {
		return err
	}
	if err := h.o.Store.ClearLoginFailures(ctx, name); err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "user.unlock", identity.PrimaryDomain+"/"+name, "login failures cleared")
	u, err := h.o.Store.GetUser(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.userView(ctx, u))
	return nil
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	ctx := r.Context()
	c := callerOf(ctx)
	if c.Name == identity.PrimaryDomain+"/"+name {
		return errStatus(http.StatusConflict, "name", "you cannot delete the account you are logged in with")
	}
	if err := h.o.Store.DeleteUser(ctx, name); errors.Is(err, storage.ErrNotFound) {
		return notFound("user " + quote(name))
	} else if err != nil {
		return err
	}
	_ = h.o.Store.ClearLoginFailures(ctx, name)
	h.audit(ctx, c.Name, "user.delete", identity.PrimaryDomain+"/"+name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ----- roles and claims -----

func (h *Handler) listRoles(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	all, err := h.o.Store.ListSettings(ctx)
	if err != nil {
		return err
	}
	byName := map[string]*Role{}
	for _, cr := range CatalogueRoles(all) {
		cr := cr
		cr.Members = []string{}
		byName[cr.Name] = &cr
	}
	users, err := h.o.Store.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		for _, rn := range u.Roles {
			role := byName[rn]
			if role == nil {
				role = &Role{Name: rn, Members: []string{}}
				byName[rn] = role
			}
			role.Members = append(role.Members, u.Name)
		}
	}
	out := []Role{}
	for _, n := range sortedKeys(byName) {
		out = append(out, *byName[n])
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out})
	return nil
}

func (h *Handler) createRole(w http.ResponseWriter, r *http.Request) error {
	var in Role
	if err := decode(w, r, &in, 64<<10); err != nil {
		return err
	}
	if err := ValidateRoleName("name", in.Name); err != nil {
		return err
	}
	if len(in.Description) > 1024 {
		return fieldErr("description", "at most 1024 characters")
	}
	ctx := r.Context()
	if _, err := h.o.Store.GetSetting(ctx, RolePrefix+in.Name); err == nil {
		return errStatus(http.StatusConflict, "name", "role "+quote(in.Name)+" already exists")
	}
	if err := PutRole(ctx, h.o.Store, in); err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "role.create", in.Name, "")
	writeJSON(w, http.StatusCreated, Role{Name: in.Name, Description: in.Description, InCatalogue: true, Members: []string{}})
	return nil
}

func (h *Handler) deleteRole(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	ctx := r.Context()
	users, err := h.o.Store.ListUsers(ctx)
	if err != nil {
		return err
	}
	var holders []string
	for _, u := range users {
		for _, rn := range u.Roles {
			if rn == name {
				holders = append(holders, u.Name)
			}
		}
	}
	if len(holders) > 0 {
		sort.Strings(holders)
		return errStatus(http.StatusConflict, "name", fmt.Sprintf("role %s is held by %s: remove it from them first", quote(name), strings.Join(holders, ", ")))
	}
	if err := h.o.Store.DeleteSetting(ctx, RolePrefix+name); errors.Is(err, storage.ErrNotFound) {
		return notFound("role " + quote(name))
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "role.delete", name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// BuiltInClaims are the claim URIs the token core resolves by itself.
var BuiltInClaims = sts.KnownClaims()

func (h *Handler) listClaims(w http.ResponseWriter, r *http.Request) error {
	all, err := h.o.Store.ListSettings(r.Context())
	if err != nil {
		return err
	}
	out := CatalogueClaims(all)
	seen := map[string]bool{}
	for _, c := range out {
		seen[c.URI] = true
	}
	for _, uri := range BuiltInClaims {
		if !seen[uri] {
			out = append(out, Claim{URI: uri, BuiltIn: true})
			seen[uri] = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URI < out[j].URI })
	writeJSON(w, http.StatusOK, map[string]any{"claims": out})
	return nil
}

func (h *Handler) createClaim(w http.ResponseWriter, r *http.Request) error {
	var in Claim
	if err := decode(w, r, &in, 64<<10); err != nil {
		return err
	}
	if err := ValidateClaimURI("uri", in.URI); err != nil {
		return err
	}
	if len(in.DisplayName) > 256 {
		return fieldErr("display_name", "at most 256 characters")
	}
	ctx := r.Context()
	if _, err := h.o.Store.GetSetting(ctx, ClaimPrefix+in.URI); err == nil {
		return errStatus(http.StatusConflict, "uri", "claim "+quote(in.URI)+" already exists")
	}
	if err := PutClaim(ctx, h.o.Store, in); err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "claim.create", in.URI, "")
	writeJSON(w, http.StatusCreated, in)
	return nil
}

func (h *Handler) deleteClaim(w http.ResponseWriter, r *http.Request) error {
	uri := r.PathValue("uri")
	ctx := r.Context()
	if err := h.o.Store.DeleteSetting(ctx, ClaimPrefix+uri); errors.Is(err, storage.ErrNotFound) {
		return notFound("claim " + quote(uri))
	} else if err != nil {
		return err
	}
	h.audit(ctx, callerOf(ctx).Name, "claim.delete", uri, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
