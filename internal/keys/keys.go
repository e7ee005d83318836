package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// Purposes of stored keys.
const (
	PurposeSigning = "signing"
	PurposeTLS     = "tls"
)

// KeyPair is an unsealed private key with its certificate.
type KeyPair struct {
	ID      string
	Signer  crypto.Signer
	Cert    *x509.Certificate
	CertPEM []byte
}

// Algorithm for generated keys.
type Algorithm string

const (
	RSA2048   Algorithm = "rsa-2048"
	ECDSAP256 Algorithm = "ecdsa-p256"
)

func generate(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case RSA2048, "":
		return rsa.GenerateKey(rand.Reader, 2048)
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("keys: unknown algorithm %q", alg)
}

// selfSigned makes a self-signed certificate for key.
func selfSigned(key crypto.Signer, cn string, tls bool, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"avouch"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(3, 0, 0),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if tls {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		if _, ok := key.(*rsa.PrivateKey); ok {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
}

// Manager loads and creates the server's keys in storage.
type Manager struct {
	Store storage.Keys
	Box   *Box
	Now   func() time.Time
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Active returns the active key of purpose, generating and storing one when
// none exists. Concurrent first starts of several nodes may each generate a
// key; the last activation wins and every node reloads it from storage.
func (m *Manager) Active(ctx context.Context, purpose string, alg Algorithm, cn string) (*KeyPair, error) {
	list, err := m.Store.ListKeys(ctx, purpose)
	if err != nil {
		return nil, fmt.Errorf("keys: list %s keys: %w", purpose, err)
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Active {
			return m.unseal(list[i])
		}
	}
	return m.Generate(ctx, purpose, alg, cn)
}

// Generate creates, stores and activates a new key of purpose.
func (m *Manager) Generate(ctx context.Context, purpose string, alg Algorithm, cn string) (*KeyPair, error) {
	key, err := generate(alg)
	if err != nil {
		return nil, err
	}
	now := m.now().UTC()
	der, err := selfSigned(key, cn, purpose == PurposeTLS, now)
	if err != nil {
		return nil, fmt.Errorf("keys: certificate: %w", err)
	}
	return m.Put(ctx, purpose, key, der, true)
}

// Put stores key with its certificate (DER) and optionally activates it.
func (m *Manager) Put(ctx context.Context, purpose string, key crypto.Signer, certDER []byte, activate bool) (*KeyPair, error) {
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	sealed, err := m.Box.Seal(pkcs8)
	if err != nil {
		return nil, err
	}
	now := m.now().UTC()
	rec := storage.Key{
		ID:         fmt.Sprintf("%s-%s", purpose, now.Format("20060102T150405.000000000Z")),
		Purpose:    purpose,
		PrivateKey: sealed,
		CertPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		CreatedAt:  now,
	}
	if err := m.Store.PutKey(ctx, rec); err != nil {
		return nil, fmt.Errorf("keys: store: %w", err)
	}
	if activate {
		if err := m.Store.ActivateKey(ctx, rec.ID); err != nil {
			return nil, fmt.Errorf("keys: activate: %w", err)
		}
		rec.Active = true
	}
	return m.unseal(rec)
}

func (m *Manager) unseal(rec storage.Key) (*KeyPair, error) {
	pkcs8, err := m.Box.Open(rec.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", rec.ID, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", rec.ID, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %s is not a signing key", rec.ID)
	}
	cert, err := ParseCertPEM(rec.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", rec.ID, err)
	}
	if rsaPub, ok := signer.Public().(*rsa.PublicKey); ok {
		if certPub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !certPub.Equal(rsaPub) {
			return nil, fmt.Errorf("keys: key %s does not match its certificate", rec.ID)
		}
	}
	if r, ok := signer.(*rsa.PrivateKey); ok {
		r.Precompute()
	}
	return &KeyPair{ID: rec.ID, Signer: signer, Cert: cert, CertPEM: rec.CertPEM}, nil
}

// ActiveCertPEM returns the active certificate of purpose without unsealing
// the private key (no master key needed).
func ActiveCertPEM(ctx context.Context, store storage.Keys, purpose string) ([]byte, error) {
	list, err := store.ListKeys(ctx, purpose)
	if err != nil {
		return nil, err
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Active {
			return list[i].CertPEM, nil
		}
	}
	return nil, errors.New("keys: no active " + purpose + " key yet (start the server once)")
}

// ParseCertPEM parses the first CERTIFICATE block of data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("keys: no certificate in PEM")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// SigningCerts returns the certificates of every stored signing key: tokens
// signed by any of them (the active key, or one rotated out but kept for an
// overlap period) verify on renew and validate.
func SigningCerts(ctx context.Context, store storage.Keys) ([]*x509.Certificate, error) {
	list, err := store.ListKeys(ctx, PurposeSigning)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, k := range list {
		c, err := ParseCertPEM(k.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("keys: key %s: %w", k.ID, err)
		}
		out = append(out, c)
	}
	return out, nil
}
