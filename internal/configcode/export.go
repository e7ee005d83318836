package configcode

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"

	"github.com/avouch/avouch/internal/console"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage"
)

// Export reads the managed configuration from storage.
func Export(ctx context.Context, st storage.Storage) (*Document, error) {
	d := &Document{Version: Version}
	all, err := st.ListSettings(ctx)
	if err != nil {
		return nil, err
	}
	if r := console.StoredResident(all); !r.IsEmpty() {
		d.ResidentIdP = &r
	}
	d.SecurityPolicy = console.StoredPolicy(all)
	if other := console.OtherRuntime(console.StoredRuntime(all)); len(other) > 0 {
		d.RuntimeSettings = other
	}
	d.Roles = console.CatalogueRoles(all)
	d.Claims = console.CatalogueClaims(all)

	certs, err := st.ListCertificates(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(certs, func(i, j int) bool { return certs[i].Alias < certs[j].Alias })
	for _, c := range certs {
		cert, err := keys.ParseCertPEM(c.PEM)
		if err != nil {
			return nil, fmt.Errorf("trust store %q: %w", c.Alias, err)
		}
		d.TrustStore = append(d.TrustStore, Certificate{Alias: c.Alias, PEM: console.PEMOf(cert)})
	}

	recs, err := st.ListServiceProviders(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	for _, rec := range recs {
		sp, err := registry.Decode(rec)
		if err != nil {
			return nil, err
		}
		d.ServiceProviders = append(d.ServiceProviders, sp)
	}

	stores, err := server.ListUserStores(ctx, st)
	if err != nil {
		return nil, err
	}
	for _, us := range stores {
		d.UserStores = append(d.UserStores, server.SealedUserStore(us))
	}

	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
	for _, u := range users {
		eu := User{Name: u.Name, PasswordHash: u.PasswordHash, Roles: u.Roles, Claims: u.Claims, Disabled: u.Disabled}
		if len(u.DigestSecret) > 0 {
			eu.SealedDigestSecret = base64.StdEncoding.EncodeToString(u.DigestSecret)
		}
		if len(eu.Roles) == 0 {
			eu.Roles = nil
		}
		if len(eu.Claims) == 0 {
			eu.Claims = nil
		}
		d.Users = append(d.Users, eu)
	}
	return d, nil
}
