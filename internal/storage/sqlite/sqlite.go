// Package sqlite is the single-node storage backend: one SQLite file, opened
// by the server and, at the same time, by CLI commands such as `avouch user
// add`.
//
// Concurrency design. SQLite allows many readers but one writer per file.
// A Store therefore keeps two connection pools:
//
//   - w: exactly one connection, used for every write. Writers inside this
//     process queue on the pool instead of fighting over the file lock, so
//     they never see SQLITE_BUSY. Every write runs in BEGIN IMMEDIATE
//     (_txlock=immediate), which takes the file's write lock before the first
//     read; a deferred transaction that reads and then writes could otherwise
//     fail with SQLITE_BUSY_SNAPSHOT without the busy handler ever retrying.
//   - r: several query-only connections. In WAL mode they read a consistent
//     snapshot while a writer commits.
//   - c: one connection that only runs background WAL checkpoints, so they
//     never hold up a write (see checkpoints).
//
// Writers in other processes (the CLI next to the server) wait for the lock
// for up to busyTimeout instead of failing at once.
//
// Durability. The journal is WAL with synchronous=NORMAL: a commit appends to
// the WAL file with write(2) but does not fsync it (the WAL is fsynced at
// checkpoints). The data is in the kernel's page cache when the commit
// returns, so a token that was returned survives a crash of the process
// (panic, OOM kill, SIGKILL) — the kernel still writes the file. Only an OS
// crash or power loss can lose the last transactions; it never corrupts the
// database. synchronous=FULL would fsync every commit and cost far more than
// the guarantee avouch promises.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/avouch/avouch/internal/storage"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for another process's lock.
// It bounds the stall a long CLI transaction can cause the server.
const busyTimeout = 5 * time.Second

// Store is a storage.Storage on one SQLite file. It is safe for concurrent use.
type Store struct {
	w *sql.DB // the single writer connection
	r *sql.DB // query-only readers
	c *sql.DB // checkpoints (see checkpoints)

	stopCheckpoints, checkpointsDone chan struct{}
	closeOnce                        sync.Once
	now                              func() time.Time

	// Statements of the token-issue hot path, prepared once: modernc's
	// driver otherwise parses the SQL on every call.
	getUser     *sql.Stmt
	insertToken *sql.Stmt
	auditStmts  map[int]*sql.Stmt // by rows: see auditChunkFor
	// Multi-row token INSERTs by rows, prepared on first use (insertMany).
	tokenStmtsMu sync.Mutex
	tokenStmts   map[int]*sql.Stmt

	tokenGroup tokenGroup // CreateToken's group commit

	ext externalCheckpoints // see CheckpointIn
}

var _ storage.Storage = (*Store)(nil)

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. Several processes may open the same file at once.
func Open(path string) (*Store, error) {
	return open(path, migrations)
}

// open is Open with the schema brought up to the last of steps only.
func open(path string, steps []migration) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: database path: %w", err)
	}
	// The file holds password hashes and sealed keys: create it private.
	// SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create database: %w", err)
	}

	// No automatic checkpoints: one would land on whichever commit crossed
	// the threshold, copying pages and fsyncing inside that request.
	// checkpoints() does it between requests instead.
	w, err := openPool(abs, false, "wal_autocheckpoint(0)")
	if err != nil {
		return nil, err
	}
	// One writer connection: see the package comment. Keep it open forever so
	// its per-connection pragmas are set once.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{w: w, now: time.Now}
	// Migrate before opening the readers: the first writer connection has
	// switched the file to WAL by then, which readers rely on.
	if err := s.migrate(context.Background(), steps); err != nil {
		w.Close()
		return nil, err
	}

	r, err := openPool(abs, true)
	if err != nil {
		w.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r = r
	if err := s.prepare(); err != nil {
		s.Close()
		return nil, err
	}
	// A connection for the bulk of checkpointing (see checkpoints).
	c, err := openPool(abs, false, "wal_autocheckpoint(0)")
	if err != nil {
		s.Close()
		return nil, err
	}
	c.SetMaxOpenConns(1)
	s.c = c
	s.stopCheckpoints = make(chan struct{})
	s.checkpointsDone = make(chan struct{})
	go s.checkpoints()
	return s, nil
}

// checkpointInterval is how often the WAL is copied back into the database.
// restartFrames is how long the WAL may grow (in 4 KiB frames) before it
// is made to start over.
const checkpointInterval = 250 * time.Millisecond

var restartFrames int64 = 4096 // a variable for tests

