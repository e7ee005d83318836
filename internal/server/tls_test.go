package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/config"
)

// The HTTPS listener speaks TLS 1.2 and 1.3 only, and TLS 1.2 only with
// forward-secret AEAD suites.
func TestTLSIsModern(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(time.Second)
	srv, err := New(context.Background(), &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	go func() { _ = srv.Serve(ctx, func(u string) { urls <- u }) }()
	var addr string
	select {
	case u := <-urls:
		addr = strings.TrimPrefix(u, "https://")
		addr = strings.Replace(addr, "localhost", "127.0.0.1", 1)
	case <-time.After(10 * time.Second):
		t.Fatal("no listener")
	}
	dial := func(c *tls.Config) error {
		c.InsecureSkipVerify = true //nolint:gosec // the test inspects the handshake, not the certificate
		conn, err := tls.Dial("tcp", addr, c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	cases := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"TLS 1.3 is accepted", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 with ECDHE AES-GCM is accepted", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.1 is refused", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 with an AES-CBC suite is refused", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 with RSA key exchange is refused", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := dial(c.cfg); (err == nil) != c.ok {
				t.Fatalf("handshake error %v, want ok=%v", err, c.ok)
			}
		})
	}
}
