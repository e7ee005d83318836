package pgtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// Instance is a PostgreSQL server of one test's own, which the test may stop
// and start again (outage tests). The shared server of URL must never be
// stopped by a test.
type Instance struct {
	l   *localServer
	URL string // of database "postgres"
}

// Dedicated starts a throw-away PostgreSQL for t alone; it is removed when
// the test ends.
func Dedicated(t testing.TB) *Instance {
	t.Helper()
	l, what, err := startLocal(context.Background())
	if what != "" {
		testutil.Missing(t, what)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(l.stop)
	return &Instance{l: l, URL: l.url("postgres")}
}

// Stop shuts the server down (fast: connections are cut) keeping its data.
func (i *Instance) Stop() error {
	out, err := i.l.command("pg_ctl", "stop", "-D", i.l.data(), "-m", "fast", "-w", "-t", "20").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	select {
	case <-i.l.exited:
	case <-time.After(20 * time.Second):
		return fmt.Errorf("postgres did not exit")
	}
	return nil
}

// Start starts the server again on the same port.
func (i *Instance) Start() error { return i.l.startOn(context.Background(), i.l.port) }
