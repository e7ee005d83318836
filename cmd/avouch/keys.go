package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/avouch/avouch/internal/keys"
)

func lookupEnv(k string) (string, bool) { return os.LookupEnv(k) }

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "cert" {
		fmt.Fprintln(stderr, "usage: avouch keys cert [--data-dir DIR]")
		return 2
	}
	fs := flag.NewFlagSet("avouch keys cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch keys cert:", err)
		return 1
	}
	defer st.Close()
	pemBytes, err := keys.ActiveCertPEM(context.Background(), st, keys.PurposeSigning)
	if err != nil {
		fmt.Fprintln(stderr, "avouch keys cert:", err)
		return 1
	}
	_, _ = stdout.Write(pemBytes)
	return 0
}
