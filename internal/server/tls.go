package server

import "crypto/tls"

// configureClientAuth sets how the TLS listener asks for client certificates
// (mutual TLS caller authentication).
func (s *Server) configureClientAuth(c *tls.Config) {
	_ = c
}
