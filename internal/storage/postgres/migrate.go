package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migration is one schema step. Steps are append-only: once released, a
// step is never edited, a new one is added.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = []migration{
	{1, "initial schema", `
CREATE TABLE users (
	name          text PRIMARY KEY,
	password_hash text NOT NULL,
	digest_secret bytea,           -- NULL: digest not allowed
	roles         text NOT NULL,   -- JSON array, sorted, unique
	claims        text NOT NULL,   -- JSON object
	disabled      boolean NOT NULL,
	version       bigint NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

CREATE TABLE nonces (
	key        text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX nonces_expires_at ON nonces (expires_at);

CREATE TABLE login_failures (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_name text NOT NULL,
	at        timestamptz NOT NULL
);
CREATE INDEX login_failures_user_at ON login_failures (user_name, at);

CREATE TABLE keys (
	id          text PRIMARY KEY,
	purpose     text NOT NULL,
	private_key bytea NOT NULL,
	cert_pem    bytea NOT NULL,
	active      boolean NOT NULL,
	created_at  timestamptz NOT NULL
);
-- The database itself guarantees at most one active key per purpose.
CREATE UNIQUE INDEX keys_one_active ON keys (purpose) WHERE active;

CREATE TABLE settings (
	key   text PRIMARY KEY,
	value text NOT NULL
);

CREATE TABLE tokens (
	id                 text PRIMARY KEY,
	type               text NOT NULL,
	subject            text NOT NULL,
	relying_party      text NOT NULL,
	issued_at          timestamptz NOT NULL,
	expires_at         timestamptz NOT NULL,
	state              text NOT NULL,
	renewable          boolean NOT NULL,
	renew_after_expiry boolean NOT NULL,
	data               bytea NOT NULL,
	updated_at         timestamptz NOT NULL
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE audit (
	id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time   timestamptz NOT NULL,
	actor  text NOT NULL,
	action text NOT NULL,
	target text NOT NULL,
	detail text NOT NULL
);
CREATE INDEX audit_time_id ON audit (time, id);
`},
	{2, "service providers, trust store, browser sessions", `
-- A deleted service provider keeps its row (deleted, data emptied) so that
-- putting it again continues its Version: a cache holding version N of the
-- old registration must never mistake a new registration for it. data is
-- bytea, not jsonb: kept byte for byte, and jsonb rejects \u0000.
CREATE TABLE service_providers (
	name       text PRIMARY KEY,
	data       bytea NOT NULL,
	version    bigint NOT NULL,
	deleted    boolean NOT NULL,
	updated_at timestamptz NOT NULL
);

CREATE TABLE certificates (
	alias      text PRIMARY KEY,
	pem        bytea NOT NULL,
	created_at timestamptz NOT NULL
);

CREATE TABLE sessions (
	id          text PRIMARY KEY,
	user_name   text NOT NULL,
	data        bytea NOT NULL,
	created_at  timestamptz NOT NULL,
	last_seen   timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	remember_me boolean NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
`},
}

// migrationLock is the advisory lock key ("avouch" in ASCII, then 1) that
// serialises migrations between nodes. Advisory locks are per database, so
// databases on one server do not block each other.
const migrationLock int64 = 0x61766f7563680001

// migrate applies every migration not yet recorded in schema_migrations,
// each in its own transaction that first takes the migration lock. Two
// nodes starting together therefore queue: the second finds each step
// recorded and skips it. Even CREATE TABLE IF NOT EXISTS is not safe without
// the lock (concurrent creators can fail on the catalog's unique index).
//
// steps is migrations except in tests, which pass a prefix of it to create a
// database as an older avouch left it.
func (s *Store) migrate(ctx context.Context, steps []migration) error {
	for _, m := range steps {
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL
			)`); err != nil {
				return err
			}
			var newest int
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
				return err
			}
			if known := steps[len(steps)-1].version; newest > known {
				// A newer avouch migrated this database; writing to it with
				// an older schema in mind could corrupt data.
				return fmt.Errorf("database schema version %d is newer than this avouch supports (%d); upgrade avouch", newest, known)
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.version).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			// No arguments: pgx then uses the simple protocol, which runs a
			// multi-statement script.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, ts(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}
