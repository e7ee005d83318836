package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/avouch/avouch/internal/client"
)

func runClient(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "issue" {
		fmt.Fprintln(stderr, "usage: avouch client issue --url URL --user U --password P [flags]")
		return 2
	}
	fs := flag.NewFlagSet("avouch client issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &client.Options{}
	fs.StringVar(&o.URL, "url", "https://localhost:9443/services/sts", "STS endpoint URL")
	fs.StringVar(&o.User, "user", "", "user name")
	fs.StringVar(&o.Password, "password", "", "password (or env AVOUCH_CLIENT_PASSWORD)")
	fs.StringVar(&o.SAML, "saml", "2.0", "token type: 1.1 or 2.0")
	fs.StringVar(&o.AppliesTo, "applies-to", "", "relying party (AppliesTo address)")
	fs.StringVar(&o.SOAP, "soap", "1.1", "SOAP version: 1.1 or 1.2")
	fs.BoolVar(&o.Digest, "digest", false, "send PasswordDigest instead of PasswordText")
	fs.DurationVar(&o.Lifetime, "lifetime", 0, "requested token lifetime (default: the server's)")
	var claims multiFlag
	fs.Var(&claims, "claim", "claim URI to request (repeatable)")
	caFile := fs.String("ca-file", "", "PEM file of CA certificates to trust for TLS")
	insecure := fs.Bool("insecure", false, "do not verify the server's TLS certificate")
	verbose := fs.Bool("v", false, "print the RST and RSTR (secrets masked)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	o.Claims = claims
	if o.Password == "" {
		o.Password = os.Getenv("AVOUCH_CLIENT_PASSWORD")
	}
	if o.User == "" || o.Password == "" {
		fmt.Fprintln(stderr, "avouch client issue: --user and --password are required")
		return 2
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure} //nolint:gosec // explicit user choice
	if *caFile != "" {
		pemData, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(stderr, "avouch client issue:", err)
			return 1
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			fmt.Fprintln(stderr, "avouch client issue: no certificates in", *caFile)
			return 1
		}
		tlsCfg.RootCAs = pool
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	rst, rstr, token, err := client.Issue(context.Background(), hc, o)
	if *verbose {
		fmt.Fprintf(stderr, "--- RST ---\n%s\n--- RSTR ---\n%s\n", client.MaskSecrets(rst), rstr)
	}
	if err != nil {
		var fe *client.FaultError
		if errors.As(err, &fe) {
			fmt.Fprintf(stderr, "avouch client issue: %s: %s\n", fe.Code, fe.Reason)
			return 1
		}
		fmt.Fprintln(stderr, "avouch client issue:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", token)
	return 0
}
