package conformance

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var certificatesTests = []test{
	{"a stored certificate reads back byte for byte with times in UTC", testCertRoundTrip},
	{"getting a missing certificate fails with ErrNotFound", testCertMissing},
	{"a zero CreatedAt is set to now", testCertCreatedNow},
	{"PutCertificate replaces the certificate under the same alias", testCertReplace},
	{"ListCertificates returns every certificate ordered by alias", testCertList},
	{"DeleteCertificate removes it and a second delete fails with ErrNotFound", testCertDelete},
}

// samplePEM is a chain as administrators paste it: CRLF line ends, text
// before the blocks, two certificates, trailing white space.
func samplePEM(alias string) []byte {
	return []byte("Bag Attributes\r\n    friendlyName: " + alias + " — Ålesund\r\n" +
		"-----BEGIN CERTIFICATE-----\r\nMIIBszCCAVmgAwIBAgIUV0\r\n-----END CERTIFICATE-----\r\n" +
		"-----BEGIN CERTIFICATE-----\nMIIBrzCCAVWgAwIBAgIU+/=\n-----END CERTIFICATE-----\n \t\n")
}

func checkCert(t *testing.T, got, want storage.Certificate) {
	t.Helper()
	if got.Alias != want.Alias || string(got.PEM) != string(want.PEM) {
		t.Errorf("certificate = %q/%q, want %q/%q", got.Alias, got.PEM, want.Alias, want.PEM)
	}
	checkTime(t, "Certificate.CreatedAt", got.CreatedAt, want.CreatedAt)
}

func testCertRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := storage.Certificate{Alias: "adfs-signing", PEM: samplePEM("adfs-signing"), CreatedAt: base}
	if err := s.PutCertificate(ctx, want); err != nil {
		t.Fatalf("PutCertificate: %v", err)
	}
	got, err := s.GetCertificate(ctx, want.Alias)
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	checkCert(t, got, want)
}

func testCertMissing(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if _, err := s.GetCertificate(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetCertificate = %v, want ErrNotFound", err)
	}
	if err := s.PutCertificate(ctx, storage.Certificate{Alias: "ca", PEM: samplePEM("ca"), CreatedAt: base}); err != nil {
		t.Fatalf("PutCertificate: %v", err)
	}
	if _, err := s.GetCertificate(ctx, "CA"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetCertificate(CA) = %v, want ErrNotFound (aliases are case-sensitive)", err)
	}
}

func testCertCreatedNow(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.PutCertificate(ctx, storage.Certificate{Alias: "ca", PEM: samplePEM("ca")}); err != nil {
		t.Fatalf("PutCertificate: %v", err)
	}
	got, err := s.GetCertificate(ctx, "ca")
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	checkRecent(t, "CreatedAt", got.CreatedAt)
}

func testCertReplace(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.PutCertificate(ctx, storage.Certificate{Alias: "ca", PEM: samplePEM("old"), CreatedAt: base}); err != nil {
		t.Fatalf("PutCertificate: %v", err)
	}
	want := storage.Certificate{Alias: "ca", PEM: []byte("-----BEGIN CERTIFICATE-----\nrenewed\n-----END CERTIFICATE-----\n"),
		CreatedAt: base.Add(24 * time.Hour)}
	if err := s.PutCertificate(ctx, want); err != nil {
		t.Fatalf("second PutCertificate: %v", err)
	}
	got, err := s.GetCertificate(ctx, "ca")
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	checkCert(t, got, want)
	if certs, err := s.ListCertificates(ctx); err != nil || len(certs) != 1 {
		t.Errorf("ListCertificates = %d entries, %v; want 1", len(certs), err)
	}
}

func testCertList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	certs, err := s.ListCertificates(ctx)
	if err != nil || certs == nil || len(certs) != 0 {
		t.Fatalf("ListCertificates on an empty store = %#v, %v; want empty, non-nil", certs, err)
	}
	aliases := []string{"zoe", "émile", "root-ca", "Root-CA", "_tmp", "root-ca-2"}
	for i, alias := range aliases {
		c := storage.Certificate{Alias: alias, PEM: samplePEM(alias), CreatedAt: base.Add(-time.Duration(i) * time.Hour)}
		if err := s.PutCertificate(ctx, c); err != nil {
			t.Fatalf("PutCertificate(%q): %v", alias, err)
		}
	}
	certs, err = s.ListCertificates(ctx)
	if err != nil {
		t.Fatalf("ListCertificates: %v", err)
	}
	var got []string
	for _, c := range certs {
		got = append(got, c.Alias)
		i := slices.Index(aliases, c.Alias)
		checkCert(t, c, storage.Certificate{Alias: c.Alias, PEM: samplePEM(c.Alias), CreatedAt: base.Add(-time.Duration(i) * time.Hour)})
	}
	// Byte order, not CreatedAt and not any database collation.
	want := []string{"Root-CA", "_tmp", "root-ca", "root-ca-2", "zoe", "émile"}
	if !slices.Equal(got, want) {
		t.Errorf("ListCertificates order = %q, want %q", got, want)
	}
}

func testCertDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, alias := range []string{"a", "b"} {
		if err := s.PutCertificate(ctx, storage.Certificate{Alias: alias, PEM: samplePEM(alias), CreatedAt: base}); err != nil {
			t.Fatalf("PutCertificate: %v", err)
		}
	}
	if err := s.DeleteCertificate(ctx, "a"); err != nil {
		t.Fatalf("DeleteCertificate: %v", err)
	}
	if _, err := s.GetCertificate(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetCertificate after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCertificate(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteCertificate = %v, want ErrNotFound", err)
	}
	if _, err := s.GetCertificate(ctx, "b"); err != nil {
		t.Errorf("GetCertificate(b) = %v, want the untouched certificate", err)
	}
	// The alias is free again.
	if err := s.PutCertificate(ctx, storage.Certificate{Alias: "a", PEM: samplePEM("a"), CreatedAt: base}); err != nil {
		t.Errorf("PutCertificate after delete: %v", err)
	}
}
