package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/keys/keystore"
	"github.com/avouch/avouch/internal/registry"
)

const rpUsage = `usage:
  avouch rp add --endpoint URL [--endpoint URL]... [--pattern REGEXP]... (--cert-file PEM | --cert-alias A)
                [--name N] [--encrypt] [--data-encryption aes256-cbc|aes128-gcm|…] [--key-transport rsa-oaep-mgf1p|rsa-oaep-sha256]
                [--token-type saml2.0|saml1.1] [--lifetime 10m] [--signature-algorithm rsa-sha256] [--nameid-format URI]
                [--claim URI]... [--claim-map LOCAL=RP]... [--key-type Bearer|SymmetricKey|PublicKey]...
                [--delegate CALLER=SUBJECT[,SUBJECT...]]...
  avouch rp list
  avouch rp remove NAME
(each also takes --data-dir / --database)
`

func runRP(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rpUsage)
		return 2
	}
	switch args[0] {
	case "add":
		return rpAdd(args[1:], stdout, stderr)
	case "list", "remove":
		return rpListRemove(args[0], args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, rpUsage)
	return 2
}

func rpAdd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch rp add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	var endpoints, patterns, claims, claimMap, keyTypes, delegations multiFlag
	var t registry.Token
	var lifetime time.Duration
	name := fs.String("name", "", "service provider name (default: derived from the first endpoint)")
	desc := fs.String("description", "", "description")
	certFile := fs.String("cert-file", "", "the RP's certificate (PEM or DER); stored in the trust store under --cert-alias (default: the name)")
	fs.Var(&endpoints, "endpoint", "AppliesTo address matched exactly (repeatable)")
	fs.Var(&patterns, "pattern", "regular expression matched against the whole AppliesTo (repeatable)")
	fs.StringVar(&t.CertAlias, "cert-alias", "", "alias of the RP's certificate in the trust store")
	fs.BoolVar(&t.Encrypt, "encrypt", false, "encrypt tokens for the RP's certificate")
	fs.StringVar(&t.DataEncryption, "data-encryption", "", "aes256-cbc (default), aes128-cbc, aes192-cbc, aes128-gcm, aes192-gcm, aes256-gcm")
	fs.StringVar(&t.KeyTransport, "key-transport", "", "rsa-oaep-mgf1p (default), rsa-oaep-sha256, rsa-oaep-sha1")
	fs.StringVar(&t.TokenType, "token-type", "", "default token type for this RP: saml2.0 or saml1.1")
	fs.DurationVar(&lifetime, "lifetime", 0, "default token lifetime for this RP")
	fs.StringVar(&t.SignatureAlgorithm, "signature-algorithm", "", "rsa-sha256, rsa-sha512, rsa-sha1")
	fs.StringVar(&t.DigestAlgorithm, "digest-algorithm", "", "sha256, sha512, sha1")
	fs.StringVar(&t.NameIDFormat, "nameid-format", "", "NameID Format URI")
	fs.BoolVar(&t.DefaultNamespace, "default-namespace", false, "ADFS-style assertions in the default namespace")
	fs.Var(&claims, "claim", "claim URI always included (repeatable)")
	fs.Var(&claimMap, "claim-map", "LOCAL-URI=RP-URI rename (repeatable)")
	fs.Var(&keyTypes, "key-type", "allowed key type (repeatable; default all)")
	fs.Var(&delegations, "delegate", "CALLER=SUBJECT[,SUBJECT...]: CALLER may get tokens for this RP ActAs/OnBehalfOf those subjects (* wildcards; repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	t.Lifetime, t.AllowedKeyTypes = registry.Duration(lifetime), keyTypes
	for _, d := range delegations {
		caller, subjects, ok := strings.Cut(d, "=")
		if !ok || caller == "" || subjects == "" {
			fmt.Fprintf(stderr, "avouch rp add: --delegate %q must be CALLER=SUBJECT[,SUBJECT...]\n", d)
			return 2
		}
		t.Delegation = append(t.Delegation, registry.DelegationRule{Caller: caller, Subjects: strings.Split(subjects, ",")})
	}
	mapping, err := pairs(claimMap, "--claim-map")
	if err != nil {
		fmt.Fprintln(stderr, "avouch rp add:", err)
		return 2
	}
	sp := &registry.ServiceProvider{Name: *name, Description: *desc,
		WSTrust: &registry.WSTrust{Endpoints: endpoints, Patterns: patterns, Token: t},
		Claims:  registry.ClaimConfig{Always: claims, Mapping: mapping}}
	if sp.Name == "" && len(endpoints) > 0 {
		sp.Name = nameFromEndpoint(endpoints[0])
	}
	if *certFile != "" && t.CertAlias == "" {
		sp.WSTrust.Token.CertAlias = sp.Name
	}
	if err := sp.Validate(); err != nil {
		fmt.Fprintln(stderr, "avouch rp add:", err)
		return 2
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch rp add:", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	trust := keys.TrustStore{Store: st}
	if *certFile != "" {
		raw, err := os.ReadFile(*certFile)
		if err != nil {
			fmt.Fprintln(stderr, "avouch rp add:", err)
			return 1
		}
		entries, err := keystore.Load(raw, "", "")
		if err != nil || len(entries) == 0 {
			fmt.Fprintf(stderr, "avouch rp add: %s holds no certificate: %v\n", *certFile, err)
			return 2
		}
		if err := trust.Add(ctx, sp.WSTrust.Token.CertAlias, entries[0].Cert); err != nil {
			fmt.Fprintln(stderr, "avouch rp add:", err)
			return 1
		}
	} else if sp.WSTrust.Token.CertAlias != "" {
		if _, err := trust.Certificate(ctx, sp.WSTrust.Token.CertAlias); err != nil {
			fmt.Fprintf(stderr, "avouch rp add: no certificate %q in the trust store (avouch keys import --trusted …)\n", sp.WSTrust.Token.CertAlias)
			return 2
		}
	}
	if err := registry.New(st).Put(ctx, sp); err != nil {
		fmt.Fprintln(stderr, "avouch rp add:", err)
		return 2
	}
	fmt.Fprintf(stdout, "service provider %s saved (endpoints: %s)\n", sp.Name, strings.Join(endpoints, ", "))
	return 0
}

// nameFromEndpoint makes a readable service provider name from an address.
func nameFromEndpoint(e string) string {
	r := strings.NewReplacer("https://", "", "http://", "", "urn:", "", "/", "-", ":", "-", "?", "-", "&", "-", "=", "-")
	n := strings.Trim(r.Replace(e), "-. ")
	if len(n) > 100 {
		n = n[:100]
	}
	if n == "" {
		n = "rp"
	}
	return n
}

func rpListRemove(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch rp "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data dataFlags
	data.register(fs)
	if err := parseInterleaved(fs, args); err != nil {
		return 2
	}
	if (cmd == "list") != (fs.NArg() == 0) {
		fmt.Fprint(stderr, rpUsage)
		return 2
	}
	_, st, _, err := data.open()
	if err != nil {
		fmt.Fprintln(stderr, "avouch rp:", err)
		return 1
	}
	defer st.Close()
	ctx := context.Background()
	reg := registry.New(st)
	if cmd == "remove" {
		if err := reg.Delete(ctx, fs.Arg(0)); err != nil {
			fmt.Fprintln(stderr, "avouch rp remove:", err)
			return 1
		}
		fmt.Fprintf(stdout, "service provider %s removed\n", fs.Arg(0))
		return 0
	}
	if _, err := reg.Reload(ctx); err != nil {
		fmt.Fprintln(stderr, "avouch rp list:", err)
		return 1
	}
	for _, sp := range reg.List() {
		var eps []string
		enc := ""
		if sp.WSTrust != nil {
			eps = append(sp.WSTrust.Endpoints, sp.WSTrust.Patterns...)
			if sp.WSTrust.Token.Encrypt {
				enc = " encrypt(" + sp.WSTrust.Token.CertAlias + ")"
			}
		}
		fmt.Fprintf(stdout, "%s\t%s%s\n", sp.Name, strings.Join(eps, " "), enc)
	}
	return 0
}
