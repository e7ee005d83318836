package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/avouch/avouch/internal/configcode"
	"github.com/avouch/avouch/internal/keys"
)

const applyUsage = `usage: avouch apply -f FILE [--data-dir DIR | --database URL] [--prune] [--dry-run]
Makes the database hold the configuration declared in FILE (the format
'avouch export' writes; '-f -' reads standard input). Everything is validated
before anything is written, and what already matches is left alone, so
applying twice changes nothing. Running servers pick the changes up within
seconds. --prune also deletes service providers, trusted certificates, users,
user stores, catalogue entries and stored runtime settings the file does not
declare. See docs/MANAGEMENT.md.
`

func runApply(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, applyUsage) }
	var data dataFlags
	data.register(fs)
	file := fs.String("f", "", "the configuration file (YAML; - for standard input)")
	prune := fs.Bool("prune", false, "delete what the file does not declare")
	dryRun := fs.Bool("dry-run", false, "validate and show the changes without making them")
	if err := parseInterleaved(fs, args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *file == "" || fs.NArg() != 0 {
		fmt.Fprint(stderr, applyUsage)
		return 2
	}
	var raw []byte
	var err error
	baseDir := "."
	if *file == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(*file)
		baseDir = filepath.Dir(*file)
	}
	if err != nil {
		fmt.Fprintln(stderr, "avouch apply:", err)
		return 1
	}
	doc, err := configcode.Parse(raw)
	if err != nil {
		fmt.Fprintf(stderr, "avouch apply: %s: %v\n", *file, err)
		return 2
	}
	cfg, st, box, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch apply:", err)
		return 1
	}
	defer st.Close()
	changes, err := configcode.Apply(context.Background(), st, box.(*keys.Box), cfg, doc,
		configcode.Options{BaseDir: baseDir, Prune: *prune, DryRun: *dryRun})
	if err != nil {
		fmt.Fprintf(stderr, "avouch apply: %s: nothing was changed:\n%v\n", *file, err)
		return 2
	}
	verb := ""
	if *dryRun {
		verb = "would be "
	}
	for _, c := range changes {
		fmt.Fprintf(stdout, "%s%s %s\n", verb, c.Action, c.Kind+" "+c.Name)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no changes: the database already holds this configuration")
	}
	return 0
}
