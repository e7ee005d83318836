package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/avouch/avouch/internal/storage"
)

// AppendAudit appends e; the backend assigns e.ID. A zero Time becomes now.
func (s *Store) AppendAudit(ctx context.Context, events ...storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		// Many rows per statement: the server appends hundreds at a time,
		// and a statement per row costs its bind and step overhead per row.
		// Rows of one statement are inserted in order, so IDs keep the
		// append order.
		var full *sql.Stmt // prepared once per call for whole chunks
		defer func() {
			if full != nil {
				full.Close()
			}
		}()
		args := make([]any, 0, 5*auditChunk)
		for len(events) > 0 {
			n := min(len(events), auditChunk)
			args = args[:0]
			for _, e := range events[:n] {
				if e.Time.IsZero() {
					e.Time = s.now()
				}
				args = append(args, toMicros(e.Time), e.Actor, e.Action, e.Target, e.Detail)
			}
			var err error
			if n == auditChunk {
				if full == nil {
					if full, err = tx.PrepareContext(ctx, insertAuditSQL(n)); err != nil {
						return fmt.Errorf("sqlite: append audit: %w", err)
					}
				}
				_, err = full.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, insertAuditSQL(n), args...)
			}
			if err != nil {
				return fmt.Errorf("sqlite: append audit: %w", err)
			}
			events = events[n:]
		}
		return nil
	})
}

// auditChunk is how many audit rows one INSERT carries (5 parameters each,
// well below SQLite's limit on parameters).
const auditChunk = 100

func insertAuditSQL(rows int) string {
	return `INSERT INTO audit (time, actor, action, target, detail) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?), `, rows), ", ")
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
