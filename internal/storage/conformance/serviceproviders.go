package conformance

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var serviceProvidersTests = []test{
	{"a stored service provider reads back byte for byte with Version 1", testSPRoundTrip},
	{"getting a missing service provider fails with ErrNotFound", testSPMissing},
	{"PutServiceProvider replaces the data and bumps Version on every put", testSPReplace},
	{"concurrent puts of one service provider each bump Version", testSPPutConcurrent},
	{"ListServiceProviders returns every service provider ordered by name", testSPList},
	{"DeleteServiceProvider removes it and a second delete fails with ErrNotFound", testSPDelete},
	{"putting a deleted service provider again continues its Version", testSPVersionAfterDelete},
}

// spData is JSON as the registry writes it, with what a JSON-aware column
// type would normalise: key order, white space, escapes, \u0000.
func spData(name string) []byte {
	return []byte(`{"wsfed": {"realm":"urn:` + name + `", "reply":"https://rp.example.org/?a=1&b=2"},
	"saml2":null, "a":"Ålesund — 😀 \u0000 \"q\"", "a":"duplicate key"}` + "\n")
}

func checkSP(t *testing.T, got storage.ServiceProvider, name string, data []byte, version int64) {
	t.Helper()
	if got.Name != name || string(got.Data) != string(data) || got.Version != version {
		t.Errorf("service provider = %q/%q/version %d, want %q/%q/version %d",
			got.Name, got.Data, got.Version, name, data, version)
	}
}

func testSPRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	// Version and UpdatedAt belong to the backend: the caller's are ignored.
	sp := storage.ServiceProvider{Name: "https://rp.example.org/", Data: spData("rp"), Version: 41, UpdatedAt: base}
	if err := s.PutServiceProvider(ctx, sp); err != nil {
		t.Fatalf("PutServiceProvider: %v", err)
	}
	got, err := s.GetServiceProvider(ctx, sp.Name)
	if err != nil {
		t.Fatalf("GetServiceProvider: %v", err)
	}
	checkSP(t, got, sp.Name, sp.Data, 1)
	checkRecent(t, "UpdatedAt", got.UpdatedAt)
}

func testSPMissing(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if _, err := s.GetServiceProvider(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetServiceProvider = %v, want ErrNotFound", err)
	}
	if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: "rp", Data: spData("rp")}); err != nil {
		t.Fatalf("PutServiceProvider: %v", err)
	}
	if _, err := s.GetServiceProvider(ctx, "RP"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetServiceProvider(RP) = %v, want ErrNotFound (names are case-sensitive)", err)
	}
}

func testSPReplace(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	var prev time.Time
	for i, data := range [][]byte{spData("v1"), []byte(`{}`), spData("v3")} {
		// Put back what was read, as a read-modify-write caller does: the
		// stale Version must not stick.
		sp := storage.ServiceProvider{Name: "rp", Data: data}
		if i > 0 {
			old, err := s.GetServiceProvider(ctx, "rp")
			if err != nil {
				t.Fatalf("GetServiceProvider: %v", err)
			}
			sp = old
			sp.Data = data
		}
		if err := s.PutServiceProvider(ctx, sp); err != nil {
			t.Fatalf("PutServiceProvider #%d: %v", i+1, err)
		}
		got, err := s.GetServiceProvider(ctx, "rp")
		if err != nil {
			t.Fatalf("GetServiceProvider: %v", err)
		}
		checkSP(t, got, "rp", data, int64(i+1))
		checkRecent(t, "UpdatedAt", got.UpdatedAt)
		if got.UpdatedAt.Before(prev) {
			t.Errorf("UpdatedAt went back from %v to %v", prev, got.UpdatedAt)
		}
		prev = got.UpdatedAt
	}
	if sps, err := s.ListServiceProviders(ctx); err != nil || len(sps) != 1 {
		t.Errorf("ListServiceProviders = %d entries, %v; want 1", len(sps), err)
	}
}

func testSPPutConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	// The name does not exist yet: concurrent first puts race on the insert.
	const n = 10
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: "rp", Data: spData("rp")}); err != nil {
				t.Errorf("PutServiceProvider: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	got, err := s.GetServiceProvider(ctx, "rp")
	if err != nil {
		t.Fatalf("GetServiceProvider: %v", err)
	}
	if got.Version != n {
		t.Errorf("Version = %d after %d puts, want %d (a bump was lost)", got.Version, n, n)
	}
}

func testSPList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	sps, err := s.ListServiceProviders(ctx)
	if err != nil || sps == nil || len(sps) != 0 {
		t.Fatalf("ListServiceProviders on an empty store = %#v, %v; want empty, non-nil", sps, err)
	}
	names := []string{"zoe", "émile", "https://rp.example.org/", "alice", "Alice", "_svc", "urn:rp"}
	for _, name := range names {
		if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: name, Data: spData(name)}); err != nil {
			t.Fatalf("PutServiceProvider(%q): %v", name, err)
		}
	}
	// A second put of one of them: List reports its current Version.
	if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: "zoe", Data: spData("zoe")}); err != nil {
		t.Fatalf("PutServiceProvider: %v", err)
	}
	sps, err = s.ListServiceProviders(ctx)
	if err != nil {
		t.Fatalf("ListServiceProviders: %v", err)
	}
	var got []string
	for _, sp := range sps {
		got = append(got, sp.Name)
		want := int64(1)
		if sp.Name == "zoe" {
			want = 2
		}
		checkSP(t, sp, sp.Name, spData(sp.Name), want)
		checkRecent(t, sp.Name+" UpdatedAt", sp.UpdatedAt)
	}
	// Byte order, independent of any database collation.
	want := []string{"Alice", "_svc", "alice", "https://rp.example.org/", "urn:rp", "zoe", "émile"}
	if !slices.Equal(got, want) {
		t.Errorf("ListServiceProviders order = %q, want %q", got, want)
	}
}

func testSPDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, name := range []string{"rp1", "rp2"} {
		if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: name, Data: spData(name)}); err != nil {
			t.Fatalf("PutServiceProvider: %v", err)
		}
	}
	if err := s.DeleteServiceProvider(ctx, "rp1"); err != nil {
		t.Fatalf("DeleteServiceProvider: %v", err)
	}
	if _, err := s.GetServiceProvider(ctx, "rp1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetServiceProvider after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteServiceProvider(ctx, "rp1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteServiceProvider = %v, want ErrNotFound", err)
	}
	if err := s.DeleteServiceProvider(ctx, "never"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteServiceProvider(never) = %v, want ErrNotFound", err)
	}
	sps, err := s.ListServiceProviders(ctx)
	if err != nil || len(sps) != 1 || sps[0].Name != "rp2" {
		t.Errorf("ListServiceProviders after delete = %+v, %v; want just rp2", sps, err)
	}
}

// testSPVersionAfterDelete: a cache that saw version 1 of the deleted
// registration must not take a new registration of the same name for it.
func testSPVersionAfterDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for range 2 {
		if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: "rp", Data: []byte(`{"old":true}`)}); err != nil {
			t.Fatalf("PutServiceProvider: %v", err)
		}
	}
	if err := s.DeleteServiceProvider(ctx, "rp"); err != nil {
		t.Fatalf("DeleteServiceProvider: %v", err)
	}
	if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: "rp", Data: []byte(`{"new":true}`)}); err != nil {
		t.Fatalf("PutServiceProvider after delete: %v", err)
	}
	got, err := s.GetServiceProvider(ctx, "rp")
	if err != nil {
		t.Fatalf("GetServiceProvider: %v", err)
	}
	checkSP(t, got, "rp", []byte(`{"new":true}`), 3)
}
