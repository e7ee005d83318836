package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
)

const selectKey = `SELECT id, purpose, private_key, cert_pem, active, created_at FROM keys`

func scanKey(sc scanner) (storage.Key, error) {
	var (
		k         storage.Key
		active    int64
		createdAt int64
	)
	if err := sc.Scan(&k.ID, &k.Purpose, &k.PrivateKey, &k.CertPEM, &active, &createdAt); err != nil {
		return storage.Key{}, err
	}
	k.Active = active != 0
	k.CreatedAt = fromMicros(createdAt)
	return k, nil
}

// PutKey inserts or replaces the key with k.ID. When k is active, the other
// keys of its purpose are deactivated in the same transaction. CreatedAt
// defaults to now.
func (s *Store) PutKey(ctx context.Context, k storage.Key) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if k.Active {
			if _, err := tx.ExecContext(ctx, `UPDATE keys SET active = 0 WHERE purpose = ? AND id <> ? AND active = 1`, k.Purpose, k.ID); err != nil {
				return fmt.Errorf("sqlite: put key: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO keys (id, purpose, private_key, cert_pem, active, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET purpose = excluded.purpose, private_key = excluded.private_key,
				cert_pem = excluded.cert_pem, active = excluded.active, created_at = excluded.created_at`,
			k.ID, k.Purpose, nonNil(k.PrivateKey), nonNil(k.CertPEM), boolInt(k.Active), toMicros(k.CreatedAt))
		if err != nil {
			return fmt.Errorf("sqlite: put key: %w", err)
		}
		return nil
	})
}

// nonNil keeps a nil slice out of a NOT NULL BLOB column.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GetKey returns the key with id.
func (s *Store) GetKey(ctx context.Context, id string) (storage.Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, selectKey+` WHERE id = ?`, id))
	if err != nil {
		return storage.Key{}, notFound(err, "get key")
	}
	return k, nil
}

// ListKeys returns the keys of purpose, oldest first (ties by ID).
func (s *Store) ListKeys(ctx context.Context, purpose string) ([]storage.Key, error) {
	rows, err := s.r.QueryContext(ctx, selectKey+` WHERE purpose = ? ORDER BY created_at, id`, purpose)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	keys := []storage.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return keys, nil
}

// ActivateKey makes id the only active key of its purpose.
func (s *Store) ActivateKey(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var purpose string
		if err := tx.QueryRowContext(ctx, `SELECT purpose FROM keys WHERE id = ?`, id).Scan(&purpose); err != nil {
			return notFound(err, "activate key")
		}
		// Two statements, deactivate first: the unique index on active keys
		// is checked row by row.
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET active = 0 WHERE purpose = ? AND active = 1`, purpose); err != nil {
			return fmt.Errorf("sqlite: activate key: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET active = 1 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("sqlite: activate key: %w", err)
		}
		return nil
	})
}

// DeleteKey removes the key; ErrNotFound when there is none.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM keys WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("sqlite: delete key: %w", err)
		}
		return mustAffect(res, "delete key")
	})
}
