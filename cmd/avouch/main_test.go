package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/testutil/avouchtest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "avouch-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "avouch")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startServe runs `avouch serve` on a free loopback port and waits for its
// "listening on" line.
func startServe(t *testing.T, dataDir string) *avouchtest.Process {
	t.Helper()
	return avouchtest.Start(t, binary, dataDir, nil)
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("avouch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAUserAddedWhileTheServerRunsCanGetATokenWithinASecond(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	runCLI(t, "user", "add", "--data-dir", dir, "--password", "Erin#pw1", "--role", "admin", "erin")
	deadline := time.Now().Add(time.Second)
	for {
		_, _, tok, err := client.Issue(context.Background(), http.DefaultClient,
			&client.Options{URL: p.Base + "/services/sts", User: "erin", Password: "Erin#pw1"})
		if err == nil && len(tok) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user not seen within a second: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The CLI's own sample client prints the assertion.
	out := runCLI(t, "client", "issue", "--url", p.Base+"/services/sts", "--user", "erin", "--password", "Erin#pw1", "--saml", "1.1")
	if !strings.HasPrefix(out, "<saml:Assertion") {
		t.Fatalf("client printed %.200s", out)
	}
	cert := runCLI(t, "keys", "cert", "--data-dir", dir)
	if !strings.HasPrefix(cert, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("keys cert printed %.100s", cert)
	}
}

func TestSIGTERMDrainsARequestInFlightThenStops(t *testing.T) {
	dir := t.TempDir()
	p := startServe(t, dir)
	env, ctype, err := client.BuildIssue(&client.Options{URL: p.Base + "/services/sts", User: "admin", Password: "admin-pw"})
	if err != nil {
		t.Fatal(err)
	}
	// Send the headers and half the body, then SIGTERM, then the rest: a
	// draining server answers the request before it stops.
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.Base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := len(env) / 2
	head := "POST /services/sts HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctype + "\r\nContent-Length: " + strconv.Itoa(len(env)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+string(env[:half])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := conn.Write(env[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to the request in flight: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "RequestedSecurityToken") {
		t.Fatalf("in-flight request got %d: %.200s", resp.StatusCode, body)
	}
	err, exited := p.Wait(10 * time.Second)
	if !exited {
		t.Fatal("serve did not stop after SIGTERM")
	}
	if err != nil {
		t.Fatalf("serve exited with %v", err)
	}
	if !strings.Contains(p.Stdout(), "avouch stopped") {
		t.Fatalf("no stop message: %s", p.Stdout())
	}
}

func TestRuntimeDefaultsYieldToTheEnvironment(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevMem := debug.SetMemoryLimit(math.MaxInt64)
	defer func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevMem) }()

	runtimeDefaults(func(string) string { return "" })
	if gc, mem := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != 400 || mem != 256<<20 {
		t.Fatalf("defaults: GOGC %d, memory limit %d; want 400, 256 MiB", gc, mem)
	}
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	runtimeDefaults(func(k string) string { return map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}[k] })
	if gc, mem := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); gc != 100 || mem != math.MaxInt64 {
		t.Fatalf("with GOGC and GOMEMLIMIT set: GOGC %d, memory limit %d; want them left alone", gc, mem)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, v := range []struct {
		in   string
		want []int
		bad  bool
	}{
		{"", nil, false},
		{"0", []int{0}, false},
		{"0-1", []int{0, 1}, false},
		{"0,2,2-3", []int{0, 2, 3}, false},
		{"1-0", nil, true},
		{"-1", nil, true},
		{"a", nil, true},
		{"0,", nil, true},
		{"0-99999", nil, true},
	} {
		got, err := parseCPUList(v.in)
		if (err != nil) != v.bad || !slices.Equal(got, v.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v (error: %v)", v.in, got, err, v.want, v.bad)
		}
	}
}

// TestServeCheckpointsInAChildProcess: `avouch serve` on SQLite runs the
// WAL checkpoints in a wal-checkpointer child (so their fsyncs hold up no
// request), and the child ends with the server, even when the server is
// killed and cannot stop it.
func TestServeCheckpointsInAChildProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads child processes from /proc")
	}
	for _, kill := range []bool{false, true} {
		p := startServe(t, t.TempDir())
		pid := p.Cmd.Process.Pid
		// Children are listed per thread of the parent that forked them.
		var children []string
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			children = append(children, strings.Fields(string(b))...)
		}
		var child int
		for _, f := range children {
			cmdline, _ := os.ReadFile("/proc/" + f + "/cmdline")
			if args := strings.Split(string(cmdline), "\x00"); len(args) > 2 && args[1] == walCheckpointerCommand &&
				strings.HasSuffix(args[2], "avouch.db") {
				child, _ = strconv.Atoi(f)
			}
		}
		if child == 0 {
			t.Fatalf("no %s child of the server (children: %q)", walCheckpointerCommand, children)
		}
		if kill {
			p.Kill()
		} else if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		p.Wait(10 * time.Second)
		gone := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			// The child is reaped by init once the server is gone, or is
			// a zombie of the killed server: either way not running.
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); err != nil || strings.Contains(string(st), ") Z ") {
				gone = true
				break
			}
		}
		if !gone {
			t.Fatalf("the checkpointer (pid %d) outlived the server (killed: %v)", child, kill)
		}
	}
}
