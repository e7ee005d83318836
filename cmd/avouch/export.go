package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/avouch/avouch/internal/configcode"
)

const exportUsage = `usage: avouch export [--data-dir DIR | --database URL] [-o FILE]
Writes the managed configuration (resident IdP and runtime settings, security
policy, role and claim catalogues, trust store, service providers, user
stores, users) as YAML that 'avouch apply -f' accepts. No secret is written in
clear: password hashes, and bind passwords and PasswordDigest secrets sealed
under this database's master key. See docs/MANAGEMENT.md.
`

func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, exportUsage) }
	var data dataFlags
	data.register(fs)
	out := fs.String("o", "", "write to this file (mode 0600) instead of standard output")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprint(stderr, exportUsage)
		return 2
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch export:", err)
		return 1
	}
	defer st.Close()
	doc, err := configcode.Export(context.Background(), st)
	if err != nil {
		fmt.Fprintln(stderr, "avouch export:", err)
		return 1
	}
	b, err := doc.Marshal()
	if err != nil {
		fmt.Fprintln(stderr, "avouch export:", err)
		return 1
	}
	if *out == "" {
		_, _ = stdout.Write(b)
		return 0
	}
	if err := os.WriteFile(*out, b, 0o600); err != nil {
		fmt.Fprintln(stderr, "avouch export:", err)
		return 1
	}
	fmt.Fprintf(stderr, "configuration written to %s\n", *out)
	return 0
}
