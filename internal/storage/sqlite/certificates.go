package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
)

const selectCertificate = `SELECT alias, pem, created_at FROM certificates`

func scanCertificate(sc scanner) (storage.Certificate, error) {
	var (
		c       storage.Certificate
		created int64
	)
	if err := sc.Scan(&c.Alias, &c.PEM, &created); err != nil {
		return storage.Certificate{}, err
	}
	c.CreatedAt = fromMicros(created)
	return c, nil
}

// PutCertificate inserts or replaces the certificate under c.Alias, all
// fields included. CreatedAt defaults to now.
func (s *Store) PutCertificate(ctx context.Context, c storage.Certificate) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO certificates (alias, pem, created_at) VALUES (?, ?, ?)
			ON CONFLICT (alias) DO UPDATE SET pem = excluded.pem, created_at = excluded.created_at`,
			c.Alias, nonNil(c.PEM), toMicros(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("sqlite: put certificate: %w", err)
		}
		return nil
	})
}

// GetCertificate returns the certificate under alias; ErrNotFound when none.
func (s *Store) GetCertificate(ctx context.Context, alias string) (storage.Certificate, error) {
	c, err := scanCertificate(s.r.QueryRowContext(ctx, selectCertificate+` WHERE alias = ?`, alias))
	if err != nil {
		return storage.Certificate{}, notFound(err, "get certificate")
	}
	return c, nil
}

// ListCertificates returns the whole trust store ordered by alias (byte
// order).
func (s *Store) ListCertificates(ctx context.Context) ([]storage.Certificate, error) {
	rows, err := s.r.QueryContext(ctx, selectCertificate+` ORDER BY alias`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list certificates: %w", err)
	}
	defer rows.Close()
	certs := []storage.Certificate{}
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list certificates: %w", err)
		}
		certs = append(certs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list certificates: %w", err)
	}
	return certs, nil
}

// DeleteCertificate removes the certificate; ErrNotFound when there is none.
func (s *Store) DeleteCertificate(ctx context.Context, alias string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM certificates WHERE alias = ?`, alias)
		if err != nil {
			return fmt.Errorf("sqlite: delete certificate: %w", err)
		}
		return mustAffect(res, "delete certificate")
	})
}
