package conformance

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var keysTests = []test{
	{"a stored key reads back unchanged", testKeyRoundTrip},
	{"PutKey replaces the key with the same ID", testKeyReplace},
	{"getting a missing key fails with ErrNotFound", testKeyMissing},
	{"ListKeys returns only the keys of the purpose, oldest first", testKeyList},
	{"ActivateKey leaves exactly one active key per purpose", testKeyActivate},
	{"PutKey of an active key deactivates the others of its purpose", testKeyPutActive},
	{"activating a missing key fails with ErrNotFound and changes nothing", testKeyActivateMissing},
	{"concurrent ActivateKey calls leave exactly one active key", testKeyActivateConcurrent},
	{"DeleteKey removes the key and a second delete fails with ErrNotFound", testKeyDelete},
}

func sampleKey(id, purpose string, created time.Time) storage.Key {
	return storage.Key{
		ID:         id,
		Purpose:    purpose,
		PrivateKey: []byte("sealed\x00pkcs8:" + id),
		CertPEM:    []byte("-----BEGIN CERTIFICATE-----\n" + id + "\n-----END CERTIFICATE-----\n"),
		CreatedAt:  created,
	}
}

func checkKey(t *testing.T, got, want storage.Key) {
	t.Helper()
	if got.ID != want.ID || got.Purpose != want.Purpose || got.Active != want.Active ||
		string(got.PrivateKey) != string(want.PrivateKey) || string(got.CertPEM) != string(want.CertPEM) {
		t.Errorf("key = %+v, want %+v", got, want)
	}
	checkTime(t, "Key.CreatedAt", got.CreatedAt, want.CreatedAt)
}

// active returns the IDs of the active keys of purpose.
func active(t *testing.T, s storage.Storage, purpose string) []string {
	t.Helper()
	keys, err := s.ListKeys(t.Context(), purpose)
	if err != nil {
		t.Fatalf("ListKeys(%s): %v", purpose, err)
	}
	var ids []string
	for _, k := range keys {
		if k.Active {
			ids = append(ids, k.ID)
		}
	}
	return ids
}

func testKeyRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := sampleKey("signing-2026-11-22T17:20:00Z", "signing", base)
	want.Active = true
	if err := s.PutKey(ctx, want); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	got, err := s.GetKey(ctx, want.ID)
	if err != nil {
		t.Fatalf("GetKey: %v", err)
	}
	checkKey(t, got, want)
}

func testKeyReplace(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	k := sampleKey("k1", "signing", base)
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	k.CertPEM = []byte("renewed certificate")
	k.Active = true
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatalf("second PutKey: %v", err)
	}
	got, err := s.GetKey(ctx, "k1")
	if err != nil {
		t.Fatalf("GetKey: %v", err)
	}
	checkKey(t, got, k)
	if keys, _ := s.ListKeys(ctx, "signing"); len(keys) != 1 {
		t.Errorf("ListKeys has %d keys, want 1", len(keys))
	}
}

func testKeyMissing(t *testing.T, s storage.Storage) {
	if _, err := s.GetKey(t.Context(), "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetKey = %v, want ErrNotFound", err)
	}
}

