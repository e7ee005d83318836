// Package keystore reads existing keystores so that avouch can use them as a
// trust store (relying-party certificates by alias) and import signing keys
// from other products — notably WSO2 Identity Server's wso2carbon.jks.
//
// Supported, detected from the content and never from a file name:
//
//   - PEM: certificates and private keys (PKCS#1, PKCS#8, SEC1 and
//     password-encrypted PKCS#8), keys paired with certificates by public key;
//   - a DER certificate;
//   - PKCS#12 (.p12/.pfx) as written by OpenSSL 3 (AES/PBKDF2, and -legacy
//     RC2/3DES), Java keytool and Windows;
//   - Java JKS and JCEKS (certificate and private-key entries).
//
// Everything is read from memory with bounded allocation: inputs over
// MaxInputSize, absurd entry counts and lengths, and absurd key-derivation
// iteration counts are refused before any work is done for them. No error
// ever contains a password.
package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Entry is one keystore entry: a certificate (trusted-certificate entry) or a
// private key with its certificate chain.
type Entry struct {
	// Alias is the entry's name: the JKS alias, the PKCS#12 friendlyName,
	// or for PEM/DER (which have none) the certificate's subject CN. Aliases
	// are made unique within one Load by suffixing "-2", "-3", ...
	Alias string
	Cert  *x509.Certificate   // leaf
	Chain []*x509.Certificate // leaf first, may be just [Cert]
	Key   crypto.Signer       // nil for certificate-only (trusted cert) entries
}

// Limits on hostile input. Real keystores are a few KiB with a handful of
// entries; these bounds are orders of magnitude above that and low enough
// that a crafted file cannot make Load allocate gigabytes or spin for hours.
const (
	// MaxInputSize is the largest keystore Load accepts.
	MaxInputSize = 10 << 20
	// MaxEntries bounds entries (JKS entries, PKCS#12 bags, PEM blocks).
	MaxEntries = 10000
	// MaxChain bounds the certificates of one key entry.
	MaxChain = 64
	// MaxIterations bounds one password-based key derivation. Java uses
	// 10,000 (PKCS#12) or 200,000 (JCEKS; configurable up to 5,000,000 with
	// jdk.jceks.iterationCount, which this refuses), OpenSSL 2,048.
	MaxIterations = 1 << 20
	// maxWork bounds the sum of all derivation iterations of one Load, so
	// many entries each at MaxIterations cannot add up to minutes of CPU
	// (this is a few seconds).
	maxWork = 1 << 23
)

// Errors. Load wraps them with context (format, alias); test with errors.Is.
var (
	ErrTooLarge                = fmt.Errorf("keystore: input larger than %d MiB", MaxInputSize>>20)
	ErrUnsupportedFormat       = errors.New("keystore: unsupported format (expected PEM, DER certificate, PKCS#12, JKS or JCEKS)")
	ErrMalformed               = errors.New("keystore: malformed or truncated keystore")
	ErrLimit                   = errors.New("keystore: keystore exceeds a safety limit")
	ErrWrongPassword           = errors.New("keystore: wrong keystore password")
	ErrWrongKeyPassword        = errors.New("keystore: wrong key password")
	ErrUnsupportedKeyAlgorithm = errors.New("keystore: unsupported private key algorithm")
	ErrUnsupported             = errors.New("keystore: unsupported keystore feature")
	ErrKeyMismatch             = errors.New("keystore: private key does not match its certificate")
	ErrNoCertificate           = errors.New("keystore: private key has no certificate")
	ErrNoEntries               = errors.New("keystore: no certificates or private keys found")
	ErrNoPrivateKey            = errors.New("keystore: entry has no private key")
	ErrAliasNotFound           = errors.New("keystore: alias not found")
	ErrAmbiguous               = errors.New("keystore: several private keys; name the alias")
)

// Format names the keystore format of data, judged from its content:
// "pem", "der" (a DER certificate), "pkcs12", "jks", "jceks" or "unknown".
// It looks only at the first bytes, so a truncated file still gets its
// format and Load can say it is truncated.
func Format(data []byte) string {
	if len(data) >= 4 {
		switch uint32(data[0])<<24 | uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3]) {
		case jksMagic:
			return "jks"
		case jceksMagic:
			return "jceks"
		}
	}
	if kind := derKind(data); kind != "" {
		return kind
	}
	if isPEM(data) {
		return "pem"
	}
	return "unknown"
}

// derKind tells a PKCS#12 PFX (SEQUENCE { INTEGER 3, SEQUENCE { OID ...
// from a certificate (SEQUENCE { SEQUENCE ... by reading only headers, so
// lengths that run past the end (truncation) do not matter here.
func derKind(data []byte) string {
	body, ok := derHeader(data, 0x30)
	if !ok {
		return ""
	}
	if len(body) >= 3 && body[0] == 0x02 && body[1] == 0x01 && body[2] == 0x03 {
		if inner, ok := derHeader(body[3:], 0x30); ok && len(inner) > 0 && inner[0] == 0x06 {
			return "pkcs12"
		}
		return ""
	}
	if tbs, ok := derHeader(body, 0x30); ok && len(tbs) > 0 && (tbs[0] == 0xa0 || tbs[0] == 0x02) {
		// TBSCertificate starts with [0] version or the serial INTEGER.
		return "der"
	}
	return ""
}

