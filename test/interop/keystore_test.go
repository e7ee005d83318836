package interop

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// keystoreCase is a key store made by someone else's tool, to import as
// the signing key.
type keystoreCase struct {
	name string
	tool string // the tool that makes it
	// make writes the store into dir and returns its path and the PEM
	// certificate of its key as the tool itself exports it.
	make func(t *testing.T, tool, dir string) (store, cert string)
	// importArgs are the `avouch keys import` arguments besides --data-dir,
	// --file and --signing.
	importArgs []string
}

// runKeyTool runs a key store tool, failing the test with its output.
func runKeyTool(t *testing.T, tool string, args ...string) {
	t.Helper()
	if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, out)
	}
}

func opensslPKCS12(extra ...string) func(t *testing.T, openssl, dir string) (string, string) {
	return func(t *testing.T, openssl, dir string) (string, string) {
		key, cert := rsaCert(t, openssl, dir, "imported-signer")
		store := filepath.Join(dir, "signer.p12")
		args := []string{"pkcs12", "-export", "-inkey", key, "-in", cert, "-name", "avouch-signer",
			"-passout", "pass:P12-store-pw", "-out", store}
		runKeyTool(t, openssl, append(args, extra...)...)
		return store, cert
	}
}

// keytoolJKS makes a JKS the way WSO2's wso2carbon.jks is made.
func keytoolJKS(alias, storePass, keyPass string) func(t *testing.T, keytool, dir string) (string, string) {
	return func(t *testing.T, keytool, dir string) (string, string) {
		store, cert := filepath.Join(dir, alias+".jks"), filepath.Join(dir, alias+".crt")
		runKeyTool(t, keytool, "-genkeypair", "-storetype", "JKS", "-alias", alias, "-keyalg", "RSA", "-keysize", "2048",
			"-validity", "30", "-dname", "CN=localhost, O=WSO2, L=Mountain View, ST=CA, C=US",
			"-storepass", storePass, "-keypass", keyPass, "-keystore", store)
		runKeyTool(t, keytool, "-exportcert", "-rfc", "-alias", alias, "-storetype", "JKS", "-storepass", storePass,
			"-keystore", store, "-file", cert)
		return store, cert
	}
}

// TestImportedKeyStoresSignTokens imports a PKCS#12 made by openssl and a
// JKS made by Java's keytool with `avouch keys import --signing` into a
// running server: it must switch to the imported key, and its SAML 2.0 and
// 1.1 tokens must then verify in xmlsec1 and samlsign against the
// certificate the tool exported, and in neither against the server's
// previous certificate.
func TestImportedKeyStoresSignTokens(t *testing.T) {
	t.Parallel()
	testutil.Tool(t, "xmlsec1")
	testutil.Tool(t, "samlsign")
	cases := []keystoreCase{
		{name: "a PKCS#12 made by openssl with its defaults (AES-256-CBC, PBKDF2, SHA-256 MAC)", tool: "openssl",
			make: opensslPKCS12(), importArgs: []string{"--password", "P12-store-pw"}},
		{name: "a PKCS#12 made by openssl with 3DES and a SHA-1 MAC, as older Java and Windows write them", tool: "openssl",
			make:       opensslPKCS12("-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"),
			importArgs: []string{"--password", "P12-store-pw"}},
		{name: "a JKS made by keytool like WSO2's wso2carbon.jks", tool: "keytool",
			make: keytoolJKS("wso2carbon", "wso2carbon", "wso2carbon"), importArgs: []string{"--password", "wso2carbon", "--alias", "wso2carbon"}},
		{name: "a JKS made by keytool whose key password is not the store password", tool: "keytool",
			make:       keytoolJKS("signer", "Store-pw-1", "Key-pw-2"),
			importArgs: []string{"--password", "Store-pw-1", "--key-password", "Key-pw-2"}},
	}
	for _, c := range cases {
		t.Run(c.name+" imports as the signing key and then signs the tokens", func(t *testing.T) {
			t.Parallel()
			tool := testutil.Tool(t, c.tool)
			dir := t.TempDir()
			store, certFile := c.make(t, tool, dir)
			srv := startPrivateServer(t)
			oldCert := srv.CertFile

			args := append([]string{"keys", "import", "--data-dir", srv.dataDir, "--file", store, "--signing"}, c.importArgs...)
			if _, err := srv.avouch(context.Background(), args...); err != nil {
				t.Fatal(err)
			}
			wantDER := certDER(t, certFile)
			active, err := srv.avouch(context.Background(), "keys", "cert", "--data-dir", srv.dataDir)
			if err != nil {
				t.Fatal(err)
			}
			activeFile := filepath.Join(dir, "active.crt")
			if err := os.WriteFile(activeFile, active, 0o644); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(certDER(t, activeFile), wantDER) {
				t.Fatalf("after the import `avouch keys cert` prints another certificate:\n%s", active)
			}

			// The running server switches within about a second: wait for
			// a token whose signature carries the imported certificate.
			wantB64 := []byte(base64.StdEncoding.EncodeToString(wantDER))
			took := waitUntil(t, 5*time.Second, "the running server signs with the imported key", func() (bool, string) {
				status, body, err := issueRaw(srv, rst{User: textUser.Name, Password: textUser.Password})
				return err == nil && status == 200 && bytes.Contains(body, wantB64), string(body)
			})
			t.Logf("the server signed with the imported key %v after `avouch keys import`", took.Round(100*time.Millisecond))

			for _, v := range samlVersions {
				_, token, tokenType, _ := issueToken(t, srv, rst{User: textUser.Name, Password: textUser.Password, TokenType: v.tokenType})
				// Verified against the certificate the tool exported (the
				// verifiers pin it; KeyInfo is not trusted).
				verifyToken(t, &server{CertFile: certFile}, token, tokenType,
					expect{SAML: v.saml, User: textUser.Name, Audience: "urn:interop:rp", Lifetime: defaultLifetime})
				file := filepath.Join(t.TempDir(), "token.xml")
				if err := os.WriteFile(file, token, 0o644); err != nil {
					t.Fatal(err)
				}
				for _, vf := range signatureVerifiers(t, &server{CertFile: oldCert}, v.saml) {
					if out, err := vf.run(file); err == nil {
						t.Errorf("%s accepts the SAML %s token with the server's previous certificate:\n%s", vf.name, v.saml, out)
					}
				}
			}
		})
	}
}