func testKeyList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	keys, err := s.ListKeys(ctx, "signing")
	if err != nil || keys == nil || len(keys) != 0 {
		t.Fatalf("ListKeys on an empty store = %#v, %v; want empty, non-nil", keys, err)
	}
	// Inserted out of order; "b" and "a" share a creation time.
	for _, k := range []storage.Key{
		sampleKey("c", "signing", base.Add(2*time.Hour)),
		sampleKey("tls-1", "tls", base),
		sampleKey("b", "signing", base.Add(time.Hour)),
		sampleKey("a", "signing", base.Add(time.Hour)),
		sampleKey("old", "signing", base),
	} {
		if err := s.PutKey(ctx, k); err != nil {
			t.Fatalf("PutKey(%s): %v", k.ID, err)
		}
	}
	keys, err = s.ListKeys(ctx, "signing")
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if want := []string{"old", "a", "b", "c"}; !slices.Equal(ids, want) {
		t.Errorf("ListKeys(signing) = %q, want %q (by CreatedAt, then ID)", ids, want)
	}
	if keys, _ := s.ListKeys(ctx, "tls"); len(keys) != 1 || keys[0].ID != "tls-1" {
		t.Errorf("ListKeys(tls) = %+v, want just tls-1", keys)
	}
	if keys, err := s.ListKeys(ctx, "unknown"); err != nil || len(keys) != 0 {
		t.Errorf("ListKeys(unknown) = %+v, %v; want none", keys, err)
	}
}

func testKeyActivate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for i, id := range []string{"s1", "s2", "s3"} {
		if err := s.PutKey(ctx, sampleKey(id, "signing", base.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatalf("PutKey: %v", err)
		}
	}
	tlsKey := sampleKey("t1", "tls", base)
	tlsKey.Active = true
	if err := s.PutKey(ctx, tlsKey); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	for _, id := range []string{"s1", "s2", "s2", "s3", "s1"} {
		if err := s.ActivateKey(ctx, id); err != nil {
			t.Fatalf("ActivateKey(%s): %v", id, err)
		}
		if got := active(t, s, "signing"); !slices.Equal(got, []string{id}) {
			t.Fatalf("after ActivateKey(%s) active signing keys = %q, want [%s]", id, got, id)
		}
		if got := active(t, s, "tls"); !slices.Equal(got, []string{"t1"}) {
			t.Fatalf("after ActivateKey(%s) active tls keys = %q, want [t1]", id, got)
		}
	}
	if k, err := s.GetKey(ctx, "s1"); err != nil || !k.Active {
		t.Errorf("GetKey(s1) = active %v, %v; want active", k.Active, err)
	}
}

func testKeyPutActive(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for i, id := range []string{"s1", "s2"} {
		k := sampleKey(id, "signing", base.Add(time.Duration(i)*time.Minute))
		k.Active = true
		if err := s.PutKey(ctx, k); err != nil {
			t.Fatalf("PutKey(%s): %v", id, err)
		}
		if got := active(t, s, "signing"); !slices.Equal(got, []string{id}) {
			t.Fatalf("after PutKey(%s, active) active keys = %q, want [%s]", id, got, id)
		}
	}
}

func testKeyActivateMissing(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	k := sampleKey("s1", "signing", base)
	k.Active = true
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	if err := s.ActivateKey(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ActivateKey = %v, want ErrNotFound", err)
	}
	if got := active(t, s, "signing"); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("active keys = %q, want [s1] unchanged", got)
	}
}

func testKeyActivateConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const n = 10
	for i := range n {
		if err := s.PutKey(ctx, sampleKey(fmt.Sprintf("k%d", i), "signing", base)); err != nil {
			t.Fatalf("PutKey: %v", err)
		}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.ActivateKey(ctx, fmt.Sprintf("k%d", i)); err != nil {
				t.Errorf("ActivateKey: %v", err)
			}
		})
	}
	wg.Wait()
	if got := active(t, s, "signing"); len(got) != 1 {
		t.Errorf("active keys = %q, want exactly one", got)
	}
}

func testKeyDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, id := range []string{"k1", "k2"} {
		if err := s.PutKey(ctx, sampleKey(id, "signing", base)); err != nil {
			t.Fatalf("PutKey: %v", err)
		}
	}
	if err := s.DeleteKey(ctx, "k1"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := s.GetKey(ctx, "k1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetKey after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteKey(ctx, "k1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteKey = %v, want ErrNotFound", err)
	}
	if _, err := s.GetKey(ctx, "k2"); err != nil {
		t.Errorf("GetKey(k2) = %v, want the untouched key", err)
	}
}
