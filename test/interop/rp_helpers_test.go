package interop

// Helpers of the relying-party, holder-of-key and keystore tests
// (rp_test.go, hok_test.go, keystore_test.go): servers of a test's own,
// RSA keys made by openssl, and the relying party's side of XML Encryption
// done with xmlsec1 and openssl.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Namespaces and algorithm URIs of XML Encryption.
const (
	xencNS   = "http://www.w3.org/2001/04/xmlenc#"
	xenc11NS = "http://www.w3.org/2009/xmlenc11#"
	dsigNS   = "http://www.w3.org/2000/09/xmldsig#"
	xsiNS    = "http://www.w3.org/2001/XMLSchema-instance"
)

// startPrivateServer starts a server for one test (one that registers
// relying parties, changes configuration or replaces the signing key, none
// of which the shared server may see) with textUser as its account. It is
// stopped, and its log shown on failure, when the test ends.
func startPrivateServer(t *testing.T) *server {
	t.Helper()
	srv, err := startServer(t.TempDir())
	if err != nil {
		t.Fatalf("start avouch: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", tail(srv.logs(), 60))
		}
		if err := srv.stop(); err != nil {
			t.Errorf("stop avouch: %v", err)
		}
	})
	if err := srv.addUser(textUser); err != nil {
		t.Fatal(err)
	}
	if err := waitForUser(srv, textUser); err != nil {
		t.Fatal(err)
	}
	return srv
}

// addRP runs `avouch rp add --data-dir DIR ARGS...`.
func addRP(t *testing.T, srv *server, args ...string) {
	t.Helper()
	if _, err := srv.avouch(context.Background(), append([]string{"rp", "add", "--data-dir", srv.dataDir}, args...)...); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond every 100 ms until it reports true or timeout passes;
// then the test fails with cond's last explanation. It returns how long it
// took.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		last = why
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v; last: %s", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rsaCert makes an RSA-2048 key and a self-signed certificate with openssl
// in dir: dir/name.key (PKCS#8 PEM, unencrypted) and dir/name.crt (PEM).
func rsaCert(t *testing.T, openssl, dir, name string) (keyPath, certPath string) {
	t.Helper()
	keyPath, certPath = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".crt")
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath,
		"-out", certPath, "-days", "2", "-subj", "/CN="+name).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req -x509 -newkey rsa:2048: %v\n%s", err, out)
	}
	return keyPath, certPath
}

// certDER returns the DER bytes of the first certificate of a PEM file.
func certDER(t *testing.T, certPath string) []byte {
	t.Helper()
	raw, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	const begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s holds no PEM certificate:\n%s", certPath, raw)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s[i+len(begin):j]), ""))
	if err != nil {
		t.Fatalf("%s: %v", certPath, err)
	}
	return der
}

// xmlsec1Decrypt runs, as a relying party's operator would,
//
//	xmlsec1 --decrypt KEYARGS --output plain.xml encrypted.xml
//
// and returns plain.xml, xmlsec1's messages and the exact command line.
func xmlsec1Decrypt(xmlsec1, dir string, doc []byte, keyArgs ...string) (plain, msg []byte, command string, err error) {
	in, out := filepath.Join(dir, "encrypted.xml"), filepath.Join(dir, "plain.xml")
	os.Remove(out)
	if err := os.WriteFile(in, doc, 0o644); err != nil {
		return nil, nil, "", err
	}
	args := append(append([]string{"--decrypt"}, keyArgs...), "--output", out, in)
	command = "xmlsec1 " + strings.Join(args, " ")
	msg, err = exec.Command(xmlsec1, args...).CombinedOutput()
	if err != nil {
		return nil, msg, command, err
	}
	plain, err = os.ReadFile(out)
	return plain, msg, command, err
}

