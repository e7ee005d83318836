package ldap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestOutage stops, freezes and restarts slapd under one Store: the store
// must fail fast and clearly while the server is away and work again by
// itself when it is back.
func TestOutage(t *testing.T) {
	srv := startServer(t, false)
	cfg := testConfig(srv.URL)
	s := newStore(t, cfg)
	limit := 2 * cfg.Timeout

	authenticate := func(t *testing.T) (time.Duration, error) {
		t.Helper()
		start := time.Now()
		_, err := s.Authenticate(ctxT(t), "alice", "Alice#123")
		return time.Since(start), err
	}
	mustWork := func(t *testing.T) {
		t.Helper()
		if _, err := authenticate(t); err != nil {
			t.Fatalf("Authenticate: %v\nslapd log:\n%s", err, srv.Log())
		}
	}

	t.Run("the store works and fills its pools", mustWork)

	t.Run("a stopped server gives ErrStoreUnavailable quickly", func(t *testing.T) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		took, err := authenticate(t)
		wantUnavailable(t, err)
		if took >= limit {
			t.Fatalf("took %v, want < %v", took, limit)
		}
		t.Logf("error after %v: %v", took, err)
		_, err = s.Lookup(ctxT(t), "alice")
		wantUnavailable(t, err)
		_, err = s.ListUsers(ctxT(t), 10)
		wantUnavailable(t, err)
	})

	t.Run("the same store works again once the server is restarted", func(t *testing.T) {
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		mustWork(t)
	})

	t.Run("a restart between requests is not noticed by the next request", func(t *testing.T) {
		mustWork(t) // pools hold connections to the old process
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		mustWork(t)
	})

	t.Run("a hung server gives ErrStoreUnavailable within the timeout", func(t *testing.T) {
		mustWork(t)
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		took, err := authenticate(t)
		wantUnavailable(t, err)
		if took < cfg.Timeout/2 || took >= limit {
			t.Fatalf("took %v, want about the timeout %v (< %v)", took, cfg.Timeout, limit)
		}
		t.Logf("error after %v: %v", took, err)
	})

	t.Run("the caller's deadline cuts a request to a hung server short", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.Authenticate(ctx, "alice", "Alice#123")
		took := time.Since(start)
		wantUnavailable(t, err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
		}
		if took >= cfg.Timeout {
			t.Fatalf("took %v, want about 150ms", took)
		}
	})

	t.Run("the store works again once the hung server resumes", func(t *testing.T) {
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		mustWork(t)
	})
}

func TestStoreCreatedWhileTheServerIsDown(t *testing.T) {
	srv := startServer(t, false)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, testConfig(srv.URL)) // New must not need the server

	t.Run("requests fail as unavailable while it is down", func(t *testing.T) {
		_, err := s.Authenticate(ctxT(t), "alice", "Alice#123")
		wantUnavailable(t, err)
	})
	t.Run("requests succeed once it is up", func(t *testing.T) {
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		p, err := s.Authenticate(ctxT(t), "alice", "Alice#123")
		wantPrincipal(t, p, err, "alice", []string{"admin", "staff"}, aliceClaims)
	})
}

func TestConcurrentAuthenticateSharesAPoolOfFour(t *testing.T) {
	srv := startServer(t, false)
	cfg := testConfig(srv.URL)
	cfg.PoolSize = 4
	s := newStore(t, cfg)

	const goroutines, rounds = 20, 5
	logins := []struct {
		name, password string
		ok             bool
	}{
		{"alice", "Alice#123", true},
		{"bob", "Bob#1234", true},
		{"alice", "Bob#1234", false},
		{"o*brien", "Obrien#1", true},
		{"*", "Bob#1234", false},
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*rounds)
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				l := logins[(g+r)%len(logins)]
				p, err := s.Authenticate(ctxT(t), l.name, l.password)
				switch {
				case l.ok && (err != nil || p.Name != l.name):
					errs <- fmt.Errorf("%s: got %+v, %v; want success", l.name, p, err)
				case !l.ok && err == nil:
					errs <- fmt.Errorf("%s with a wrong password succeeded", l.name)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// 100 logins with 20 callers: at most PoolSize connections per pool,
	// each dialled once.
	if n := s.dials.Load(); n > int64(2*cfg.PoolSize) {
		t.Errorf("%d connections dialled, want at most %d (two pools of %d)", n, 2*cfg.PoolSize, cfg.PoolSize)
	}
}
