// Package pgtest gives tests a PostgreSQL database of their own.
//
// By default it starts one throw-away server per test binary (initdb in a
// temporary directory, listening on 127.0.0.1 at a free port, fsync off) and
// creates a fresh database for each call to URL. With
// AVOUCH_TEST_DATABASE_URL set, that server is used instead (its user needs
// CREATEDB). Either way the database is dropped when the test ends.
//
// Use it from TestMain so the server is stopped when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) { url := pgtest.URL(t); ... }
//
// Without TestMain the server still dies with the test process (it gets
// SIGKILL when its parent exits) and its directory is removed by the next
// run. Missing PostgreSQL binaries are handled by testutil.Missing.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names a server to use instead of a throw-away one.
const EnvURL = "AVOUCH_TEST_DATABASE_URL"

var (
	once    sync.Once
	shared  *server
	missing string // what is missing, when the server cannot be had
	failure error  // why starting the server failed

	seq   atomic.Int64
	runID = randomHex(4) // tells apart test binaries sharing an external server
)

// server is where the test databases are created.
type server struct {
	admin  *pgxpool.Pool          // on the maintenance database
	create string                 // CREATE DATABASE options
	urlFor func(db string) string // URL of database db
	local  *localServer           // nil for an external server
}

// URL returns the connection URL of a new, empty database for t, dropped
// when t ends (after t's other cleanups, so close stores in t.Cleanup).
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { shared, missing, failure = startServer() })
	if missing != "" {
		testutil.Missing(t, missing)
	}
	if failure != nil {
		t.Fatalf("pgtest: %v", failure)
	}
	name := fmt.Sprintf("avouch_test_%s_%d", runID, seq.Add(1))
	ident := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := shared.admin.Exec(ctx, "CREATE DATABASE "+ident+shared.create); err != nil {
		t.Fatalf("pgtest: create database (does the user have CREATEDB?): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE: a store the test forgot to close must not leave the
		// database behind on a shared server.
		if _, err := shared.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return shared.urlFor(name)
}

// Main runs the tests, stops the throw-away server (if one was started)
// and exits with the tests' status.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the throw-away server and removes its files. Main calls it;
// later calls to URL fail.
func Stop() {
	once.Do(func() { failure = fmt.Errorf("server already stopped") })
	if shared == nil {
		return
	}
	shared.admin.Close()
	if shared.local != nil {
		shared.local.stop()
	}
	shared = nil
	failure = fmt.Errorf("server already stopped")
}

func startServer() (*server, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ext := os.Getenv(EnvURL); ext != "" {
		admin, err := pgxpool.New(ctx, ext)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvURL, err)
		}
		// The server's default CREATE DATABASE strategy: FILE_COPY
		// checkpoints, which is slow on a server that fsyncs.
		return &server{admin: admin, urlFor: func(db string) string { return withDatabase(ext, db) }}, "", nil
	}
	local, what, err := startLocal(ctx)
	if what != "" || err != nil {
		return nil, what, err
	}
	admin, err := pgxpool.New(ctx, local.url("postgres"))
	if err != nil {
		local.stop()
		return nil, "", err
	}
	srv := &server{admin: admin, urlFor: local.url, local: local}
	if err := srv.chooseStrategy(ctx); err != nil {
		admin.Close()
		local.stop()
		return nil, "", err
	}
	return srv, "", nil
}

// chooseStrategy picks FILE_COPY on PostgreSQL 15 and later: with fsync off
// copying the small template's files is about twice as fast as WAL-logging
// them (the 15+ default), and a test suite creates a database per test.
func (s *server) chooseStrategy(ctx context.Context) error {
	var version int
	if err := s.admin.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return err
	}
	if version >= 150000 {
		s.create = " STRATEGY FILE_COPY"
	}
	return nil
}

// withDatabase returns the connection string base pointed at database db.
func withDatabase(base, db string) string {
	if u, err := url.Parse(base); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + db
		return u.String()
	}
	// key=value form: a later keyword overrides an earlier one.
	return strings.TrimSpace(base) + " dbname=" + db
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
