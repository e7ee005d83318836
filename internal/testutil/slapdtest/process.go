package slapdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// dirPrefix names the temporary directories; the creating process's PID
// follows, so a later run can remove the directories of dead runs.
const dirPrefix = "avouch-slapdtest-"

var errPortTaken = errors.New("port taken")

// start runs slapd and waits until it accepts a bind. Caller holds s.mu.
//
// slapd runs in the foreground (any -d keeps it from daemonising) as
// our child, so its exit is observed directly and it can be given a
// parent-death signal: if the test binary dies, so does the server. "-d none"
// rather than "-d 0": level 0 silences even fatal errors such as "bind(6)
// failed errno=98 (Address already in use)", which start needs to see.
// Debian's slapd runs as root without complaint; no -u/-g is needed.
func (s *Server) start(ctx context.Context) error {
	urls := fmt.Sprintf("ldap://127.0.0.1:%d/", s.port)
	if s.tlsPort != 0 {
		urls += fmt.Sprintf(" ldaps://127.0.0.1:%d/", s.tlsPort)
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	cmd := exec.Command(s.slapd, "-d", "none", "-F", filepath.Join(s.dir, "slapd.d"), "-h", urls)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: a ^C to `go test` is handled by the cleanup rather
	// than delivered to slapd too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, so pin this goroutine to its thread until slapd has
		// exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start slapd: %w", err)
	}
	s.pid, s.exited, s.paused = cmd.Process.Pid, exited, false

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			s.exited = nil
			out := s.logSince(logStart)
			if strings.Contains(out, "Address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, urls)
			}
			return fmt.Errorf("slapd exited at start (%s):\n%s", urls, out)
		default:
		}
		err := s.ping(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return fmt.Errorf("slapd not ready after 15s: %v\n%s", err, s.logSince(logStart))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping binds as the root DN.
func (s *Server) ping(ctx context.Context) error {
	conn, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(time.Second)
	return conn.Bind(s.RootDN, s.RootPW)
}

// stop terminates slapd. Caller holds s.mu.
func (s *Server) stop() error {
	if s.exited == nil {
		return nil
	}
	exited := s.exited
	s.exited = nil
	select {
	case <-exited:
		return nil // died by itself; its PID may already be reused
	default:
	}
	if s.paused {
		// A stopped process does not act on SIGTERM until continued.
		_ = syscall.Kill(s.pid, syscall.SIGCONT)
		s.paused = false
	}
	if err := syscall.Kill(s.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGTERM slapd: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	select {
	case <-exited:
		return errors.New("slapd ignored SIGTERM for 10s and was killed")
	case <-time.After(10 * time.Second):
		return fmt.Errorf("slapd (pid %d) did not exit after SIGKILL", s.pid)
	}
}

func (s *Server) logSince(offset int64) string {
	b, _ := os.ReadFile(s.logPath())
	if int64(len(b)) >= offset {
		b = b[offset:]
	}
	return string(bytes.TrimSpace(b))
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// reapStale removes the directories of earlier runs whose process is gone
// (killed before it could clean up; its slapd died with it).
func reapStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), dirPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}
