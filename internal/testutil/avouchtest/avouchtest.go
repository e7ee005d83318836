// Package avouchtest builds the avouch binary once per test package and
// starts `avouch serve` processes on free loopback ports, for tests that
// need the real program (restarts, SIGKILL, several nodes).
package avouchtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles ./cmd/avouch (found from the module root) into dir.
func Build(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "avouch")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/avouch")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build avouch: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Process is a running `avouch serve`.
type Process struct {
	// Base is the server's base URL (http://127.0.0.1:PORT).
	Base string
	Cmd  *exec.Cmd

	mu      sync.Mutex
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	done    chan struct{}
	waitErr error // the exit status, once done is closed
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// Start runs `avouch serve --data-dir dataDir --listen 127.0.0.1:0
// --plain-http` plus extra args, with env added to the environment (and
// AVOUCH_ADMIN_PASSWORD=admin-pw unless env sets it), and waits for its
// "listening on" line. The process is killed when the test ends.
func Start(t testing.TB, binary, dataDir string, env []string, extra ...string) *Process {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--plain-http"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "AVOUCH_ADMIN_PASSWORD=admin-pw"), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{p: p, w: &p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	found := make(chan string, 1)
	read := make(chan struct{})
	// Wait only after the output has been read to EOF: os/exec's Wait closes
	// the pipe, and calling it early can lose the last lines.
	go func() { <-read; p.waitErr = cmd.Wait(); close(p.done) }()
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stdout.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case p.Base = <-found:
		return p
	case <-p.done:
		t.Fatalf("avouch serve exited: %s", p.Stderr())
	case <-time.After(20 * time.Second):
		t.Fatalf("avouch serve did not start: %s", p.Stderr())
	}
	return nil
}

// STS is the WS-Trust endpoint URL.
func (p *Process) STS() string { return p.Base + "/services/sts" }

// Kill sends SIGKILL and waits for the process to go.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0); ok is false when it is still running.
func (p *Process) Wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.waitErr, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Stdout returns what the process printed on standard output so far.
func (p *Process) Stdout() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stdout.String() }

// Stderr returns what the process printed on standard error so far.
func (p *Process) Stderr() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

type lockedWriter struct {
	p *Process
	w *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.w.Write(b)
}

// CLI runs an avouch command with env added and fails the test on error.
func CLI(t testing.TB, binary string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("avouch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
