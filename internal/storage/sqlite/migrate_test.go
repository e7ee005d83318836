package sqlite

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// TestADatabaseOfEachEarlierSchemaUpgrades creates a file as each earlier
// avouch release left it (the migrations up to that version, which are
// append-only, so exactly the released ones), puts data in it, then opens
// it with this avouch: every later step must apply on top of real rows and
// the old data must survive.
func TestADatabaseOfEachEarlierSchemaUpgrades(t *testing.T) {
	for k := 1; k < len(migrations); k++ {
		t.Run(migrations[k-1].name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "old.db")
			old, err := open(path, migrations[:k])
			if err != nil {
				t.Fatalf("open at version %d: %v", migrations[k-1].version, err)
			}
			// Users, settings and tokens are in the first schema.
			if err := old.CreateUser(ctx, storage.User{Name: "alice", PasswordHash: "h", Roles: []string{"admin"}}); err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			if err := old.PutSetting(ctx, "issuer", "urn:avouch"); err != nil {
				t.Fatalf("PutSetting: %v", err)
			}
			if err := old.CreateToken(ctx, storage.Token{ID: "t1", Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
			if err := old.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			s, err := Open(path)
			if err != nil {
				t.Fatalf("Open (upgrade): %v", err)
			}
			defer s.Close()
			if u, err := s.GetUser(ctx, "alice"); err != nil || !slices.Equal(u.Roles, []string{"admin"}) {
				t.Errorf("GetUser after upgrade = %+v, %v; want the old user", u, err)
			}
			if v, err := s.GetSetting(ctx, "issuer"); err != nil || v != "urn:avouch" {
				t.Errorf("GetSetting after upgrade = %q, %v; want urn:avouch", v, err)
			}
			if _, err := s.GetToken(ctx, "t1"); err != nil {
				t.Errorf("GetToken after upgrade: %v", err)
			}
			checkUpgradedSchema(t, s)

			db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path}).String())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var got []int
			rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
			if err != nil {
				t.Fatalf("read schema_migrations: %v", err)
			}
			defer rows.Close()
			for rows.Next() {
				var v int
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			var want []int
			for _, m := range migrations {
				want = append(want, m.version)
			}
			if !slices.Equal(got, want) {
				t.Errorf("schema_migrations versions = %v, want %v", got, want)
			}
		})
	}
}

// checkUpgradedSchema uses what each later migration added.
func checkUpgradedSchema(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	// 2: service providers, trust store, browser sessions.
	if err := s.PutServiceProvider(ctx, storage.ServiceProvider{Name: "rp", Data: []byte(`{}`)}); err != nil {
		t.Errorf("PutServiceProvider after upgrade: %v", err)
	}
	if err := s.PutCertificate(ctx, storage.Certificate{Alias: "ca", PEM: []byte("pem")}); err != nil {
		t.Errorf("PutCertificate after upgrade: %v", err)
	}
	if err := s.CreateSession(ctx, storage.Session{ID: "s", User: "PRIMARY/alice", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Errorf("CreateSession after upgrade: %v", err)
	}
}

// TestAnOlderAvouchRefusesANewerDatabase: the binary of the previous
// release must not write to a file this one migrated.
func TestAnOlderAvouchRefusesANewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	if old, err := open(path, migrations[:len(migrations)-1]); err == nil {
		old.Close()
		t.Fatal("opening with the previous schema succeeded, want an error")
	}
}
