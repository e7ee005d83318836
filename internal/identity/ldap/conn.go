package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/identity"
	ldapv3 "github.com/go-ldap/ldap/v3"
)

// conn is one LDAP connection. The store dials the TCP socket itself and
// keeps it (raw) so that every step — TLS handshake, StartTLS, bind, search
// — runs under a deadline on the socket: go-ldap's own request timeout does
// not cover the TLS handshakes, and a deadline also unblocks a write to a
// server that stopped reading. When a deadline fires, go-ldap's reader fails
// and closes the connection, so a timed-out connection is never reused.
type conn struct {
	l        *ldapv3.Conn
	raw      net.Conn
	reused   bool      // taken from the idle list rather than freshly dialled
	timedOut bool      // a request ran into its deadline
	idle     time.Time // when it was returned to the pool

	mu        sync.Mutex
	cancelled bool // the caller's context ended; the socket deadline is in the past
}

// errCancelled stands for the caller's context ending mid-request; the
// caller reports ctx.Err() instead.
var errCancelled = errors.New("request cancelled")

// cancel makes the current and every later request on c fail at once. It
// runs from context.AfterFunc when the caller's context ends.
func (c *conn) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelled = true
	_ = c.raw.SetDeadline(time.Unix(1, 0))
}

// do runs one request with the socket deadline at the earlier of now+timeout
// and the context's deadline.
func (c *conn) do(ctx context.Context, timeout time.Duration, req func() error) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.mu.Lock()
	if c.cancelled {
		c.mu.Unlock()
		return errCancelled
	}
	_ = c.raw.SetDeadline(deadline)
	c.mu.Unlock()

	err := req()

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelled {
		return errCancelled
	}
	if err != nil && !time.Now().Before(deadline) {
		c.timedOut = true
	}
	// No deadline while idle in the pool: an idle connection must not be
	// torn down by a stale deadline.
	_ = c.raw.SetDeadline(time.Time{})
	return err
}

// close tears c down without waiting for the server: the past deadline
// unblocks any read or write still in progress before go-ldap's Close.
func (c *conn) close() {
	_ = c.raw.SetDeadline(time.Unix(1, 0))
	if c.l != nil {
		_ = c.l.Close()
	} else {
		_ = c.raw.Close()
	}
}

// broken reports whether go-ldap has noticed the connection is gone (its
// reader saw EOF or an error, e.g. after a server restart).
func (c *conn) broken() bool { return c.l == nil || c.l.IsClosing() }

// dial connects, secures and (for the search pool) binds as the service
// account. Errors wrap identity.ErrStoreUnavailable.
func (s *Store) dial(ctx context.Context, asService bool) (*conn, error) {
	s.dials.Add(1)
	d := net.Dialer{Deadline: time.Now().Add(s.cfg.Timeout)}
	raw, err := d.DialContext(ctx, "tcp", s.cfg.address)
	if err != nil {
		return nil, s.failed(ctx, fmt.Errorf("connect to %s: %w", s.cfg.address, err))
	}
	c := &conn{raw: raw}
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	if err := s.setup(ctx, c, asService); err != nil {
		c.close()
		return nil, s.failed(ctx, err)
	}
	return c, nil
}

func (s *Store) setup(ctx context.Context, c *conn, asService bool) error {
	timeout := s.cfg.Timeout
	var nc net.Conn = c.raw
	if s.cfg.ldaps {
		tc := tls.Client(c.raw, s.cfg.tls.Clone())
		if err := c.do(ctx, timeout, tc.Handshake); err != nil {
			return fmt.Errorf("TLS handshake with %s: %w", s.cfg.address, err)
		}
		nc = tc
	}
	c.l = ldapv3.NewConn(nc, s.cfg.ldaps)
	c.l.Start()
	// go-ldap's per-request timer is a second line behind the socket
	// deadline (set later, so the deadline's clearer error wins); it also
	// bounds how long Close waits for go-ldap's goroutines.
	c.l.SetTimeout(timeout + time.Second)
	if s.cfg.StartTLS {
		err := c.do(ctx, timeout, func() error { return c.l.StartTLS(s.cfg.tls.Clone()) })
		if err != nil {
			return fmt.Errorf("StartTLS with %s: %w", s.cfg.address, err)
		}
	}
	if asService && s.cfg.BindDN != "" {
		err := c.do(ctx, timeout, func() error { return c.l.Bind(s.cfg.BindDN, s.cfg.BindPassword) })
		if answered(err) {
			// The directory is up but refuses the service account: a
			// configuration problem, never the end user's bad password.
			return fmt.Errorf("service account %q cannot bind: %w", s.cfg.BindDN, err)
		}
		if err != nil {
			return fmt.Errorf("bind service account: %w", err)
		}
	}
	return nil
}

// answered reports whether err is a result the server sent (invalid
// credentials, no such object, size limit ...), as opposed to a failure to
// talk to it. go-ldap numbers its client-side failures from 200 up.
func answered(err error) bool {
	var le *ldapv3.Error
	return errors.As(err, &le) && le.ResultCode < ldapv3.ErrorNetwork
}

// resultCode is the server's result code in err, or 0.
func resultCode(err error) uint16 {
	var le *ldapv3.Error
	if errors.As(err, &le) && le.ResultCode < ldapv3.ErrorNetwork {
		return le.ResultCode
	}
	return 0
}

// failed is unavailable, saying so when the caller's context ended: the
// network error (an i/o timeout at the context's deadline) is then only the
// symptom, and callers test for context.DeadlineExceeded or Canceled. The
// socket deadline and the context's timer fire at the same instant, so a
// passed deadline counts even before ctx.Err() reports it.
func (s *Store) failed(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if d, ok := ctx.Deadline(); ok && cause == nil && !time.Now().Before(d) {
		cause = context.DeadlineExceeded
	}
	if cause != nil {
		return s.unavailable(fmt.Errorf("%w (%v)", cause, err))
	}
	return s.unavailable(err)
}

// unavailable wraps err as identity.ErrStoreUnavailable naming the store.
func (s *Store) unavailable(err error) error {
	return fmt.Errorf("%w: ldap store %s: %w", identity.ErrStoreUnavailable, s.cfg.Domain, err)
}
