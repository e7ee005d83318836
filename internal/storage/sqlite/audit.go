package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/avouch/avouch/internal/storage"
)

// AppendAudit appends e; the backend assigns e.ID. A zero Time becomes now.
func (s *Store) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		// Prepared once per batch: the server appends hundreds at a time,
		// and the driver would otherwise compile the SQL for every row.
		st, err := tx.PrepareContext(ctx, `INSERT INTO audit (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("sqlite: append audit: %w", err)
		}
		defer st.Close()
		for _, e := range events {
			if e.Time.IsZero() {
				e.Time = s.now()
			}
			_, err := st.ExecContext(ctx, toMicros(e.Time), e.Actor, e.Action, e.Target, e.Detail)
			if err != nil {
				return fmt.Errorf("sqlite: append audit: %w", err)
			}
		}
		return nil
	})
}

// ListAudit returns at most limit events, newest first: by Time, and by ID
// (append order) among events of the same Time. limit <= 0 returns none.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]storage.AuditEvent, error) {
	events := []storage.AuditEvent{}
	if limit <= 0 {
		return events, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, time, actor, action, target, detail FROM audit
		ORDER BY time DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  storage.AuditEvent
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: list audit: %w", err)
		}
		e.Time = fromMicros(at)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	return events, nil
}
