package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/testutil/pgtest"
)

// TestPostgreSQLOutageGivesClearFaultsAndRecoversWithoutRestart stops the
// database under a running node: requests fail fast with a clear fault (no
// hang), /readyz says 503, and when the database returns the node serves
// again by itself.
func TestPostgreSQLOutageGivesClearFaultsAndRecoversWithoutRestart(t *testing.T) {
	pg := pgtest.Dedicated(t)
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	masterKey := base64.StdEncoding.EncodeToString(mk)
	n := startNode(t, pg.URL, masterKey)
	o := &client.Options{URL: n.base + "/services/sts", User: "admin", Password: "admin-pw"}
	hc := &http.Client{Timeout: 30 * time.Second}
	ctx := context.Background()
	if _, _, _, err := client.Issue(ctx, hc, o); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, _, err := client.Issue(ctx, hc, o)
	fe, ok := err.(*client.FaultError)
	if !ok || fe.Code != "wst:RequestFailed" || !strings.Contains(fe.Reason, "unavailable") {
		t.Fatalf("with the database down: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the outage took %s to report", d)
	}
	resp, err := hc.Get(n.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz during the outage: %d", resp.StatusCode)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, _, err := client.Issue(ctx, hc, o)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the database came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
