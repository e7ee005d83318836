package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/sts"
)

// auditor writes token-issuance events to the audit log off the request
// path: a token's own record (written before it is returned) is the durable
// proof of issuance; the audit event adds who/which RP/when for operators
// and may be lost in a crash, which is why it need not cost the request a
// second synchronous write.
//
// Requests append to a buffer under a mutex; the writer drains it every
// auditInterval in one transaction. Nothing wakes the writer per event: a
// channel send to a waiting writer readies it for the only processor of a
// pinned server, and the trace showed those wake-ups as the largest
// scheduling delay of the request path.
type auditor struct {
	store   storage.Audit
	dropped atomic.Int64

	mu      sync.Mutex
	pending []storage.AuditEvent
}

// auditInterval bounds how long an event waits for its write, and so how
// much of the audit log a crash can lose; auditMaxPending bounds memory
// when the store cannot keep up (events beyond it are dropped and counted
// in avouch_audit_events_dropped_total).
const (
	auditInterval   = 100 * time.Millisecond
	auditMaxPending = 65536
)

func newAuditor(st storage.Audit) *auditor {
	return &auditor{store: st}
}

func (a *auditor) token(op string, p *sts.Principal, t *sts.Token, now time.Time) {
	e := storage.AuditEvent{Time: now.UTC(), Actor: p.Domain + "/" + p.Name, Action: "token." + op, Target: t.ID,
		Detail: "type=" + t.Type + " rp=" + t.AppliesTo}
	a.mu.Lock()
	if len(a.pending) < auditMaxPending {
		a.pending = append(a.pending, e)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	// Full: drop rather than slow token issuance down (the token record
	// still proves the issuance); counted so operators see it.
	a.dropped.Add(1)
}

// take swaps the pending events for spare (emptied) and returns them.
func (a *auditor) take(spare []storage.AuditEvent) []storage.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	batch := a.pending
	a.pending = spare[:0]
	return batch
}

func (a *auditor) run(ctx context.Context, log func(msg string, args ...any)) {
	t := time.NewTicker(auditInterval)
	defer t.Stop()
	var spare []storage.AuditEvent
	for {
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		batch := a.take(spare)
		if len(batch) > 0 {
			// WithoutCancel: the SQLite driver watches a cancellable context
			// with a goroutine per statement; and the last batch is written
			// after ctx is done.
			if err := a.store.AppendAudit(context.WithoutCancel(ctx), batch...); err != nil {
				log("audit write failed", "err", err, "events", len(batch))
			}
		}
		clear(batch) // drop references to the events' strings
		spare = batch
		if ctx.Err() != nil {
			return
		}
	}
}
