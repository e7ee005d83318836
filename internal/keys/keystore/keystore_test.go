package keystore

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// Tests here need no external tool: stores are written in Go (helpers_test.go).
// tools_test.go loads stores made by openssl and keytool.

func TestFormatIsDetectedFromContent(t *testing.T) {
	key := newECKey(t)
	cert := newCert(t, key, "format.example", nil, nil)
	jks := writeJKS(t, jksMagic, "changeit", []jksEntryIn{{alias: "a", chain: []*x509.Certificate{cert}}})
	pfx := minimalPFX(t, 1)
	random := make([]byte, 512)
	rand.NewChaCha8([32]byte{1}).Read(random[1:]) // [0]=0 keeps it off any magic
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"a PEM certificate is pem", pemCertBytes(cert), "pem"},
		{"PEM after leading text (openssl Bag Attributes) is still pem", append([]byte("Bag Attributes\n    friendlyName: x\n"), pemCertBytes(cert)...), "pem"},
		{"a DER certificate is der", cert.Raw, "der"},
		{"a truncated DER certificate is still der, so Load can say truncated", cert.Raw[:40], "der"},
		{"a PKCS#12 PFX is pkcs12", pfx, "pkcs12"},
		{"a truncated PKCS#12 is still pkcs12", pfx[:10], "pkcs12"},
		{"the FEEDFEED magic is jks", jks, "jks"},
		{"the CECECECE magic is jceks", append([]byte{0xce, 0xce, 0xce, 0xce}, jks[4:]...), "jceks"},
		{"random bytes are unknown", random, "unknown"},
		{"empty input is unknown", nil, "unknown"},
		{"a DER SEQUENCE that is neither certificate nor PFX is unknown", []byte{0x30, 0x03, 0x02, 0x01, 0x05}, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Format(tc.data); got != tc.want {
				t.Fatalf("Format = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGoWrittenJKSRoundTrips(t *testing.T) {
	caKey, leafKey := newECKey(t), newECKey(t)
	ca := newCert(t, caKey, "Test CA", nil, nil)
	leaf := newCert(t, leafKey, "leaf.example", ca, caKey)
	rp := newCert(t, newECKey(t), "rp.example", nil, nil)
	store := writeJKS(t, jksMagic, "storepass", []jksEntryIn{
		{alias: "signing", key: leafKey, keyPass: "keypass", chain: []*x509.Certificate{leaf, ca}},
		{alias: "rp", chain: []*x509.Certificate{rp}},
	})

	t.Run("key and trusted entries come back in order with their chain", func(t *testing.T) {
		es, err := Load(store, "storepass", "keypass")
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].Alias != "signing" || es[1].Alias != "rp" {
			t.Fatalf("entries = %+v", es)
		}
		if len(es[0].Chain) != 2 || !es[0].Chain[1].Equal(ca) || !es[0].Cert.Equal(leaf) {
			t.Fatal("the chain is not leaf, CA")
		}
		if es[1].Key != nil || !es[1].Cert.Equal(rp) {
			t.Fatal("the trusted entry is not the bare rp certificate")
		}
		signAndVerify(t, es[0])
	})
	t.Run("a JCEKS file with JKS-protected keys loads too", func(t *testing.T) {
		jceks := writeJKS(t, jceksMagic, "storepass", []jksEntryIn{{alias: "k", key: leafKey, keyPass: "keypass", chain: []*x509.Certificate{leaf}}})
		if _, err := Load(jceks, "storepass", "keypass"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the wrong store password fails the integrity check", func(t *testing.T) {
		_, err := Load(store, "Storepass", "keypass")
		wantOnly(t, err, ErrWrongPassword, "Storepass", "keypass")
		if !strings.Contains(err.Error(), "integrity") {
			t.Fatalf("error %q does not say the integrity check failed", err)
		}
	})
	t.Run("the wrong key password names the entry", func(t *testing.T) {
		_, err := Load(store, "storepass", "nope-nope")
		wantOnly(t, err, ErrWrongKeyPassword, "storepass", "nope-nope")
		if !strings.Contains(err.Error(), `"signing"`) {
			t.Fatalf("error %q does not name the entry", err)
		}
	})
	t.Run("a key stored with another key's certificate is a mismatch", func(t *testing.T) {
		bad := writeJKS(t, jksMagic, "storepass", []jksEntryIn{{alias: "bad", key: leafKey, keyPass: "storepass", chain: []*x509.Certificate{rp}}})
		_, err := Load(bad, "storepass", "")
		wantOnly(t, err, ErrKeyMismatch, "storepass")
	})
	t.Run("every truncation is reported as malformed, never as a password problem", func(t *testing.T) {
		for n := range len(store) {
			_, err := Load(store[:n], "storepass", "keypass")
			if n < 4 {
				wantOnly(t, err, ErrUnsupportedFormat)
				continue
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated to %d bytes: %v", n, err)
			}
		}
	})
	t.Run("bytes after the digest are refused", func(t *testing.T) {
		_, err := Load(append(append([]byte(nil), store...), 0), "storepass", "keypass")
		wantOnly(t, err, ErrMalformed)
	})
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHostileInputsAreRefusedCheaply(t *testing.T) {
	header := func(magic, version, count uint32, rest ...byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, magic)
		b = binary.BigEndian.AppendUint32(b, version)
		b = binary.BigEndian.AppendUint32(b, count)
		return append(b, rest...)
	}
	// entry: tag 1 (key), alias "a", timestamp, then the given key length.
	keyEntry := func(keyLen uint32) []byte {
		b := []byte{0, 0, 0, 1, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0}
		return binary.BigEndian.AppendUint32(b, keyLen)
	}
	padded := func(b []byte) []byte { return append(b, make([]byte, 64)...) }
	chainEntry := append(keyEntry(0), 0x7f, 0xff, 0xff, 0xff) // empty key, 2^31-1 certificates

	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"an input over 10 MiB is refused before parsing", make([]byte, MaxInputSize+1), ErrTooLarge},
		{"a JKS claiming 4 billion entries", padded(header(jksMagic, 2, 0xffffffff)), ErrLimit},
		{"a JKS claiming more entries than its bytes can hold", header(jksMagic, 2, 5000, make([]byte, 100)...), ErrMalformed},
		{"a JKS key of 4 GiB", padded(header(jksMagic, 2, 1, keyEntry(0xfffffff0)...)), ErrMalformed},
		{"a JKS chain of 2 billion certificates", padded(header(jksMagic, 2, 1, chainEntry...)), ErrLimit},
		{"a JKS alias longer than the file", header(jksMagic, 2, 1, append([]byte{0, 0, 0, 2, 0xff, 0xff}, make([]byte, 60)...)...), ErrMalformed},
		{"a JKS of an unknown version", padded(header(jksMagic, 7, 0)), ErrUnsupported},
		{"a JCEKS secret-key entry (Java-serialized) is named, not misread", padded(header(jceksMagic, 2, 1, 0, 0, 0, 3, 0, 1, 's', 0, 0, 0, 0, 0, 0, 0, 0)), ErrUnsupported},
		{"a PKCS#12 MAC asking for 2^30 iterations", minimalPFX(t, 1<<30), ErrLimit},
		{"a PKCS#12 MAC with zero iterations", minimalPFX(t, 0), ErrLimit},
		{"random bytes", func() []byte {
			b := make([]byte, 4096)
			rand.NewChaCha8([32]byte{2}).Read(b[1:])
			return b
		}(), ErrUnsupportedFormat},
		{"a PEM block cut in the middle", []byte("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU"), ErrMalformed},
		{"PEM with neither certificate nor key", pem2("PUBLIC KEY", []byte{1, 2, 3}), ErrNoEntries},
		{"more than 10,000 PEM blocks", bytes.Repeat([]byte("-----BEGIN X-----\n-----END X-----\n"), MaxEntries+1), ErrLimit},
		{"an OpenSSH private key is named as unsupported", pem2("OPENSSH PRIVATE KEY", []byte{1}), ErrUnsupported},
		{"a legacy Proc-Type encrypted PEM key is named as unsupported", []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = Load(tc.data, "changeit", "") })
			wantOnly(t, err, tc.want, "changeit")
			if n > 4<<20 {
				t.Fatalf("allocated %d bytes for a hostile input", n)
			}
		})
	}
}

