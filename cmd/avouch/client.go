package main

import (
	"bytes"
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

const clientUsage = `usage:
  avouch client issue    --url URL --user U --password P [--saml 1.1|2.0] [--applies-to URI] [--claim URI]... [--renew] [--validate]
  avouch client renew    --url URL --user U --password P --token-file FILE|-
  avouch client validate --url URL --user U --password P --token-file FILE|- [--transform-to 1.1|2.0]
  avouch client cancel   --url URL --user U --password P --token-file FILE|-
`

// clientFlags are the connection flags every client command shares.
type clientFlags struct {
	o        client.Options
	caFile   string
	insecure bool
	verbose  bool
	claims   multiFlag
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.o.URL, "url", "https://localhost:9443/services/sts", "STS endpoint URL")
	fs.StringVar(&c.o.User, "user", "", "user name")
	fs.StringVar(&c.o.Password, "password", "", "password (or env AVOUCH_CLIENT_PASSWORD)")
	fs.StringVar(&c.o.SAML, "saml", "2.0", "token type: 1.1 or 2.0")
	fs.StringVar(&c.o.SOAP, "soap", "1.1", "SOAP version: 1.1 or 1.2")
	fs.BoolVar(&c.o.Digest, "digest", false, "send PasswordDigest instead of PasswordText")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM file of CA certificates to trust for TLS")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fs.BoolVar(&c.verbose, "v", false, "print each RST and RSTR (secrets masked)")
}

func (c *clientFlags) httpClient() (*http.Client, error) {
	if c.o.Password == "" {
		c.o.Password = os.Getenv("AVOUCH_CLIENT_PASSWORD")
	}
	if c.o.User == "" || c.o.Password == "" {
		return nil, errors.New("--user and --password are required")
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecure} //nolint:gosec // explicit user choice
	if c.caFile != "" {
		pemData, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("no certificates in %s", c.caFile)
		}
		tlsCfg.RootCAs = pool
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}, nil
}

func (c *clientFlags) trace(stderr io.Writer, rst, rstr []byte) {
	if c.verbose {
		fmt.Fprintf(stderr, "--- RST ---\n%s\n--- RSTR ---\n%s\n", client.MaskSecrets(rst), rstr)
	}
}

func clientError(stderr io.Writer, cmd string, err error) int {
	var fe *client.FaultError
	if errors.As(err, &fe) {
		fmt.Fprintf(stderr, "avouch client %s: %s: %s\n", cmd, fe.Code, fe.Reason)
		return 1
	}
	fmt.Fprintf(stderr, "avouch client %s: %v\n", cmd, err)
	return 1
}

func runClient(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientUsage)
		return 2
	}
	switch args[0] {
	case "issue":
		return clientIssue(args[1:], stdout, stderr)
	case "renew", "validate", "cancel":
		return clientLifecycle(args[0], args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, clientUsage)
	return 2
}

func clientIssue(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch client issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c clientFlags
	c.register(fs)
	fs.StringVar(&c.o.AppliesTo, "applies-to", "", "relying party (AppliesTo address)")
	fs.DurationVar(&c.o.Lifetime, "lifetime", 0, "requested token lifetime (default: the server's)")
	fs.Var(&c.claims, "claim", "claim URI to request (repeatable)")
	renew := fs.Bool("renew", false, "then renew the token and print the renewed one (like WSO2's sample)")
	validate := fs.Bool("validate", false, "then validate the (renewed) token and print the status")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.o.Claims = c.claims
	hc, err := c.httpClient()
	if err != nil {
		return clientError(stderr, "issue", err)
	}
	ctx := context.Background()
	rst, rstr, token, err := client.Issue(ctx, hc, &c.o)
	c.trace(stderr, rst, rstr)
	if err != nil {
		return clientError(stderr, "issue", err)
	}
	if !*renew && !*validate {
		fmt.Fprintf(stdout, "%s\n", token)
		return 0
	}
	fmt.Fprintf(stdout, "Original token:\n%s\n\n", token)
	if *renew {
		rst, rstr, err := client.Lifecycle(ctx, hc, &c.o, "Renew", token, false)
		c.trace(stderr, rst, rstr)
		if err != nil {
			return clientError(stderr, "renew", err)
		}
		if token, err = client.ExtractToken(rstr); err != nil {
			return clientError(stderr, "renew", err)
		}
		fmt.Fprintf(stdout, "Renewed token:\n%s\n\n", token)
	}
	if *validate {
		rst, rstr, err := client.Lifecycle(ctx, hc, &c.o, "Validate", token, true)
		c.trace(stderr, rst, rstr)
		if err != nil {
			return clientError(stderr, "validate", err)
		}
		valid, _, reason, err := client.Status(rstr)
		if err != nil {
			return clientError(stderr, "validate", err)
		}
		fmt.Fprintln(stdout, statusLine(valid, reason))
	}
	return 0
}

func statusLine(valid bool, reason string) string {
	if valid {
		return "Token is valid"
	}
	return "Token is invalid: " + reason
}

func clientLifecycle(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch client "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c clientFlags
	c.register(fs)
	tokenFile := fs.String("token-file", "", "file holding the token (- for standard input)")
	transform := fs.String("transform-to", "", "validate: ask for a new token of this SAML version (1.1|2.0) instead of a status")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *tokenFile == "" {
		fmt.Fprintln(stderr, "avouch client "+cmd+": --token-file is required")
		return 2
	}
	var token []byte
	var err error
	if *tokenFile == "-" {
		token, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	} else {
		token, err = os.ReadFile(*tokenFile)
	}
	if err != nil {
		return clientError(stderr, cmd, err)
	}
	token = bytes.TrimSpace(token)
	hc, err := c.httpClient()
	if err != nil {
		return clientError(stderr, cmd, err)
	}
	requestType := map[string]string{"renew": "Renew", "validate": "Validate", "cancel": "Cancel"}[cmd]
	statusOnly := true
	if *transform != "" {
		c.o.SAML, statusOnly = *transform, false
	}
	rst, rstr, err := client.Lifecycle(context.Background(), hc, &c.o, requestType, token, statusOnly)
	c.trace(stderr, rst, rstr)
	if err != nil {
		return clientError(stderr, cmd, err)
	}
	switch cmd {
	case "renew":
		tok, err := client.ExtractToken(rstr)
		if err != nil {
			return clientError(stderr, cmd, err)
		}
		fmt.Fprintf(stdout, "%s\n", tok)
	case "validate":
		valid, _, reason, err := client.Status(rstr)
		if err != nil {
			return clientError(stderr, cmd, err)
		}
		if !statusOnly && valid {
			tok, err := client.ExtractToken(rstr)
			if err != nil {
				return clientError(stderr, cmd, err)
			}
			fmt.Fprintf(stdout, "%s\n", tok)
			return 0
		}
		fmt.Fprintln(stdout, statusLine(valid, reason))
		if !valid {
			return 3
		}
	case "cancel":
		fmt.Fprintln(stdout, "Token cancelled")
	}
	return 0
}
