package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/avouch/avouch/internal/console"
	"github.com/avouch/avouch/internal/storage"
)

const adminUsage = `usage:
  avouch admin token create [--name N]   create an admin API token; it is printed once (only its hash is stored)
  avouch admin token list                 list API tokens (never their secrets)
  avouch admin token revoke ID            revoke an API token
(each also takes --data-dir / --database)
Use a token as: Authorization: Bearer <token> on /api/… (see /api/openapi.json).
`

func runAdmin(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "token" {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	sub := args[1]
	fs := flag.NewFlagSet("avouch admin token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	name := fs.String("name", "", "a name for the token (default: cli-<date>)")
	if err := parseInterleaved(fs, args[2:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	want := map[string]int{"create": 0, "list": 0, "revoke": 1}
	if n, ok := want[sub]; !ok || fs.NArg() != n {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch admin:", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	audit := func(action, target, detail string) {
		if err := st.AppendAudit(ctx, storage.AuditEvent{Time: now, Actor: "cli", Action: action, Target: target, Detail: detail}); err != nil {
			fmt.Fprintln(stderr, "avouch admin: audit log:", err)
		}
	}
	switch sub {
	case "create":
		n := *name
		if n == "" {
			n = "cli-" + now.Format("20060102-150405")
		}
		tok, t, err := console.CreateAPIToken(ctx, st, n, now)
		if err != nil {
			fmt.Fprintln(stderr, "avouch admin token create:", err)
			return 2
		}
		audit("api_token.create", t.ID, "name="+t.Name)
		fmt.Fprintf(stderr, "API token %s (%s) created; it is shown only this once:\n", t.ID, t.Name)
		fmt.Fprintln(stdout, tok)
	case "list":
		list, err := console.ListAPITokens(ctx, st)
		if err != nil {
			fmt.Fprintln(stderr, "avouch admin token list:", err)
			return 1
		}
		for _, t := range list {
			fmt.Fprintf(stdout, "%s\t%s\tcreated %s\n", t.ID, t.Name, t.Created.Format(time.RFC3339))
		}
	case "revoke":
		id := fs.Arg(0)
		if err := console.RevokeAPIToken(ctx, st, id); errors.Is(err, storage.ErrNotFound) {
			fmt.Fprintf(stderr, "avouch admin token revoke: no token %q\n", id)
			return 1
		} else if err != nil {
			fmt.Fprintln(stderr, "avouch admin token revoke:", err)
			return 1
		}
		audit("api_token.revoke", id, "")
		fmt.Fprintf(stdout, "revoked %s\n", id)
	}
	return 0
}
