package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/keys/keystore"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/wssec"
)

const usercertUsage = `usage:
  avouch usercert add    --user LOGIN --file CERT         register a user's certificate (X.509-signed requests, mutual TLS)
  avouch usercert list   [--user LOGIN]                   registered user certificates, user-mapping CAs, client applications
  avouch usercert remove --user LOGIN [--fingerprint FP]  remove a user's certificate(s)
  avouch usercert ca add --name N --rule upn|email|cn|subject --file CA
                                                          trust a CA: its certificates map to the user named by RULE
  avouch usercert ca remove --name N
  avouch usercert client add --name N --file CERT         trust a client application's certificate (maps to no user:
                                                          signs requests whose UsernameToken names the user)
  avouch usercert client remove --name N
LOGIN is name (PRIMARY, then the other user stores in order) or DOMAIN/name.
CERT files are PEM or DER. Entries live in the trust store (shared by every
node) and apply to running servers at once. Each also takes --data-dir / --database.
`

// runUsercert is the "usercert" command.
func runUsercert(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usercertUsage)
		return 2
	}
	verb, rest := args[0], args[1:]
	if (verb == "ca" || verb == "client") && len(rest) > 0 {
		verb, rest = verb+" "+rest[0], rest[1:]
	}
	fs := flag.NewFlagSet("avouch usercert "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	login := fs.String("user", "", "the user: name or DOMAIN/name")
	file := fs.String("file", "", "certificate file (PEM or DER)")
	fingerprint := fs.String("fingerprint", "", "SHA-256 fingerprint (hex, a prefix of at least 16 digits) of the certificate to remove")
	name := fs.String("name", "", "name of the CA or client application")
	rule := fs.String("rule", "", "how a CA's certificates name their user: upn, email, cn or subject")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	usage := func() int { fmt.Fprint(stderr, usercertUsage); return 2 }
	switch verb {
	case "add", "remove", "list", "ca add", "ca remove", "client add", "client remove":
	default:
		return usage()
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch usercert:", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	trust := keys.TrustStore{Store: st}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "avouch usercert %s: %v\n", verb, err)
		return 1
	}
	switch verb {
	case "add":
		if *login == "" || *file == "" {
			return usage()
		}
		cert, err := readCert(*file)
		if err != nil {
			return fail(err)
		}
		if domain, n := identity.SplitDomain(*login); domain == identity.PrimaryDomain {
			_, err := st.GetUser(ctx, n)
			switch {
			case errors.Is(err, storage.ErrNotFound) && strings.Contains(*login, "/"):
				return fail(fmt.Errorf("no user %q in the PRIMARY store", n))
			case errors.Is(err, storage.ErrNotFound):
				fmt.Fprintf(stderr, "note: %q is not a PRIMARY user; it must exist in another user store\n", n)
			case err != nil:
				return fail(err)
			}
		}
		alias := wssec.UserCertAlias(*login, cert)
		if err := trust.Add(ctx, alias, cert); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "registered %s for %s (%q, SHA-256 %s)\n", cert.Subject, *login, alias, fp(cert))
	case "remove":
		if *login == "" {
			return usage()
		}
		list, err := st.ListCertificates(ctx)
		if err != nil {
			return fail(err)
		}
		n := 0
		for _, e := range list {
			if l, ok := wssec.ParseUserCertAlias(e.Alias); !ok || l != *login {
				continue
			}
			if *fingerprint != "" {
				c, err := keys.ParseCertPEM(e.PEM)
				if err != nil || len(*fingerprint) < 16 || !strings.HasPrefix(fp(c), strings.ToLower(*fingerprint)) {
					continue
				}
			}
			if err := st.DeleteCertificate(ctx, e.Alias); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "removed %q\n", e.Alias)
			n++
		}
		if n == 0 {
			return fail(fmt.Errorf("no registered certificate for %q matches", *login))
		}
	case "list":
		list, err := st.ListCertificates(ctx)
		if err != nil {
			return fail(err)
		}
		for _, e := range list {
			kind := ""
			switch {
			case strings.HasPrefix(e.Alias, wssec.AliasUser):
				l, _ := wssec.ParseUserCertAlias(e.Alias)
				if *login != "" && l != *login {
					continue
				}
				kind = "user " + l
			case *login != "":
				continue
			case strings.HasPrefix(e.Alias, wssec.AliasCA):
				parts := strings.SplitN(strings.TrimPrefix(e.Alias, wssec.AliasCA), ":", 2)
				kind = "ca " + parts[len(parts)-1] + " (maps by " + parts[0] + ")"
			case strings.HasPrefix(e.Alias, wssec.AliasClient):
				kind = "client " + strings.TrimPrefix(e.Alias, wssec.AliasClient)
			default:
				continue
			}
			c, err := keys.ParseCertPEM(e.PEM)
			if err != nil {
				continue
			}
			fmt.Fprintf(stdout, "%s\t%s\tuntil %s\tSHA-256 %s\n", kind, c.Subject, c.NotAfter.Format("2006-01-02"), fp(c))
		}
	case "ca add", "client add":
		if *name == "" || *file == "" || (verb == "ca add") != (*rule != "") {
			return usage()
		}
		cert, err := readCert(*file)
		if err != nil {
			return fail(err)
		}
		alias := wssec.AliasClient + *name
		if verb == "ca add" {
			if !cert.IsCA {
				return fail(errors.New("the certificate is not a CA certificate (basicConstraints CA:TRUE)"))
			}
			if alias, err = wssec.CAAlias(*rule, *name); err != nil {
				return fail(err)
			}
			if err := removeCA(ctx, st, *name); err != nil {
				return fail(err)
			}
		}
		if err := trust.Add(ctx, alias, cert); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "trusted %q: %s\n", alias, cert.Subject)
	case "ca remove", "client remove":
		if *name == "" {
			return usage()
		}
		if verb == "ca remove" {
			if err := removeCA(ctx, st, *name); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "removed CA %q (if it was trusted)\n", *name)
			return 0
		}
		if err := st.DeleteCertificate(ctx, wssec.AliasClient+*name); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "removed client %q\n", *name)
	}
	return 0
}

// removeCA deletes the CA entry of that name whatever its rule.
func removeCA(ctx context.Context, st storage.Certificates, name string) error {
	list, err := st.ListCertificates(ctx)
	if err != nil {
		return err
	}
	for _, e := range list {
		if strings.HasPrefix(e.Alias, wssec.AliasCA) && strings.HasSuffix(e.Alias, ":"+name) {
			if err := st.DeleteCertificate(ctx, e.Alias); err != nil {
				return err
			}
		}
	}
	return nil
}

func readCert(file string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	entries, err := keystore.Load(raw, "", "")
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 || entries[0].Cert == nil {
		return nil, fmt.Errorf("%s holds no certificate", file)
	}
	return entries[0].Cert, nil
}

func fp(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}
