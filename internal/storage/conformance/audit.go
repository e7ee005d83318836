package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

var auditTests = []test{
	{"an empty audit log lists no events", testAuditEmpty},
	{"appended events are listed newest first with increasing IDs", testAuditOrder},
	{"events with the same time are listed in reverse append order", testAuditSameTime},
	{"ListAudit returns at most limit events", testAuditLimit},
	{"a zero event time is replaced by the current time", testAuditZeroTime},
	{"several events appended in one call are all stored, in order", testAuditBatch},
}

// testAuditBatch: 250 events in one call (backends may write them in
// chunks), all stored in append order.
func testAuditBatch(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 250
	var batch []storage.AuditEvent
	for i := range n {
		batch = append(batch, storage.AuditEvent{Time: at, Actor: "a", Action: "token.issue", Target: fmt.Sprintf("v%03d", i)})
	}
	if err := s.AppendAudit(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
	got, err := s.ListAudit(ctx, n+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d events, want %d", len(got), n)
	}
	for i, e := range got { // newest first: reverse append order at equal times
		if want := fmt.Sprintf("v%03d", n-1-i); e.Target != want || !e.Time.Equal(at) {
			t.Fatalf("event %d = %q at %v, want %q at %v", i, e.Target, e.Time, want, at)
		}
		if i > 0 && e.ID >= got[i-1].ID {
			t.Fatalf("IDs not in append order: %d after %d", e.ID, got[i-1].ID)
		}
	}
}

func appendEvents(t *testing.T, s storage.Storage, times ...time.Time) []storage.AuditEvent {
	t.Helper()
	var events []storage.AuditEvent
	for i, at := range times {
		e := storage.AuditEvent{
			Time: at, Actor: fmt.Sprintf("user-%d", i), Action: "token.issue",
			Target: "https://rp.example.org/", Detail: fmt.Sprintf("event %d — ok", i),
		}
		if err := s.AppendAudit(t.Context(), e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		events = append(events, e)
	}
	return events
}

func listAudit(t *testing.T, s storage.Storage, limit int) []storage.AuditEvent {
	t.Helper()
	got, err := s.ListAudit(t.Context(), limit)
	if err != nil {
		t.Fatalf("ListAudit(%d): %v", limit, err)
	}
	return got
}

func testAuditEmpty(t *testing.T, s storage.Storage) {
	if got := listAudit(t, s, 10); got == nil || len(got) != 0 {
		t.Errorf("ListAudit = %#v, want empty, non-nil", got)
	}
}

func testAuditOrder(t *testing.T, s storage.Storage) {
	want := appendEvents(t, s, base, base.Add(time.Second), base.Add(time.Minute))
	got := listAudit(t, s, 10)
	if len(got) != 3 {
		t.Fatalf("ListAudit returned %d events, want 3", len(got))
	}
	for i, e := range got {
		w := want[len(want)-1-i]
		if e.Actor != w.Actor || e.Action != w.Action || e.Target != w.Target || e.Detail != w.Detail {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
		checkTime(t, "AuditEvent.Time", e.Time, w.Time)
		if i > 0 && e.ID >= got[i-1].ID {
			t.Errorf("IDs not increasing with append order: %d listed after %d", e.ID, got[i-1].ID)
		}
	}
}

func testAuditSameTime(t *testing.T, s storage.Storage) {
	appendEvents(t, s, base, base, base)
	got := listAudit(t, s, 10)
	var actors []string
	for _, e := range got {
		actors = append(actors, e.Actor)
	}
	if fmt.Sprint(actors) != "[user-2 user-1 user-0]" {
		t.Errorf("actors = %q, want newest append first", actors)
	}
}

func testAuditLimit(t *testing.T, s storage.Storage) {
	appendEvents(t, s, base, base.Add(time.Second), base.Add(2*time.Second), base.Add(3*time.Second), base.Add(4*time.Second))
	if got := listAudit(t, s, 2); len(got) != 2 || got[0].Actor != "user-4" || got[1].Actor != "user-3" {
		t.Errorf("ListAudit(2) = %+v, want the two newest", got)
	}
	if got := listAudit(t, s, 100); len(got) != 5 {
		t.Errorf("ListAudit(100) returned %d events, want 5", len(got))
	}
	for _, limit := range []int{0, -1} {
		if got := listAudit(t, s, limit); got == nil || len(got) != 0 {
			t.Errorf("ListAudit(%d) = %+v, want empty, non-nil", limit, got)
		}
	}
}

func testAuditZeroTime(t *testing.T, s storage.Storage) {
	if err := s.AppendAudit(t.Context(), storage.AuditEvent{Actor: "system", Action: "server.start"}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	got := listAudit(t, s, 1)
	if len(got) != 1 {
		t.Fatalf("ListAudit returned %d events, want 1", len(got))
	}
	checkRecent(t, "AuditEvent.Time", got[0].Time)
}
