package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
)

// ClaimNonce records key until expires in one statement, safe across nodes:
// a new key is inserted; a recorded key whose expiry has passed is taken
// over (the conflicting row is locked and the WHERE re-checked on its latest
// version, so two racing re-claims cannot both win); a live key changes no
// row and the claim fails with ErrAlreadyExists. now is the caller's clock,
// the same clock that computed expires.
func (s *Store) ClaimNonce(ctx context.Context, key string, now, expires time.Time) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO nonces (key, expires_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
		WHERE nonces.expires_at <= $3`,
		key, ts(expires), ts(now))
	if err != nil {
		return fmt.Errorf("postgres: claim nonce: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: claim nonce: %w", storage.ErrAlreadyExists)
	}
	return nil
}

// PurgeNonces deletes nonces whose expiry is before now.
func (s *Store) PurgeNonces(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM nonces WHERE expires_at < $1`, ts(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: purge nonces: %w", err)
	}
	return tag.RowsAffected(), nil
}

// failureLockClass is the first key of the two-key advisory lock that
// serialises one user's failure records (the second is a hash of the name).
// Two-key and one-key advisory locks never collide, so this cannot block
// migrations.
const failureLockClass = 0x61760001

// RecordLoginFailure stores a failure and counts the user's failures in the
// window ending at `at`. A per-user lock makes concurrent failures see
// distinct counts: without it, a burst of parallel guesses under READ
// COMMITTED could all count the same total and slip past the lockout.
// Failures older than the window are deleted on the way, as they can no
// longer count and guessed user names must not grow the table forever.
func (s *Store) RecordLoginFailure(ctx context.Context, user string, at time.Time, window time.Duration) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		since := ts(at.Add(-window))
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, failureLockClass, user); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM login_failures WHERE user_name = $1 AND at <= $2`, user, since); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO login_failures (user_name, at) VALUES ($1, $2)`, user, ts(at)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT COUNT(*) FROM login_failures WHERE user_name = $1 AND at > $2`, user, since).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: record login failure: %w", err)
	}
	return n, nil
}

// CountLoginFailures counts the user's failures with time > now-window.
func (s *Store) CountLoginFailures(ctx context.Context, user string, now time.Time, window time.Duration) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM login_failures WHERE user_name = $1 AND at > $2`,
		user, ts(now.Add(-window))).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count login failures: %w", err)
	}
	return n, nil
}

// ClearLoginFailures forgets the user's failures.
func (s *Store) ClearLoginFailures(ctx context.Context, user string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE user_name = $1`, user); err != nil {
		return fmt.Errorf("postgres: clear login failures: %w", err)
	}
	return nil
}
