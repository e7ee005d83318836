package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/storage"
)

const selectToken = `SELECT id, type, subject, relying_party, issued_at, expires_at, state,
	renewable, renew_after_expiry, data, updated_at FROM tokens`

func scanToken(sc scanner) (storage.Token, error) {
	var (
		t                           storage.Token
		state                       string
		issued, expires, updated    int64
		renewable, renewAfterExpiry int64
	)
	if err := sc.Scan(&t.ID, &t.Type, &t.Subject, &t.RelyingParty, &issued, &expires, &state,
		&renewable, &renewAfterExpiry, &t.Data, &updated); err != nil {
		return storage.Token{}, err
	}
	t.State = storage.TokenState(state)
	t.IssuedAt, t.ExpiresAt, t.UpdatedAt = fromMicros(issued), fromMicros(expires), fromMicros(updated)
	t.Renewable, t.RenewAfterExpiry = renewable != 0, renewAfterExpiry != 0
	return t, nil
}

// CreateToken records a token; it returns once the row is committed (in
// the WAL, so a crash of the process cannot lose it).
//
// Concurrent calls share commits (group commit). Each SQLite commit costs a
// fixed set of system calls — file locks, WAL frame writes — that dwarf
// the INSERT itself. The first caller leads: under load it yields the
// processor once, so that requests already runnable reach this point and
// queue behind it, then commits everything queued in one transaction and
// wakes the others. A lone caller pays nothing extra (the INSERT commits
// on its own); under load a commit carries as many tokens as there were
// requests in flight. No caller returns before its row is
// committed, so the guarantee of a single INSERT is kept.
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	if t.State == "" {
		t.State = storage.TokenActive
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = s.now()
	}
	w := &tokenWrite{t: t, done: make(chan struct{})}
	g := &s.tokenGroup
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		<-w.done
		if !w.lead {
			return w.err
		}
		// The previous leader handed the queue (with w in it) over.
	}
	g.mu.Lock()
	g.leads++
	// Yield only when others are likely to join: the last commit was
	// shared, four or more goroutines are ready to run (under load, the
	// requests the network poller woke together, which would otherwise
	// each commit alone after its signature: every other commit carried
	// one token; at half load so many are rarely waiting, and a yield
	// there would add their signatures to this request's latency), or,
	// now and then, to find out. A yield hands the
	// processor to whatever is runnable, and the leader then waits for
	// those requests' pipelines (signatures included) before committing: a
	// gain under load, only latency when requests arrive one at a time.
	yield := g.lastBatch > 1 || g.leads%yieldProbe == 0 || g.runnable() >= 4
	g.mu.Unlock()
	if yield {
		runtime.Gosched()
	}
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.lastBatch = len(batch)
	g.mu.Unlock()
	// A panic in the commit must not strand the callers waiting on it:
	// they get an error, the hand-over below still happens, and then the
	// panic goes on up this caller's stack.
	var panicked any
	func() {
		defer func() {
			if panicked = recover(); panicked != nil {
				for _, b := range batch {
					b.err = errors.New("sqlite: create token: the commit failed")
				}
			}
		}()
		s.commitTokens(context.WithoutCancel(ctx), batch)
	}()
	g.mu.Lock()
	var next *tokenWrite
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, b := range batch {
		if b != w {
			close(b.done)
		}
	}
	if next != nil {
		next.lead = true
		close(next.done)
	}
	if panicked != nil {
		panic(panicked)
	}
	return w.err
}

// testCommitHook, when set by a test, runs at the start of every group commit.
var testCommitHook func()

// tokenGroup is the queue of CreateToken calls waiting for a commit.
type tokenGroup struct {
	mu        sync.Mutex
	queue     []*tokenWrite
	leading   bool // a caller is committing; new calls queue
	leads     int  // commits led so far
	lastBatch int  // tokens in the last commit
	sample    []metrics.Sample
}

// runnable returns how many goroutines of the process are ready to run and
// waiting for a processor (an O(GOMAXPROCS) read of the run queues, ~60 ns).
// Called with g.mu held: the sample is the group's.
func (g *tokenGroup) runnable() uint64 {
	if g.sample == nil {
		g.sample = []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}
	}
	metrics.Read(g.sample)
	if g.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return g.sample[0].Value.Uint64()
}

// yieldProbe: a leader whose last commit carried one token yields on every
// yieldProbe-th commit, to notice when load has risen.
const yieldProbe = 8

type tokenWrite struct {
	t    storage.Token
	err  error
	lead bool // set before done is closed: the receiver commits the queue
	done chan struct{}
}

