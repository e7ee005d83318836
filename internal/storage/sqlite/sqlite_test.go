package sqlite_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/conformance"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Storage {
		return open(t, filepath.Join(t.TempDir(), "avouch.db"))
	})
}

// TestConformanceThroughUserCache: the server wraps its store in
// storage.CacheUsers; wrapped, it must still behave as a store.
func TestConformanceThroughUserCache(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Storage {
		return storage.CacheUsers(open(t, filepath.Join(t.TempDir(), "avouch.db")), time.Minute, nil)
	})
}

func TestOpenRejectsAnEmptyPath(t *testing.T) {
	if _, err := sqlite.Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded, want an error")
	}
}

func TestReopeningKeepsDataAndDoesNotMigrateTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c.db") // URI metacharacters in the name
	s := open(t, path)
	if err := s.PutSetting(t.Context(), "k", "v"); err != nil {
		t.Fatalf("PutSetting: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, path)
	defer s.Close()
	if v, err := s.GetSetting(t.Context(), "k"); err != nil || v != "v" {
		t.Fatalf("GetSetting after reopen = %q, %v; want v", v, err)
	}
	// A file: URI, as Open builds: the driver would cut a plain path at '?'.
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, versions int
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if rows != versions || rows == 0 {
		t.Errorf("schema_migrations has %d rows for %d versions, want one row per version", rows, versions)
	}
}

func TestANewDatabaseFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.db")
	s := open(t, path)
	defer s.Close()
	if err := s.PutSetting(t.Context(), "k", "v"); err != nil {
		t.Fatalf("PutSetting: %v", err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", filepath.Base(p), perm)
		}
	}
}

// TestCheckpointsRunOffTheRequestPath: the writer never checkpoints on its
// own (wal_autocheckpoint 0), so the database file grows only if the
// background checkpoints copy the WAL back while the store is open.
func TestCheckpointsRunOffTheRequestPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "avouch.db")
	s := open(t, path)
	defer s.Close()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	data := bytes.Repeat([]byte("x"), 2000)
	for i := range 300 {
		tok := storage.Token{ID: fmt.Sprintf("t%03d", i), Type: "t", Subject: "s", RelyingParty: "rp",
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: data}
		if err := s.CreateToken(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for size() < before+300*2000 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes (%d before 600 kB of tokens): the WAL was not checkpointed", size(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
