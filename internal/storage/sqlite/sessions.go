package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

const selectSession = `SELECT id, user_name, data, created_at, last_seen, expires_at, remember_me FROM sessions`

func scanSession(sc scanner) (storage.Session, error) {
	var (
		se                     storage.Session
		created, seen, expires int64
		rememberMe             int64
	)
	if err := sc.Scan(&se.ID, &se.User, &se.Data, &created, &seen, &expires, &rememberMe); err != nil {
		return storage.Session{}, err
	}
	se.CreatedAt, se.LastSeen, se.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	se.RememberMe = rememberMe != 0
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_name, data, created_at, last_seen, expires_at,
			remember_me) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			se.ID, se.User, nonNil(se.Data), toMicros(se.CreatedAt), toMicros(se.LastSeen), toMicros(se.ExpiresAt),
			boolInt(se.RememberMe))
		return err
	})
	if isUniqueViolation(err) {
		// The ID is a bearer secret: keep it out of error messages and logs.
		return fmt.Errorf("sqlite: create session: %w", storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

// GetSession returns the session with id.
func (s *Store) GetSession(ctx context.Context, id string) (storage.Session, error) {
	se, err := scanSession(s.r.QueryRowContext(ctx, selectSession+` WHERE id = ?`, id))
	if err != nil {
		return storage.Session{}, notFound(err, "get session")
	}
	return se, nil
}

// UpdateSession applies fn to the stored session in one write transaction,
// so concurrent updates (two tabs signing in to different relying parties)
// never lose each other's changes. The ID cannot change and CreatedAt is
// kept; everything else, LastSeen included, is fn's to set. fn must not call
// the Store: the write connection is held while it runs.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(storage.Session) (storage.Session, error)) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		old, err := scanSession(tx.QueryRowContext(ctx, selectSession+` WHERE id = ?`, id))
		if err != nil {
			return notFound(err, "update session")
		}
		se, err := fn(old)
		if err != nil {
			return err
		}
		if se.ID != old.ID {
			return errors.New("sqlite: update session: the ID of a session cannot change")
		}
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET user_name = ?, data = ?, last_seen = ?, expires_at = ?,
			remember_me = ? WHERE id = ?`,
			se.User, nonNil(se.Data), toMicros(se.LastSeen), toMicros(se.ExpiresAt), boolInt(se.RememberMe), id)
		if err != nil {
			return fmt.Errorf("sqlite: update session: %w", err)
		}
		return nil
	})
}

// DeleteSession removes the session (sign-out); ErrNotFound when there is
// none.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("sqlite: delete session: %w", err)
		}
		return mustAffect(res, "delete session")
	})
}

// DeleteSessionsExpiredBefore deletes sessions with ExpiresAt < before.
func (s *Store) DeleteSessionsExpiredBefore(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, toMicros(before))
		if err != nil {
			return fmt.Errorf("sqlite: delete expired sessions: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
