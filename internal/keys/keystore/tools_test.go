package keystore

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/avouch/avouch/internal/testutil"
)

// Stores made by the real tools users have: OpenSSL 3 and Java's keytool.
// All are generated once into one t.TempDir() and shared by the subtests
// (keytool's JVM takes ~0.5-2 s a run); independent commands run in
// parallel. Nothing binary is committed.

// Passwords used below. Distinct store and key passwords where the format
// allows it, so a mix-up between the two cannot pass.
const (
	p12Pass   = "p12-secret"
	storePass = "store-secret"
	keyPass   = "key-secret"
	pemPass   = "pem-secret"
)

const dname = "CN=localhost, O=WSO2, L=Mountain View, ST=CA, C=US"

// toolJobs are sequences of commands; sequences run concurrently.
func toolJobs() [][][]string {
	// The JVM options only make keytool start faster (no JIT tiers, one
	// GC thread); they do not change what it writes.
	kt := func(args ...string) []string {
		return append([]string{"keytool", "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"}, args...)
	}
	gen := func(alg, storetype, alias, store, kp string) []string {
		args := []string{"-genkeypair", "-storetype", storetype, "-alias", alias, "-storepass", storePass,
			"-dname", "CN=" + alias + ".example.org", "-keystore", store}
		if kp != "" {
			args = append(args, "-keypass", kp)
		}
		switch alg {
		case "RSA":
			args = append(args, "-keyalg", "RSA", "-keysize", "2048")
		case "EC":
			args = append(args, "-keyalg", "EC", "-groupname", "secp256r1")
		case "DSA":
			args = append(args, "-keyalg", "DSA", "-keysize", "2048")
		}
		return kt(args...)
	}
	importCert := func(storetype, alias, file, store string) []string {
		return kt("-importcert", "-noprompt", "-storetype", storetype, "-alias", alias, "-file", file,
			"-storepass", storePass, "-keystore", store)
	}
	return [][][]string{
		// WSO2 Identity Server's wso2carbon.jks, made the way WSO2 documents,
		// then its certificate exported by keytool for comparison.
		{
			kt("-genkeypair", "-keyalg", "RSA", "-keysize", "2048", "-storetype", "JKS", "-alias", "wso2carbon",
				"-storepass", "wso2carbon", "-keypass", "wso2carbon", "-dname", dname, "-keystore", "wso2carbon.jks"),
			kt("-exportcert", "-rfc", "-alias", "wso2carbon", "-storepass", "wso2carbon", "-keystore", "wso2carbon.jks",
				"-file", "wso2carbon.crt"),
		},
		{gen("EC", "JKS", "ec-jks", "ec.jks", keyPass)},
		{gen("DSA", "JKS", "legacy-dsa", "dsa.jks", storePass)},
		{gen("RSA", "PKCS12", "rsa-p12", "rsa-keytool.p12", "")},
		{gen("EC", "PKCS12", "ec-p12", "ec-keytool.p12", "")},
		{gen("RSA", "JCEKS", "rsa-jceks", "rsa.jceks", keyPass)},
		{gen("EC", "JCEKS", "ec-jceks", "ec.jceks", keyPass)},
		// Trust stores with two relying-party certificates each.
		{importCert("JKS", "rp1", "rsa.crt", "trust.jks"), importCert("JKS", "rp2", "ec.crt", "trust.jks")},
		{importCert("PKCS12", "rp1", "rsa.crt", "trust.p12"), importCert("PKCS12", "rp2", "ec.crt", "trust.p12")},
		// A CA-signed key converted from PKCS#12 to JKS, as users migrating
		// from a CA-issued .pfx do.
		{kt("-importkeystore", "-noprompt", "-srckeystore", "chain.p12", "-srcstoretype", "PKCS12", "-srcstorepass", p12Pass,
			"-srcalias", "chained", "-destalias", "chained", "-destkeystore", "chain.jks", "-deststoretype", "JKS",
			"-deststorepass", storePass, "-destkeypass", keyPass)},
	}
}

