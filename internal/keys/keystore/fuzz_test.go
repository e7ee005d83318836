package keystore

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

const fuzzPass = "changeit"

// FuzzLoad feeds Load every format with mutations. Load must never panic,
// every failure must be one of the package's errors (so callers can always
// tell the user which problem it is), and every entry it returns must be
// whole: a leaf first in its chain and, for keys, a key matching the leaf.
func FuzzLoad(f *testing.F) {
	caKey, leafKey := newECKey(f), newECKey(f)
	ca := newCert(f, caKey, "Fuzz CA", nil, nil)
	leaf := newCert(f, leafKey, "fuzz.example", ca, caKey)
	jks := writeJKS(f, jksMagic, fuzzPass, []jksEntryIn{
		{alias: "signing", key: leafKey, keyPass: fuzzPass, chain: []*x509.Certificate{leaf, ca}},
		{alias: "ca", chain: []*x509.Certificate{ca}},
	})
	// The fuzzer rarely keeps a SHA-1 digest valid, and the structure is
	// read before the digest is checked, so both shapes are worth seeding.
	f.Add(jks)
	f.Add(appendJKSDigest(append([]byte{0xce, 0xce, 0xce, 0xce}, jks[4:len(jks)-20]...), fuzzPass))
	f.Add(plainPFX(f, "signing", leaf, leafKey))
	f.Add(minimalPFX(f, 1))
	f.Add(leaf.Raw)
	f.Add(bytes.Join([][]byte{[]byte("Bag Attributes\n    friendlyName: x\n"), pemCertBytes(leaf), pemCertBytes(ca), pemKeyBytes(f, leafKey)}, nil))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	// Real PKCS#12 encodings when openssl is at hand (seeds only: the
	// target runs without it).
	if openssl, err := exec.LookPath("openssl"); err == nil {
		dir := f.TempDir()
		key, crt := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
		if exec.Command(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", key, "-out", crt, "-subj", "/CN=fuzz", "-days", "1").Run() == nil {
			for _, extra := range [][]string{nil, {"-legacy"}} {
				out := filepath.Join(dir, "s.p12")
				args := append([]string{"pkcs12", "-export", "-inkey", key, "-in", crt, "-name", "fz", "-passout", "pass:" + fuzzPass, "-out", out}, extra...)
				if exec.Command(openssl, args...).Run() == nil {
					if b, err := os.ReadFile(out); err == nil {
						f.Add(b)
					}
				}
			}
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Format(data)
		check := func(es []Entry, err error) {
			if err != nil {
				if es != nil {
					t.Fatalf("entries returned with error %v", err)
				}
				if !slices.ContainsFunc(allErrors, func(e error) bool { return errors.Is(err, e) }) {
					t.Fatalf("error %q is none of the package's errors", err)
				}
				return
			}
			for _, e := range es {
				if e.Alias == "" || e.Cert == nil || len(e.Chain) == 0 || e.Chain[0] != e.Cert {
					t.Fatalf("incomplete entry %+v", e)
				}
				if e.Key != nil && !matches(e.Key, e.Cert) {
					t.Fatalf("entry %q: key does not match its certificate", e.Alias)
				}
			}
		}
		check(Load(data, fuzzPass, ""))
		if isPEM(data) {
			check(LoadPEM(data))
		}
	})
}
