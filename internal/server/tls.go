package server

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/wssec"
)

// configureClientAuth sets how the TLS listener asks for client
// certificates (mutual TLS caller authentication, ADFS's
// certificatetransport).
//
// The handshake asks for a certificate only while the security_scenario in
// force uses mutual-tls (browsers on the passive sign-in page are not
// prompted otherwise), decided per connection so that a scenario changed at
// runtime applies to new connections at once. The certificate is requested,
// not verified, in the handshake: the WS-Trust endpoint checks it against
// the trust store on every request (a registered user certificate, or one
// issued by a user-mapping CA, within its validity), so certificates added
// or removed through any node count immediately. A client without a
// certificate still connects and gets a WS-Security fault it can read,
// rather than a failed handshake.
func (s *Server) configureClientAuth(c *tls.Config) {
	requesting := c.Clone()
	requesting.ClientAuth = tls.RequestClientCert
	scenario := s.scenarioSource()
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pol, err := wssec.ParsePolicy(scenario())
		if err != nil || !pol.Uses(wssec.MethodMutualTLS) {
			return nil, nil // c as it is: no certificate requested
		}
		return requesting, nil
	}
}

// ConfigureCallerAuth connects the WS-Security processor to the trust store
// and user store (certificate → user mapping) and to the security_scenario
// in force with the full precedence (flags > environment > database > YAML
// file > defaults). Without it the processor takes the stores from its
// Replay store and reads only the scenario stored in the database.
func (s *Server) ConfigureCallerAuth(p *wssec.Processor) {
	p.Certs, p.Users = s.Store, s.Store
	if s.scenario == nil {
		s.scenario = s.scenarioSource()
	}
	p.Scenario = s.scenario
}

// scenarioSource returns the security_scenario in force, re-read at most
// once a second (as the runtime settings are). When the database cannot be
// read, the last value read stays in force, never a weaker default.
func (s *Server) scenarioSource() func() string {
	var (
		mu    sync.Mutex
		value string
		known bool
		until time.Time
	)
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		if known && time.Now().Before(until) {
			return value
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		stored, err := StoredSettings(ctx, s.Store)
		if err != nil {
			if !known {
				value, known = s.Config.SecurityScenario, true
			}
			until = time.Now().Add(time.Second)
			return value
		}
		// flags > environment > database > file > defaults. A stored value
		// is passed through as is, so an invalid one fails closed in the
		// processor instead of silently falling back to the default.
		if v, ok := stored["security_scenario"]; ok && !s.Config.Fixed["security_scenario"] {
			value = v
		} else {
			value = s.Config.SecurityScenario
		}
		known, until = true, time.Now().Add(time.Second)
		return value
	}
}
