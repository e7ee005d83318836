package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
)

const userColumns = `name, password_hash, digest_secret, roles, claims, disabled, version, created_at, updated_at`

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

func scanUser(sc scanner) (storage.User, error) {
	var (
		u                    storage.User
		digest               []byte
		digestSet            bool
		roles, claims        string
		disabled             int64
		createdAt, updatedAt int64
	)
	// digest_secret IS NOT NULL tells nil from empty: the driver may hand
	// back a zero-length BLOB as nil.
	if err := sc.Scan(&u.Name, &u.PasswordHash, &digest, &digestSet, &roles, &claims, &disabled, &u.Version, &createdAt, &updatedAt); err != nil {
		return storage.User{}, err
	}
	if digestSet {
		u.DigestSecret = append([]byte{}, digest...)
	}
	var err error
	if u.Roles, err = decodeRoles(roles); err != nil {
		return storage.User{}, err
	}
	if u.Claims, err = decodeClaims(claims); err != nil {
		return storage.User{}, err
	}
	u.Disabled = disabled != 0
	u.CreatedAt = fromMicros(createdAt)
	u.UpdatedAt = fromMicros(updatedAt)
	return u, nil
}

const selectUser = `SELECT name, password_hash, digest_secret, digest_secret IS NOT NULL, roles, claims, disabled, version, created_at, updated_at FROM users`

// CreateUser stores a new user with Version 1. CreatedAt defaults to now;
// UpdatedAt is set to CreatedAt.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	u.UpdatedAt = u.CreatedAt
	u.Version = 1
	err := s.write(ctx, func(tx *sql.Tx) error { return insertUser(ctx, tx, u) })
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: create user %q: %w", u.Name, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	return nil
}

func insertUser(ctx context.Context, tx *sql.Tx, u storage.User) error {
	roles, err := encodeRoles(u.Roles)
	if err != nil {
		return err
	}
	claims, err := encodeClaims(u.Claims)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Name, u.PasswordHash, digestArg(u.DigestSecret), roles, claims, boolInt(u.Disabled),
		u.Version, toMicros(u.CreatedAt), toMicros(u.UpdatedAt))
	return err
}

// digestArg keeps nil (digest not allowed) apart from an empty secret.
func digestArg(b []byte) any {
	if b == nil {
		return nil
	}
	if len(b) == 0 {
		return []byte{} // bound as a zero-length BLOB, not NULL
	}
	return b
}

// GetUser returns the user called name (case-sensitive).
func (s *Store) GetUser(ctx context.Context, name string) (storage.User, error) {
	u, err := scanUser(s.getUser.QueryRowContext(ctx, name))
	if err != nil {
		return storage.User{}, notFound(err, "get user")
	}
	return u, nil
}

// UpdateUser reads the user, applies fn and writes the result in one write
// transaction, so concurrent updates never lose each other's changes. fn
// must not call the Store: the write connection is held while it runs.
// Name and CreatedAt cannot change; Version is bumped and UpdatedAt set.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(storage.User) (storage.User, error)) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		old, err := scanUser(tx.QueryRowContext(ctx, selectUser+` WHERE name = ?`, name))
		if err != nil {
			return notFound(err, "update user")
		}
		u, err := fn(old)
		if err != nil {
			return err
		}
		if u.Name != old.Name {
			return errors.New("sqlite: update user: the name of a user cannot change")
		}
		u.CreatedAt = old.CreatedAt
		u.Version = old.Version + 1
		u.UpdatedAt = s.now()
		roles, err := encodeRoles(u.Roles)
		if err != nil {
			return err
		}
		claims, err := encodeClaims(u.Claims)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, digest_secret = ?, roles = ?, claims = ?,
			disabled = ?, version = ?, updated_at = ? WHERE name = ?`,
			u.PasswordHash, digestArg(u.DigestSecret), roles, claims, boolInt(u.Disabled),
			u.Version, toMicros(u.UpdatedAt), name)
		if err != nil {
			return fmt.Errorf("sqlite: update user: %w", err)
		}
		return nil
	})
	return err
}

// DeleteUser removes the user; ErrNotFound when there is none.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("sqlite: delete user: %w", err)
		}
		return mustAffect(res, "delete user")
	})
}

// ListUsers returns every user ordered by name (byte order).
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.r.QueryContext(ctx, selectUser+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	users := []storage.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return users, nil
}
