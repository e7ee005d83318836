package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage/sqlite"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := config.Load(fs, args, os.LookupEnv)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "avouch serve:", err)
		return 2
	}
	if exe, err := os.Executable(); err == nil {
		// The SQLite WAL checkpoints run in a child process of this
		// executable (internal/storage/sqlite/checkpointer.go).
		cfg.CheckpointCommand = []string{exe, walCheckpointerCommand}
	}
	log := newLogger(cfg.LogFormat, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := server.New(ctx, cfg, log, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "avouch serve:", err)
		return 1
	}
	defer srv.Close()
	err = srv.Serve(ctx, func(base string) {
		fmt.Fprintf(stdout, "avouch %s listening on %s\n", version, base)
		fmt.Fprintf(stdout, "  WS-Trust endpoint: %s/services/sts   (WSDL: %s/services/sts?wsdl)\n", base, base)
		fmt.Fprintf(stdout, "  web console:       %s/console/   (log in as admin)\n", base)
		fmt.Fprintf(stdout, "  passive STS:       %s/passivests\n", base)
		fmt.Fprintf(stdout, "  data directory:    %s\n", cfg.DataDir)
		fmt.Fprintf(stdout, "  try it:            avouch client issue --url %s/services/sts --user admin --password '…'%s\n",
			base, map[bool]string{true: "", false: " --insecure"}[cfg.PlainHTTP])
	})
	if err != nil {
		fmt.Fprintln(stderr, "avouch serve:", err)
		return 1
	}
	fmt.Fprintln(stdout, "avouch stopped")
	return 0
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// walCheckpointerCommand is the hidden command `avouch serve` runs as a
// child for the SQLite database's WAL checkpoints.
const walCheckpointerCommand = "wal-checkpointer"

// runWALCheckpointer answers checkpoint requests on stdin until stdin ends
// (when the server closes it or dies).
func runWALCheckpointer(args []string, _, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: avouch wal-checkpointer DATABASE (started by avouch serve)")
		return 2
	}
	if err := sqlite.ServeCheckpoints(args[0], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(stderr, "avouch wal-checkpointer:", err)
		return 1
	}
	return 0
}