func pem2(typ string, der []byte) []byte {
	return []byte("-----BEGIN " + typ + "-----\n" + b64(der) + "\n-----END " + typ + "-----\n")
}

func TestPEM(t *testing.T) {
	caKey, leafKey, otherKey := newECKey(t), newECKey(t), newECKey(t)
	ca := newCert(t, caKey, "Test CA", nil, nil)
	leaf := newCert(t, leafKey, "leaf.example", ca, caKey)
	other := newCert(t, otherKey, "other.example", nil, nil)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	t.Run("a key with leaf and CA in any order gives one entry, chain leaf first", func(t *testing.T) {
		es, err := LoadPEM(cat(pemCertBytes(ca), pemKeyBytes(t, leafKey), pemCertBytes(leaf)))
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || len(es[0].Chain) != 2 || !es[0].Chain[0].Equal(leaf) || !es[0].Chain[1].Equal(ca) {
			t.Fatalf("entries = %+v", es)
		}
		signAndVerify(t, es[0])
	})
	t.Run("certificates no key uses stay as trusted entries", func(t *testing.T) {
		es, err := LoadPEM(cat(pemKeyBytes(t, leafKey), pemCertBytes(leaf), pemCertBytes(ca), pemCertBytes(other)))
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[1].Key != nil || !es[1].Cert.Equal(other) {
			t.Fatalf("entries = %+v", es)
		}
	})
	t.Run("openssl's Bag Attributes friendlyName becomes the alias", func(t *testing.T) {
		es, err := LoadPEM(cat([]byte("Bag Attributes\n    friendlyName: my-rp\nsubject=CN = other.example\n"), pemCertBytes(other)))
		if err != nil || es[0].Alias != "my-rp" {
			t.Fatalf("entries = %+v, %v", es, err)
		}
	})
	t.Run("certificates with the same CN get distinct aliases", func(t *testing.T) {
		twin := newCert(t, newECKey(t), "other.example", nil, nil)
		es, err := LoadPEM(cat(pemCertBytes(other), pemCertBytes(twin)))
		if err != nil || es[0].Alias != "other.example" || es[1].Alias != "other.example-2" {
			t.Fatalf("entries = %+v, %v", es, err)
		}
	})
	t.Run("a certificate without its key cannot become a signing key", func(t *testing.T) {
		es, err := LoadPEM(pemCertBytes(leaf))
		if err != nil {
			t.Fatal(err)
		}
		_, err = FindSigner(es, "")
		wantOnly(t, err, ErrNoPrivateKey)
	})
	t.Run("a key with someone else's certificate is a mismatch", func(t *testing.T) {
		_, err := LoadPEM(cat(pemKeyBytes(t, leafKey), pemCertBytes(other)))
		wantOnly(t, err, ErrKeyMismatch)
	})
	t.Run("a key with no certificate at all says so", func(t *testing.T) {
		_, err := LoadPEM(pemKeyBytes(t, leafKey))
		wantOnly(t, err, ErrNoCertificate)
	})
	t.Run("a damaged block before a good one is not skipped", func(t *testing.T) {
		bad := []byte("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n")
		_, err := LoadPEM(cat(bad, pemCertBytes(leaf)))
		wantOnly(t, err, ErrMalformed)
	})
	t.Run("an encrypted key needs a password", func(t *testing.T) {
		_, err := LoadPEM(pem2("ENCRYPTED PRIVATE KEY", []byte{0x30, 0}))
		wantOnly(t, err, ErrWrongKeyPassword)
	})
}

