package hostile

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/config"
)

// headerTimeout is the server's read_header_timeout for this test (10 s by
// default; shortened here to keep the test quick).
const headerTimeout = 2 * time.Second

// TestSlowlorisIsCutOffByTheHeaderTimeout: clients that trickle their
// request headers one byte per second (slowloris) would hold a connection
// and a goroutine each for as long as they like. Serve's ReadHeaderTimeout
// closes them when the headers are not complete in time, and meanwhile
// other clients are served. This needs the real Serve (the httptest server
// of the other tests has no timeouts), so it listens on a free port.
func TestSlowlorisIsCutOffByTheHeaderTimeout(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.PlainHTTP = true
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(time.Second)
	cfg.ReadHeaderTimeout = config.Duration(headerTimeout)
	srv, err := newServer(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func(u string) { urls <- u }) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not start listening")
	}
	addr := strings.TrimPrefix(base, "http://")

	// Headers that would take a minute to send at one byte per second.
	head := "POST /services/sts HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: text/xml\r\nX-Slow: " +
		strings.Repeat("z", 30) + "\r\n\r\n"
	const clients = 4
	type result struct {
		elapsed time.Duration
		sent    int
		err     error
	}
	results := make([]result, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				results[i].err = err
				return
			}
			defer conn.Close()
			closed := make(chan struct{})
			go func() {
				// The server answers nothing: it closes the connection.
				_, _ = io.Copy(io.Discard, conn)
				close(closed)
			}()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for sent := 0; sent < len(head); {
				if _, err := conn.Write([]byte{head[sent]}); err != nil {
					break
				}
				sent++
				results[i].sent = sent
				select {
				case <-closed:
					results[i].elapsed = time.Since(start)
					return
				case <-tick.C:
				}
			}
			select {
			case <-closed:
				results[i].elapsed = time.Since(start)
			case <-time.After(2 * time.Second):
			}
		}()
	}

	t.Run("other clients are served while the slow ones hold their connections", func(t *testing.T) {
		time.Sleep(2 * time.Second)
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz %d during the slowloris", resp.StatusCode)
		}
	})
	wg.Wait()
	t.Run("every slow client is cut off after the header timeout, before its headers are complete", func(t *testing.T) {
		for i, r := range results {
			switch {
			case r.err != nil:
				t.Errorf("client %d: %v", i, r.err)
			case r.elapsed == 0:
				t.Errorf("client %d was never cut off (sent %d of %d header bytes)", i, r.sent, len(head))
			case r.elapsed < headerTimeout-time.Second || r.elapsed > headerTimeout+3*time.Second:
				t.Errorf("client %d cut off after %v, want about %v", i, r.elapsed.Round(time.Millisecond), headerTimeout)
			case r.sent >= len(head):
				t.Errorf("client %d completed its headers", i)
			}
		}
	})
}
