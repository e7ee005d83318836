package keystore

import (
	"crypto"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// JKS and JCEKS reader, written from the format Java's JavaKeyStore and
// JceKeyStore write (big-endian, java.io.DataOutputStream):
//
//	magic u32 (FEEDFEED JKS, CECECECE JCEKS), version u32 (1 or 2), count u32
//	count × entry:
//	  tag u32: 1 private key, 2 trusted certificate, 3 secret key (JCEKS)
//	  alias: u16 length + modified UTF-8;  timestamp u64 (ms)
//	  tag 1: key u32 length + EncryptedPrivateKeyInfo; chain count u32;
//	         chain × certificate
//	  tag 2: certificate
//	  certificate: (version 2: type as u16+UTF, "X.509") u32 length + DER
//	SHA-1(password as UTF-16BE || "Mighty Aphrodite" || all the above)
//
// Our own reader rather than a module: no maintained Go JKS module reads
// JCEKS, and each length here is checked against the bytes left before
// anything is allocated, so a hostile length cannot cost memory.

const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

// minJKSEntry is the smallest encoded entry: tag, empty alias, timestamp
// and an empty length; entry counts are checked against it.
const minJKSEntry = 4 + 2 + 8 + 4

type jksEntry struct {
	tag   uint32
	alias string
	key   []byte
	certs [][]byte
}

// jksReader reads big-endian fields, recording the first overrun.
type jksReader struct {
	b   []byte
	off int
	err error
}

func (r *jksReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: keystore truncated at byte %d (a field needs %d bytes, %d left)", ErrMalformed, r.off, n, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *jksReader) u16() int {
	if b := r.take(2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *jksReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// blob reads a u32 length and that many bytes; take refuses lengths past
// the end, so nothing is allocated for a lying length.
func (r *jksReader) blob() []byte {
	n := r.u32()
	return r.take(int(n))
}

func (r *jksReader) utf() string {
	b := r.take(r.u16())
	if r.err != nil {
		return ""
	}
	s, err := modifiedUTF8(b)
	if err != nil {
		r.err = err
	}
	return s
}

func (r *jksReader) cert(version uint32) []byte {
	if version == 2 {
		if t := r.utf(); r.err == nil && t != "X.509" {
			r.err = fmt.Errorf("%w: certificate type %q", ErrUnsupported, t)
			return nil
		}
	}
	return r.blob()
}

// modifiedUTF8 decodes Java's DataOutput.writeUTF encoding: UTF-8 of UTF-16
// code units, each at most 3 bytes.
func modifiedUTF8(b []byte) (string, error) {
	units := make([]uint16, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c < 0x80:
			units = append(units, uint16(c))
			i++
		case c&0xe0 == 0xc0 && i+1 < len(b) && b[i+1]&0xc0 == 0x80:
			units = append(units, uint16(c&0x1f)<<6|uint16(b[i+1]&0x3f))
			i += 2
		case c&0xf0 == 0xe0 && i+2 < len(b) && b[i+1]&0xc0 == 0x80 && b[i+2]&0xc0 == 0x80:
			units = append(units, uint16(c&0x0f)<<12|uint16(b[i+1]&0x3f)<<6|uint16(b[i+2]&0x3f))
			i += 3
		default:
			return "", fmt.Errorf("%w: alias is not valid modified UTF-8", ErrMalformed)
		}
	}
	return string(utf16.Decode(units)), nil
}

func loadJKS(data []byte, storePassword, keyPassword string) ([]Entry, error) {
	r := &jksReader{b: data}
	magic := r.u32()
	name := "JKS"
	if magic == jceksMagic {
		name = "JCEKS"
	}
	version := r.u32()
	count := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if version != 1 && version != 2 {
		return nil, fmt.Errorf("%w: %s version %d", ErrUnsupported, name, version)
	}
	if count > MaxEntries {
		return nil, fmt.Errorf("%w: %s claims %d entries (at most %d)", ErrLimit, name, count, MaxEntries)
	}
	if uint64(count)*minJKSEntry > uint64(len(data)-r.off) {
		return nil, fmt.Errorf("%w: %s claims %d entries but has only %d bytes left (truncated?)", ErrMalformed, name, count, len(data)-r.off)
	}
	raw := make([]jksEntry, 0, count)
	for range count {
		e := jksEntry{tag: r.u32(), alias: r.utf()}
		r.take(8) // timestamp
		switch e.tag {
		case 1:
			e.key = r.blob()
			n := r.u32()
			if r.err == nil && n > MaxChain {
				return nil, fmt.Errorf("%w: %s entry %q has a chain of %d certificates (at most %d)", ErrLimit, name, e.alias, n, MaxChain)
			}
			for range n {
				e.certs = append(e.certs, r.cert(version))
			}
		case 2:
			e.certs = [][]byte{r.cert(version)}
		case 3:
			if r.err == nil && magic == jceksMagic {
				// A Java-serialized SealedObject with no length prefix: it
				// cannot even be skipped without a Java deserializer.
				return nil, fmt.Errorf("%w: JCEKS secret-key entry %q (export it or remove it with keytool -delete)", ErrUnsupported, e.alias)
			}
			fallthrough
		default:
			if r.err == nil {
				return nil, fmt.Errorf("%w: %s entry of unknown type %d", ErrMalformed, name, e.tag)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		raw = append(raw, e)
	}
	body := r.off
	digest := r.take(sha1.Size)
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(data) {
		return nil, fmt.Errorf("%w: %d unexpected bytes after the %s integrity digest", ErrMalformed, len(data)-r.off, name)
	}
	// The integrity check runs after the structure is read, so a truncated
	// file is reported as truncated and not as a wrong password.
	h := sha1.New()
	h.Write(utf16BE(storePassword))
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(data[:body])
	if subtle.ConstantTimeCompare(h.Sum(nil), digest) != 1 {
		return nil, fmt.Errorf("%w: %s integrity check failed (or the file was altered)", ErrWrongPassword, name)
	}

	budget := newBudget()
	entries := make([]Entry, 0, len(raw))
	for _, e := range raw {
		chain := make([]*x509.Certificate, len(e.certs))
		for i, der := range e.certs {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("%w: %s entry %q certificate %d: %v", ErrMalformed, name, e.alias, i+1, err)
			}
			chain[i] = c
		}
		if e.tag == 2 {
			entries = append(entries, Entry{Alias: e.alias, Cert: chain[0], Chain: chain})
			continue
		}
		if len(chain) == 0 {
			return nil, fmt.Errorf("%w: %s entry %q", ErrNoCertificate, name, e.alias)
		}
		key, err := jksKey(e.key, keyPassword, budget)
		if err != nil {
			return nil, fmt.Errorf("%s entry %q: %w", name, e.alias, err)
		}
		if err := checkPair(e.alias, key, chain[0]); err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Alias: e.alias, Cert: chain[0], Chain: chain, Key: key})
	}
	return entries, nil
}

// jksKey decrypts a key entry protected by Sun's JKS key protector or by
// JCEKS's PBEWithMD5AndTripleDES (JCEKS stores may hold either).
func jksKey(der []byte, keyPassword string, budget *workBudget) (crypto.Signer, error) {
	var epki encryptedPrivateKeyInfo
	if err := unmarshalAll(der, &epki); err != nil {
		return nil, fmt.Errorf("%w: protected key: %v", ErrMalformed, err)
	}
	var (
		plain []byte
		err   error
	)
	switch alg := epki.Algorithm.Algorithm; {
	case alg.Equal(oidJKSProtector):
		plain, err = jksUnprotect(epki.EncryptedData, keyPassword)
	case alg.Equal(oidJCEKSPBE):
		plain, err = jceksDecrypt(epki.Algorithm.Parameters.FullBytes, epki.EncryptedData, keyPassword, budget)
	default:
		return nil, fmt.Errorf("%w: key protection %s", ErrUnsupported, alg)
	}
	if errors.Is(err, errDecrypt) {
		return nil, ErrWrongKeyPassword
	}
	if err != nil {
		return nil, err
	}
	key, err := parsePKCS8(plain)
	if errors.Is(err, ErrMalformed) && !epki.Algorithm.Algorithm.Equal(oidJKSProtector) {
		// 3DES padding was right by chance (1 in 256) but the key is
		// garbage: still a wrong password. The JKS protector's SHA-1 check
		// leaves no such doubt, so there it stays "malformed".
		return nil, ErrWrongKeyPassword
	}
	return key, err
}
