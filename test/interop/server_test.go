package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is one running `avouch serve` process.
type server struct {
	dataDir  string
	URL      string // http://127.0.0.1:PORT
	STS      string // URL + "/services/sts"
	CertFile string // absolute path of the signing certificate (PEM)

	cmd    *exec.Cmd
	exited chan struct{}
	logMu  sync.Mutex
	log    bytes.Buffer
}

// adminPassword is the first-start admin password given through the
// environment (AVOUCH_ADMIN_PASSWORD).
const adminPassword = "Interop-Admin-Pw-1"

// startServer starts avouch on a free port with a fresh data dir under dir and
// waits for its "listening on" line.
func startServer(dir string) (*server, error) {
	if buildErr != nil {
		return nil, buildErr
	}
	s := &server{dataDir: filepath.Join(dir, "data"), exited: make(chan struct{})}
	var lastErr error
	// The port is chosen by binding :0 and closing it; another process can
	// grab it in between, so try a few times.
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		if lastErr = s.start(addr); lastErr == nil {
			break
		}
		s.exited = make(chan struct{})
	}
	if lastErr != nil {
		return nil, lastErr
	}
	cert, err := s.avouch(context.Background(), "keys", "cert", "--data-dir", s.dataDir)
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("avouch keys cert: %w", err)
	}
	if !bytes.Contains(cert, []byte("-----BEGIN CERTIFICATE-----")) {
		s.stop()
		return nil, fmt.Errorf("avouch keys cert printed no PEM certificate:\n%s", cert)
	}
	s.CertFile = filepath.Join(dir, "sts.crt")
	if err := os.WriteFile(s.CertFile, cert, 0o644); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *server) start(addr string) error {
	s.log.Reset()
	s.cmd = exec.Command(avouchBin, "serve", "--data-dir", s.dataDir, "--listen", addr, "--plain-http")
	s.cmd.Env = append(os.Environ(), "AVOUCH_ADMIN_PASSWORD="+adminPassword)
	pr, pw := io.Pipe()
	s.cmd.Stdout = pw
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start avouch serve: %w", err)
	}
	ready := make(chan struct{})
	want := "listening on http://" + addr
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			s.logMu.Lock()
			s.log.WriteString(line + "\n")
			s.logMu.Unlock()
			if !seen && strings.Contains(line, want) {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = s.cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	select {
	case <-ready:
		s.URL = "http://" + addr
		s.STS = s.URL + "/services/sts"
		return nil
	case <-s.exited:
		return fmt.Errorf("avouch serve exited before listening (%v):\n%s", s.cmd.ProcessState, s.logs())
	case <-time.After(30 * time.Second):
		s.stop()
		return fmt.Errorf("avouch serve printed no %q within 30s:\n%s", want, s.logs())
	}
}

func (s *server) logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// stop sends SIGTERM and waits; a server that does not stop cleanly (exit
// status 0) within 10 s is killed and reported: SIGTERM is how operators and
// service managers stop it.
func (s *server) stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if !s.cmd.ProcessState.Success() {
			return fmt.Errorf("avouch serve exited with %v after SIGTERM:\n%s", s.cmd.ProcessState, tail(s.logs(), 20))
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("avouch serve did not stop within 10s of SIGTERM")
	}
}

// avouch runs an avouch CLI command and returns its stdout.
func (s *server) avouch(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, avouchBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("avouch %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr.String(), out)
	}
	return out, nil
}

// user is a test account.
type user struct {
	Name, Password string
	Roles          []string
	Claims         map[string]string // claim URI → value
	AllowDigest    bool
}

func (s *server) addUser(u user) error {
	args := []string{"user", "add", "--data-dir", s.dataDir, "--password", u.Password}
	for _, r := range u.Roles {
		args = append(args, "--role", r)
	}
	for uri, v := range u.Claims {
		args = append(args, "--claim", uri+"="+v)
	}
	if u.AllowDigest {
		args = append(args, "--allow-digest")
	}
	_, err := s.avouch(context.Background(), append(args, u.Name)...)
	return err
}

// The accounts of the shared server.
const (
	claimEmail     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimGivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
)

var (
	// textUser signs in with PasswordText only (no --allow-digest).
	textUser = user{Name: "tess", Password: "Tess-pw-1<&>", Roles: []string{"admin"},
		Claims: map[string]string{claimEmail: "tess@example.test", claimGivenName: "Tess"}}
	// digestUser may also use PasswordDigest.
	digestUser = user{Name: "dave", Password: "Dave-pw-2", Roles: []string{"admin"}, AllowDigest: true,
		Claims: map[string]string{claimEmail: "dave@example.test"}}
	// noRoleUser authenticates but the default STS policy (role admin) must
	// not give it tokens.
	noRoleUser = user{Name: "nora", Password: "Nora-pw-3", Roles: []string{"staff"}}
	// The users of the captured fixtures (zeep as alice, msal as
	// alice@example.test), password Secret#123.
	fixtureUsers = []user{
		{Name: "alice", Password: "Secret#123", Roles: []string{"admin"}, AllowDigest: true},
		{Name: "alice@example.test", Password: "Secret#123", Roles: []string{"admin"}, AllowDigest: true},
	}
)

var shared struct {
	once sync.Once
	srv  *server
	dir  string
	err  error
}

// sharedServer returns the package's shared server, starting it (and adding
// the test users) on first use. Sharing is safe: every test uses its own
// nonces and message IDs, and no test changes server configuration.
func sharedServer(t *testing.T) *server {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "avouch-interop-srv-")
		if shared.err != nil {
			return
		}
		shared.srv, shared.err = startServer(shared.dir)
		if shared.err != nil {
			return
		}
		for _, u := range append([]user{textUser, digestUser, noRoleUser}, fixtureUsers...) {
			if shared.err = shared.srv.addUser(u); shared.err != nil {
				return
			}
		}
		// Users added by the CLI reach a running server within a second;
		// wait for the last one instead of sleeping a fixed time.
		shared.err = waitForUser(shared.srv, fixtureUsers[len(fixtureUsers)-1])
	})
	if shared.err != nil {
		if shared.srv != nil {
			t.Fatalf("shared avouch server: %v\nserver log:\n%s", shared.err, shared.srv.logs())
		}
		t.Fatalf("shared avouch server: %v", shared.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared server log so far:\n%s", tail(shared.srv.logs(), 60))
		}
	})
	return shared.srv
}

func waitForUser(s *server, u user) error {
	deadline := time.Now().Add(5 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req := rst{User: u.Name, Password: u.Password}
		status, body, err := post(s.STS, req.envelope(), req.contentType())
		if err == nil && status == 200 {
			return nil
		}
		last = fmt.Sprintf("HTTP %d %s %v", status, body, err)
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("user %q added with `avouch user add` cannot get a token from the running server within 5s; last answer: %s", u.Name, last)
}

func stopShared() error {
	if shared.srv == nil {
		return nil
	}
	err := shared.srv.stop()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return err
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
