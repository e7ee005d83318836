package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/identity/ldap"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/storage"
)

// UserStorePrefix marks secondary user store configurations in the settings
// table; they live in the database so every node of a cluster has them.
const UserStorePrefix = "userstore."

// StoredUserStore is a secondary user store as stored: the LDAP settings with
// the bind password sealed under the master key.
type StoredUserStore struct {
	Type  string      `json:"type"` // "ldap"
	Order int         `json:"order"`
	LDAP  ldap.Config `json:"ldap"`
	// SealedBindPassword replaces LDAP.BindPassword at rest.
	SealedBindPassword []byte `json:"sealed_bind_password,omitempty"`
}

// SaveUserStore stores (or replaces) a secondary user store.
func SaveUserStore(ctx context.Context, st storage.Settings, box *keys.Box, us StoredUserStore) error {
	us.LDAP.Domain = strings.ToUpper(strings.TrimSpace(us.LDAP.Domain))
	if us.LDAP.Domain == "" || us.LDAP.Domain == identity.PrimaryDomain || strings.Contains(us.LDAP.Domain, "/") {
		return fmt.Errorf("user store domain must be a name other than %s, without '/'", identity.PrimaryDomain)
	}
	if _, err := ldap.New(us.LDAP); err != nil { // validate before storing
		return err
	}
	if us.LDAP.BindPassword != "" {
		sealed, err := box.Seal([]byte(us.LDAP.BindPassword))
		if err != nil {
			return err
		}
		us.SealedBindPassword, us.LDAP.BindPassword = sealed, ""
	}
	us.Type = "ldap"
	data, err := json.Marshal(us)
	if err != nil {
		return err
	}
	return st.PutSetting(ctx, UserStorePrefix+us.LDAP.Domain, string(data))
}

// ListUserStores returns the stored user stores in search order (bind
// passwords stay sealed).
func ListUserStores(ctx context.Context, st storage.Settings) ([]StoredUserStore, error) {
	all, err := st.ListSettings(ctx)
	if err != nil {
		return nil, err
	}
	var out []StoredUserStore
	for k, v := range all {
		if !strings.HasPrefix(k, UserStorePrefix) {
			continue
		}
		var us StoredUserStore
		if err := json.Unmarshal([]byte(v), &us); err != nil {
			return nil, fmt.Errorf("user store %s: %w", strings.TrimPrefix(k, UserStorePrefix), err)
		}
		out = append(out, us)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].LDAP.Domain < out[j].LDAP.Domain
	})
	return out, nil
}

// OpenUserStores builds the stores (no connection is made until first use).
func OpenUserStores(ctx context.Context, st storage.Settings, box *keys.Box) ([]identity.UserStore, error) {
	list, err := ListUserStores(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []identity.UserStore
	for _, us := range list {
		cfg := us.LDAP
		if len(us.SealedBindPassword) > 0 {
			pw, err := box.Open(us.SealedBindPassword)
			if err != nil {
				return nil, fmt.Errorf("user store %s: bind password: %w", cfg.Domain, err)
			}
			cfg.BindPassword = string(pw)
		}
		s, err := ldap.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("user store %s: %w", cfg.Domain, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// userStoreFingerprint changes whenever a user store setting does.
func userStoreSettings(all map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, UserStorePrefix) {
			out[k] = v
		}
	}
	return out
}

// reloadUserStores swaps the authenticator's secondary stores.
func (s *Server) reloadUserStores(ctx context.Context) error {
	stores, err := OpenUserStores(ctx, s.Store, s.Box)
	if err != nil {
		return err
	}
	old := s.Auth.Stores()
	s.Auth.SetStores(stores)
	for _, o := range old {
		_ = o.Close()
	}
	return nil
}
