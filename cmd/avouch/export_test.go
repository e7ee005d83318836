package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// call runs a command in-process and returns its output and exit code.
func call(t *testing.T, cmd command, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cmd(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func mustCall(t *testing.T, cmd command, args ...string) string {
	t.Helper()
	out, errOut, code := call(t, cmd, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

func writeCert(t *testing.T, dir, cn string) string {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, cn+".pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExportThenApplyIntoAnEmptyDataDirIsByteForByteTheSame(t *testing.T) {
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	t.Setenv("AVOUCH_MASTER_KEY", base64.StdEncoding.EncodeToString(mk))
	work, src, dst := t.TempDir(), t.TempDir(), t.TempDir()
	// A configuration made with the other commands.
	mustCall(t, runUser, "add", "--data-dir", src, "--password", "Alice#pw-1", "--role", "sts", "--allow-digest",
		"--claim", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress=alice@example.test", "alice")
	mustCall(t, runUser, "add", "--data-dir", src, "--password", "Admin#pw-1", "--role", "admin", "admin")
	mustCall(t, runRP, "add", "--data-dir", src, "--name", "Payroll", "--endpoint", "https://payroll.example/",
		"--cert-file", writeCert(t, work, "payroll.example"), "--encrypt", "--token-type", "saml1.1", "--lifetime", "10m")
	mustCall(t, runKeys, "import", "--data-dir", src, "--file", writeCert(t, work, "spare.example"), "--alias", "spare")
	mustCall(t, runConfig, "set", "--data-dir", src, "issuer", "https://idp.example.test")
	mustCall(t, runConfig, "set", "--data-dir", src, "allowed_roles", "admin,sts")
	mustCall(t, runUserstore, "add", "ldap", "--data-dir", src, "--domain", "corp", "--url", "ldap://127.0.0.1:389",
		"--bind-dn", "cn=svc,dc=example,dc=test", "--bind-password", "Bind#secret", "--user-base", "ou=people,dc=example,dc=test", "--group-base", "ou=groups,dc=example,dc=test",
		"--role-map", "sts-users=sts")

	file := filepath.Join(work, "avouch.yaml")
	mustCall(t, runExport, "--data-dir", src, "-o", file)
	first, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v, want 0600", fi.Mode().Perm())
	}
	for _, secret := range []string{"Alice#pw-1", "Admin#pw-1", "Bind#secret"} {
		if bytes.Contains(first, []byte(secret)) {
			t.Fatalf("the export holds %q in clear", secret)
		}
	}
	out := mustCall(t, runApply, "-f", file, "--data-dir", dst)
	if !strings.Contains(out, "created service provider Payroll") || !strings.Contains(out, "created user alice") {
		t.Fatalf("apply reported:\n%s", out)
	}
	second := mustCall(t, runExport, "--data-dir", dst)
	if second != string(first) {
		t.Fatalf("export → apply → export differs:\n--- first\n%s\n--- second\n%s", first, second)
	}
	if out := mustCall(t, runApply, "-f", file, "--data-dir", dst); !strings.Contains(out, "no changes") {
		t.Fatalf("a second apply changed things:\n%s", out)
	}
	t.Run("a bad document changes nothing and says where it is wrong", func(t *testing.T) {
		bad := filepath.Join(work, "bad.yaml")
		doc := strings.Replace(string(first), "cert_alias: Payroll", "cert_alias: nope", 1)
		doc = strings.Replace(doc, "  - name: Payroll", "  - name: Payroll\n    description: changed", 1)
		if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := call(t, runApply, "-f", bad, "--data-dir", dst)
		if code != 2 || !strings.Contains(errOut, "nothing was changed") || !strings.Contains(errOut, "service_providers[0].wstrust.token.cert_alias") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if again := mustCall(t, runExport, "--data-dir", dst); again != string(first) {
			t.Fatal("a refused apply changed the configuration")
		}
	})
	t.Run("apply reads standard input and names usage errors", func(t *testing.T) {
		if _, _, code := call(t, runApply, "--data-dir", dst); code != 2 {
			t.Fatalf("apply without -f: exit %d", code)
		}
		r, w, _ := os.Pipe()
		old := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = old }()
		go func() { _, _ = w.Write(first); w.Close() }()
		if out := mustCall(t, runApply, "-f", "-", "--data-dir", dst); !strings.Contains(out, "no changes") {
			t.Fatalf("apply -f -: %s", out)
		}
	})
}
