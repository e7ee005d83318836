package keystore

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
)

// PKCS#12 (RFC 7292) reader. It is ours rather than a library's because
// importing a store needs what the usual Go decoders do not give: every
// bag's friendlyName (the alias, for keys and for trusted certificates),
// several keys per file, Java's trusted-certificate bags, and a bound on the
// iteration counts a hostile file may ask for before its MAC is checked.

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}

	oidKeyBag          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidSafeContentsBag = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidX509Cert        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}

	oidFriendlyName = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	// Java marks certificates imported with keytool -importcert as trusted.
	oidJavaTrusted = asn1.ObjectIdentifier{2, 16, 840, 1, 113894, 746875, 1, 1}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidPBMAC1 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type pfxPDU struct {
	Version  int
	AuthSafe contentInfo
	MacData  macData `asn1:"optional"`
}

type macData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type encryptedData struct {
	Version int
	Info    struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Content     []byte `asn1:"tag:0,optional"`
	}
}

type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"tag:0,explicit"`
	Attributes []struct {
		ID     asn1.ObjectIdentifier
		Values asn1.RawValue
	} `asn1:"set,optional"`
}

type certBag struct {
	ID   asn1.ObjectIdentifier
	Data []byte `asn1:"tag:0,explicit"`
}

// p12Key and p12Cert are bags with the attributes that pair and name them.
type p12Key struct {
	alias, localKeyID string
	key               crypto.Signer
}

type p12Cert struct {
	alias, localKeyID string
	trusted           bool
	cert              *x509.Certificate
}

type p12Reader struct {
	store  password // the password that passed the MAC
	keyPW  []password
	budget *workBudget
	bags   int
	keys   []p12Key
	certs  []p12Cert
	noMAC  bool
}

func loadPKCS12(data []byte, storePassword, keyPassword string) ([]Entry, error) {
	var pfx pfxPDU
	if err := unmarshalAll(data, &pfx); err != nil {
		return nil, fmt.Errorf("%w: PKCS#12: %v", ErrMalformed, err)
	}
	if pfx.Version != 3 {
		return nil, fmt.Errorf("%w: PKCS#12 version %d", ErrUnsupported, pfx.Version)
	}
	if pfx.AuthSafe.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: PKCS#12 public-key integrity mode", ErrUnsupported)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidData) {
		return nil, fmt.Errorf("%w: PKCS#12 content type %s", ErrMalformed, pfx.AuthSafe.ContentType)
	}
	authSafe, err := octets(pfx.AuthSafe.Content)
	if err != nil {
		return nil, err
	}
	r := &p12Reader{budget: newBudget()}
	pw := newPassword(storePassword)
	if len(pfx.MacData.Mac.Algorithm.Algorithm) == 0 {
		// No MAC (a "password-less" file or one without integrity): the
		// password is checked by decryption alone.
		r.noMAC = true
		r.store = pw
	} else {
		candidates := []password{pw}
		if storePassword == "" {
			// Some writers derive the MAC key from an empty byte string
			// rather than an empty BMPString (two zero bytes).
			candidates = append(candidates, password{})
		}
		ok := false
		for _, c := range candidates {
			good, err := verifyMAC(&pfx.MacData, authSafe, c.bmp, r.budget)
			if err != nil {
				return nil, err
			}
			if good {
				r.store, ok = c, true
				break
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w: PKCS#12 integrity check (MAC) failed", ErrWrongPassword)
		}
	}
	r.keyPW = []password{newPassword(keyPassword)}
	if keyPassword != storePassword {
		r.keyPW = append(r.keyPW, r.store)
	}

	var safes []contentInfo
	if err := unmarshalAll(authSafe, &safes); err != nil {
		return nil, fmt.Errorf("%w: PKCS#12 authenticated safe: %v", ErrMalformed, err)
	}
	for _, ci := range safes {
		var contents []byte
		switch {
		case ci.ContentType.Equal(oidData):
			if contents, err = octets(ci.Content); err != nil {
				return nil, err
			}
		case ci.ContentType.Equal(oidEncryptedData):
			var ed encryptedData
			inner, err := explicit(ci.Content)
			if err != nil {
				return nil, err
			}
			if err := unmarshalAll(inner, &ed); err != nil {
				return nil, fmt.Errorf("%w: PKCS#12 encrypted data: %v", ErrMalformed, err)
			}
			contents, err = decryptPBE(ed.Info.Algorithm, ed.Info.Content, r.store, r.budget)
			if errors.Is(err, errDecrypt) || (err == nil && !isDERSequence(contents)) {
				if r.noMAC {
					return nil, fmt.Errorf("%w: PKCS#12 encrypted contents did not decrypt", ErrWrongPassword)
				}
				return nil, fmt.Errorf("%w: PKCS#12 encrypted contents use a password other than the store's", ErrWrongPassword)
			}
			if err != nil {
				return nil, err
			}
		case ci.ContentType.Equal(oidEnvelopedData):
			return nil, fmt.Errorf("%w: PKCS#12 public-key privacy mode", ErrUnsupported)
		default:
			return nil, fmt.Errorf("%w: PKCS#12 content type %s", ErrMalformed, ci.ContentType)
		}
		if err := r.readBags(contents, 0); err != nil {
			return nil, err
		}
	}
	return r.entries()
}

// explicit returns the value inside a ContentInfo's [0] EXPLICIT content.
func explicit(v asn1.RawValue) ([]byte, error) {
	if v.Class != asn1.ClassContextSpecific || v.Tag != 0 || !v.IsCompound {
		return nil, fmt.Errorf("%w: PKCS#12 content info without content", ErrMalformed)
	}
	return v.Bytes, nil
}

// octets returns the content of a ContentInfo holding an OCTET STRING (DER
// only; the constructed BER form some old Windows exports use is refused).
func octets(v asn1.RawValue) ([]byte, error) {
	inner, err := explicit(v)
	if err != nil {
		return nil, err
	}
	var s asn1.RawValue
	if err := unmarshalAll(inner, &s); err != nil {
		return nil, fmt.Errorf("%w: PKCS#12 content: %v", ErrMalformed, err)
	}
	if s.Class != asn1.ClassUniversal || s.Tag != asn1.TagOctetString || s.IsCompound {
		return nil, fmt.Errorf("%w: PKCS#12 content is not a DER OCTET STRING (BER-encoded file?)", ErrMalformed)
	}
	return s.Bytes, nil
}

func isDERSequence(b []byte) bool { return len(b) > 0 && b[0] == 0x30 }

// verifyMAC checks the PKCS#12 HMAC keyed by the PKCS#12 KDF (id 3).
func verifyMAC(md *macData, content, pw []byte, budget *workBudget) (bool, error) {
	var newHash func() hash.Hash
	switch alg := md.Mac.Algorithm.Algorithm; {
	case alg.Equal(oidSHA1):
		newHash = sha1.New
	case alg.Equal(oidSHA224):
		newHash = sha256.New224
	case alg.Equal(oidSHA256):
		newHash = sha256.New
	case alg.Equal(oidSHA384):
		newHash = sha512.New384
	case alg.Equal(oidSHA512):
		newHash = sha512.New
	case alg.Equal(oidPBMAC1):
		return false, fmt.Errorf("%w: PKCS#12 PBMAC1 integrity (RFC 9579)", ErrUnsupported)
	default:
		return false, fmt.Errorf("%w: PKCS#12 MAC digest %s", ErrUnsupported, alg)
	}
	if err := budget.spend(md.Iterations); err != nil {
		return false, err
	}
	key := pkcs12KDF(newHash, md.MacSalt, pw, 3, md.Iterations, newHash().Size())
	m := hmac.New(newHash, key)
	m.Write(content)
	return hmac.Equal(m.Sum(nil), md.Mac.Digest), nil
}

func (r *p12Reader) readBags(contents []byte, depth int) error {
	if depth > 3 {
		return fmt.Errorf("%w: PKCS#12 safe contents nested too deep", ErrLimit)
	}
	var bags []safeBag
	if err := unmarshalAll(contents, &bags); err != nil {
		return fmt.Errorf("%w: PKCS#12 safe contents: %v", ErrMalformed, err)
	}
	for _, bag := range bags {
		if r.bags++; r.bags > MaxEntries {
			return fmt.Errorf("%w: more than %d PKCS#12 bags", ErrLimit, MaxEntries)
		}
		alias, localKeyID, trusted, err := bagAttributes(&bag)
		if err != nil {
			return err
		}
		switch {
		case bag.ID.Equal(oidCertBag):
			var cb certBag
			if err := unmarshalAll(bag.Value.Bytes, &cb); err != nil {
				return fmt.Errorf("%w: PKCS#12 certificate bag: %v", ErrMalformed, err)
			}
			if !cb.ID.Equal(oidX509Cert) {
				return fmt.Errorf("%w: PKCS#12 certificate type %s", ErrUnsupported, cb.ID)
			}
			c, err := x509.ParseCertificate(cb.Data)
			if err != nil {
				return fmt.Errorf("%w: PKCS#12 certificate %q: %v", ErrMalformed, alias, err)
			}
			r.certs = append(r.certs, p12Cert{alias, localKeyID, trusted, c})
		case bag.ID.Equal(oidKeyBag):
			k, err := parsePKCS8(bag.Value.Bytes)
			if err != nil {
				return fmt.Errorf("PKCS#12 key %q: %w", alias, err)
			}
			r.keys = append(r.keys, p12Key{alias, localKeyID, k})
		case bag.ID.Equal(oidShroudedKeyBag):
			k, err := r.shroudedKey(bag.Value.Bytes, alias)
			if err != nil {
				return err
			}
			r.keys = append(r.keys, p12Key{alias, localKeyID, k})
		case bag.ID.Equal(oidSafeContentsBag):
			if err := r.readBags(bag.Value.Bytes, depth+1); err != nil {
				return err
			}
		default:
			// CRL and secret bags (Java secret keys) hold nothing to import.
		}
	}
	return nil
}

// shroudedKey decrypts a PKCS#8 shrouded key bag with the key password, then
// the store password (keytool and OpenSSL use the store password for keys).
func (r *p12Reader) shroudedKey(der []byte, alias string) (crypto.Signer, error) {
	var epki encryptedPrivateKeyInfo
	if err := unmarshalAll(der, &epki); err != nil {
		return nil, fmt.Errorf("%w: PKCS#12 key %q: %v", ErrMalformed, alias, err)
	}
	for _, pw := range r.keyPW {
		plain, err := decryptPBE(epki.Algorithm, epki.EncryptedData, pw, r.budget)
		if errors.Is(err, errDecrypt) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("PKCS#12 key %q: %w", alias, err)
		}
		k, err := parsePKCS8(plain)
		if errors.Is(err, ErrMalformed) {
			continue // garbage that happened to have valid padding
		}
		if err != nil {
			return nil, fmt.Errorf("PKCS#12 key %q: %w", alias, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: PKCS#12 key %q", ErrWrongKeyPassword, alias)
}

func bagAttributes(bag *safeBag) (alias, localKeyID string, trusted bool, err error) {
	for _, a := range bag.Attributes {
		switch {
		case a.ID.Equal(oidFriendlyName):
			var s asn1.RawValue
			if _, e := asn1.Unmarshal(a.Values.Bytes, &s); e != nil || s.Tag != asn1.TagBMPString || len(s.Bytes)%2 != 0 {
				return "", "", false, fmt.Errorf("%w: PKCS#12 friendlyName is not a BMPString", ErrMalformed)
			}
			units := make([]uint16, len(s.Bytes)/2)
			for i := range units {
				units[i] = uint16(s.Bytes[2*i])<<8 | uint16(s.Bytes[2*i+1])
			}
			alias = string(utf16.Decode(units))
		case a.ID.Equal(oidLocalKeyID):
			var id []byte
			if _, e := asn1.Unmarshal(a.Values.Bytes, &id); e != nil {
				return "", "", false, fmt.Errorf("%w: PKCS#12 localKeyId: %v", ErrMalformed, e)
			}
			localKeyID = string(id)
		case a.ID.Equal(oidJavaTrusted):
			trusted = true
		}
	}
	return alias, localKeyID, trusted, nil
}

// entries pairs each key with its certificate — by localKeyId, else by
// public key — and keeps certificates no key uses as trusted entries.
func (r *p12Reader) entries() ([]Entry, error) {
	all := make([]*x509.Certificate, len(r.certs))
	byKeyID := make(map[string]int)
	for i, c := range r.certs {
		all[i] = c.cert
		if _, dup := byKeyID[c.localKeyID]; c.localKeyID != "" && !dup {
			byKeyID[c.localKeyID] = i
		}
	}
	pool := newCertPool(all)
	isLeaf := make(map[int]bool)
	inChain := make(map[*x509.Certificate]bool)
	var out []Entry
	for _, k := range r.keys {
		leaf, ok := byKeyID[k.localKeyID]
		if k.localKeyID == "" || !ok {
			leaf = pool.leafFor(k.key, func(i int) bool { return !isLeaf[i] })
		}
		alias := k.alias
		if leaf < 0 {
			if len(r.certs) == 0 {
				return nil, fmt.Errorf("%w: PKCS#12 key %q", ErrNoCertificate, alias)
			}
			return nil, fmt.Errorf("%w: PKCS#12 key %q matches none of the file's %d certificate(s)", ErrKeyMismatch, alias, len(r.certs))
		}
		c := r.certs[leaf]
		if alias == "" {
			alias = c.alias
		}
		// A localKeyId names the certificate; the key must still be its.
		if err := checkPair(alias, k.key, c.cert); err != nil {
			return nil, err
		}
		isLeaf[leaf] = true
		chain, err := pool.chain(c.cert)
		if err != nil {
			return nil, err
		}
		for _, cc := range chain {
			inChain[cc] = true
		}
		out = append(out, Entry{Alias: alias, Cert: c.cert, Chain: chain, Key: k.key})
	}
	for i, c := range r.certs {
		if isLeaf[i] || (inChain[c.cert] && !c.trusted) {
			continue
		}
		out = append(out, Entry{Alias: c.alias, Cert: c.cert, Chain: []*x509.Certificate{c.cert}})
	}
	return out, nil
}
