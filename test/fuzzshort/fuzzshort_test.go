// Package fuzzshort tests scripts/fuzz-short.sh, the fuzz step of
// `make check`: which failures it reruns and which it reports. The script
// runs against a stand-in `go` that plays back a planned sequence of fuzz
// runs, because the failure under test (Go's coordinator race at the
// -fuzztime deadline, golang/go#75804) cannot be produced on demand.
package fuzzshort

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeGo answers the three `go` calls the script makes. Each `go test -fuzz`
// takes the next line of $PLAN_FILE: "pass", "race" (the coordinator's bare
// deadline failure), "race+input" (the same text, but an input was written),
// or "crash" (a real failing input).
const fakeGo = `#!/usr/bin/env bash
set -eu
pkgdir=$FAKE_PKG_DIR
if [ "$1" = list ]; then
	case "$*" in
	*'{{.Dir}}'*) echo "$pkgdir" ;;
	*) printf 'example.com/p\t%s/p_test.go\n' "$pkgdir" ;;
	esac
	exit 0
fi
case "$*" in
*"-list"*) echo FuzzThing; echo "ok  	example.com/p	0.01s"; exit 0 ;;
esac
n=$(cat "$PLAN_FILE.n" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >"$PLAN_FILE.n"
step=$(sed -n "${n}p" "$PLAN_FILE")
echo "fuzz: elapsed: 5s, execs: 285174 (64491/sec), new interesting: 0 (total: 232)"
write_input() {
	mkdir -p "$pkgdir/testdata/fuzz/FuzzThing"
	echo 'go test fuzz v1' >"$pkgdir/testdata/fuzz/FuzzThing/input$n"
	echo "    Failing input written to testdata/fuzz/FuzzThing/input$n"
}
case "$step" in
pass) echo PASS; echo "ok  	example.com/p	5.1s" ;;
race|race+input)
	echo "--- FAIL: FuzzThing (5.08s)"
	echo "    context deadline exceeded"
	if [ "$step" = race+input ]; then write_input; fi
	echo FAIL; echo "exit status 1"; echo "FAIL	example.com/p	5.106s"; exit 1 ;;
crash)
	echo "--- FAIL: FuzzThing (0.31s)"
	echo "    fuzzing process hung or terminated unexpectedly: exit status 2"
	write_input
	echo FAIL; echo "exit status 1"; echo "FAIL	example.com/p	0.4s"; exit 1 ;;
*) echo "plan exhausted at run $n" >&2; exit 3 ;;
esac
`

func TestFuzzShortRerunsOnlyTheCoordinatorRace(t *testing.T) {
	script, err := filepath.Abs("../../scripts/fuzz-short.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		plan     []string
		wantOK   bool
		wantRuns int
		wantOut  string
	}{
		{"a pass runs once", []string{"pass"}, true, 1, "all 1 targets passed"},
		{"the race is rerun", []string{"race", "pass"}, true, 2, "golang/go#75804"},
		{"the race twice fails", []string{"race", "race"}, false, 2, "FAILED: FuzzThing"},
		{"a written input is never rerun", []string{"race+input"}, false, 1, "testdata/fuzz/FuzzThing/input1"},
		{"a crash is never rerun", []string{"crash"}, false, 1, "FAILED: FuzzThing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"scripts", "p", "bin"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			body, err := os.ReadFile(script)
			if err != nil {
				t.Fatal(err)
			}
			write := func(name, content string, mode os.FileMode) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(root, name), []byte(content), mode); err != nil {
					t.Fatal(err)
				}
			}
			write("scripts/fuzz-short.sh", string(body), 0o755)
			write("p/p_test.go", "package p\n\nfunc FuzzThing() {}\n", 0o644)
			write("bin/go", fakeGo, 0o755)
			write("plan", strings.Join(tc.plan, "\n")+"\n", 0o644)

			cmd := exec.Command("bash", filepath.Join(root, "scripts/fuzz-short.sh"))
			cmd.Env = append(os.Environ(),
				"GO="+filepath.Join(root, "bin/go"),
				"FAKE_PKG_DIR="+filepath.Join(root, "p"),
				"PLAN_FILE="+filepath.Join(root, "plan"))
			out, err := cmd.CombinedOutput()
			if ok := err == nil; ok != tc.wantOK {
				t.Fatalf("script succeeded=%v, want %v (%v):\n%s", ok, tc.wantOK, err, out)
			}
			runs, err := os.ReadFile(filepath.Join(root, "plan.n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(runs)); got != strconv.Itoa(tc.wantRuns) {
				t.Errorf("fuzz runs = %s, want %d:\n%s", got, tc.wantRuns, out)
			}
			if !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out)
			}
		})
	}
}