func TestFindSigner(t *testing.T) {
	k1, k2 := newECKey(t), newECKey(t)
	es := []Entry{
		{Alias: "WSO2Carbon", Cert: newCert(t, k1, "a", nil, nil), Key: k1},
		{Alias: "second", Cert: newCert(t, k2, "b", nil, nil), Key: k2},
		{Alias: "rp", Cert: newCert(t, newECKey(t), "c", nil, nil)},
	}
	t.Run("an alias is matched case-insensitively, as Java does", func(t *testing.T) {
		e, err := FindSigner(es, "wso2carbon")
		if err != nil || e.Key.(*ecdsa.PrivateKey) != k1 {
			t.Fatalf("got %+v, %v", e, err)
		}
	})
	t.Run("no alias with several keys asks for one", func(t *testing.T) {
		_, err := FindSigner(es, "")
		wantOnly(t, err, ErrAmbiguous)
	})
	t.Run("an unknown alias is not found", func(t *testing.T) {
		_, err := FindSigner(es, "missing")
		wantOnly(t, err, ErrAliasNotFound)
	})
	t.Run("a certificate-only alias has no private key", func(t *testing.T) {
		_, err := FindSigner(es, "rp")
		wantOnly(t, err, ErrNoPrivateKey)
	})
}

// RC2 is our own code (only legacy PKCS#12 needs it): check it against the
// test vectors of RFC 2268 section 5.
func TestRC2MatchesRFC2268Vectors(t *testing.T) {
	for _, v := range []struct {
		key        string
		bits       int
		plain, enc string
	}{
		{"0000000000000000", 63, "0000000000000000", "ebb773f993278eff"},
		{"ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"},
		{"3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"},
		{"88", 64, "0000000000000000", "61a8a244adacccf0"},
		{"88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"},
		{"88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"},
		{"88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"},
	} {
		key, _ := hex.DecodeString(v.key)
		plain, _ := hex.DecodeString(v.plain)
		c := newRC2(key, v.bits)
		got := make([]byte, 8)
		c.Encrypt(got, plain)
		if hex.EncodeToString(got) != v.enc {
			t.Errorf("key %s/%d: encrypt = %x, want %s", v.key, v.bits, got, v.enc)
		}
		c.Decrypt(got, got)
		if !bytes.Equal(got, plain) {
			t.Errorf("key %s/%d: decrypt does not invert encrypt", v.key, v.bits)
		}
	}
}

