// Package postgres is the multi-node storage backend: every avouch node of a
// cluster opens the same PostgreSQL database and shares users, keys, tokens
// and, above all, the replay cache.
//
// Correctness never rests on a read followed by a write in Go: claims are
// single INSERT … ON CONFLICT statements, read-modify-write updates lock the
// row (SELECT … FOR UPDATE), and operations whose invariant spans rows (one
// active key per purpose, a user's failure count) serialise on a lock. All
// of this holds at PostgreSQL's default READ COMMITTED isolation, so no
// serialization-failure retries are needed.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a storage.Storage on a PostgreSQL database. It is safe for
// concurrent use, and any number of Stores (nodes) may share one database.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ storage.Storage = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// string, as pgx accepts) and brings its schema up to date. Nodes may Open
// the same database at the same time; migrations run once.
func Open(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, migrations)
}

// open is Open with the schema brought up to the last of steps only.
func open(ctx context.Context, url string, steps []migration) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx quotes the URL in its message and redacts the password only on
		// a best-effort basis, so the text is replaced; the cause stays
		// reachable with errors.As for debugging.
		return nil, redacted{err}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool, now: time.Now}
	if err := s.migrate(ctx, steps); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// redacted hides the message of a connection-string error, which may
// contain a password.
type redacted struct{ err error }

func (r redacted) Error() string {
	return "postgres: cannot parse the database URL (not shown: it may contain a password)"
}
func (r redacted) Unwrap() error { return r.err }

// Close closes every connection of the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// inTx runs fn in a READ COMMITTED transaction and commits it when fn
// returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// notFound maps pgx.ErrNoRows to storage.ErrNotFound.
func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// mustAffect returns storage.ErrNotFound when a statement changed no row.
func mustAffect(tag pgconn.CommandTag, what string) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", what, storage.ErrNotFound)
	}
	return nil
}

// ts prepares a time for a timestamptz column. PostgreSQL keeps
// microseconds; truncating here (rather than letting the driver round)
// makes both backends return identical values.
func ts(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }
