package keystore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

var pemBegin = []byte("-----BEGIN ")

func isPEM(data []byte) bool { return bytes.Contains(data, pemBegin) }

// pemKey is a private key read from a PEM block, with the friendlyName that
// `openssl pkcs12 -nodes` writes in the "Bag Attributes" text before it.
type pemKey struct {
	key  crypto.Signer
	name string
}

type pemCert struct {
	cert *x509.Certificate
	name string
}

// loadPEM reads every PEM block. keyPassword decrypts "ENCRYPTED PRIVATE
// KEY" blocks; with none given such a block is an ErrWrongKeyPassword.
func loadPEM(data []byte, keyPassword string) ([]Entry, error) {
	var (
		keys   []pemKey
		certs  []pemCert
		budget = newBudget()
	)
	rest, prevTail := data, []byte(nil)
	for n := 0; ; n++ {
		start := bytes.Index(rest, pemBegin)
		if start < 0 {
			break
		}
		if n >= MaxEntries {
			return nil, fmt.Errorf("%w: more than %d PEM blocks", ErrLimit, MaxEntries)
		}
		// The text before a block may carry its Bag Attributes: it is what
		// follows the previous block's END line, or the file's beginning.
		preamble := rest[:start]
		if start == 0 {
			preamble = prevTail
		}
		// Decode each block on its own, up to the next BEGIN: pem.Decode
		// silently skips a damaged block and returns the next good one,
		// which would hide a truncated or corrupt key.
		end := len(rest)
		if next := bytes.Index(rest[start+len(pemBegin):], pemBegin); next >= 0 {
			end = start + len(pemBegin) + next
		}
		block, tail := pem.Decode(rest[start:end])
		if block == nil {
			return nil, fmt.Errorf("%w: PEM block %d (%s) is incomplete or not valid base64", ErrMalformed, n+1, beginLabel(rest[start:end]))
		}
		rest, prevTail = rest[end:], tail
		name := friendlyName(preamble)
		switch block.Type {
		case "CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE":
			der := block.Bytes
			if block.Type == "TRUSTED CERTIFICATE" {
				// OpenSSL's trusted form: the certificate followed by
				// trust settings.
				var raw asn1.RawValue
				if _, err := asn1.Unmarshal(der, &raw); err != nil {
					return nil, fmt.Errorf("%w: PEM block %d: %v", ErrMalformed, n+1, err)
				}
				der = raw.FullBytes
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("%w: PEM certificate %d: %v", ErrMalformed, n+1, err)
			}
			certs = append(certs, pemCert{c, name})
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			k, err := pemPrivateKey(block, keyPassword, budget)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", n+1, err)
			}
			keys = append(keys, pemKey{k, name})
		case "DSA PRIVATE KEY":
			return nil, fmt.Errorf("%w: DSA", ErrUnsupportedKeyAlgorithm)
		case "OPENSSH PRIVATE KEY":
			return nil, fmt.Errorf("%w: OpenSSH private key format (convert: ssh-keygen -p -m PKCS8 -f FILE)", ErrUnsupported)
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("%w: PEM %q", ErrUnsupportedKeyAlgorithm, block.Type)
			}
			// EC PARAMETERS, PUBLIC KEY, CERTIFICATE REQUEST, X509 CRL...:
			// nothing to import.
		}
	}
	return pairPEM(keys, certs)
}

// beginLabel names the block for an error: the text of its BEGIN line.
func beginLabel(b []byte) string {
	line := b[len(pemBegin):]
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	if len(line) > 40 {
		line = line[:40]
	}
	return strings.TrimSuffix(strings.ToValidUTF8(string(line), "?"), "-----")
}

// friendlyName finds "friendlyName: X" in the Bag Attributes OpenSSL prints
// before each block of `openssl pkcs12 -nodes` output, so converted stores
// keep their aliases.
func friendlyName(preamble []byte) string {
	if len(preamble) > 4096 {
		preamble = preamble[len(preamble)-4096:]
	}
	name := ""
	for _, line := range strings.Split(string(preamble), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "friendlyName:"); ok {
			name = strings.TrimSpace(v)
		}
	}
	return name
}

func pemPrivateKey(block *pem.Block, keyPassword string, budget *workBudget) (crypto.Signer, error) {
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, fmt.Errorf("%w: legacy PEM encryption (Proc-Type header); convert: openssl pkcs8 -topk8 -in KEY -out KEY8", ErrUnsupported)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: RSA private key: %v", ErrMalformed, err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			if strings.Contains(err.Error(), "curve") {
				return nil, fmt.Errorf("%w: EC key on a curve other than P-224/P-256/P-384/P-521", ErrUnsupportedKeyAlgorithm)
			}
			return nil, fmt.Errorf("%w: EC private key: %v", ErrMalformed, err)
		}
		return k, nil
	case "ENCRYPTED PRIVATE KEY":
		if keyPassword == "" {
			return nil, fmt.Errorf("%w: the private key is encrypted and no password was given", ErrWrongKeyPassword)
		}
		var epki encryptedPrivateKeyInfo
		if err := unmarshalAll(block.Bytes, &epki); err != nil {
			return nil, fmt.Errorf("%w: encrypted private key: %v", ErrMalformed, err)
		}
		plain, err := decryptPBE(epki.Algorithm, epki.EncryptedData, newPassword(keyPassword), budget)
		if err != nil {
			if errors.Is(err, errDecrypt) {
				return nil, fmt.Errorf("%w: encrypted private key", ErrWrongKeyPassword)
			}
			return nil, err
		}
		k, err := parsePKCS8(plain)
		if errors.Is(err, ErrMalformed) {
			return nil, fmt.Errorf("%w: encrypted private key", ErrWrongKeyPassword)
		}
		return k, err
	}
	return parsePKCS8(block.Bytes)
}

// pairPEM gives each key the certificate with its public key plus that
// certificate's issuers; certificates no key uses are trusted entries.
func pairPEM(keys []pemKey, certs []pemCert) ([]Entry, error) {
	all := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		all[i] = c.cert
	}
	pool := newCertPool(all)
	leafOf := make(map[int]int) // certificate index -> key index
	used := make(map[*x509.Certificate]bool)
	chains := make([][]*x509.Certificate, len(keys))
	for i, k := range keys {
		leaf := pool.leafFor(k.key, func(j int) bool { _, taken := leafOf[j]; return !taken })
		if leaf < 0 {
			if len(certs) == 0 {
				return nil, fmt.Errorf("%w: the PEM holds a private key but no certificate", ErrNoCertificate)
			}
			return nil, fmt.Errorf("%w: the PEM's private key %d matches none of its %d certificate(s)", ErrKeyMismatch, i+1, len(certs))
		}
		leafOf[leaf] = i
		chain, err := pool.chain(all[leaf])
		if err != nil {
			return nil, err
		}
		chains[i] = chain
		for _, c := range chain {
			used[c] = true
		}
	}
	var entries []Entry
	for j, c := range certs {
		if i, ok := leafOf[j]; ok {
			alias := keys[i].name
			if alias == "" {
				alias = c.name
			}
			entries = append(entries, Entry{Alias: alias, Cert: c.cert, Chain: chains[i], Key: keys[i].key})
		} else if !used[c.cert] {
			entries = append(entries, Entry{Alias: c.name, Cert: c.cert, Chain: []*x509.Certificate{c.cert}})
		}
	}
	return entries, nil
}
