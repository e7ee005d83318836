package postgres

import (
	"github.com/jackc/pgx/v5"

	"context"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
)

// AppendAudit appends e; the backend assigns e.ID. A zero Time becomes now.
func (s *Store) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, e := range events {
		if e.Time.IsZero() {
			e.Time = s.now()
		}
		b.Queue(`INSERT INTO audit (time, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`,
			ts(e.Time), e.Actor, e.Action, e.Target, e.Detail)
	}
	// One implicit transaction: pgx sends a batch as one round trip, and
	// without an explicit BEGIN the server runs it atomically.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// ListAudit returns at most limit events, newest first: by Time, and by ID
// among events of the same Time. limit <= 0 returns none.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]storage.AuditEvent, error) {
	events := []storage.AuditEvent{}
	if limit <= 0 {
		return events, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, time, actor, action, target, detail FROM audit
		ORDER BY time DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e storage.AuditEvent
		if err := rows.Scan(&e.ID, &e.Time, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("postgres: list audit: %w", err)
		}
		e.Time = e.Time.UTC()
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return events, nil
}
