// Package interop runs the real avouch binary against software nobody on the
// team wrote: WS-Trust clients (python3-zeep, python3-msal), XML-DSig
// verifiers (xmlsec1, OpenSAML's samlsign) and the requests those clients
// were captured sending (testdata/wstrust-requests).
//
// The tests are black-box: they build cmd/avouch once, start it with
// `serve --plain-http` on a free 127.0.0.1 port with a temporary data dir,
// drive it through its CLI (user add, keys cert, client issue) and over HTTP,
// and stop it with SIGTERM. External tools are located with internal/testutil:
// missing ones skip the test under `go test` and fail it under `make check`
// (AVOUCH_REQUIRE_TOOLS=1).
package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// avouchBin is the binary under test, built once by TestMain; buildErr says
// why it could not be built (every test then fails with it: a broken build is
// never a reason to skip).
var (
	avouchBin string
	buildErr  error
	moduleDir string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "avouch-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	moduleDir, err = filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	avouchBin = filepath.Join(tmp, "avouch")
	build := exec.Command("go", "build", "-o", avouchBin, "./cmd/avouch")
	build.Dir = moduleDir
	if out, err := build.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/avouch: %v\n%s", err, out)
	}

	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "interop: shared server:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