// xmlsec1Errors keeps xmlsec1's error lines without the noise of its
// attempt to verify the self-signed RP certificate found in KeyInfo (which
// it reports and then ignores).
func xmlsec1Errors(msg []byte) string {
	var keep []string
	for _, l := range strings.Split(string(msg), "\n") {
		if strings.Contains(l, "xmlSecOpenSSLX509StoreVerify") || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// opensslOAEPDecrypt decrypts an RSA-OAEP ciphertext with
//
//	openssl pkeyutl -decrypt -inkey KEY -pkeyopt rsa_padding_mode:oaep \
//	  -pkeyopt rsa_oaep_md:MD -pkeyopt rsa_mgf1_md:MGF1
//
// an implementation independent of ours and of xmlsec1.
func opensslOAEPDecrypt(openssl, dir, keyPath string, ct []byte, md, mgf1 string) ([]byte, error) {
	in, out := filepath.Join(dir, "wrapped.bin"), filepath.Join(dir, "unwrapped.bin")
	os.Remove(out)
	if err := os.WriteFile(in, ct, 0o644); err != nil {
		return nil, err
	}
	msg, err := exec.Command(openssl, "pkeyutl", "-decrypt", "-inkey", keyPath, "-in", in, "-out", out,
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+mgf1).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("openssl pkeyutl -decrypt (OAEP %s, MGF1 %s): %v\n%s", md, mgf1, err, msg)
	}
	return os.ReadFile(out)
}

var (
	reXMLDecl            = regexp.MustCompile(`^<\?xml[^>]*\?>`)
	reEncryptedAssertion = regexp.MustCompile(`(?s)^<(?:[\w.-]+:)?EncryptedAssertion(?:\s[^>]*)?>(.*)</(?:[\w.-]+:)?EncryptedAssertion\s*>$`)
)

// decryptedAssertion cuts the assertion out of what xmlsec1 wrote: it
// replaces the EncryptedData by the decrypted element and writes the whole
// document, an XML declaration first; for SAML 2.0 the assertion is then
// the only child of saml2:EncryptedAssertion.
func decryptedAssertion(plain []byte) ([]byte, error) {
	s := bytes.TrimSpace(reXMLDecl.ReplaceAll(bytes.TrimSpace(plain), nil))
	if m := reEncryptedAssertion.FindSubmatch(s); m != nil {
		s = bytes.TrimSpace(m[1])
	}
	if !bytes.HasPrefix(s, []byte("<")) || !bytes.Contains(s[:min(len(s), 200)], []byte("Assertion")) {
		return nil, fmt.Errorf("xmlsec1's output is not an assertion:\n%.600s", plain)
	}
	return s, nil
}

// onlyElem returns the single descendant of n named {space}local.
func onlyElem(n *node, space, local string) (*node, error) {
	found := n.find(space, local)
	if len(found) != 1 {
		return nil, fmt.Errorf("%d {%s}%s elements, want 1", len(found), space, local)
	}
	return found[0], nil
}

// attrNS returns the value of n's attribute {space}local.
func attrNS(n *node, space, local string) string {
	for _, a := range n.Attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// b64Text decodes the base64 text of n, ignoring whitespace.
func b64Text(n *node) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(n.Text), ""))
}

// childAlgorithm returns the Algorithm of n's child {space}local, "" if n has no
// such child.
func childAlgorithm(n *node, space, local string) string {
	for _, c := range n.Children {
		if c.Name.Space == space && c.Name.Local == local {
			return c.attr("Algorithm")
		}
	}
	return ""
}

// issueRaw posts a hand-written Bearer RST and returns the RSTR (or fault).
func issueRaw(srv *server, r rst) (int, []byte, error) {
	return post(srv.STS, r.envelope(), r.contentType())
}

// issueToken posts r and returns the parsed RSTR and the text of its
// RequestedSecurityToken, failing the test on any fault.
func issueToken(t *testing.T, srv *server, r rst) (rstr *node, token []byte, tokenType string, body []byte) {
	t.Helper()
	status, body, err := issueRaw(srv, r)
	if err != nil || status != 200 {
		t.Fatalf("issue for %q: HTTP %d %v\n%.3000s", r.AppliesTo, status, err, body)
	}
	rstr, err = parseStandalone(body)
	if err != nil {
		t.Fatalf("RSTR: %v\n%s", err, body)
	}
	token, tokenType, err = extractToken(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return rstr, token, tokenType, body
}

var errNotEncrypted = errors.New("the token is not encrypted")

// encryptedDataOf returns the xenc:EncryptedData of an encrypted token
// (SAML 2.0: inside saml2:EncryptedAssertion; SAML 1.1: the token itself).
func encryptedDataOf(token []byte, saml string) (*node, error) {
	root, err := parseStandalone(token)
	if err != nil {
		return nil, fmt.Errorf("the encrypted token cut from the RSTR by text is not a standalone document: %w", err)
	}
	if saml == "2.0" {
		if root.Name.Space != nsSAML2 || root.Name.Local != "EncryptedAssertion" {
			return nil, fmt.Errorf("%w: root is {%s}%s, want saml2:EncryptedAssertion", errNotEncrypted, root.Name.Space, root.Name.Local)
		}
		if len(root.Children) != 1 || root.Children[0].Name.Space != xencNS || root.Children[0].Name.Local != "EncryptedData" {
			return nil, errors.New("saml2:EncryptedAssertion does not hold exactly one xenc:EncryptedData")
		}
		return root.Children[0], nil
	}
	if root.Name.Space != xencNS || root.Name.Local != "EncryptedData" {
		return nil, fmt.Errorf("%w: root is {%s}%s, want a bare xenc:EncryptedData", errNotEncrypted, root.Name.Space, root.Name.Local)
	}
	return root, nil
}
