package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one schema step. Steps are append-only: once released, a
// step is never edited, a new one is added.
type migration struct {
	version int
	name    string
	sql     string
}

// Times are INTEGER Unix microseconds (see codec.go); STRICT tables make
// SQLite reject a value of the wrong type instead of storing it.
var migrations = []migration{
	{1, "initial schema", `
CREATE TABLE users (
	name          TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	digest_secret BLOB,            -- NULL: digest not allowed
	roles         TEXT NOT NULL,   -- JSON array, sorted, unique
	claims        TEXT NOT NULL,   -- JSON object
	disabled      INTEGER NOT NULL,
	version       INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE nonces (
	key        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX nonces_expires_at ON nonces (expires_at);

CREATE TABLE login_failures (
	id        INTEGER PRIMARY KEY,
	user_name TEXT NOT NULL,
	at        INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_user_at ON login_failures (user_name, at);

CREATE TABLE keys (
	id          TEXT PRIMARY KEY,
	purpose     TEXT NOT NULL,
	private_key BLOB NOT NULL,
	cert_pem    BLOB NOT NULL,
	active      INTEGER NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
-- The database itself guarantees at most one active key per purpose.
CREATE UNIQUE INDEX keys_one_active ON keys (purpose) WHERE active = 1;

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

CREATE TABLE tokens (
	id                 TEXT PRIMARY KEY,
	type               TEXT NOT NULL,
	subject            TEXT NOT NULL,
	relying_party      TEXT NOT NULL,
	issued_at          INTEGER NOT NULL,
	expires_at         INTEGER NOT NULL,
	state              TEXT NOT NULL,
	renewable          INTEGER NOT NULL,
	renew_after_expiry INTEGER NOT NULL,
	data               BLOB NOT NULL,
	updated_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- AUTOINCREMENT: an ID is never reused, even after the newest row is deleted.
CREATE TABLE audit (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	time   INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL
) STRICT;
CREATE INDEX audit_time_id ON audit (time, id);
`},
	{2, "service providers, trust store, browser sessions", `
-- A deleted service provider keeps its row (deleted = 1, data emptied) so
-- that putting it again continues its Version: a cache holding version N of
-- the old registration must never mistake a new registration for it.
CREATE TABLE service_providers (
	name       TEXT PRIMARY KEY,
	data       BLOB NOT NULL,    -- JSON, kept byte for byte
	version    INTEGER NOT NULL,
	deleted    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE certificates (
	alias      TEXT PRIMARY KEY,
	pem        BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	id          TEXT PRIMARY KEY,
	user_name   TEXT NOT NULL,
	data        BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	remember_me INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expires_at ON sessions (expires_at);
`},
}

// migrate applies every migration not yet recorded in schema_migrations,
// each in its own IMMEDIATE transaction. The write lock taken by BEGIN
// IMMEDIATE serialises processes that open a new file at the same moment:
// the second one waits, then finds the step recorded and skips it.
//
// steps is migrations except in tests, which pass a prefix of it to create a
// database as an older avouch left it.
func (s *Store) migrate(ctx context.Context, steps []migration) error {
	for _, m := range steps {
		err := s.write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    INTEGER PRIMARY KEY,
				name       TEXT NOT NULL,
				applied_at INTEGER NOT NULL
			) STRICT`); err != nil {
				return err
			}
			var newest int
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
				return err
			}
			if known := steps[len(steps)-1].version; newest > known {
				// A newer avouch migrated this file; writing to it with
				// an older schema in mind could corrupt data.
				return fmt.Errorf("database schema version %d is newer than this avouch supports (%d); upgrade avouch", newest, known)
			}
			var done int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&done); err != nil {
				return err
			}
			if done > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, toMicros(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}
