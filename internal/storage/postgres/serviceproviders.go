package postgres

import (
	"context"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
)

const selectServiceProvider = `SELECT name, data, version, updated_at FROM service_providers`

func scanServiceProvider(row pgx.Row) (storage.ServiceProvider, error) {
	var sp storage.ServiceProvider
	if err := row.Scan(&sp.Name, &sp.Data, &sp.Version, &sp.UpdatedAt); err != nil {
		return storage.ServiceProvider{}, err
	}
	sp.UpdatedAt = sp.UpdatedAt.UTC()
	return sp, nil
}

// PutServiceProvider inserts or replaces the service provider sp.Name. The
// backend owns Version and UpdatedAt (sp's are ignored, so a caller may put
// back what it read): Version is 1 on the first put of a name and one more
// on every later put, including the first put after a delete; UpdatedAt is
// now. INSERT … ON CONFLICT DO UPDATE is atomic even for a name two nodes
// put at once, so every put bumps Version.
func (s *Store) PutServiceProvider(ctx context.Context, sp storage.ServiceProvider) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO service_providers (name, data, version, deleted, updated_at)
		VALUES ($1, $2, 1, false, $3)
		ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, version = service_providers.version + 1,
			deleted = false, updated_at = EXCLUDED.updated_at`,
		sp.Name, nonNil(sp.Data), ts(s.now()))
	if err != nil {
		return fmt.Errorf("postgres: put service provider: %w", err)
	}
	return nil
}

// GetServiceProvider returns the service provider called name.
func (s *Store) GetServiceProvider(ctx context.Context, name string) (storage.ServiceProvider, error) {
	sp, err := scanServiceProvider(s.pool.QueryRow(ctx, selectServiceProvider+` WHERE name = $1 AND NOT deleted`, name))
	if err != nil {
		return storage.ServiceProvider{}, notFound(err, "get service provider")
	}
	return sp, nil
}

// ListServiceProviders returns every service provider ordered by name (byte
// order).
func (s *Store) ListServiceProviders(ctx context.Context) ([]storage.ServiceProvider, error) {
	rows, err := s.pool.Query(ctx, selectServiceProvider+` WHERE NOT deleted ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list service providers: %w", err)
	}
	defer rows.Close()
	sps := []storage.ServiceProvider{}
	for rows.Next() {
		sp, err := scanServiceProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list service providers: %w", err)
		}
		sps = append(sps, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list service providers: %w", err)
	}
	return sps, nil
}

// DeleteServiceProvider removes the service provider; ErrNotFound when there
// is none. The row stays behind, marked deleted and without its
// configuration, to carry the Version on (see migration 2).
func (s *Store) DeleteServiceProvider(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE service_providers SET deleted = true, data = ''::bytea, updated_at = $1
		WHERE name = $2 AND NOT deleted`, ts(s.now()), name)
	if err != nil {
		return fmt.Errorf("postgres: delete service provider: %w", err)
	}
	return mustAffect(tag, "delete service provider")
}
