package keys

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// TrustStore is the trust store: RP (and, later, client) certificates by
// alias, kept in storage so every node shares them.
type TrustStore struct{ Store storage.Certificates }

// Certificate returns the certificate stored under alias.
func (t TrustStore) Certificate(ctx context.Context, alias string) (*x509.Certificate, error) {
	c, err := t.Store.GetCertificate(ctx, alias)
	if err != nil {
		return nil, err
	}
	return ParseCertPEM(c.PEM)
}

// Add stores cert under alias (replacing an entry of that alias).
func (t TrustStore) Add(ctx context.Context, alias string, cert *x509.Certificate) error {
	if alias == "" {
		return fmt.Errorf("keys: an alias is required")
	}
	return t.Store.PutCertificate(ctx, storage.Certificate{Alias: alias,
		PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), CreatedAt: time.Now().UTC()})
}
