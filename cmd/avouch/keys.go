package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/keys/keystore"
)

func lookupEnv(k string) (string, bool) { return os.LookupEnv(k) }

const keysUsage = `usage:
  avouch keys cert                                   print the active token-signing certificate (PEM)
  avouch keys list                                   signing keys and trusted certificates
  avouch keys import --file F [--password P] [--key-password KP] [--alias A] --signing
                                                     make a key of a PKCS#12 / JKS / PEM store the signing key
  avouch keys import --file F [--password P] [--alias A]
                                                     add certificates to the trust store
  avouch keys rotate [--algorithm rsa-2048|ecdsa-p256]
                                                     new active signing key; older keys stay published
                                                     and accepted until deleted
  avouch keys export --alias A                       print a trusted certificate (PEM)
  avouch keys delete --alias A                       remove a trusted certificate
(each also takes --data-dir / --database)
`

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	fs := flag.NewFlagSet("avouch keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	file := fs.String("file", "", "keystore or certificate file (PEM, DER, PKCS#12, JKS)")
	password := fs.String("password", "", "store password (or env AVOUCH_KEYSTORE_PASSWORD)")
	keyPassword := fs.String("key-password", "", "key password (default: the store password)")
	alias := fs.String("alias", "", "alias of the entry")
	signing := fs.Bool("signing", false, "import as the token-signing key")
	algorithm := fs.String("algorithm", "rsa-2048", "rotate: rsa-2048 or ecdsa-p256")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *password == "" {
		*password = os.Getenv("AVOUCH_KEYSTORE_PASSWORD")
	}
	_, st, box, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch keys:", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	trust := keys.TrustStore{Store: st}
	switch args[0] {
	case "cert":
		pemBytes, err := keys.ActiveCertPEM(ctx, st, keys.PurposeSigning)
		if err != nil {
			fmt.Fprintln(stderr, "avouch keys cert:", err)
			return 1
		}
		_, _ = stdout.Write(pemBytes)
	case "list":
		list, err := st.ListKeys(ctx, keys.PurposeSigning)
		if err != nil {
			fmt.Fprintln(stderr, "avouch keys list:", err)
			return 1
		}
		for _, k := range list {
			c, err := keys.ParseCertPEM(k.CertPEM)
			if err != nil {
				continue
			}
			state := ""
			if k.Active {
				state = " (active)"
			}
			fmt.Fprintf(stdout, "signing\t%s%s\t%s\tuntil %s\n", k.ID, state, c.Subject, c.NotAfter.Format("2006-01-02"))
		}
		certs, err := st.ListCertificates(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "avouch keys list:", err)
			return 1
		}
		for _, e := range certs {
			c, err := keys.ParseCertPEM(e.PEM)
			if err != nil {
				continue
			}
			fmt.Fprintf(stdout, "trusted\t%s\t%s\tuntil %s\n", e.Alias, c.Subject, c.NotAfter.Format("2006-01-02"))
		}
	case "import":
		if *file == "" {
			fmt.Fprint(stderr, keysUsage)
			return 2
		}
		raw, err := os.ReadFile(*file)
		if err != nil {
			fmt.Fprintln(stderr, "avouch keys import:", err)
			return 1
		}
		entries, err := keystore.Load(raw, *password, *keyPassword)
		if err != nil {
			fmt.Fprintln(stderr, "avouch keys import:", err)
			return 2
		}
		if *signing {
			e, err := keystore.FindSigner(entries, *alias)
			if err != nil {
				fmt.Fprintln(stderr, "avouch keys import:", err)
				return 2
			}
			km := &keys.Manager{Store: st, Box: box.(*keys.Box)}
			kp, err := km.Put(ctx, keys.PurposeSigning, e.Key, e.Cert.Raw, true)
			if err != nil {
				fmt.Fprintln(stderr, "avouch keys import:", err)
				return 1
			}
			fmt.Fprintf(stdout, "imported %q as the signing key %s (%s); running servers switch within seconds\n", e.Alias, kp.ID, e.Cert.Subject)
			return 0
		}
		n := 0
		for _, e := range entries {
			if *alias != "" && len(entries) > 1 && e.Alias != *alias {
				continue
			}
			a := e.Alias
			if *alias != "" {
				a = *alias
			}
			if a == "" {
				a = commonName(e.Cert)
			}
			if err := trust.Add(ctx, a, e.Cert); err != nil {
				fmt.Fprintln(stderr, "avouch keys import:", err)
				return 1
			}
			fmt.Fprintf(stdout, "trusted %q: %s\n", a, e.Cert.Subject)
			n++
		}
		if n == 0 {
			fmt.Fprintf(stderr, "avouch keys import: no entry %q in %s\n", *alias, *file)
			return 2
		}
	case "rotate":
		if *algorithm != string(keys.RSA2048) && *algorithm != string(keys.ECDSAP256) {
			fmt.Fprint(stderr, keysUsage)
			return 2
		}
		km := &keys.Manager{Store: st, Box: box.(*keys.Box)}
		kp, err := km.Generate(ctx, keys.PurposeSigning, keys.Algorithm(*algorithm), "avouch token signing")
		if err != nil {
			fmt.Fprintln(stderr, "avouch keys rotate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "new signing key %s (%s) is active; running servers switch within seconds\n", kp.ID, *algorithm)
	case "export", "delete":
		if *alias == "" {
			fmt.Fprint(stderr, keysUsage)
			return 2
		}
		if args[0] == "delete" {
			if err := st.DeleteCertificate(ctx, *alias); err != nil {
				fmt.Fprintln(stderr, "avouch keys delete:", err)
				return 1
			}
			fmt.Fprintf(stdout, "deleted %q\n", *alias)
			return 0
		}
		c, err := st.GetCertificate(ctx, *alias)
		if err != nil {
			fmt.Fprintln(stderr, "avouch keys export:", err)
			return 1
		}
		_, _ = stdout.Write(c.PEM)
	default:
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	return 0
}

func commonName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.SerialNumber.String()
}
