package postgres

import (
	"github.com/avouch/avouch/internal/storage"

	"context"
	"fmt"
)

// GetSetting returns the value of key; ErrNotFound when unset.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v); err != nil {
		return "", notFound(err, "get setting")
	}
	return v, nil
}

// PutSetting sets key to value, replacing any previous value.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, key, value)
	if err != nil {
		return fmt.Errorf("postgres: put setting: %w", err)
	}
	return nil
}

// ListSettings returns every setting; an empty (non-nil) map when none.
func (s *Store) ListSettings(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list settings: %w", err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("postgres: list settings: %w", err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list settings: %w", err)
	}
	return m, nil
}

// DeleteSetting removes a setting.
func (s *Store) DeleteSetting(ctx context.Context, key string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM settings WHERE key = $1`, key)
	if err != nil {
		return fmt.Errorf("postgres: delete setting: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete setting %q: %w", key, storage.ErrNotFound)
	}
	return nil
}
