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
		// A batch is cut into chunks of sizes with a statement prepared
		// once (100 rows, then powers of two): parsing a fresh INSERT of
		// n rows for every batch cost more than executing it. Rows of one
		// statement are inserted in order, so IDs keep the append order.
		args := make([]any, 0, 5*auditChunk)
		for len(events) > 0 {
			n := auditChunkFor(len(events))
			args = args[:0]
			for _, e := range events[:n] {
				if e.Time.IsZero() {
					e.Time = s.now()
				}
				args = append(args, toMicros(e.Time), e.Actor, e.Action, e.Target, e.Detail)
			}
			if _, err := tx.StmtContext(ctx, s.auditStmts[n]).ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("sqlite: append audit: %w", err)
			}
			events = events[n:]
		}
		return nil
	})
}

// auditChunk is how many audit rows one INSERT carries at most (5
// parameters each, well below SQLite's limit on parameters).
const auditChunk = 100

// auditChunkFor returns the size of the next chunk of a batch of n rows:
// auditChunk, or else the largest power of two not above n. Any batch takes
// at most a few statements, of at most 8 different sizes.
func auditChunkFor(n int) int {
	if n >= auditChunk {
		return auditChunk
	}
	c := 1
	for c*2 <= n {
		c *= 2
	}
	return c
}

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
