// Package wholewrite sends an HTTP/1.1 response that a handler declares
// whole in one write(2), where net/http would make two.
//
// net/http writes a response through a 4 KiB buffer on the connection. A
// response longer than that, headers included — every issued SAML token is
// — leaves in two writes: the full buffer, then the rest when the handler
// returns. On loopback or a LAN each write is a TCP segment of its own, a
// system call and a wake-up of the reader, about 0.7 % of a core per token
// at the signing rate (docs/PERFORMANCE.md).
//
// Listener wraps the accepted connections; the http.Server's ConnContext
// puts the connection in each request's context; a handler that writes its
// response with one Write (known length, nothing streamed) calls Whole
// first. From then the connection holds the response's bytes, and sends
// them together at the first of:
//   - a read or write deadline set on the connection: net/http sets both
//     right after it has flushed a response (the read deadline ends the
//     read it keeps going in the background during the handler; the write
//     deadline is cleared after every response), and a read deadline again
//     before it waits for the next request;
//   - Close or CloseWrite;
//   - more than maxHeld bytes held (then they go at once, and holding goes
//     on for the rest).
//
// A Read does not end the hold: net/http's background read may start
// after the handler has begun writing, and it would split the response.
// Nothing waits on held bytes but the server's own next step. A response
// that is not declared whole (streamed, flushed early) is never held.
package wholewrite

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxHeld bounds the bytes held for one response; more go out at once.
const maxHeld = 256 << 10

// Listener returns l with connections that can hold a whole response.
func Listener(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c}, nil
}

type ctxKey struct{}

// ConnContext is for http.Server.ConnContext: it records c (a *Conn, or a
// *tls.Conn over one) in the connection's context.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if wc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, ctxKey{}, wc)
	}
	return ctx
}

// Whole declares that r's response will be written whole, before its handler
// returns, and is not to be streamed: its bytes are held and sent in one
// write. It does nothing for HTTP/2 (whose connection reads on its own
// goroutine and writes frames of many streams) or when the connection did
// not come from Listener.
func Whole(r *http.Request) {
	if r.ProtoMajor != 1 {
		return
	}
	if c, ok := r.Context().Value(ctxKey{}).(*Conn); ok {
		c.hold()
	}
}

// Conn is an accepted connection that can hold a whole response.
type Conn struct {
	net.Conn
	// wmu keeps writes to Conn in order (held bytes before later ones); mu
	// guards the fields below and is never held during a write, so Close
	// from another goroutine does not wait behind a blocked one.
	wmu     sync.Mutex
	mu      sync.Mutex
	holding bool
	held    []byte
	err     error // of a write made on release, returned by the next call
}

var heldBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *Conn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// Write holds p while a whole response is being written, else writes it.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	if c.holding && len(c.held)+len(p) <= maxHeld {
		if c.held == nil {
			c.held = (*heldBuffers.Get().(*[]byte))[:0]
		}
		c.held = append(c.held, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	held := c.held // over the bound: out now, with p
	c.held = nil
	c.mu.Unlock()
	if err := c.send(held, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// send writes held, then p, in one call; with c.wmu held.
func (c *Conn) send(held, p []byte) error {
	var err error
	switch {
	case len(held) == 0:
		_, err = c.Conn.Write(p)
	case len(p) == 0:
		_, err = c.Conn.Write(held)
	default:
		bufs := net.Buffers{held, p}
		_, err = bufs.WriteTo(c.Conn)
	}
	if held != nil && cap(held) <= 64<<10 {
		b := held[:0]
		heldBuffers.Put(&b)
	}
	if err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
	return err
}

// release ends the hold and sends what was held.
func (c *Conn) release() error {
	c.mu.Lock()
	c.holding = false
	err, pending := c.err, len(c.held) > 0
	c.mu.Unlock()
	if err != nil || !pending {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	if len(held) == 0 {
		return nil // another release sent it
	}
	return c.send(held, nil)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	if err := c.release(); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	if err := c.release(); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.release(); err != nil {
		return err
	}
	return c.Conn.SetDeadline(t)
}

func (c *Conn) Close() error {
	_ = c.release()
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection (net/http does before closing
// one it will not read from again, so the peer reads the last response).
func (c *Conn) CloseWrite() error {
	if err := c.release(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
