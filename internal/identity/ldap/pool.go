package ldap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// maxIdle is how long a pooled connection may sit unused. Firewalls and NAT
// silently drop idle TCP connections (and AD closes them after 15 min); a
// request on such a connection would wait for its full timeout, so old
// connections are replaced instead.
const maxIdle = 5 * time.Minute

// pool holds up to size connections of one kind: the search pool's are bound
// as the service account, the bind pool's are only ever used to check user
// passwords (each check rebinds), so a connection bound as an end user never
// runs a search.
type pool struct {
	store     *Store
	asService bool
	slots     chan struct{} // one token per open connection
	idle      chan *conn    // capacity size: put never blocks

	mu     sync.Mutex
	closed bool
}

var errClosed = errors.New("store is closed")

func newPool(s *Store, asService bool) *pool {
	return &pool{store: s, asService: asService,
		slots: make(chan struct{}, s.cfg.PoolSize), idle: make(chan *conn, s.cfg.PoolSize)}
}

// run calls op with a connection. A server answer (even an error result such
// as invalidCredentials) is returned as is; a failure to talk to the server
// is returned wrapping identity.ErrStoreUnavailable and the connection is
// dropped. If an idle connection turns out to be dead — the usual sight
// after the server restarted — op is retried once on a fresh connection,
// so the first request after an outage does not fail needlessly. Requests
// that ran into (or near) their timeout are not retried: that would double
// the wait.
func (p *pool) run(ctx context.Context, op func(*conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		stop := context.AfterFunc(ctx, c.cancel)
		err = op(c)
		interrupted := !stop()
		if err == nil || answered(err) {
			p.put(c, !interrupted)
			return err
		}
		p.put(c, false)
		if errors.Is(err, errCancelled) || ctx.Err() != nil {
			return p.store.failed(ctx, err)
		}
		quick := time.Since(start) < p.store.cfg.Timeout/2
		if attempt == 0 && c.reused && !c.timedOut && quick {
			// The other idle connections most likely died with the same
			// server process: drop them so the retry dials afresh.
			p.drainIdle()
			continue
		}
		return p.store.failed(ctx, err)
	}
}

// get returns an idle connection or dials one, waiting for a free slot at
// most Timeout.
func (p *pool) get(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, p.store.unavailable(errClosed)
	}
	select {
	case p.slots <- struct{}{}:
	default:
		t := time.NewTimer(p.store.cfg.Timeout)
		defer t.Stop()
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, p.store.failed(ctx, errors.New("waiting for a free connection"))
		case <-t.C:
			return nil, p.store.unavailable(fmt.Errorf("all %d connections busy for %v", cap(p.slots), p.store.cfg.Timeout))
		}
	}
	for {
		select {
		case c := <-p.idle:
			if c.broken() || time.Since(c.idle) > maxIdle {
				c.close()
				continue
			}
			c.reused, c.timedOut = true, false
			return c, nil
		default:
		}
		c, err := p.store.dial(ctx, p.asService)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return c, nil
	}
}

// put returns c to the idle list, or closes it when it is unhealthy or the
// pool is closed, and frees its slot.
func (p *pool) put(c *conn, healthy bool) {
	keep := healthy && !c.broken() && !c.timedOut
	p.mu.Lock()
	if keep && !p.closed {
		c.idle = time.Now()
		select {
		case p.idle <- c:
		default: // cannot happen (capacity = slots), but never block
			keep = false
		}
	} else {
		keep = false
	}
	p.mu.Unlock()
	if !keep {
		c.close()
	}
	<-p.slots
}

// close closes the idle connections; connections in use are closed when
// they are put back.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.drainIdle()
}

func (p *pool) drainIdle() {
	for {
		select {
		case c := <-p.idle:
			c.close()
		default:
			return
		}
	}
}
