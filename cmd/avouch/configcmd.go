package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage"
)

const configUsage = `usage:
  avouch config list [--data-dir DIR | --database URL]
  avouch config set  [--data-dir DIR | --database URL] KEY VALUE
  avouch config unset [--data-dir DIR | --database URL] KEY
Runtime settings stored in the database apply to every node within seconds.
Precedence: flags > environment > database > YAML file > defaults.
Runtime keys: ` + "%s\n"

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, configUsage, strings.Join(config.Runtime, ", "))
		return 2
	}
	fs := flag.NewFlagSet("avouch config "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	if err := parseInterleaved(fs, args[1:]); err != nil {
		return 2
	}
	want := map[string]int{"list": 0, "set": 2, "unset": 1}
	n, ok := want[args[0]]
	if !ok || fs.NArg() != n {
		fmt.Fprintf(stderr, configUsage, strings.Join(config.Runtime, ", "))
		return 2
	}
	cfg, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch config:", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	stored, err := server.StoredSettings(ctx, st)
	if err != nil {
		fmt.Fprintln(stderr, "avouch config:", err)
		return 1
	}
	switch args[0] {
	case "list":
		keys := make([]string, 0, len(stored))
		for k := range stored {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "%s=%s\n", k, stored[k])
		}
		return 0
	case "set":
		key, value := fs.Arg(0), fs.Arg(1)
		if !config.IsRuntime(key) {
			fmt.Fprintf(stderr, "avouch config set: %q is not a runtime setting (runtime keys: %s)\n", key, strings.Join(config.Runtime, ", "))
			return 2
		}
		stored[key] = value
		if _, err := cfg.WithStored(stored); err != nil {
			fmt.Fprintln(stderr, "avouch config set:", err)
			return 2
		}
		if err := st.PutSetting(ctx, server.SettingPrefix+key, value); err != nil {
			fmt.Fprintln(stderr, "avouch config set:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s=%s\n", key, value)
	case "unset":
		err := st.DeleteSetting(ctx, server.SettingPrefix+fs.Arg(0))
		if errors.Is(err, storage.ErrNotFound) {
			fmt.Fprintf(stderr, "avouch config unset: %s is not set\n", fs.Arg(0))
			return 1
		} else if err != nil {
			fmt.Fprintln(stderr, "avouch config unset:", err)
			return 1
		}
	}
	return 0
}
