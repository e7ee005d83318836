package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/server"
	"github.com/avouch/avouch/internal/storage"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runUser(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: avouch user add|list|delete [flags] [NAME]")
		return 2
	}
	switch args[0] {
	case "add":
		return userAdd(args[1:], stdout, stderr)
	case "list":
		return userList(args[1:], stdout, stderr)
	case "delete":
		return userDelete(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "avouch user: unknown subcommand %q\n", args[0])
	return 2
}

// dataFlags are the flags every offline command takes to find the data.
type dataFlags struct{ dataDir, database string }

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.dataDir, "data-dir", "", "data directory (default ./avouch-data, env AVOUCH_DATA_DIR)")
	fs.StringVar(&d.database, "database", "", "database URL (default: SQLite in the data dir, env AVOUCH_DATABASE)")
}

func (d *dataFlags) open() (*config.Config, storage.Storage, identity.SecretBox, error) {
	return openData(d.dataDir, d.database)
}

// openData opens the data directory named by --data-dir (or AVOUCH_DATA_DIR)
// and the database (--database or AVOUCH_DATABASE; SQLite by default).
func openData(dataDir, database string) (*config.Config, storage.Storage, identity.SecretBox, error) {
	cfg := config.Defaults()
	_ = cfg.LoadEnv(lookupEnv)
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	if database != "" {
		cfg.Database = database
	}
	st, box, err := server.OpenData(context.Background(), &cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return &cfg, st, box, nil
}

func userAdd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	password := fs.String("password", "", "the user's password (required)")
	allowDigest := fs.Bool("allow-digest", false, "allow WS-Security PasswordDigest (keeps the password sealed under the master key)")
	var roles, claims multiFlag
	fs.Var(&roles, "role", "role (repeatable)")
	fs.Var(&claims, "claim", "claim as URI=VALUE (repeatable)")
	if err := parseInterleaved(fs, args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *password == "" {
		fmt.Fprintln(stderr, "usage: avouch user add --password PW [--role R]... [--claim URI=VALUE]... [--allow-digest] NAME")
		return 2
	}
	name := fs.Arg(0)
	if strings.ContainsAny(name, "/\x00") || strings.TrimSpace(name) != name || name == "" {
		fmt.Fprintln(stderr, "avouch user add: a user name must not contain '/' or surrounding spaces")
		return 2
	}
	u := storage.User{Name: name, Roles: uniqueSorted(roles), Claims: map[string]string{}}
	for _, c := range claims {
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "avouch user add: --claim %q must be URI=VALUE\n", c)
			return 2
		}
		u.Claims[k] = v
	}
	_, st, box, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch user add:", err)
		return 1
	}
	defer st.Close()
	if u.PasswordHash, err = identity.HashPassword(*password); err != nil {
		fmt.Fprintln(stderr, "avouch user add:", err)
		return 1
	}
	if *allowDigest {
		if u.DigestSecret, err = box.Seal([]byte(*password)); err != nil {
			fmt.Fprintln(stderr, "avouch user add:", err)
			return 1
		}
	}
	u.CreatedAt = time.Now().UTC()
	u.UpdatedAt = u.CreatedAt
	if err := st.CreateUser(context.Background(), u); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			fmt.Fprintf(stderr, "avouch user add: user %q already exists\n", name)
			return 1
		}
		fmt.Fprintln(stderr, "avouch user add:", err)
		return 1
	}
	fmt.Fprintf(stdout, "added user %s (roles: %s)\n", name, strings.Join(u.Roles, ", "))
	return 0
}

func userList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch user list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	domain := fs.String("domain", identity.PrimaryDomain, "user store domain to list")
	limit := fs.Int("limit", 1000, "at most this many users (secondary stores)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	_, st, box, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch user list:", err)
		return 1
	}
	defer st.Close()
	if d := strings.ToUpper(*domain); d != identity.PrimaryDomain {
		stores, err := server.OpenUserStores(context.Background(), st, box.(*keys.Box))
		if err != nil {
			fmt.Fprintln(stderr, "avouch user list:", err)
			return 1
		}
		for _, us := range stores {
			if us.Domain() != d {
				continue
			}
			names, err := us.ListUsers(context.Background(), *limit)
			if err != nil {
				fmt.Fprintln(stderr, "avouch user list:", err)
				return 1
			}
			for _, n := range names {
				fmt.Fprintf(stdout, "%s/%s\n", d, n)
			}
			return 0
		}
		fmt.Fprintf(stderr, "avouch user list: no user store %q\n", d)
		return 1
	}
	users, err := st.ListUsers(context.Background())
	if err != nil {
		fmt.Fprintln(stderr, "avouch user list:", err)
		return 1
	}
	for _, u := range users {
		digest := ""
		if len(u.DigestSecret) > 0 {
			digest = " digest"
		}
		fmt.Fprintf(stdout, "%s/%s\troles=%s\tclaims=%d%s\n", identity.PrimaryDomain, u.Name, strings.Join(u.Roles, ","), len(u.Claims), digest)
	}
	return 0
}

func userDelete(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch user delete", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	if err := parseInterleaved(fs, args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: avouch user delete [--data-dir DIR] NAME")
		return 2
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch user delete:", err)
		return 1
	}
	defer st.Close()
	if err := st.DeleteUser(context.Background(), fs.Arg(0)); err != nil {
		fmt.Fprintln(stderr, "avouch user delete:", err)
		return 1
	}
	fmt.Fprintf(stdout, "deleted user %s\n", fs.Arg(0))
	return 0
}

func uniqueSorted(in []string) []string {
	m := map[string]bool{}
	out := []string{}
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !m[s] {
			m[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// parseInterleaved parses flags that may come after positional arguments
// (`user add NAME --password x` as well as `user add --password x NAME`).
func parseInterleaved(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}