// commitTokens inserts batch and sets each write's error. A duplicate ID
// fails that token only; any other error fails the whole batch (nothing
// of it is committed).
func (s *Store) commitTokens(ctx context.Context, batch []*tokenWrite) {
	if testCommitHook != nil {
		testCommitHook()
	}
	if len(batch) == 1 {
		// One INSERT is atomic on its own: no BEGIN and COMMIT statements.
		batch[0].err = s.insertOne(ctx, s.insertToken, batch[0].t)
		return
	}
	// The whole batch in one multi-row INSERT, atomic by itself: no BEGIN
	// and COMMIT, and one bind and step instead of one per token (about a
	// third of the record's cost per token). A duplicate ID fails the whole
	// statement, so then the batch is inserted row by row below, where it
	// fails that token only.
	if len(batch) <= tokenStmtRows {
		err := s.insertMany(ctx, batch)
		if err == nil || !isUniqueViolation(err) {
			for _, b := range batch {
				b.err = err
			}
			return
		}
	}
	fail := func(err error) {
		for _, b := range batch {
			b.err = err
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("sqlite: create token: begin: %w", err))
		return
	}
	st := tx.StmtContext(ctx, s.insertToken)
	for _, b := range batch {
		b.err = s.insertOne(ctx, st, b.t)
		if b.err != nil && !errors.Is(b.err, storage.ErrAlreadyExists) {
			_ = tx.Rollback()
			fail(b.err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("sqlite: create token: commit: %w", err))
	}
}

func (s *Store) insertOne(ctx context.Context, st *sql.Stmt, t storage.Token) error {
	_, err := st.ExecContext(ctx, appendTokenArgs(make([]any, 0, 11), t)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: create token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	return nil
}

// tokenStmtRows is the largest batch inserted by one statement (11
// parameters a row); a larger batch, rare, goes row by row.
const tokenStmtRows = 64

// insertMany inserts batch with one statement, prepared once per batch
// size on first use. Only the commit leader calls it, one at a time.
func (s *Store) insertMany(ctx context.Context, batch []*tokenWrite) error {
	n := len(batch)
	s.tokenStmtsMu.Lock()
	st := s.tokenStmts[n]
	s.tokenStmtsMu.Unlock()
	if st == nil {
		var err error
		if st, err = s.w.PrepareContext(ctx, insertTokensSQL(n)); err != nil {
			return fmt.Errorf("sqlite: create token: %w", err)
		}
		s.tokenStmtsMu.Lock()
		if s.tokenStmts == nil {
			s.tokenStmts = map[int]*sql.Stmt{}
		}
		s.tokenStmts[n] = st
		s.tokenStmtsMu.Unlock()
	}
	args := make([]any, 0, 11*n)
	for _, b := range batch {
		args = appendTokenArgs(args, b.t)
	}
	if _, err := st.ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	return nil
}

// appendTokenArgs appends the 11 parameters of insertTokenSQL for t.
func appendTokenArgs(args []any, t storage.Token) []any {
	return append(args, t.ID, t.Type, t.Subject, t.RelyingParty, toMicros(t.IssuedAt),
		toMicros(t.ExpiresAt), string(t.State), boolInt(t.Renewable), boolInt(t.RenewAfterExpiry), nonNil(t.Data),
		toMicros(t.UpdatedAt))
}

func insertTokensSQL(rows int) string {
	return insertTokenSQL + strings.Repeat(`, (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, rows-1)
}

const insertTokenSQL = `INSERT INTO tokens (id, type, subject, relying_party, issued_at, expires_at,
	state, renewable, renew_after_expiry, data, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// GetToken returns the token with id.
func (s *Store) GetToken(ctx context.Context, id string) (storage.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, selectToken+` WHERE id = ?`, id))
	if err != nil {
		return storage.Token{}, notFound(err, "get token")
	}
	return t, nil
}

// UpdateToken applies fn to the stored token in one write transaction. The
// ID cannot change; UpdatedAt is set to now. fn must not call the Store.
func (s *Store) UpdateToken(ctx context.Context, id string, fn func(storage.Token) (storage.Token, error)) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		old, err := scanToken(tx.QueryRowContext(ctx, selectToken+` WHERE id = ?`, id))
		if err != nil {
			return notFound(err, "update token")
		}
		t, err := fn(old)
		if err != nil {
			return err
		}
		if t.ID != old.ID {
			return errors.New("sqlite: update token: the ID of a token cannot change")
		}
		t.UpdatedAt = s.now()
		_, err = tx.ExecContext(ctx, `UPDATE tokens SET type = ?, subject = ?, relying_party = ?, issued_at = ?,
			expires_at = ?, state = ?, renewable = ?, renew_after_expiry = ?, data = ?, updated_at = ? WHERE id = ?`,
			t.Type, t.Subject, t.RelyingParty, toMicros(t.IssuedAt), toMicros(t.ExpiresAt), string(t.State),
			boolInt(t.Renewable), boolInt(t.RenewAfterExpiry), nonNil(t.Data), toMicros(t.UpdatedAt), id)
		if err != nil {
			return fmt.Errorf("sqlite: update token: %w", err)
		}
		return nil
	})
}

// DeleteTokensExpiredBefore deletes tokens with ExpiresAt < before.
func (s *Store) DeleteTokensExpiredBefore(ctx context.Context, before time.Time) (int64, error) {
	// In chunks, each its own transaction: one DELETE of a day's expired
	// tokens would hold the only writer — and every token issuance queued
	// behind it — for as long as it takes.
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE rowid IN
				(SELECT rowid FROM tokens WHERE expires_at < ? LIMIT ?)`, toMicros(before), deleteChunk)
			if err != nil {
				return fmt.Errorf("sqlite: delete expired tokens: %w", err)
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < deleteChunk {
			return total, err
		}
	}
}

// deleteChunk is how many token records one purge transaction deletes.
const deleteChunk = 1000
