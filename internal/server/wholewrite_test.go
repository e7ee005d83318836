package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
)

type writeCounter struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, l.writes}, nil
}

type countedConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// An issued token's response, over 4 KiB with its headers, leaves Serve's
// listener in one write over HTTP and over HTTPS (internal/wholewrite); a
// fault, under 4 KiB and not held, stays one write.
func TestSOAPResponsesLeaveInOneWrite(t *testing.T) {
	var writes atomic.Int64
	testListener = func(l net.Listener) net.Listener { return writeCounter{l, &writes} }
	t.Cleanup(func() { testListener = nil })
	for _, plain := range []bool{true, false} {
		name := map[bool]string{true: "http", false: "https"}[plain]
		t.Run(name, func(t *testing.T) {
			srv, base := startServe(t, func(c *config.Config) { c.PlainHTTP = plain })
			(&testServer{Server: srv}).addUser(t, "alice", "Secret#123", false, []string{"admin"},
				map[string]string{"http://wso2.org/claims/emailaddress": "alice@example.org"})
			hc := &http.Client{Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test counts writes, not certificates
				MaxIdleConnsPerHost: 1,
			}}
			defer hc.CloseIdleConnections()
			url := base + "/services/sts"
			post := func(body []byte, ctype string) (int, string) {
				resp, err := hc.Post(url, ctype, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp.StatusCode, string(b)
			}
			good, ctype := rst(t, url, client.Options{User: "alice", Password: "Secret#123"}, nil)
			post(good, ctype) // the connection (and TLS handshake) first
			for i := range 3 {
				good, ctype := rst(t, url, client.Options{User: "alice", Password: "Secret#123"}, nil)
				before := writes.Load()
				status, body := post(good, ctype)
				if status != http.StatusOK || !strings.Contains(body, "RequestedSecurityToken") || len(body) < 4096 {
					t.Fatalf("issue %d: status %d, %d bytes", i, status, len(body))
				}
				if n := writes.Load() - before; n != 1 {
					t.Errorf("issue %d: the %d-byte response took %d writes, want 1", i, len(body), n)
				}
			}
			bad, ctype := rst(t, url, client.Options{User: "alice", Password: "wrong"}, nil)
			before := writes.Load()
			if status, body := post(bad, ctype); status != http.StatusInternalServerError || !strings.Contains(body, "FailedAuthentication") {
				t.Fatalf("fault: status %d, %q", status, body)
			}
			if n := writes.Load() - before; n != 1 {
				t.Errorf("the fault took %d writes, want 1", n)
			}
		})
	}
}
