package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
)

const selectServiceProvider = `SELECT name, data, version, updated_at FROM service_providers`

func scanServiceProvider(sc scanner) (storage.ServiceProvider, error) {
	var (
		sp      storage.ServiceProvider
		updated int64
	)
	if err := sc.Scan(&sp.Name, &sp.Data, &sp.Version, &updated); err != nil {
		return storage.ServiceProvider{}, err
	}
	sp.UpdatedAt = fromMicros(updated)
	return sp, nil
}

// PutServiceProvider inserts or replaces the service provider sp.Name. The
// backend owns Version and UpdatedAt (sp's are ignored, so a caller may put
// back what it read): Version is 1 on the first put of a name and one more
// on every later put, including the first put after a delete; UpdatedAt is
// now. One upsert statement decides, so concurrent puts each bump Version.
func (s *Store) PutServiceProvider(ctx context.Context, sp storage.ServiceProvider) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO service_providers (name, data, version, deleted, updated_at)
			VALUES (?, ?, 1, 0, ?)
			ON CONFLICT (name) DO UPDATE SET data = excluded.data, version = service_providers.version + 1,
				deleted = 0, updated_at = excluded.updated_at`,
			sp.Name, nonNil(sp.Data), toMicros(s.now()))
		if err != nil {
			return fmt.Errorf("sqlite: put service provider: %w", err)
		}
		return nil
	})
}

// GetServiceProvider returns the service provider called name.
func (s *Store) GetServiceProvider(ctx context.Context, name string) (storage.ServiceProvider, error) {
	sp, err := scanServiceProvider(s.r.QueryRowContext(ctx, selectServiceProvider+` WHERE name = ? AND deleted = 0`, name))
	if err != nil {
		return storage.ServiceProvider{}, notFound(err, "get service provider")
	}
	return sp, nil
}

// ListServiceProviders returns every service provider ordered by name (byte
// order).
func (s *Store) ListServiceProviders(ctx context.Context) ([]storage.ServiceProvider, error) {
	rows, err := s.r.QueryContext(ctx, selectServiceProvider+` WHERE deleted = 0 ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list service providers: %w", err)
	}
	defer rows.Close()
	sps := []storage.ServiceProvider{}
	for rows.Next() {
		sp, err := scanServiceProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list service providers: %w", err)
		}
		sps = append(sps, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list service providers: %w", err)
	}
	return sps, nil
}

// DeleteServiceProvider removes the service provider; ErrNotFound when there
// is none. The row stays behind, marked deleted and without its
// configuration, to carry the Version on (see migration 2).
func (s *Store) DeleteServiceProvider(ctx context.Context, name string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE service_providers SET deleted = 1, data = X'', updated_at = ?
			WHERE name = ? AND deleted = 0`, toMicros(s.now()), name)
		if err != nil {
			return fmt.Errorf("sqlite: delete service provider: %w", err)
		}
		return mustAffect(res, "delete service provider")
	})
}
