package postgres

import (
	"context"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
	"github.com/jackc/pgx/v5"
)

const selectCertificate = `SELECT alias, pem, created_at FROM certificates`

func scanCertificate(row pgx.Row) (storage.Certificate, error) {
	var c storage.Certificate
	if err := row.Scan(&c.Alias, &c.PEM, &c.CreatedAt); err != nil {
		return storage.Certificate{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// PutCertificate inserts or replaces the certificate under c.Alias, all
// fields included. CreatedAt defaults to now.
func (s *Store) PutCertificate(ctx context.Context, c storage.Certificate) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO certificates (alias, pem, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (alias) DO UPDATE SET pem = EXCLUDED.pem, created_at = EXCLUDED.created_at`,
		c.Alias, nonNil(c.PEM), ts(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("postgres: put certificate: %w", err)
	}
	return nil
}

// GetCertificate returns the certificate under alias; ErrNotFound when none.
func (s *Store) GetCertificate(ctx context.Context, alias string) (storage.Certificate, error) {
	c, err := scanCertificate(s.pool.QueryRow(ctx, selectCertificate+` WHERE alias = $1`, alias))
	if err != nil {
		return storage.Certificate{}, notFound(err, "get certificate")
	}
	return c, nil
}

// ListCertificates returns the whole trust store ordered by alias (byte
// order).
func (s *Store) ListCertificates(ctx context.Context) ([]storage.Certificate, error) {
	rows, err := s.pool.Query(ctx, selectCertificate+` ORDER BY alias COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list certificates: %w", err)
	}
	defer rows.Close()
	certs := []storage.Certificate{}
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list certificates: %w", err)
		}
		certs = append(certs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list certificates: %w", err)
	}
	return certs, nil
}

// DeleteCertificate removes the certificate; ErrNotFound when there is none.
func (s *Store) DeleteCertificate(ctx context.Context, alias string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM certificates WHERE alias = $1`, alias)
	if err != nil {
		return fmt.Errorf("postgres: delete certificate: %w", err)
	}
	return mustAffect(tag, "delete certificate")
}
