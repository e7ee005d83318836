package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// dirPrefix names the temporary directories; the creating process's PID
// follows, so a later run can remove the directories of dead runs.
const dirPrefix = "avouch-pgtest-"

// localServer is a throw-away PostgreSQL run by this process.
type localServer struct {
	bin    string              // directory of initdb, pg_ctl, postgres
	dir    string              // temporary directory: data/, socket, log
	cred   *syscall.Credential // run as the postgres user when we are root
	port   int
	exited chan struct{} // closed when the postmaster has exited
}

func (l *localServer) data() string { return filepath.Join(l.dir, "data") }

func (l *localServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", l.port, db)
}

// startLocal initialises and starts a server. A non-empty what means a
// prerequisite is missing (for testutil.Missing) rather than a failure.
func startLocal(ctx context.Context) (l *localServer, what string, err error) {
	bin := findBin()
	if bin == "" {
		return nil, "PostgreSQL server binaries initdb, pg_ctl and postgres (Debian package postgresql)", nil
	}
	l = &localServer{bin: bin}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "the postgres OS user (PostgreSQL refuses to run as root)", nil
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		l.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}
	base := tempBase(l.cred != nil)
	reapStale(base)
	if l.dir, err = os.MkdirTemp(base, dirPrefix+strconv.Itoa(os.Getpid())+"-"); err != nil {
		return nil, "", err
	}
	if l.cred != nil {
		if err := os.Chown(l.dir, int(l.cred.Uid), int(l.cred.Gid)); err != nil {
			os.RemoveAll(l.dir)
			return nil, "", err
		}
	}
	if out, err := l.command("initdb", "-D", l.data(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		os.RemoveAll(l.dir)
		return nil, "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A free port can be taken between choosing and binding it: retry.
	for attempt := 0; ; attempt++ {
		err = l.start(ctx)
		if err == nil {
			return l, "", nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 4 {
			os.RemoveAll(l.dir)
			return nil, "", err
		}
	}
}

var errPortTaken = errors.New("port taken")

// command prepares a PostgreSQL program to run as the right user.
func (l *localServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(l.bin, name), args...)
	cmd.Dir = l.dir // the postgres user may not be able to enter our cwd
	cmd.Env = []string{"LC_ALL=C", "PATH=" + l.bin + ":/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: l.cred}
	return cmd
}

// start runs the postmaster on a free port and waits until it accepts
// connections. The postmaster is our child (not daemonised by pg_ctl start)
// so that it can be given a parent-death signal: if the test binary dies,
// so does the server.
func (l *localServer) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	return l.startOn(ctx, port)
}

// startOn starts the postmaster on port (a restart keeps the port so that
// clients can reconnect to the same URL).
func (l *localServer) startOn(ctx context.Context, port int) error {
	l.port = port
	logPath := filepath.Join(l.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := l.command("postgres", "-D", l.data(), "-k", l.dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "logging_collector=off")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: a ^C to `go test` is handled by our cleanup, not
	// delivered to the server as well.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL

	started := make(chan error, 1)
	l.exited = make(chan struct{})
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, so pin this goroutine to its thread until the
		// postmaster has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(l.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-l.exited:
			log, _ := os.ReadFile(logPath)
			if bytes.Contains(log, []byte("could not bind")) || bytes.Contains(log, []byte("already in use")) {
				return errPortTaken
			}
			return fmt.Errorf("postgres exited at start:\n%s", log)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, l.url("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			l.stop()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres not ready after 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down at once (nothing in it needs to survive) and
// removes its directory.
func (l *localServer) stop() {
	if l.exited != nil {
		_ = l.command("pg_ctl", "stop", "-D", l.data(), "-m", "immediate", "-w", "-t", "10").Run()
		select {
		case <-l.exited:
		case <-time.After(15 * time.Second):
		}
	}
	os.RemoveAll(l.dir)
}

// findBin returns the directory of the PostgreSQL server programs: the one
// on PATH, else the newest Debian installation, else "".
func findBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first ("9.6" < "15" numerically).
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func versionOf(binDir string) int {
	v := filepath.Base(filepath.Dir(binDir))
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	return major
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

// tempBase returns where to create the server's directory. When the server
// runs as another user, every directory above it must be searchable by
// others: $TMPDIR may be private (e.g. under /root), /tmp never is.
func tempBase(otherUser bool) string {
	base := os.TempDir()
	if !otherUser || searchable(base) {
		return base
	}
	return "/tmp"
}

func searchable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// reapStale removes the directories of earlier runs whose process is gone
// (killed before it could clean up; its server died with it).
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
