// Command avouch is a WS-Trust Security Token Service: `avouch serve` runs it;
// the other commands manage users and keys and act as a sample client.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

const usage = `avouch — a WS-Trust Security Token Service

Usage:
  avouch serve   [flags]                 start the STS (zero configuration: ./avouch-data, HTTPS :9443)
  avouch user    add|list|delete ...     manage users of the embedded (PRIMARY) user store
  avouch userstore add ldap|list|remove  secondary user stores (LDAP / Active Directory) by domain
  avouch rp      add|list|remove ...     relying parties (service providers) and their token settings
  avouch keys    cert|list|import|export|delete ...  signing key and trust store
  avouch config  list|set|unset ...      runtime settings stored in the database (all nodes)
  avouch client  issue|renew|validate|cancel ...  sample WS-Trust client
  avouch usercert add|list|remove|ca|client ...  user certificates and user-mapping CAs (X.509, mutual TLS)
  avouch admin   token create|list|revoke  admin API tokens (printed once, stored hashed)
  avouch export  [-o FILE]               managed configuration as YAML (no clear secrets)
  avouch apply   -f FILE [--prune] [--dry-run]  make the database match a YAML document
  avouch bench   [flags]                 load generator: throughput and latency against the raw signing rate
  avouch version                         print the version

Run 'avouch COMMAND -h' for a command's flags.
`

var version = "dev"

type command func(args []string, stdout, stderr io.Writer) int

func commands() map[string]command {
	return map[string]command{
		"serve":     runServe,
		"user":      runUser,
		"keys":      runKeys,
		"client":    runClient,
		"bench":     runBench,
		"config":    runConfig,
		"userstore": runUserstore,
		"rp":        runRP,
		"admin":     runAdmin,
		"usercert":  runUsercert,
		"apply":     runApply,
		"export":    runExport,
		// Not in the usage text: `avouch serve` starts it for itself.
		walCheckpointerCommand: runWALCheckpointer,
		"version": func(_ []string, stdout, _ io.Writer) int {
			fmt.Fprintln(stdout, "avouch", version)
			return 0
		},
	}
}

func main() {
	runtimeDefaults(os.Getenv)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// runtimeDefaults sets the Go runtime knobs avouch wants, unless the
// environment sets them (docs/CONFIGURATION.md, "Go runtime defaults").
func runtimeDefaults(getenv func(string) string) {
	// A soft memory limit keeps RSS bounded when the process is starved of
	// CPU and the collector falls behind.
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
	// The live heap of a running STS is a few MB, so the default GOGC=100
	// collects every few MB allocated — dozens of cycles a second under
	// load. 400 trades ~10 MB of heap for a quarter of that work
	// (docs/PERFORMANCE.md).
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "avouch: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return cmd(args[1:], stdout, stderr)
}
