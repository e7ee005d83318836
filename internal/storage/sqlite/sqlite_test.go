package sqlite_test

import (
	"database/sql"
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