// derHeader checks a DER tag and definite length and returns what follows
// the header (not cut to the length: callers only peek).
func derHeader(b []byte, tag byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != tag {
		return nil, false
	}
	n := b[1]
	switch {
	case n < 0x80:
		return b[2:], true
	case n == 0x80 || n > 0x84: // indefinite (BER) or absurd
		return nil, false
	}
	k := int(n & 0x7f)
	if len(b) < 2+k {
		return nil, false
	}
	return b[2+k:], true
}

// Load reads every entry of a keystore. password opens the store (PKCS#12
// MAC and certificate encryption, JKS/JCEKS integrity check); keyPassword
// opens private keys and defaults to password when empty. PKCS#12 files
// protect their keys with the store password in practice (keytool and
// OpenSSL allow nothing else), so for them password is tried as well.
//
// Unlike Java's KeyStore.load(in, null), an empty password does not skip
// the JKS integrity check: it is checked as the empty password. Entries come
// in file order (for JKS that is Java's hash-table order); one bad entry
// fails the whole Load, naming the entry, so nothing is silently dropped.
func Load(data []byte, password, keyPassword string) ([]Entry, error) {
	if len(data) > MaxInputSize {
		return nil, ErrTooLarge
	}
	if keyPassword == "" {
		keyPassword = password
	}
	var (
		entries []Entry
		err     error
	)
	switch f := Format(data); f {
	case "jks", "jceks":
		entries, err = loadJKS(data, password, keyPassword)
	case "pkcs12":
		entries, err = loadPKCS12(data, password, keyPassword)
	case "der":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(data); err != nil {
			return nil, fmt.Errorf("%w: DER certificate: %v", ErrMalformed, err)
		}
		entries = []Entry{{Cert: cert, Chain: []*x509.Certificate{cert}}}
	case "pem":
		entries, err = loadPEM(data, keyPassword)
	default:
		return nil, ErrUnsupportedFormat
	}
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, ErrNoEntries
	}
	return uniqueAliases(entries), nil
}

// LoadPEM parses PEM: certificates and unencrypted PKCS#1, PKCS#8 and SEC1
// private keys, each key paired with the certificate holding its public key
// and that certificate's issuers found in the same file. Certificates not
// used by a key become certificate-only entries. An "ENCRYPTED PRIVATE KEY"
// needs a password: use Load.
func LoadPEM(data []byte) ([]Entry, error) {
	if len(data) > MaxInputSize {
		return nil, ErrTooLarge
	}
	entries, err := loadPEM(data, "")
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, ErrNoEntries
	}
	return uniqueAliases(entries), nil
}

// FindSigner picks the private-key entry to import as a signing key: the one
// named alias (compared case-insensitively, as Java does), or with alias ""
// the only key entry. It fails with ErrNoPrivateKey if the named entry is a
// bare certificate (e.g. a PEM certificate given without its key).
func FindSigner(entries []Entry, alias string) (Entry, error) {
	if alias != "" {
		for _, e := range entries {
			if strings.EqualFold(e.Alias, alias) {
				if e.Key == nil {
					return Entry{}, fmt.Errorf("%w: %q is a certificate-only entry", ErrNoPrivateKey, e.Alias)
				}
				return e, nil
			}
		}
		return Entry{}, fmt.Errorf("%w: %q", ErrAliasNotFound, alias)
	}
	var found []Entry
	for _, e := range entries {
		if e.Key != nil {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return Entry{}, fmt.Errorf("%w: the keystore holds only certificates", ErrNoPrivateKey)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, e := range found {
		names[i] = strconv.Quote(e.Alias)
	}
	return Entry{}, fmt.Errorf("%w: %s", ErrAmbiguous, strings.Join(names, ", "))
}

// uniqueAliases fills missing aliases from the certificate and makes them
// unique, so a trust store can be addressed by alias.
func uniqueAliases(entries []Entry) []Entry {
	seen := make(map[string]bool, len(entries))
	for i := range entries {
		a := entries[i].Alias
		if a == "" {
			a = defaultAlias(entries[i].Cert)
		}
		base := a
		for n := 2; seen[strings.ToLower(a)]; n++ {
			a = base + "-" + strconv.Itoa(n)
		}
		seen[strings.ToLower(a)] = true
		entries[i].Alias = a
	}
	return entries
}

// defaultAlias names a certificate that came without a name: its subject CN,
// else its first DNS name, else a fingerprint prefix.
func defaultAlias(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	sum := sha256.Sum256(c.Raw)
	return "cert-" + hex.EncodeToString(sum[:8])
}

// Object identifiers of private key algorithms, to name the unsupported ones.
var keyAlgorithmNames = map[string]string{
	"1.2.840.113549.1.1.1":  "RSA",
	"1.2.840.113549.1.1.10": "RSASSA-PSS",
	"1.2.840.10045.2.1":     "EC",
	"1.3.101.112":           "Ed25519",
	"1.3.101.113":           "Ed448",
	"1.3.101.110":           "X25519",
	"1.3.101.111":           "X448",
	"1.2.840.10040.4.1":     "DSA",
	"1.2.840.113549.1.3.1":  "DH",
	"1.2.643.2.2.19":        "GOST R 34.10-2001",
}

// parsePKCS8 parses a PrivateKeyInfo and returns it as a crypto.Signer,
// telling an algorithm Go cannot sign with (DSA, Ed448, X25519, brainpool
// curves, ...) apart from a damaged key. A damaged key right after
// password-based decryption is what a wrong password produces, so callers
// decide how to report it; this returns ErrMalformed for it.
func parsePKCS8(der []byte) (crypto.Signer, error) {
	var info struct {
		Version int
		Algo    struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("%w: private key: %v", ErrMalformed, err)
	}
	oid := info.Algo.Algorithm.String()
	name, known := keyAlgorithmNames[oid]
	if !known {
		name = "OID " + oid
	}
	switch name {
	case "RSA", "EC", "Ed25519":
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedKeyAlgorithm, name)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if name == "EC" && strings.Contains(err.Error(), "curve") {
			return nil, fmt.Errorf("%w: EC key on a curve other than P-224/P-256/P-384/P-521", ErrUnsupportedKeyAlgorithm)
		}
		return nil, fmt.Errorf("%w: %s private key: %v", ErrMalformed, name, err)
	}
	return asSigner(k)
}

func asSigner(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedKeyAlgorithm, k)
}

