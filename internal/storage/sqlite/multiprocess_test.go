package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

// The tests below re-run this test binary as a helper process (the role of
// the `avouch user add` CLI next to the server); the environment selects it.
const (
	helperEnv = "AVOUCH_SQLITE_HELPER" // "writer", "crash" or "checkpointer"
	dbEnv     = "AVOUCH_SQLITE_HELPER_DB"
	nameEnv   = "AVOUCH_SQLITE_HELPER_NAME"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "checkpointer" {
		if err := sqlite.ServeCheckpoints(os.Getenv(dbEnv), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "checkpointer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helper(mode, os.Getenv(dbEnv), os.Getenv(nameEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writesPerWriter is how many rounds each concurrent writer performs.
const writesPerWriter = 100

// helper opens the store, says "ready", waits for a line on stdin, then
// works: "writer" runs the write rounds and prints the shared nonces it won;
// "crash" creates a token, says "created" and waits to be killed.
func helper(mode, path, name string) error {
	s, err := sqlite.Open(path)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	ctx := context.Background()
	switch mode {
	case "writer":
		won, err := writeRounds(ctx, s, name)
		if err != nil {
			return err
		}
		for _, k := range won {
			fmt.Println("won", k)
		}
		return s.Close()
	case "crash":
		tok := storage.Token{ID: "survivor", Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.CreateToken(ctx, tok); err != nil {
			return err
		}
		fmt.Println("created")
		select {} // until SIGKILL; no Close, no checkpoint
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

// writeRounds does a mix of writes as writer name and returns the shared
// nonces it claimed. Any error, SQLITE_BUSY included, fails the writer.
func writeRounds(ctx context.Context, s storage.Storage, name string) ([]string, error) {
	var won []string
	for i := range writesPerWriter {
		if err := s.CreateUser(ctx, storage.User{Name: fmt.Sprintf("%s-%d", name, i), PasswordHash: "h"}); err != nil {
			return nil, err
		}
		key := fmt.Sprintf("shared-%d", i)
		switch err := s.ClaimNonce(ctx, key, time.Now(), time.Now().Add(time.Hour)); {
		case err == nil:
			won = append(won, key)
		case !errors.Is(err, storage.ErrAlreadyExists):
			return nil, err
		}
		if err := s.AppendAudit(ctx, storage.AuditEvent{Actor: name, Action: "test.write"}); err != nil {
			return nil, err
		}
		if err := s.UpdateUser(ctx, fmt.Sprintf("%s-%d", name, i), func(u storage.User) (storage.User, error) {
			u.Roles = []string{"written"}
			return u, nil
		}); err != nil {
			return nil, err
		}
	}
	return won, nil
}

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startHelper(t *testing.T, mode, path, name string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, dbEnv+"="+path, nameEnv+"="+name)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	c.expect(t, "ready")
	return c
}

func (c *child) expect(t *testing.T, line string) {
	t.Helper()
	if !c.out.Scan() || c.out.Text() != line {
		t.Fatalf("helper said %q (%v), want %q", c.out.Text(), c.out.Err(), line)
	}
}

// TestProcessesAndStoresWriteOneFileConcurrently: two helper processes and
// two Store instances in this process open one new file at once (racing the
// migrations) and write to it concurrently. No write may fail — in
// particular not with SQLITE_BUSY — and each shared nonce is won once.
func TestProcessesAndStoresWriteOneFileConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	var (
		children []*child
		stores   []*sqlite.Store
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for i := range 2 {
		children = append(children, startHelper(t, "writer", path, fmt.Sprintf("proc%d", i)))
	}
	for range 2 {
		s := open(t, path)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	wins := map[string]int{}
	start := time.Now()
	for _, c := range children {
		fmt.Fprintln(c.stdin, "go")
	}
	for i, s := range stores {
		wg.Go(func() {
			won, err := writeRounds(t.Context(), s, fmt.Sprintf("store%d", i))
			if err != nil {
				t.Errorf("store%d: %v", i, err)
			}
			mu.Lock()
			for _, k := range won {
				wins[k]++
			}
			mu.Unlock()
		})
	}
	for i, c := range children {
		for c.out.Scan() {
			if k, ok := strings.CutPrefix(c.out.Text(), "won "); ok {
				mu.Lock()
				wins[k]++
				mu.Unlock()
			}
		}
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("helper proc%d: %v", i, err)
		}
	}
	wg.Wait()
	t.Logf("4 writers × %d rounds in %v", writesPerWriter, time.Since(start))

	users, err := stores[0].ListUsers(t.Context())
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if want := 4 * writesPerWriter; len(users) != want {
		t.Errorf("%d users, want %d", len(users), want)
	}
	for i := range writesPerWriter {
		if k := fmt.Sprintf("shared-%d", i); wins[k] != 1 {
			t.Errorf("nonce %s won %d times, want exactly once", k, wins[k])
		}
	}
	// Each store sees the other writers' data.
	if _, err := stores[1].GetUser(t.Context(), "proc0-0"); err != nil {
		t.Errorf("GetUser(proc0-0) via store1: %v", err)
	}
}

// TestACommittedTokenSurvivesSIGKILL backs the durability promise of the
// package comment: with WAL and synchronous=NORMAL a write that returned is
// in the file even if the process dies before any checkpoint or Close.
func TestACommittedTokenSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	c := startHelper(t, "crash", path, "crash")
	fmt.Fprintln(c.stdin, "go")
	c.expect(t, "created")
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()

	s := open(t, path)
	defer s.Close()
	tok, err := s.GetToken(t.Context(), "survivor")
	if err != nil {
		t.Fatalf("GetToken after SIGKILL: %v", err)
	}
	if tok.Subject != "alice" {
		t.Errorf("Subject = %q, want alice", tok.Subject)
	}
}

// TestCheckpointsRunInAnotherProcess: with CheckpointIn, the periodic
// checkpoints run in a child process (their fsyncs then hold up no
// goroutine of ours), they really copy the WAL, the store falls back to
// checkpointing itself when the child dies, and Close ends the child.
func TestCheckpointsRunInAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=checkpointer", dbEnv+"="+path)
		cmd.Stderr = os.Stderr
		return cmd
	}
	cmd := child()
	if err := s.CheckpointIn(cmd, func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if err := s.CreateToken(ctx, storage.Token{ID: fmt.Sprintf("t%d", i), Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the child to copy WAL frames", func() bool {
		n, frames := s.ExternalCheckpoints()
		return n >= 3 && frames > 0
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the store to take the checkpoints back", func() bool {
		n, _ := s.ExternalCheckpoints()
		return n == 0
	})
	if err := s.CreateToken(ctx, storage.Token{ID: "after", Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// A second child, ended by Close.
	cmd = child()
	if err := s.CheckpointIn(cmd, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if cmd.ProcessState == nil {
		t.Fatal("Close returned with the checkpointer process still running")
	}

	// A child that cannot serve is not used, and says why.
	bad := exec.Command(os.Args[0], "-test.run=^$")
	bad.Env = append(os.Environ(), helperEnv+"=checkpointer", dbEnv+"="+filepath.Join(t.TempDir(), "missing", "x.db"))
	s2, err := sqlite.Open(filepath.Join(t.TempDir(), "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	why := make(chan error, 1)
	if err := s2.CheckpointIn(bad, func(err error) { why <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-why:
		if n, _ := s2.ExternalCheckpoints(); n != 0 || bad.ProcessState == nil {
			t.Fatalf("after %v: %d external checkpoints, child exited: %v", err, n, bad.ProcessState != nil)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a checkpointer that cannot open its database was not reported")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTheWALStartsOverUnderSteadyWrites: with checkpoints in a child
// process and writes that never pause, the WAL file stays bounded: once it
// passes the restart length the checkpointer starts it over. (A PASSIVE
// checkpoint alone never finds the WAL fully copied under steady writes,
// and the file grew by every page written.) The same without a child.
func TestTheWALStartsOverUnderSteadyWrites(t *testing.T) {
	defer sqlite.SetRestartFrames(64)() // 256 KiB
	for _, withChild := range []bool{true, false} {
		t.Run(fmt.Sprintf("child=%v", withChild), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wal.db")
			s, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if withChild {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), helperEnv+"=checkpointer", dbEnv+"="+path)
				cmd.Stderr = os.Stderr
				if err := s.CheckpointIn(cmd, func(err error) { t.Error(err) }); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the child's first checkpoint", func() bool { n, _ := s.ExternalCheckpoints(); return n > 0 })
			}
			// About 1,000 tokens a second, as a busy server writes them.
			data := make([]byte, 2000)
			var largest, tokens int64
			// Long enough that a WAL which never starts over would hold
			// over twice what one that does reaches: each commit rewrites
			// three pages or so (~12 KiB), so between two checkpoints
			// (250 ms) and a RESTART that has to wait, the WAL reaches
			// ~4.5 MB, where 3 s of never starting over would be only
			// ~5 MB by the bound below.
			deadline := time.Now().Add(6 * time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				if err := s.CreateToken(t.Context(), storage.Token{ID: fmt.Sprintf("w%d", i), Subject: "alice",
					ExpiresAt: time.Now().Add(time.Hour), Data: data}); err != nil {
					t.Fatal(err)
				}
				tokens++
				if i%50 == 0 {
					if fi, err := os.Stat(path + "-wal"); err == nil {
						largest = max(largest, fi.Size())
					}
				}
				time.Sleep(time.Millisecond)
			}
			// Every commit adds at least one 4 KiB frame: a WAL that never
			// starts over holds at least tokens × 4 KiB. Starting over, it
			// holds what is written between two checkpoints (250 ms).
			if 2*largest > tokens*4096 {
				t.Fatalf("the WAL reached %d bytes after %d tokens: it does not start over", largest, tokens)
			}
			t.Logf("the WAL reached %d bytes after %d tokens", largest, tokens)
		})
	}
}

// TestAReaderDoesNotStallCommitsThroughTheRestart: a RESTART checkpoint
// holds the write lock while it waits for readers to leave the WAL. With a
// reader that stays (another process's long query), commits must still go
// on: the child gives up after a few milliseconds and tries again later,
// instead of waiting out the busy timeout (5 s) with every commit behind it.
func TestAReaderDoesNotStallCommitsThroughTheRestart(t *testing.T) {
	defer sqlite.SetRestartFrames(64)()
	path := filepath.Join(t.TempDir(), "reader.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=checkpointer", dbEnv+"="+path)
	cmd.Stderr = os.Stderr
	if err := s.CheckpointIn(cmd, func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child's first checkpoint", func() bool { n, _ := s.ExternalCheckpoints(); return n > 0 })
	data := make([]byte, 2000)
	for i := range 200 { // a WAL past the restart length
		if err := s.CreateToken(t.Context(), storage.Token{ID: fmt.Sprintf("a%d", i), Subject: "alice",
			ExpiresAt: time.Now().Add(time.Hour), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	reader, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM tokens`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("reader: %d tokens, %v", n, err)
	}
	var slowest time.Duration
	for deadline, i := time.Now().Add(2*time.Second), 0; time.Now().Before(deadline); i++ {
		start := time.Now()
		if err := s.CreateToken(t.Context(), storage.Token{ID: fmt.Sprintf("b%d", i), Subject: "alice",
			ExpiresAt: time.Now().Add(time.Hour), Data: data}); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
		time.Sleep(time.Millisecond)
	}
	if slowest > time.Second {
		t.Fatalf("a commit waited %v behind the RESTART checkpoint and the reader", slowest)
	}
	t.Logf("slowest commit with a reader in the WAL: %v", slowest)
}
