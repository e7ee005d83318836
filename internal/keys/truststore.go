package keys

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// TrustStore is the trust store: RP (and, later, client) certificates by
// alias, kept in storage so every node shares them.
type TrustStore struct {
	Store storage.Certificates
	// Cache, when set, keeps the certificates read (see CertCache).
	Cache *CertCache
}

// Certificate returns the certificate stored under alias.
func (t TrustStore) Certificate(ctx context.Context, alias string) (*x509.Certificate, error) {
	if cert := t.Cache.get(alias); cert != nil {
		return cert, nil
	}
	c, err := t.Store.GetCertificate(ctx, alias)
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertPEM(c.PEM)
	if err != nil {
		return nil, err
	}
	t.Cache.put(alias, c.PEM, cert)
	return cert, nil
}

// Add stores cert under alias (replacing an entry of that alias).
func (t TrustStore) Add(ctx context.Context, alias string, cert *x509.Certificate) error {
	if alias == "" {
		return fmt.Errorf("keys: an alias is required")
	}
	err := t.Store.PutCertificate(ctx, storage.Certificate{Alias: alias,
		PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), CreatedAt: time.Now().UTC()})
	t.Cache.forget(alias)
	return err
}

// Delete removes alias (storage.ErrNotFound if absent).
func (t TrustStore) Delete(ctx context.Context, alias string) error {
	err := t.Store.DeleteCertificate(ctx, alias)
	t.Cache.forget(alias)
	return err
}

// CertCache keeps parsed trust-store certificates by alias. Encrypting a
// token for a relying party read and parsed its certificate on every
// request: a query and an X.509 parse, about 4 % of the server's CPU at
// full load. Entries are dropped when this process replaces or deletes
// the alias (TrustStore.Add, Delete) and by Refresh, which the server runs every second:
// a certificate replaced by another process (the CLI, another node) is
// used within a second, as service-provider changes are. Missing aliases
// are not cached. The zero value is not usable; a nil *CertCache caches
// nothing.
type CertCache struct {
	mu      sync.Mutex
	entries map[string]cachedCert
}

type cachedCert struct {
	pem  []byte
	cert *x509.Certificate
}

// NewCertCache returns an empty cache.
func NewCertCache() *CertCache { return &CertCache{entries: map[string]cachedCert{}} }

func (c *CertCache) get(alias string) *x509.Certificate {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[alias].cert
}

func (c *CertCache) put(alias string, pemBytes []byte, cert *x509.Certificate) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[alias] = cachedCert{pem: pemBytes, cert: cert}
}

func (c *CertCache) forget(alias string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, alias)
}

// Refresh drops every entry whose alias is gone from store or now holds
// another certificate.
func (c *CertCache) Refresh(ctx context.Context, store storage.Certificates) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	all, err := store.ListCertificates(ctx)
	if err != nil {
		return err
	}
	stored := make(map[string][]byte, len(all))
	for _, sc := range all {
		stored[sc.Alias] = sc.PEM
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for alias, e := range c.entries {
		if p, ok := stored[alias]; !ok || !bytes.Equal(p, e.pem) {
			delete(c.entries, alias)
		}
	}
	return nil
}
