package server

import (
	"context"
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
type auditor struct {
	store   storage.Audit
	ch      chan storage.AuditEvent
	dropped atomic.Int64
}

// auditLinger bounds how long an event waits for others to share its write,
// and so how much of the audit log a crash can lose; auditBatch bounds a
// batch. At 5,000 tokens/s a batch is ~500 events: one transaction instead
// of 500.
const (
	auditLinger = 100 * time.Millisecond
	auditBatch  = 1024
)

func newAuditor(st storage.Audit) *auditor {
	return &auditor{store: st, ch: make(chan storage.AuditEvent, 4096)}
}

func (a *auditor) token(op string, p *sts.Principal, t *sts.Token, now time.Time) {
	e := storage.AuditEvent{Time: now.UTC(), Actor: p.Domain + "/" + p.Name, Action: "token." + op, Target: t.ID,
		Detail: "type=" + t.Type + " rp=" + t.AppliesTo}
	select {
	case a.ch <- e:
	default:
		// Full: drop rather than slow token issuance down (the token record
		// still proves the issuance); counted so operators see it.
		a.dropped.Add(1)
	}
}

func (a *auditor) run(ctx context.Context, log func(msg string, args ...any)) {
	var buf []storage.AuditEvent
	for {
		select {
		case <-ctx.Done():
			// Drain what is queued.
			for {
				select {
				case e := <-a.ch:
					_ = a.store.AppendAudit(context.WithoutCancel(ctx), e)
				default:
					return
				}
			}
		case e := <-a.ch:
			// Gather events for up to auditLinger: on one busy core the
			// writer would otherwise wake for every event and pay a whole
			// SQLite transaction per token, as much as the token record
			// itself. Lingering makes it one transaction per batch.
			batch := append(buf[:0], e)
			linger := time.NewTimer(auditLinger)
		fill:
			for len(batch) < auditBatch {
				select {
				case e := <-a.ch:
					batch = append(batch, e)
				case <-linger.C:
					break fill
				case <-ctx.Done():
					break fill
				}
			}
			linger.Stop()
			buf = batch
			// WithoutCancel: the SQLite driver watches a cancellable context with a
			// goroutine per statement.
			if err := a.store.AppendAudit(context.WithoutCancel(ctx), batch...); err != nil {
				log("audit write failed", "err", err, "events", len(batch))
			}
		}
	}
}