// opensslCommands run first (they are fast), sequentially: keytool imports
// some of their output.
func opensslCommands() [][]string {
	o := func(args ...string) []string { return append([]string{"openssl"}, args...) }
	return [][]string{
		o("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out", "rsa.crt", "-subj", "/CN=rp.example.org", "-days", "30"),
		o("pkcs12", "-export", "-inkey", "rsa.key", "-in", "rsa.crt", "-name", "rp-signing", "-passout", "pass:"+p12Pass, "-out", "modern.p12"),
		o("pkcs12", "-export", "-legacy", "-inkey", "rsa.key", "-in", "rsa.crt", "-name", "rp-signing", "-passout", "pass:"+p12Pass, "-out", "legacy.p12"),
		o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ec.key", "-out", "ec.crt", "-subj", "/CN=ec.example.org", "-days", "30"),
		o("pkcs12", "-export", "-inkey", "ec.key", "-in", "ec.crt", "-name", "ec-signing", "-passout", "pass:"+p12Pass, "-out", "ec-modern.p12"),
		o("pkcs12", "-export", "-legacy", "-inkey", "ec.key", "-in", "ec.crt", "-name", "ec-signing", "-passout", "pass:"+p12Pass, "-out", "ec-legacy.p12"),
		o("pkcs12", "-export", "-inkey", "ec.key", "-in", "ec.crt", "-name", "ec-plain", "-nomac", "-keypbe", "NONE", "-certpbe", "NONE", "-passout", "pass:", "-out", "ec-plain.p12"),
		// PKCS#1 and SEC1 forms of the same keys (req writes PKCS#8).
		o("rsa", "-in", "rsa.key", "-traditional", "-out", "rsa-pkcs1.key"),
		o("ec", "-in", "ec.key", "-out", "ec-sec1.key"),
		o("pkcs8", "-topk8", "-in", "rsa.key", "-v2", "aes-256-cbc", "-passout", "pass:"+pemPass, "-out", "rsa-encrypted.key"),
		o("x509", "-in", "rsa.crt", "-outform", "DER", "-out", "rsa.der"),
		o("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "other.key"),
		o("genpkey", "-algorithm", "ED448", "-out", "ed448.key"),
		// A CA and a leaf it signs, exported with the CA as chain.
		o("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Test Root CA", "-days", "30"),
		o("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf.example.org"),
		o("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "2", "-days", "30", "-out", "leaf.crt"),
		o("pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.crt", "-certfile", "ca.crt", "-name", "chained", "-passout", "pass:"+p12Pass, "-out", "chain.p12"),
		// What a user gets converting a .p12 to PEM: Bag Attributes included.
		o("pkcs12", "-in", "modern.p12", "-passin", "pass:"+p12Pass, "-nodes", "-out", "from-p12.pem"),
	}
}

// makeStores runs the tools in a fresh directory and returns it.
func makeStores(t *testing.T) string {
	t.Helper()
	tools := map[string]string{"openssl": testutil.Tool(t, "openssl"), "keytool": testutil.Tool(t, "keytool")}
	dir := t.TempDir()
	run := func(args []string) error {
		cmd := exec.Command(tools[args[0]], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, c := range opensslCommands() {
		if err := run(c); err != nil {
			t.Fatal(err)
		}
	}
	jobs := toolJobs()
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for i, job := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, c := range job {
				if errs[i] = run(c); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Concatenations a user would make by hand.
	cat := func(out string, parts ...string) {
		var b bytes.Buffer
		for _, p := range parts {
			b.Write(readFile(t, dir, p))
		}
		if err := os.WriteFile(filepath.Join(dir, out), b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cat("rsa.pem", "rsa.key", "rsa.crt")
	cat("rsa-pkcs1.pem", "rsa.crt", "rsa-pkcs1.key")
	cat("ec.pem", "ec.key", "ec.crt")
	cat("ec-sec1.pem", "ec-sec1.key", "ec.crt")
	cat("rsa-encrypted.pem", "rsa-encrypted.key", "rsa.crt")
	cat("chain.pem", "ca.crt", "leaf.crt", "leaf.key")
	cat("mismatch.pem", "other.key", "rsa.crt")
	return dir
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// certFromFile reads the first certificate of a PEM or DER file.
func certFromFile(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	b := readFile(t, dir, name)
	if p, _ := pem.Decode(b); p != nil {
		b = p.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type wantEntry struct {
	alias string
	key   string // "RSA", "ECDSA" or "" for a certificate-only entry
	cert  string // file holding the certificate the tool wrote, or ""
	cn    string // checked when cert is ""
	chain int
}

func TestStoresMadeByRealTools(t *testing.T) {
	dir := makeStores(t)

	loads := []struct {
		name, file, format  string
		storePass, keyPass  string
		want                []wantEntry
		chainIssuerCertFile string // the CA the chain must end with
	}{
		{name: "an OpenSSL PKCS#12 in the default AES-256/PBKDF2 encoding loads with its friendlyName, key and certificate",
			file: "modern.p12", format: "pkcs12", storePass: p12Pass,
			want: []wantEntry{{alias: "rp-signing", key: "RSA", cert: "rsa.crt", chain: 1}}},
		{name: "an OpenSSL PKCS#12 in the -legacy RC2-40/3DES encoding loads with its friendlyName, key and certificate",
			file: "legacy.p12", format: "pkcs12", storePass: p12Pass,
			want: []wantEntry{{alias: "rp-signing", key: "RSA", cert: "rsa.crt", chain: 1}}},
		{name: "an OpenSSL ECDSA P-256 PKCS#12 loads in the modern encoding",
			file: "ec-modern.p12", format: "pkcs12", storePass: p12Pass,
			want: []wantEntry{{alias: "ec-signing", key: "ECDSA", cert: "ec.crt", chain: 1}}},
		{name: "an OpenSSL ECDSA P-256 PKCS#12 loads in the legacy encoding",
			file: "ec-legacy.p12", format: "pkcs12", storePass: p12Pass,
			want: []wantEntry{{alias: "ec-signing", key: "ECDSA", cert: "ec.crt", chain: 1}}},
		{name: "an OpenSSL PKCS#12 without MAC or encryption (-nomac, PBE NONE) loads with an empty password",
			file: "ec-plain.p12", format: "pkcs12",
			want: []wantEntry{{alias: "ec-plain", key: "ECDSA", cert: "ec.crt", chain: 1}}},
		{name: "an OpenSSL PKCS#12 with -certfile keeps the CA in the chain",
			file: "chain.p12", format: "pkcs12", storePass: p12Pass,
			want: []wantEntry{{alias: "chained", key: "RSA", cert: "leaf.crt", chain: 2}}, chainIssuerCertFile: "ca.crt"},
		{name: "WSO2's wso2carbon.jks as keytool makes it gives the wso2carbon RSA signing key",
			file: "wso2carbon.jks", format: "jks", storePass: "wso2carbon",
			want: []wantEntry{{alias: "wso2carbon", key: "RSA", cert: "wso2carbon.crt", chain: 1}}},
		{name: "a keytool JKS with an ECDSA P-256 key opens with its own key password",
			file: "ec.jks", format: "jks", storePass: storePass, keyPass: keyPass,
			want: []wantEntry{{alias: "ec-jks", key: "ECDSA", cn: "ec-jks.example.org", chain: 1}}},
		{name: "a keytool JKS trust store lists each imported certificate by alias",
			file: "trust.jks", format: "jks", storePass: storePass,
			want: []wantEntry{{alias: "rp1", cert: "rsa.crt", chain: 1}, {alias: "rp2", cert: "ec.crt", chain: 1}}},
		{name: "a JKS converted by keytool from a CA-issued PKCS#12 keeps its chain",
			file: "chain.jks", format: "jks", storePass: storePass, keyPass: keyPass,
			want: []wantEntry{{alias: "chained", key: "RSA", cert: "leaf.crt", chain: 2}}, chainIssuerCertFile: "ca.crt"},
		{name: "a keytool PKCS#12 with an RSA key loads by its alias",
			file: "rsa-keytool.p12", format: "pkcs12", storePass: storePass,
			want: []wantEntry{{alias: "rsa-p12", key: "RSA", cn: "rsa-p12.example.org", chain: 1}}},
		{name: "a keytool PKCS#12 with an ECDSA P-256 key loads by its alias",
			file: "ec-keytool.p12", format: "pkcs12", storePass: storePass,
			want: []wantEntry{{alias: "ec-p12", key: "ECDSA", cn: "ec-p12.example.org", chain: 1}}},
		{name: "a keytool PKCS#12 trust store keeps the aliases of its trusted certificates",
			file: "trust.p12", format: "pkcs12", storePass: storePass,
			want: []wantEntry{{alias: "rp1", cert: "rsa.crt", chain: 1}, {alias: "rp2", cert: "ec.crt", chain: 1}}},
		{name: "a keytool JCEKS with an RSA key opens with its key password",
			file: "rsa.jceks", format: "jceks", storePass: storePass, keyPass: keyPass,
			want: []wantEntry{{alias: "rsa-jceks", key: "RSA", cn: "rsa-jceks.example.org", chain: 1}}},
		{name: "a keytool JCEKS with an ECDSA P-256 key opens with its key password",
			file: "ec.jceks", format: "jceks", storePass: storePass, keyPass: keyPass,
			want: []wantEntry{{alias: "ec-jceks", key: "ECDSA", cn: "ec-jceks.example.org", chain: 1}}},
		{name: "an OpenSSL PKCS#8 RSA key with its certificate in PEM gives one key entry",
			file: "rsa.pem", format: "pem",
			want: []wantEntry{{alias: "rp.example.org", key: "RSA", cert: "rsa.crt", chain: 1}}},
		{name: "a PKCS#1 RSA key after its certificate pairs by public key",
			file: "rsa-pkcs1.pem", format: "pem",
			want: []wantEntry{{alias: "rp.example.org", key: "RSA", cert: "rsa.crt", chain: 1}}},
		{name: "an ECDSA P-256 PKCS#8 PEM key with its certificate loads",
			file: "ec.pem", format: "pem",
			want: []wantEntry{{alias: "ec.example.org", key: "ECDSA", cert: "ec.crt", chain: 1}}},
		{name: "an ECDSA P-256 SEC1 PEM key with its certificate loads",
			file: "ec-sec1.pem", format: "pem",
			want: []wantEntry{{alias: "ec.example.org", key: "ECDSA", cert: "ec.crt", chain: 1}}},
		{name: "an AES-encrypted PKCS#8 PEM key opens with the key password",
			file: "rsa-encrypted.pem", format: "pem", storePass: pemPass,
			want: []wantEntry{{alias: "rp.example.org", key: "RSA", cert: "rsa.crt", chain: 1}}},
		{name: "a PEM bundle of CA, leaf and key builds the chain leaf first",
			file: "chain.pem", format: "pem",
			want: []wantEntry{{alias: "leaf.example.org", key: "RSA", cert: "leaf.crt", chain: 2}}, chainIssuerCertFile: "ca.crt"},
		{name: "openssl pkcs12 -nodes output keeps the friendlyName as alias",
			file: "from-p12.pem", format: "pem",
			want: []wantEntry{{alias: "rp-signing", key: "RSA", cert: "rsa.crt", chain: 1}}},
		{name: "a DER certificate is a certificate-only entry named by its CN",
			file: "rsa.der", format: "der",
			want: []wantEntry{{alias: "rp.example.org", cert: "rsa.crt", chain: 1}}},
		{name: "a PEM certificate without key is a certificate-only entry",
			file: "rsa.crt", format: "pem",
			want: []wantEntry{{alias: "rp.example.org", cert: "rsa.crt", chain: 1}}},
	}
	for _, tc := range loads {
		t.Run(tc.name, func(t *testing.T) {
			data := readFile(t, dir, tc.file)
			if f := Format(data); f != tc.format {
				t.Fatalf("Format = %q, want %q", f, tc.format)
			}
			es, err := Load(data, tc.storePass, tc.keyPass)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(es) != len(tc.want) {
				t.Fatalf("got %d entries, want %d: %+v", len(es), len(tc.want), es)
			}
			// By alias: a JKS lists entries in Java's hash-table order.
			byAlias := make(map[string]Entry)
			for _, e := range es {
				byAlias[e.Alias] = e
			}
			for _, w := range tc.want {
				e, ok := byAlias[w.alias]
				if !ok {
					t.Errorf("no entry %q among %+v", w.alias, es)
					continue
				}
				if w.cert != "" && !e.Cert.Equal(certFromFile(t, dir, w.cert)) {
					t.Errorf("entry %q: the certificate is not the one in %s", e.Alias, w.cert)
				}
				if w.cert == "" && e.Cert.Subject.CommonName != w.cn {
					t.Errorf("entry %q: CN %q, want %q", e.Alias, e.Cert.Subject.CommonName, w.cn)
				}
				if len(e.Chain) != w.chain || !e.Chain[0].Equal(e.Cert) {
					t.Errorf("entry %q: chain of %d, want %d with the leaf first", e.Alias, len(e.Chain), w.chain)
				}
				if tc.chainIssuerCertFile != "" && !e.Chain[len(e.Chain)-1].Equal(certFromFile(t, dir, tc.chainIssuerCertFile)) {
					t.Errorf("entry %q: the chain does not end with %s", e.Alias, tc.chainIssuerCertFile)
				}
				switch {
				case w.key == "" && e.Key != nil:
					t.Errorf("entry %q: unexpected private key", e.Alias)
				case w.key != "" && e.Key == nil:
					t.Errorf("entry %q: no private key", e.Alias)
				case w.key != "":
					if got := e.Cert.PublicKeyAlgorithm.String(); got != w.key {
						t.Errorf("entry %q: %s key, want %s", e.Alias, got, w.key)
					}
					signAndVerify(t, e)
				}
			}
		})
	}

	truncated := func(name string) func() []byte {
		return func() []byte { b := readFile(t, dir, name); return b[:len(b)/2] }
	}
	file := func(name string) func() []byte { return func() []byte { return readFile(t, dir, name) } }
	failures := []struct {
		name               string
		data               func() []byte
		storePass, keyPass string
		signer             bool // the failure shows only when picking a signing key
		want               error
		mention            string // the error must say this
	}{
		{"a JKS opened with the wrong store password fails its integrity check",
			file("wso2carbon.jks"), "wso2carbon!", "wso2carbon", false, ErrWrongPassword, "JKS integrity check failed"},
		{"a JCEKS opened with the wrong store password fails its integrity check",
			file("rsa.jceks"), "wrong-secret", keyPass, false, ErrWrongPassword, "JCEKS integrity check failed"},
		{"a modern OpenSSL PKCS#12 opened with the wrong password fails its MAC",
			file("modern.p12"), "wrong-secret", "", false, ErrWrongPassword, "MAC"},
		{"a legacy OpenSSL PKCS#12 opened with the wrong password fails its MAC",
			file("legacy.p12"), "wrong-secret", "", false, ErrWrongPassword, "MAC"},
		{"a keytool PKCS#12 opened with the wrong password fails its MAC",
			file("ec-keytool.p12"), "wrong-secret", "", false, ErrWrongPassword, "MAC"},
		{"a JKS key entry with the wrong key password names the entry",
			file("ec.jks"), storePass, "wrong-secret", false, ErrWrongKeyPassword, `"ec-jks"`},
		{"a JKS key whose password differs from the store's needs the key password",
			file("ec.jks"), storePass, "", false, ErrWrongKeyPassword, `"ec-jks"`},
		{"a JCEKS key entry with the wrong key password names the entry",
			file("rsa.jceks"), storePass, "wrong-secret", false, ErrWrongKeyPassword, `"rsa-jceks"`},
		{"an encrypted PEM key with the wrong password",
			file("rsa-encrypted.pem"), "wrong-secret", "", false, ErrWrongKeyPassword, "encrypted private key"},
		{"a truncated JKS is malformed, not a wrong password",
			truncated("wso2carbon.jks"), "wso2carbon", "", false, ErrMalformed, "truncated"},
		{"a truncated JCEKS is malformed", truncated("ec.jceks"), storePass, keyPass, false, ErrMalformed, "truncated"},
		{"a truncated PKCS#12 is malformed", truncated("modern.p12"), p12Pass, "", false, ErrMalformed, "PKCS#12"},
		{"a truncated PEM is malformed", truncated("rsa.pem"), "", "", false, ErrMalformed, "PEM"},
		{"a truncated DER certificate is malformed", truncated("rsa.der"), "", "", false, ErrMalformed, "DER"},
		{"a PEM certificate without key cannot be imported as a signing key",
			file("rsa.crt"), "", "", true, ErrNoPrivateKey, "only certificates"},
		{"an RSA key with another key's certificate does not match it",
			file("mismatch.pem"), "", "", false, ErrKeyMismatch, "matches none"},
		{"a PEM key without any certificate says so", file("rsa.key"), "", "", false, ErrNoCertificate, "no certificate"},
		{"a DSA key made by keytool is an unsupported key algorithm",
			file("dsa.jks"), storePass, "", false, ErrUnsupportedKeyAlgorithm, "DSA"},
		{"an Ed448 key made by openssl is an unsupported key algorithm",
			file("ed448.key"), "", "", false, ErrUnsupportedKeyAlgorithm, "Ed448"},
	}
	secrets := []string{p12Pass, storePass, keyPass, pemPass, "wso2carbon!", "wrong-secret"}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			es, err := Load(tc.data(), tc.storePass, tc.keyPass)
			if tc.signer {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				_, err = FindSigner(es, "")
			}
			wantOnly(t, err, tc.want, secrets...)
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}
