package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/identity/ldap"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/server"
)

const userstoreUsage = `usage:
  avouch userstore add ldap --domain D --url ldap://host:389 --bind-dn DN --bind-password PW
        --user-base DN [--user-filter F] [--user-attr uid] [--group-base DN] [--group-filter F]
        [--role-map GROUP=ROLE]... [--map-unlisted-groups] [--claim-map ATTR=CLAIM-URI]...
        [--start-tls] [--ca-file PEM] [--timeout 5s] [--pool 4] [--order N]
  avouch userstore list
  avouch userstore remove DOMAIN
(each also takes --data-dir / --database)
`

func runUserstore(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, userstoreUsage)
		return 2
	}
	switch args[0] {
	case "add":
		if len(args) < 2 || args[1] != "ldap" {
			fmt.Fprint(stderr, userstoreUsage)
			return 2
		}
		return userstoreAdd(args[2:], stdout, stderr)
	case "list", "remove":
		return userstoreListRemove(args[0], args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, userstoreUsage)
	return 2
}

func pairs(in []string, what string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range in {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%s %q must be KEY=VALUE", what, p)
		}
		out[k] = v
	}
	return out, nil
}

func userstoreAdd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch userstore add ldap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	var c ldap.Config
	var roleMap, claimMap multiFlag
	var order int
	fs.StringVar(&c.Domain, "domain", "", "login domain (users log in as DOMAIN/name)")
	fs.StringVar(&c.URL, "url", "", "ldap:// or ldaps:// URL")
	fs.BoolVar(&c.StartTLS, "start-tls", false, "upgrade ldap:// with StartTLS")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM CA bundle for the LDAP server")
	fs.StringVar(&c.BindDN, "bind-dn", "", "service account DN for searches")
	fs.StringVar(&c.BindPassword, "bind-password", "", "service account password (stored sealed)")
	fs.StringVar(&c.UserSearchBase, "user-base", "", "user search base DN")
	fs.StringVar(&c.UserFilter, "user-filter", "(&(objectClass=inetOrgPerson)(uid={user}))", "user filter; {user} is the escaped login name")
	fs.StringVar(&c.UserListFilter, "user-list-filter", "(objectClass=inetOrgPerson)", "filter for listing users")
	fs.StringVar(&c.UserNameAttribute, "user-attr", "uid", "login name attribute (AD: sAMAccountName)")
	fs.StringVar(&c.GroupSearchBase, "group-base", "", "group search base DN")
	fs.StringVar(&c.GroupFilter, "group-filter", "(&(objectClass=groupOfNames)(member={dn}))", "group filter; {dn} is the escaped user DN")
	fs.StringVar(&c.GroupNameAttribute, "group-attr", "cn", "group name attribute")
	fs.Var(&roleMap, "role-map", "LDAP group = avouch role (repeatable)")
	fs.BoolVar(&c.MapUnlistedGroups, "map-unlisted-groups", false, "groups without a --role-map become roles of their own name")
	fs.Var(&claimMap, "claim-map", "LDAP attribute = claim URI (repeatable)")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "dial and per-operation timeout")
	fs.IntVar(&c.PoolSize, "pool", 4, "pooled connections")
	fs.IntVar(&order, "order", 0, "position in the search order for names without a domain")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if c.RoleMapping, err = pairs(roleMap, "--role-map"); err != nil {
		fmt.Fprintln(stderr, "avouch userstore add:", err)
		return 2
	}
	if c.ClaimMapping, err = pairs(claimMap, "--claim-map"); err != nil {
		fmt.Fprintln(stderr, "avouch userstore add:", err)
		return 2
	}
	_, st, box, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch userstore add:", err)
		return 1
	}
	defer st.Close()
	if err := server.SaveUserStore(context.Background(), st, box.(*keys.Box), server.StoredUserStore{Order: order, LDAP: c}); err != nil {
		fmt.Fprintln(stderr, "avouch userstore add:", err)
		return 2
	}
	fmt.Fprintf(stdout, "user store %s (%s) saved; running servers pick it up within seconds\n", strings.ToUpper(c.Domain), c.URL)
	return 0
}

func userstoreListRemove(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch userstore "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	if err := parseInterleaved(fs, args); err != nil {
		return 2
	}
	if (cmd == "list") != (fs.NArg() == 0) {
		fmt.Fprint(stderr, userstoreUsage)
		return 2
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch userstore:", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	if cmd == "remove" {
		if err := st.DeleteSetting(ctx, server.UserStorePrefix+strings.ToUpper(fs.Arg(0))); err != nil {
			fmt.Fprintln(stderr, "avouch userstore remove:", err)
			return 1
		}
		fmt.Fprintf(stdout, "user store %s removed\n", strings.ToUpper(fs.Arg(0)))
		return 0
	}
	list, err := server.ListUserStores(ctx, st)
	if err != nil {
		fmt.Fprintln(stderr, "avouch userstore list:", err)
		return 1
	}
	fmt.Fprintln(stdout, "PRIMARY\tembedded")
	for _, us := range list {
		fmt.Fprintf(stdout, "%s\t%s %s\torder=%d\n", us.LDAP.Domain, us.Type, us.LDAP.URL, us.Order)
	}
	return 0
}