// checkpoints copies the WAL back into the database until Close, off the
// request path.
//
// It runs on a connection of its own (or, after CheckpointIn, in a child
// process: see checkpointer.go for why): a PASSIVE checkpoint never blocks
// the writer or readers, and its page copies and fsyncs (synchronous=NORMAL
// syncs at checkpoints) hold up no token.
//
// A PASSIVE checkpoint alone does not keep the WAL bounded. SQLite starts
// the WAL over only when a write transaction begins while every frame is
// already in the database; under steady writes new frames arrive while a
// checkpoint copies, so that moment never comes and the WAL grows by every
// page written (a 10-minute soak at 800 tokens/s left a 700 MB WAL; the
// answer "all frames copied" only counts the frames there were when the
// checkpoint began). So once the WAL passes restartFrames, the next
// checkpoint in the child is a RESTART one: it takes the write lock, copies
// the frames written since the last checkpoint (few), waits for readers to
// leave the WAL, and starts it over itself. Commits wait for it (SQLite's
// busy handler): a few milliseconds each time the WAL passes 16 MB, and at
// most restartWait more when a reader is in the way (then it gives up
// until the next tick). Without a child, a PASSIVE checkpoint runs on the
// writer connection between two commits instead: nothing can commit
// during it, so the writer's next commit finds every frame copied and
// starts the WAL over, waiting for nobody.
func (s *Store) checkpoints() {
	defer close(s.checkpointsDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-t.C:
			var frames int64
			var err error
			if p := s.ext.Load(); p != nil {
				if _, frames, _, err = p.checkpoint(false); err == nil && frames >= restartFrames {
					_, _, _, err = p.checkpoint(true)
				}
				if err != nil {
					s.ext.drop() // the child failed: go on here
				}
			}
			if s.ext.Load() == nil {
				var busy, copied int64
				err = s.c.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
				if err == nil && frames >= restartFrames {
					_, _ = s.w.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
				}
			}
		}
	}
}

func (s *Store) prepare() error {
	var err error
	if s.getUser, err = s.r.Prepare(selectUser + ` WHERE name = ?`); err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	if s.insertToken, err = s.w.Prepare(insertTokenSQL); err != nil {
		return fmt.Errorf("sqlite: prepare: %w", err)
	}
	// The audit INSERTs of every chunk size (see auditChunkFor), prepared
	// here because the writer pool's one connection is taken inside a
	// transaction.
	s.auditStmts = map[int]*sql.Stmt{}
	for n := auditChunk; n > 0; n = auditChunkFor(n - 1) {
		if s.auditStmts[n], err = s.w.Prepare(insertAuditSQL(n)); err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		if n == 1 {
			break
		}
	}
	return nil
}

// openPool opens a pool on the file and checks that a connection works.
func openPool(abs string, readOnly bool, pragmas ...string) (*sql.DB, error) {
	q := url.Values{}
	// busy_timeout first (the driver applies it before other pragmas), so
	// switching to WAL waits for another process instead of failing.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if readOnly {
		// Guards against a write slipping onto a reader and racing the
		// single-writer discipline.
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	// A file: URI with an escaped path, so that a '?' or '#' in the path is
	// not taken for the start of the parameters.
	u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*busyTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	return db, nil
}

// Close releases both pools. Writes that returned are already in the file.
func (s *Store) Close() error {
	stmts := []*sql.Stmt{s.getUser, s.insertToken}
	for _, st := range s.auditStmts {
		stmts = append(stmts, st)
	}
	s.tokenStmtsMu.Lock()
	for _, st := range s.tokenStmts {
		stmts = append(stmts, st)
	}
	s.tokenStmts = nil
	s.tokenStmtsMu.Unlock()
	for _, st := range stmts {
		if st != nil {
			_ = st.Close()
		}
	}
	if s.stopCheckpoints != nil {
		s.closeOnce.Do(func() { close(s.stopCheckpoints) })
		<-s.checkpointsDone
	}
	s.ext.close()
	var errR, errC error
	if s.r != nil {
		errR = s.r.Close()
	}
	if s.c != nil {
		errC = s.c.Close()
	}
	// The writer closes last: as the last connection it checkpoints the
	// WAL into the database file.
	return errors.Join(errR, errC, s.w.Close())
}

// write runs fn in an IMMEDIATE transaction on the writer connection and
// commits it when fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one that matters
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// isUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE violation.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// notFound maps sql.ErrNoRows to storage.ErrNotFound.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// mustAffect returns storage.ErrNotFound when a statement changed no row.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, storage.ErrNotFound)
	}
	return nil
}
