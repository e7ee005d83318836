// Package slapdtest runs a throw-away OpenLDAP server (Debian's slapd) for
// tests.
//
// New generates a cn=config directory (slapadd -n0 from a generated LDIF) and
// an mdb database under a temporary directory, loads the fixture LDIF files
// with slapadd, and runs slapd in the foreground as a child of the test
// process, listening only on 127.0.0.1 at free ports:
//
//	srv := slapdtest.New(t, slapdtest.Options{LDIF: []string{"testdata/users.ldif"}})
//	// srv.URL is ldap://127.0.0.1:PORT; the suffix is srv.Suffix.
//	srv.Stop()  // clients now see the server down
//	srv.Start() // same port, same data
//
// The server is stopped and its directory removed when t ends; it also dies
// with the test binary (parent-death signal). Missing slapd is handled by
// testutil.Missing.
package slapdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// Suffix is the naming context of the test database. Fixture LDIF files hold
// entries below it; New creates the suffix entry itself.
const Suffix = "dc=example,dc=test"

// RootDN is the database's root user, not subject to access control.
const RootDN = "cn=admin," + Suffix

// Options says what the server holds and offers.
type Options struct {
	// LDIF files loaded in order (slapadd) below Suffix before the first
	// start. They must not contain the suffix entry.
	LDIF []string
	// TLS generates a CA and a server certificate for 127.0.0.1 and
	// localhost, enables StartTLS on URL and listens on LDAPSURL as well.
	TLS bool
	// SizeLimit is the server's limit on entries per (non-paged) search;
	// 0 keeps slapd's default of 500. Paged searches are not limited, as in
	// Active Directory, so clients that page see every entry.
	SizeLimit int
}

// Server is a running (or stopped) throw-away slapd.
type Server struct {
	URL      string // ldap://127.0.0.1:PORT
	LDAPSURL string // ldaps://127.0.0.1:PORT when Options.TLS, else ""
	CAFile   string // PEM of the CA that issued the server certificate (TLS only)
	Suffix   string // = Suffix
	RootDN   string // = RootDN
	RootPW   string // random per server

	slapd   string
	dir     string
	port    int
	tlsPort int

	mu     sync.Mutex
	pid    int
	paused bool
	exited chan struct{} // closed when the running slapd has exited; nil when stopped
}

// New starts a server for t and registers its removal at t's end.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	bins, what := findTools()
	if what != "" {
		testutil.Missing(t, what)
	}
	s, err := create(bins, opt)
	if err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("slapdtest: stop: %v", err)
		}
		os.RemoveAll(s.dir)
	})
	return s
}

// create prepares the directory and makes the first start, choosing other
// ports when the chosen ones were taken meanwhile.
func create(bins tools, opt Options) (*Server, error) {
	base := os.TempDir()
	reapStale(base)
	dir, err := os.MkdirTemp(base, dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	s := &Server{Suffix: Suffix, RootDN: RootDN, RootPW: rand.Text(), slapd: bins.slapd, dir: dir}
	if err := s.initialise(bins, opt); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if err := s.choosePorts(opt.TLS); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		err = s.Start()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 4 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (s *Server) choosePorts(tls bool) error {
	var err error
	if s.port, err = freePort(); err != nil {
		return err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", s.port)
	if tls {
		if s.tlsPort, err = freePort(); err != nil {
			return err
		}
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", s.tlsPort)
	}
	return nil
}

// Start runs slapd again (same ports, same data) after Stop and waits until
// it accepts binds. Starting a running server is a no-op.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited != nil {
		return nil
	}
	return s.start(context.Background())
}

// Stop shuts slapd down (SIGTERM, then SIGKILL after 10 s) and waits for it
// to exit; clients' connections are closed. Stopping a stopped server is a
// no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stop()
}

// Pause freezes slapd (SIGSTOP): the kernel still accepts TCP connections
// but nothing answers, as with a hung or unreachable server. It returns once
// every slapd thread has stopped. Resume undoes it; Stop resumes a paused
// server first.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP, true) }

// Resume lets a paused slapd run again.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, pause bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited == nil {
		return errors.New("slapdtest: server is not running")
	}
	if err := syscall.Kill(s.pid, sig); err != nil {
		return fmt.Errorf("slapdtest: signal %v: %w", sig, err)
	}
	s.paused = pause
	// kill(2) only queues the signal; a thread still running could answer
	// one more request, so wait until the threads' state agrees.
	deadline := time.Now().Add(5 * time.Second)
	for !threadsStopped(s.pid, pause) {
		if time.Now().After(deadline) {
			return fmt.Errorf("slapdtest: slapd threads not %s after %v 5s later", map[bool]string{true: "stopped", false: "running"}[pause], sig)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// threadsStopped reports whether every thread of pid is in the stopped
// state (want true) or none is (want false), from /proc/PID/task/*/stat.
func threadsStopped(pid int, want bool) bool {
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if len(stats) == 0 {
		return true // no /proc: trust the signal
	}
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue // thread exited
		}
		// The state follows the parenthesised command name, which may
		// itself contain spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		stopped := b[i+2] == 'T'
		if stopped != want {
			return false
		}
	}
	return true
}

// Log returns what slapd wrote to stderr (all runs), for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "slapd.log") }

// tools are the OpenLDAP programs and files the server is built from.
type tools struct {
	slapd, slapadd string
	schemaDir      string // holding core.ldif, cosine.ldif, inetorgperson.ldif
	moduleDir      string // holding back_mdb.so; "" when mdb is built in
}

// findTools locates slapd; what is non-empty when something is missing.
// /usr/sbin is searched explicitly: it is not on a normal user's PATH.
func findTools() (tools, string) {
	var b tools
	for _, p := range []struct {
		dst  *string
		name string
	}{{&b.slapd, "slapd"}, {&b.slapadd, "slapadd"}} {
		if path, err := exec.LookPath(p.name); err == nil {
			*p.dst = path
		} else if _, err := os.Stat("/usr/sbin/" + p.name); err == nil {
			*p.dst = "/usr/sbin/" + p.name
		} else {
			return b, "slapd (Debian package slapd)"
		}
	}
	for _, d := range []string{"/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema"} {
		if _, err := os.Stat(filepath.Join(d, "inetorgperson.ldif")); err == nil {
			b.schemaDir = d
			break
		}
	}
	if b.schemaDir == "" {
		return b, "OpenLDAP schema LDIF files (Debian package slapd: /etc/ldap/schema)"
	}
	for _, d := range []string{"/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap"} {
		if _, err := os.Stat(filepath.Join(d, "back_mdb.so")); err == nil {
			b.moduleDir = d
			break
		}
	}
	return b, ""
}
