// Package testutil holds helpers shared by tests: locating external tools
// (xmlsec1, samlsign, python3 modules, PostgreSQL, slapd, Chromium) with the
// project's skip policy.
//
// Policy: under `make check` (and CI) the environment variable
// AVOUCH_REQUIRE_TOOLS=1 is set and a missing tool fails the test. Under a plain
// `go test ./...` a missing tool skips the test with a loud reason.
package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Required reports whether missing external tools must fail tests.
func Required() bool {
	v := os.Getenv("AVOUCH_REQUIRE_TOOLS")
	return v == "1" || strings.EqualFold(v, "true")
}

// Missing fails (under make check) or skips (plain go test) the test because
// what is needed is not available.
func Missing(t testing.TB, what string) {
	t.Helper()
	if Required() {
		t.Fatalf("REQUIRED TOOL MISSING: %s (AVOUCH_REQUIRE_TOOLS=1; run `make check` as root to install it)", what)
	}
	t.Skipf("SKIPPED — external tool missing: %s. Run `make check` to install test tools and run this test.", what)
}

// Tool returns the path of an executable on PATH, or handles it as Missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name)
	}
	return p
}

// SystemPython is Debian's python3, which sees the python3-* packages (the
// pyenv python3 on PATH does not).
const SystemPython = "/usr/bin/python3"

// PythonModule returns SystemPython after checking that it can import module,
// or handles it as Missing.
func PythonModule(t testing.TB, module string) string {
	t.Helper()
	if _, err := os.Stat(SystemPython); err != nil {
		Missing(t, SystemPython)
	}
	if err := exec.Command(SystemPython, "-c", "import "+module).Run(); err != nil {
		Missing(t, "python3 module "+module+" (Debian package python3-"+strings.Split(module, ".")[0]+")")
	}
	return SystemPython
}