func TestPKCS12WithoutMACOrEncryption(t *testing.T) {
	key := newECKey(t)
	cert := newCert(t, key, "plain.example", nil, nil)
	pfx := plainPFX(t, "plain-alias", cert, key)
	t.Run("loads with its friendlyName as alias", func(t *testing.T) {
		es, err := Load(pfx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Alias != "plain-alias" || !es[0].Cert.Equal(cert) {
			t.Fatalf("entries = %+v", es)
		}
		signAndVerify(t, es[0])
	})
}

func TestLookAlikeIssuersCannotMakeChainBuildingQuadratic(t *testing.T) {
	// 70 keys whose certificates all name issuer "Look-alike CA", and 70
	// CA certificates with that subject, none of which signed them: naive
	// chain building would try every pair (4,900 signature checks, over the
	// limit; at 10,000 keys it would be 10^8).
	// The real issuer is left out of the file.
	issuerKey := newECKey(t)
	issuer := newCert(t, issuerKey, "Look-alike CA", nil, nil)
	var b bytes.Buffer
	for range 70 {
		k := newECKey(t)
		b.Write(pemCertBytes(newCert(t, newECKey(t), "Look-alike CA", nil, nil)))
		b.Write(pemKeyBytes(t, k))
		b.Write(pemCertBytes(newCert(t, k, "leaf", issuer, issuerKey)))
	}
	_, err := LoadPEM(b.Bytes())
	wantOnly(t, err, ErrLimit)
}
