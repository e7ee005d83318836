package keys

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

// countingCerts counts the reads that reach the store.
type countingCerts struct {
	storage.Certificates
	gets int
}

func (c *countingCerts) GetCertificate(ctx context.Context, alias string) (storage.Certificate, error) {
	c.gets++
	return c.Certificates.GetCertificate(ctx, alias)
}

func newCert(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	k, err := generate(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := selfSigned(k, cn, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTrustStoreCache: a cached certificate is read from the store once;
// replacing it through the TrustStore takes effect at once, replacing or
// deleting it elsewhere (another process) at the next Refresh.
func TestTrustStoreCache(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "avouch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &countingCerts{Certificates: db}
	ts := TrustStore{Store: store, Cache: NewCertCache()}
	cn := func(alias string) string {
		t.Helper()
		c, err := ts.Certificate(ctx, alias)
		if err != nil {
			t.Fatalf("%s: %v", alias, err)
		}
		return c.Subject.CommonName
	}
	elsewhere := func(alias, name string) { // as the CLI would, straight to storage
		t.Helper()
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newCert(t, name).Raw})
		if err := db.PutCertificate(ctx, storage.Certificate{Alias: alias, PEM: pemBytes, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}

	if err := ts.Add(ctx, "rp", newCert(t, "one")); err != nil {
		t.Fatal(err)
	}
	first, second := cn("rp"), cn("rp")
	if first != "one" || second != "one" || store.gets != 1 {
		t.Fatalf("two reads gave %s and %s and reached the store %d times, want one, one and 1", first, second, store.gets)
	}
	if err := ts.Add(ctx, "rp", newCert(t, "two")); err != nil {
		t.Fatal(err)
	}
	if got := cn("rp"); got != "two" {
		t.Fatalf("after Add: %s, want two", got)
	}

	elsewhere("rp", "three")
	if got := cn("rp"); got != "two" {
		t.Fatalf("before Refresh: %s, want the cached two", got)
	}
	if err := ts.Cache.Refresh(ctx, db); err != nil {
		t.Fatal(err)
	}
	if got := cn("rp"); got != "three" {
		t.Fatalf("after Refresh: %s, want three", got)
	}
	gets := store.gets
	if err := ts.Cache.Refresh(ctx, db); err != nil || cn("rp") != "three" || store.gets != gets {
		t.Fatalf("an unchanged certificate was dropped by Refresh (%v)", err)
	}

	if err := db.DeleteCertificate(ctx, "rp"); err != nil {
		t.Fatal(err)
	}
	if err := ts.Cache.Refresh(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Certificate(ctx, "rp"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a deleted alias after Refresh: %v, want ErrNotFound", err)
	}
	// A miss is not cached: the alias works once it exists.
	elsewhere("rp", "four")
	if got := cn("rp"); got != "four" {
		t.Fatalf("after a miss: %s, want four", got)
	}

	// Without a cache every read reaches the store.
	plain := TrustStore{Store: store}
	gets = store.gets
	for range 2 {
		if _, err := plain.Certificate(ctx, "rp"); err != nil {
			t.Fatal(err)
		}
	}
	if store.gets != gets+2 {
		t.Fatalf("without a cache: %d reads reached the store, want 2", store.gets-gets)
	}
}
