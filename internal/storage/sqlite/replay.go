package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

// ClaimNonce records key until expires. One statement decides: the insert
// succeeds for a new key, or takes over a recorded key whose expiry has
// passed (a nonce is only remembered for its freshness window; after it, the
// timestamp check rejects the message anyway). A live key changes no row and
// the claim fails with ErrAlreadyExists.
func (s *Store) ClaimNonce(ctx context.Context, key string, now, expires time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO nonces (key, expires_at) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
			WHERE nonces.expires_at <= ?`,
			key, toMicros(expires), toMicros(now))
		if err != nil {
			return fmt.Errorf("sqlite: claim nonce: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite: claim nonce: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("sqlite: claim nonce: %w", storage.ErrAlreadyExists)
		}
		return nil
	})
}

// PurgeNonces deletes nonces whose expiry is before now.
func (s *Store) PurgeNonces(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE expires_at < ?`, toMicros(now))
		if err != nil {
			return fmt.Errorf("sqlite: purge nonces: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// RecordLoginFailure stores a failure and counts the user's failures in the
// window ending at `at`. Failures older than the window are deleted on the
// way: they can no longer count, and keeping them would let guessed user
// names grow the table without bound.
func (s *Store) RecordLoginFailure(ctx context.Context, user string, at time.Time, window time.Duration) (int, error) {
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		since := toMicros(at.Add(-window))
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE user_name = ? AND at <= ?`, user, since); err != nil {
			return fmt.Errorf("sqlite: record login failure: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures (user_name, at) VALUES (?, ?)`, user, toMicros(at)); err != nil {
			return fmt.Errorf("sqlite: record login failure: %w", err)
		}
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM login_failures WHERE user_name = ? AND at > ?`, user, since).Scan(&n)
		if err != nil {
			return fmt.Errorf("sqlite: record login failure: %w", err)
		}
		return nil
	})
	return n, err
}

// CountLoginFailures counts the user's failures with time > now-window.
func (s *Store) CountLoginFailures(ctx context.Context, user string, now time.Time, window time.Duration) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM login_failures WHERE user_name = ? AND at > ?`,
		user, toMicros(now.Add(-window))).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count login failures: %w", err)
	}
	return n, nil
}

// ClearLoginFailures forgets the user's failures.
func (s *Store) ClearLoginFailures(ctx context.Context, user string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE user_name = ?`, user); err != nil {
			return fmt.Errorf("sqlite: clear login failures: %w", err)
		}
		return nil
	})
}