// matches reports whether key is the private half of cert's public key.
func matches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// checkPair verifies that a key entry's key belongs to its leaf certificate.
func checkPair(alias string, key crypto.Signer, cert *x509.Certificate) error {
	if !matches(key, cert) {
		return fmt.Errorf("%w: entry %q (certificate %q)", ErrKeyMismatch, alias, cert.Subject.String())
	}
	return nil
}

// certPool indexes the certificates of a PEM or PKCS#12 file so that
// pairing keys with certificates and building chains stay near-linear even
// for a hostile file of thousands of entries.
type certPool struct {
	certs     []*x509.Certificate
	bySPKI    map[string][]int
	bySubject map[string][]int
	checks    int // signature verifications left for chain building
}

// maxChainChecks bounds the signature verifications of one Load's chain
// building (well under a second of CPU): a file stuffed with look-alike
// issuers cannot make it quadratic.
const maxChainChecks = 4096

func newCertPool(certs []*x509.Certificate) *certPool {
	p := &certPool{certs: certs, bySPKI: map[string][]int{}, bySubject: map[string][]int{}, checks: maxChainChecks}
	for i, c := range certs {
		p.bySPKI[string(c.RawSubjectPublicKeyInfo)] = append(p.bySPKI[string(c.RawSubjectPublicKeyInfo)], i)
		p.bySubject[string(c.RawSubject)] = append(p.bySubject[string(c.RawSubject)], i)
	}
	return p
}

// leafFor returns the index of a certificate holding key's public key for
// which free reports true, or -1.
func (p *certPool) leafFor(key crypto.Signer, free func(int) bool) int {
	if spki, err := x509.MarshalPKIXPublicKey(key.Public()); err == nil {
		for _, i := range p.bySPKI[string(spki)] {
			if free(i) && matches(key, p.certs[i]) {
				return i
			}
		}
	}
	// The same key may be encoded differently in a certificate (e.g. RSA
	// parameters absent instead of NULL): compare the keys themselves.
	for i, c := range p.certs {
		if free(i) && matches(key, c) {
			return i
		}
	}
	return -1
}

// chain returns leaf followed by its issuers found in the pool, matched by
// name and verified by signature, stopping at a self-signed certificate.
func (p *certPool) chain(leaf *x509.Certificate) ([]*x509.Certificate, error) {
	chain := []*x509.Certificate{leaf}
	used := map[*x509.Certificate]bool{leaf: true}
	for cur := leaf; len(chain) < MaxChain; {
		if string(cur.RawIssuer) == string(cur.RawSubject) {
			break
		}
		var next *x509.Certificate
		for _, i := range p.bySubject[string(cur.RawIssuer)] {
			c := p.certs[i]
			if used[c] {
				continue
			}
			if p.checks--; p.checks < 0 {
				return nil, fmt.Errorf("%w: more than %d candidate issuer checks", ErrLimit, maxChainChecks)
			}
			if cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		used[next] = true
		chain = append(chain, next)
		cur = next
	}
	return chain, nil
}

// workBudget counts key-derivation iterations over one Load.
type workBudget struct{ left int }

func newBudget() *workBudget { return &workBudget{left: maxWork} }

func (b *workBudget) spend(iterations int) error {
	if iterations < 1 || iterations > MaxIterations {
		return fmt.Errorf("%w: key derivation iteration count %d (allowed 1..%d)", ErrLimit, iterations, MaxIterations)
	}
	if iterations > b.left {
		return fmt.Errorf("%w: key derivation work over %d iterations in total", ErrLimit, maxWork)
	}
	b.left -= iterations
	return nil
}
