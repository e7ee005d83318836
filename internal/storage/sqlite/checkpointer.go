package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints in another process.
//
// A checkpoint ends in fsync(2), and Go runs every system call on the
// processor (P) of the goroutine that makes it: until the runtime's monitor
// notices — after up to 10 ms when it has been idle — no other goroutine
// runs on that P. With one core (GOMAXPROCS=1) each fsync of the periodic
// checkpoint held up every request for its duration; it was the p99 at
// half load (docs/PERFORMANCE.md). A child process has its own thread for
// the fsync and the kernel keeps scheduling ours. The parent only writes a
// line to a pipe and waits for the answer in the network poller, on no P.
//
// The protocol is one line each way per checkpoint: "c" asks for a
// PASSIVE checkpoint, "r" for a RESTART one (see Store.checkpoints); the
// answer is "busy frames copied" (the three numbers of PRAGMA
// wal_checkpoint) or "error …".

// restartWait bounds how long a RESTART checkpoint waits for the write
// lock, and then for readers, before it gives up until the next tick.
const restartWait = 20 * time.Millisecond

// ServeCheckpoints is the child's side: it opens the database at path (the
// parent has created and migrated it) and answers each line read from in
// with one checkpoint, until in ends.
func ServeCheckpoints(path string, in io.Reader, out io.Writer) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	db, err := openPool(abs, false, "wal_autocheckpoint(0)")
	if err != nil {
		return err
	}
	defer db.Close()
	// One connection for good, with a short busy timeout, for RESTART: it
	// holds the write lock while it waits for readers to leave the WAL,
	// and every commit of the server waits with it. Giving up after
	// restartWait leaves a PASSIVE checkpoint's work done, and the next
	// tick tries again. (The pool's connections start with busyTimeout,
	// 5 s, and a second busy_timeout in the open parameters is ignored.)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", restartWait.Milliseconds())); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var q string
		switch sc.Text() {
		case "c":
			q = `PRAGMA wal_checkpoint(PASSIVE)`
		case "r":
			q = `PRAGMA wal_checkpoint(RESTART)`
		default:
			return fmt.Errorf("sqlite checkpointer: unknown request %q", sc.Text())
		}
		var busy, frames, copied int64
		if err := conn.QueryRowContext(ctx, q).Scan(&busy, &frames, &copied); err != nil {
			_, err = fmt.Fprintf(out, "error %v\n", err)
			if err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(out, "%d %d %d\n", busy, frames, copied); err != nil {
			return err
		}
	}
	return sc.Err()
}

// processCheckpointer is the parent's handle on a child running
// ServeCheckpoints.
type processCheckpointer struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	n     atomic.Int64 // checkpoints answered
	pages atomic.Int64 // WAL frames they copied, summed
}

// CheckpointIn starts cmd, which must run ServeCheckpoints on this store's
// file with its standard input and output, and has the periodic
// checkpoints run there from its first answer on. The first round trip
// happens in the background (start-up does not wait for the child);
// until then, and for good if the child cannot serve or later fails, the
// checkpoints run in this process as before, and failed (if not nil) hears
// why. Close stops the child (its input ends).
func (s *Store) CheckpointIn(cmd *exec.Cmd, failed func(error)) error {
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("sqlite: start checkpointer: %w", err)
	}
	p := &processCheckpointer{cmd: cmd, in: in, out: bufio.NewReader(out)}
	s.ext.starting.Add(1)
	go func() {
		defer s.ext.starting.Done()
		// One round trip before handing over: a child that cannot open
		// the file fails here, not at a tick.
		if _, _, _, err := p.checkpoint(false); err != nil {
			p.stop()
			if failed != nil {
				failed(fmt.Errorf("sqlite: checkpointer: %w", err))
			}
			return
		}
		s.ext.mu.Lock()
		defer s.ext.mu.Unlock()
		if s.ext.closed {
			p.stop()
			return
		}
		if old := s.ext.p.Swap(p); old != nil {
			old.stop()
		}
	}()
	return nil
}

// ExternalCheckpoints reports how many checkpoints another process has run
// for this store (see CheckpointIn), and the WAL frames they reported
// copied (a frame may count in several checkpoints until the WAL starts
// over). Zero when checkpoints run in this process.
func (s *Store) ExternalCheckpoints() (checkpoints, frames int64) {
	if p := s.ext.Load(); p != nil {
		return p.n.Load(), p.pages.Load()
	}
	return 0, 0
}

// checkpoint has the child run a PASSIVE checkpoint, or a RESTART one.
func (p *processCheckpointer) checkpoint(restart bool) (busy, frames, copied int64, err error) {
	req := "c\n"
	if restart {
		req = "r\n"
	}
	if _, err := io.WriteString(p.in, req); err != nil {
		return 0, 0, 0, err
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, 0, 0, err
	}
	if _, err := fmt.Sscanf(line, "%d %d %d\n", &busy, &frames, &copied); err != nil {
		return 0, 0, 0, fmt.Errorf("checkpointer said %q", line)
	}
	p.n.Add(1)
	p.pages.Add(copied)
	return busy, frames, copied, nil
}

// stop ends the child's input and waits for it to exit. It is called by
// whoever read from the child last, after the last read: os/exec closes
// the output pipe in Wait. A child that died is noticed by the read (end
// of file), not by waiting on it.
func (p *processCheckpointer) stop() {
	_ = p.in.Close()
	_ = p.cmd.Wait()
}

// externalCheckpoints holds the child, if any (nil: checkpoints run here).
type externalCheckpoints struct {
	p        atomic.Pointer[processCheckpointer]
	starting sync.WaitGroup // children still in their first round trip
	mu       sync.Mutex     // closed, and handing over p
	closed   bool
}

func (e *externalCheckpoints) Load() *processCheckpointer { return e.p.Load() }

// drop stops using the child (after a failure).
func (e *externalCheckpoints) drop() {
	if p := e.p.Swap(nil); p != nil {
		p.stop()
	}
}

// close stops the child, and any still starting, for good.
func (e *externalCheckpoints) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.starting.Wait()
	e.drop()
}
