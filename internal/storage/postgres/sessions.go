package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
)

const selectSession = `SELECT id, user_name, data, created_at, last_seen, expires_at, remember_me FROM sessions`

func scanSession(row pgx.Row) (storage.Session, error) {
	var se storage.Session
	if err := row.Scan(&se.ID, &se.User, &se.Data, &se.CreatedAt, &se.LastSeen, &se.ExpiresAt, &se.RememberMe); err != nil {
		return storage.Session{}, err
	}
	se.CreatedAt, se.LastSeen, se.ExpiresAt = se.CreatedAt.UTC(), se.LastSeen.UTC(), se.ExpiresAt.UTC()
	return se, nil
}

// CreateSession stores a new session. CreatedAt defaults to now and
// LastSeen to CreatedAt.
func (s *Store) CreateSession(ctx context.Context, se storage.Session) error {
	if se.CreatedAt.IsZero() {
		se.CreatedAt = s.now()
	}
	if se.LastSeen.IsZero() {
		se.LastSeen = se.CreatedAt
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, user_name, data, created_at, last_seen, expires_at,
		remember_me) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		se.ID, se.User, nonNil(se.Data), ts(se.CreatedAt), ts(se.LastSeen), ts(se.ExpiresAt), se.RememberMe)
	if isUniqueViolation(err) {
		// The ID is a bearer secret: keep it out of error messages and logs.
		return fmt.Errorf("postgres: create session: %w", storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

// GetSession returns the session with id.
func (s *Store) GetSession(ctx context.Context, id string) (storage.Session, error) {
	se, err := scanSession(s.pool.QueryRow(ctx, selectSession+` WHERE id = $1`, id))
	if err != nil {
		return storage.Session{}, notFound(err, "get session")
	}
	return se, nil
}

// UpdateSession locks the session's row, applies fn and writes the result in
// one transaction, so concurrent updates from any node (two tabs signing in
// to different relying parties) never lose each other's changes. The ID
// cannot change and CreatedAt is kept; everything else, LastSeen included,
// is fn's to set. fn should be quick: the row stays locked while it runs.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(storage.Session) (storage.Session, error)) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanSession(tx.QueryRow(ctx, selectSession+` WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "update session")
		}
		se, err := fn(old)
		if err != nil {
			return err
		}
		if se.ID != old.ID {
			return errors.New("postgres: update session: the ID of a session cannot change")
		}
		_, err = tx.Exec(ctx, `UPDATE sessions SET user_name = $1, data = $2, last_seen = $3, expires_at = $4,
			remember_me = $5 WHERE id = $6`,
			se.User, nonNil(se.Data), ts(se.LastSeen), ts(se.ExpiresAt), se.RememberMe, id)
		if err != nil {
			return fmt.Errorf("postgres: update session: %w", err)
		}
		return nil
	})
}

// DeleteSession removes the session (sign-out); ErrNotFound when there is
// none.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return mustAffect(tag, "delete session")
}

// DeleteSessionsExpiredBefore deletes sessions with ExpiresAt < before.
func (s *Store) DeleteSessionsExpiredBefore(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, ts(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
