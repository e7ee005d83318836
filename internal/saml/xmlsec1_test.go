package saml

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/testutil"
)

// xmlsec1, the reference implementation, verifies what our canonical
// builders sign — for ECDSA too, whose SignatureValue must be r‖s, not DER —
// and refuses the same token with one changed byte.
func TestXmlsec1VerifiesOurSignaturesIncludingECDSA(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name     string
		key      crypto.Signer
		sig, dig string
	}{
		{"RSA-SHA256", rsaKey, AlgRSASHA256, AlgSHA256},
		{"RSA-SHA512", rsaKey, AlgRSASHA512, AlgSHA512},
		{"ECDSA-SHA256 (P-256)", ecKey, AlgECDSASHA256, AlgSHA256},
	}
	dir := t.TempDir()
	for _, c := range cases {
		for _, v := range []struct {
			name, idAttr, ns string
			build            func(*Signer, *Assertion) ([]byte, error)
		}{{"SAML 2.0", "ID", NS20, (*Signer).Build20}, {"SAML 1.1", "AssertionID", NS11, (*Signer).Build11}} {
			t.Run(v.name+" signed "+c.name, func(t *testing.T) {
				cert := testCert(t, c.key, c.key)
				certFile := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".pem")
				if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
					t.Fatal(err)
				}
				s, err := NewSigner(c.key, cert, c.sig, c.dig)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := v.build(s, testAssertion(false))
				if err != nil {
					t.Fatal(err)
				}
				verify := func(doc []byte) error {
					f := filepath.Join(dir, "tok.xml")
					if err := os.WriteFile(f, doc, 0o600); err != nil {
						t.Fatal(err)
					}
					out, err := exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "empty,same-doc",
						"--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", certFile,
						"--id-attr:"+v.idAttr, v.ns+":Assertion", f).CombinedOutput()
					if err != nil {
						return &exec.ExitError{Stderr: out}
					}
					return nil
				}
				if err := verify(tok); err != nil {
					t.Fatalf("xmlsec1 refused our token: %s", err.(*exec.ExitError).Stderr)
				}
				if err := verify([]byte(strings.Replace(string(tok), "urn:rp:one", "urn:rp:onf", 1))); err == nil {
					t.Fatal("xmlsec1 accepted a tampered token")
				}
			})
		}
	}
}
