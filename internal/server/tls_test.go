package server

import (
	"crypto/tls"
	"strings"
	"testing"
)

// The HTTPS listener speaks TLS 1.2 and 1.3 only, and TLS 1.2 only with
// forward-secret AEAD suites.
func TestTLSIsModern(t *testing.T) {
	_, base := startServe(t, nil)
	addr := strings.TrimPrefix(base, "https://")
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
