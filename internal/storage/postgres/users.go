package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
)

const selectUser = `SELECT name, password_hash, digest_secret, roles, claims, disabled, version, created_at, updated_at FROM users`

func scanUser(row pgx.Row) (storage.User, error) {
	var (
		u             storage.User
		roles, claims string
	)
	// pgx scans NULL bytea into a nil slice and an empty bytea into an
	// empty non-nil one, which is exactly DigestSecret's nil/empty contract.
	if err := row.Scan(&u.Name, &u.PasswordHash, &u.DigestSecret, &roles, &claims, &u.Disabled,
		&u.Version, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return storage.User{}, err
	}
	var err error
	if u.Roles, err = decodeRoles(roles); err != nil {
		return storage.User{}, err
	}
	if u.Claims, err = decodeClaims(claims); err != nil {
		return storage.User{}, err
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

// CreateUser stores a new user with Version 1. CreatedAt defaults to now;
// UpdatedAt is set to CreatedAt.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	u.UpdatedAt = u.CreatedAt
	roles, err := encodeRoles(u.Roles)
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	claims, err := encodeClaims(u.Claims)
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO users (name, password_hash, digest_secret, roles, claims, disabled,
		version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)`,
		u.Name, u.PasswordHash, u.DigestSecret, roles, claims, u.Disabled, ts(u.CreatedAt), ts(u.UpdatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create user %q: %w", u.Name, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	return nil
}

// GetUser returns the user called name (case-sensitive).
func (s *Store) GetUser(ctx context.Context, name string) (storage.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, selectUser+` WHERE name = $1`, name))
	if err != nil {
		return storage.User{}, notFound(err, "get user")
	}
	return u, nil
}

// UpdateUser locks the user's row, applies fn and writes the result in one
// transaction, so concurrent updates from any node never lose each other's
// changes. Name and CreatedAt cannot change; Version is bumped and UpdatedAt
// set. fn should be quick: the row stays locked while it runs.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(storage.User) (storage.User, error)) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanUser(tx.QueryRow(ctx, selectUser+` WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return notFound(err, "update user")
		}
		u, err := fn(old)
		if err != nil {
			return err
		}
		if u.Name != old.Name {
			return errors.New("postgres: update user: the name of a user cannot change")
		}
		roles, err := encodeRoles(u.Roles)
		if err != nil {
			return fmt.Errorf("postgres: update user: %w", err)
		}
		claims, err := encodeClaims(u.Claims)
		if err != nil {
			return fmt.Errorf("postgres: update user: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE users SET password_hash = $1, digest_secret = $2, roles = $3, claims = $4,
			disabled = $5, version = version + 1, updated_at = $6 WHERE name = $7`,
			u.PasswordHash, u.DigestSecret, roles, claims, u.Disabled, ts(s.now()), name)
		if err != nil {
			return fmt.Errorf("postgres: update user: %w", err)
		}
		return nil
	})
}

// DeleteUser removes the user; ErrNotFound when there is none.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("postgres: delete user: %w", err)
	}
	return mustAffect(tag, "delete user")
}

// ListUsers returns every user ordered by name (byte order).
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	// COLLATE "C": byte order whatever collation the database was created with.
	rows, err := s.pool.Query(ctx, selectUser+` ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	defer rows.Close()
	users := []storage.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}
