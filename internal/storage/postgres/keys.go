package postgres

import (
	"context"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
)

const selectKey = `SELECT id, purpose, private_key, cert_pem, active, created_at FROM keys`

func scanKey(row pgx.Row) (storage.Key, error) {
	var k storage.Key
	if err := row.Scan(&k.ID, &k.Purpose, &k.PrivateKey, &k.CertPEM, &k.Active, &k.CreatedAt); err != nil {
		return storage.Key{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return k, nil
}

// lockKeys serialises the transactions that change which key is active.
// Row locks are not enough: a concurrent PutKey inserts a row no one has
// locked, and a READ COMMITTED UPDATE skips rows that became active after
// its snapshot — either way two keys could try to be active and one
// transaction would fail on the unique index. SHARE ROW EXCLUSIVE conflicts
// with itself and with writers, not with readers; key changes are rare.
func lockKeys(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `LOCK TABLE keys IN SHARE ROW EXCLUSIVE MODE`)
	return err
}

// PutKey inserts or replaces the key with k.ID. When k is active, the other
// keys of its purpose are deactivated in the same transaction. CreatedAt
// defaults to now.
func (s *Store) PutKey(ctx context.Context, k storage.Key) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockKeys(ctx, tx); err != nil {
			return err
		}
		if k.Active {
			if _, err := tx.Exec(ctx, `UPDATE keys SET active = false WHERE purpose = $1 AND id <> $2 AND active`, k.Purpose, k.ID); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO keys (id, purpose, private_key, cert_pem, active, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO UPDATE SET purpose = EXCLUDED.purpose, private_key = EXCLUDED.private_key,
				cert_pem = EXCLUDED.cert_pem, active = EXCLUDED.active, created_at = EXCLUDED.created_at`,
			k.ID, k.Purpose, nonNil(k.PrivateKey), nonNil(k.CertPEM), k.Active, ts(k.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put key: %w", err)
	}
	return nil
}

// nonNil keeps a nil slice (which pgx sends as NULL) out of a NOT NULL column.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GetKey returns the key with id.
func (s *Store) GetKey(ctx context.Context, id string) (storage.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, selectKey+` WHERE id = $1`, id))
	if err != nil {
		return storage.Key{}, notFound(err, "get key")
	}
	return k, nil
}

// ListKeys returns the keys of purpose, oldest first (ties by ID, byte order).
func (s *Store) ListKeys(ctx context.Context, purpose string) ([]storage.Key, error) {
	rows, err := s.pool.Query(ctx, selectKey+` WHERE purpose = $1 ORDER BY created_at, id COLLATE "C"`, purpose)
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	defer rows.Close()
	keys := []storage.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	return keys, nil
}

// ActivateKey makes id the only active key of its purpose.
func (s *Store) ActivateKey(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockKeys(ctx, tx); err != nil {
			return fmt.Errorf("postgres: activate key: %w", err)
		}
		var purpose string
		if err := tx.QueryRow(ctx, `SELECT purpose FROM keys WHERE id = $1`, id).Scan(&purpose); err != nil {
			return notFound(err, "activate key")
		}
		// Deactivate first: PostgreSQL checks the unique index row by row,
		// so a single UPDATE flipping two rows could trip it.
		if _, err := tx.Exec(ctx, `UPDATE keys SET active = false WHERE purpose = $1 AND active AND id <> $2`, purpose, id); err != nil {
			return fmt.Errorf("postgres: activate key: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET active = true WHERE id = $1`, id); err != nil {
			return fmt.Errorf("postgres: activate key: %w", err)
		}
		return nil
	})
}

// DeleteKey removes the key; ErrNotFound when there is none.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM keys WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete key: %w", err)
	}
	return mustAffect(tag, "delete key")
}
