package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rc4"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
)

// Password-based encryption used by the formats read here, each written from
// its specification: PBES2 with PBKDF2 (RFC 8018), the PKCS#12 PBES1 schemes
// and key derivation (RFC 7292 appendices B and C), Sun's JKS key protector
// (a SHA-1 keystream) and JCEKS's PBEWithMD5AndTripleDES.

// errDecrypt means decryption produced garbage (bad padding): with a
// password-based scheme that is a wrong password, which the caller names.
var errDecrypt = errors.New("keystore: decryption failed")

var (
	oidPBES2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1     = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC   = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidPKCS12PBE    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1} // .1 .. .6
	oidJCEKSPBE     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 19, 1}
	oidJKSProtector = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1}
)

// password holds the encodings schemes need: PBES2 and JCEKS take the bytes
// of the string, PKCS#12 PBES1 and MACs a zero-terminated BMPString, and
// Sun's protector UTF-16BE without terminator.
type password struct {
	utf8 []byte
	bmp  []byte // UTF-16BE plus two zero bytes
}

func newPassword(s string) password {
	return password{utf8: []byte(s), bmp: append(utf16BE(s), 0, 0)}
}

func utf16BE(s string) []byte {
	units := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(units))
	for _, u := range units {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

// encryptedPrivateKeyInfo is PKCS#8's EncryptedPrivateKeyInfo, which JKS and
// JCEKS use too.
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// unmarshalAll parses DER that must be exactly one value.
func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data after ASN.1 value")
	}
	return nil
}

// decryptPBE decrypts data encrypted with a PBES2 or PKCS#12 PBES1 scheme.
// It returns errDecrypt for bad padding, ErrUnsupported for schemes it does
// not implement and ErrMalformed/ErrLimit for bad parameters.
func decryptPBE(alg pkix.AlgorithmIdentifier, data []byte, pw password, budget *workBudget) ([]byte, error) {
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		return decryptPBES2(alg.Parameters.FullBytes, data, pw, budget)
	case len(alg.Algorithm) == len(oidPKCS12PBE)+1 && alg.Algorithm[:len(oidPKCS12PBE)].Equal(oidPKCS12PBE):
		return decryptPKCS12PBE(alg.Algorithm[len(oidPKCS12PBE)], alg.Parameters.FullBytes, data, pw, budget)
	}
	return nil, fmt.Errorf("%w: encryption algorithm %s", ErrUnsupported, alg.Algorithm)
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       asn1.RawValue // CHOICE; only "specified" (OCTET STRING) is in use
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

func decryptPBES2(params, data []byte, pw password, budget *workBudget) ([]byte, error) {
	var p pbes2Params
	if err := unmarshalAll(params, &p); err != nil {
		return nil, fmt.Errorf("%w: PBES2 parameters: %v", ErrMalformed, err)
	}
	if !p.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("%w: PBES2 key derivation %s", ErrUnsupported, p.KDF.Algorithm)
	}
	var kp pbkdf2Params
	if err := unmarshalAll(p.KDF.Parameters.FullBytes, &kp); err != nil {
		return nil, fmt.Errorf("%w: PBKDF2 parameters: %v", ErrMalformed, err)
	}
	if kp.Salt.Class != asn1.ClassUniversal || kp.Salt.Tag != asn1.TagOctetString {
		return nil, fmt.Errorf("%w: PBKDF2 salt from another source", ErrUnsupported)
	}
	var prf func() hash.Hash
	switch alg := kp.PRF.Algorithm; {
	case len(alg) == 0 || alg.Equal(oidHMACSHA1):
		prf = sha1.New
	case alg.Equal(oidHMACSHA224):
		prf = sha256.New224
	case alg.Equal(oidHMACSHA256):
		prf = sha256.New
	case alg.Equal(oidHMACSHA384):
		prf = sha512.New384
	case alg.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("%w: PBKDF2 pseudo-random function %s", ErrUnsupported, alg)
	}
	var (
		keyLen int
		newBlk func([]byte) (cipher.Block, error)
	)
	switch s := p.Scheme.Algorithm; {
	case s.Equal(oidAES128CBC):
		keyLen, newBlk = 16, aes.NewCipher
	case s.Equal(oidAES192CBC):
		keyLen, newBlk = 24, aes.NewCipher
	case s.Equal(oidAES256CBC):
		keyLen, newBlk = 32, aes.NewCipher
	case s.Equal(oidDESEDE3CBC):
		keyLen, newBlk = 24, des.NewTripleDESCipher
	default:
		return nil, fmt.Errorf("%w: PBES2 cipher %s", ErrUnsupported, s)
	}
	if kp.KeyLength != 0 && kp.KeyLength != keyLen {
		return nil, fmt.Errorf("%w: PBKDF2 key length %d for a %d-byte key", ErrMalformed, kp.KeyLength, keyLen)
	}
	var iv []byte
	if err := unmarshalAll(p.Scheme.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("%w: PBES2 IV: %v", ErrMalformed, err)
	}
	blocks := (keyLen + prf().Size() - 1) / prf().Size()
	for range blocks {
		if err := budget.spend(kp.Iterations); err != nil {
			return nil, err
		}
	}
	key, err := pbkdf2.Key(prf, string(pw.utf8), kp.Salt.Bytes, kp.Iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("%w: PBKDF2: %v", ErrUnsupported, err)
	}
	block, err := newBlk(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return cbcDecrypt(block, iv, data)
}

// cbcDecrypt decrypts CBC and removes PKCS#7 padding.
func cbcDecrypt(block cipher.Block, iv, data []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("%w: IV of %d bytes for a %d-byte block cipher", ErrMalformed, len(iv), bs)
	}
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is not whole %d-byte blocks", ErrMalformed, len(data), bs)
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > bs {
		return nil, errDecrypt
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, errDecrypt
		}
	}
	return out[:len(out)-pad], nil
}

type pbeParams struct {
	Salt       []byte
	Iterations int
}

// decryptPKCS12PBE implements pbeWithSHAAnd* (RFC 7292 appendix C): the
// key and IV come from the PKCS#12 KDF with SHA-1 over the BMP password.
func decryptPKCS12PBE(scheme int, params, data []byte, pw password, budget *workBudget) ([]byte, error) {
	var p pbeParams
	if err := unmarshalAll(params, &p); err != nil {
		return nil, fmt.Errorf("%w: PKCS#12 PBE parameters: %v", ErrMalformed, err)
	}
	var keyLen int
	switch scheme {
	case 1: // RC4 128
		keyLen = 16
	case 2, 6: // RC4 40, RC2 40
		keyLen = 5
	case 3: // 3-key 3DES
		keyLen = 24
	case 4, 5: // 2-key 3DES, RC2 128
		keyLen = 16
	default:
		return nil, fmt.Errorf("%w: PKCS#12 PBE scheme 1.2.840.113549.1.12.1.%d", ErrUnsupported, scheme)
	}
	if err := budget.spend(p.Iterations); err != nil {
		return nil, err
	}
	key := pkcs12KDF(sha1.New, p.Salt, pw.bmp, 1, p.Iterations, keyLen)
	if scheme == 1 || scheme == 2 {
		c, err := rc4.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		out := make([]byte, len(data))
		c.XORKeyStream(out, data)
		return out, nil
	}
	if err := budget.spend(p.Iterations); err != nil {
		return nil, err
	}
	iv := pkcs12KDF(sha1.New, p.Salt, pw.bmp, 2, p.Iterations, 8)
	var block cipher.Block
	switch scheme {
	case 3:
		block, _ = des.NewTripleDESCipher(key)
	case 4:
		block, _ = des.NewTripleDESCipher(append(key, key[:8]...))
	case 5:
		block = newRC2(key, 128)
	case 6:
		block = newRC2(key, 40)
	}
	return cbcDecrypt(block, iv, data)
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2: id 1 derives
// keys, 2 IVs and 3 MAC keys. password is the zero-terminated BMPString
// (empty for the "no password" variant).
func pkcs12KDF(newHash func() hash.Hash, salt, password []byte, id byte, iterations, n int) []byte {
	h := newHash()
	u, v := h.Size(), h.BlockSize()
	fill := func(src []byte) []byte {
		if len(src) == 0 {
			return nil
		}
		out := make([]byte, v*((len(src)+v-1)/v))
		for i := range out {
			out[i] = src[i%len(src)]
		}
		return out
	}
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	i := append(fill(salt), fill(password)...)
	out := make([]byte, 0, n+u)
	b := make([]byte, v)
	for len(out) < n {
		h.Reset()
		h.Write(d)
		h.Write(i)
		a := h.Sum(nil)
		for r := 1; r < iterations; r++ {
			h.Reset()
			h.Write(a)
			a = h.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= n {
			break
		}
		for j := range b {
			b[j] = a[j%u]
		}
		// I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I.
		for j := 0; j < len(i); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(i[j+k]) + int(b[k]) + carry
				i[j+k] = byte(sum)
				carry = sum >> 8
			}
		}
	}
	return out[:n]
}

// jksUnprotect reverses sun.security.provider.KeyProtector: data is
// salt(20) || plaintext XOR keystream || SHA-1(password || plaintext), the
// keystream being SHA-1 chained over the UTF-16BE password from the salt. The
// trailing check tells a wrong password for certain.
func jksUnprotect(data []byte, keyPassword string) ([]byte, error) {
	const n = sha1.Size
	if len(data) < 2*n {
		return nil, fmt.Errorf("%w: JKS protected key of %d bytes", ErrMalformed, len(data))
	}
	pw := utf16BE(keyPassword)
	salt, enc, check := data[:n], data[n:len(data)-n], data[len(data)-n:]
	plain := make([]byte, len(enc))
	digest := salt
	h := sha1.New()
	for off := 0; off < len(enc); off += n {
		h.Reset()
		h.Write(pw)
		h.Write(digest)
		digest = h.Sum(nil)
		for i := 0; i < n && off+i < len(enc); i++ {
			plain[off+i] = enc[off+i] ^ digest[i]
		}
	}
	h.Reset()
	h.Write(pw)
	h.Write(plain)
	if subtle.ConstantTimeCompare(h.Sum(nil), check) != 1 {
		return nil, errDecrypt
	}
	return plain, nil
}

// jceksDecrypt implements PBEWithMD5AndTripleDES as Sun's JCE does for JCEKS
// keys: each half of the 8-byte salt (the first half reversed if both halves
// are equal) is hashed with the password, iterations times, by MD5; the two
// digests give the 3DES key (24 bytes) and the IV (8 bytes). The password is
// taken as its bytes: Java accepts only ASCII here.
func jceksDecrypt(params, data []byte, keyPassword string, budget *workBudget) ([]byte, error) {
	var p pbeParams
	if err := unmarshalAll(params, &p); err != nil {
		return nil, fmt.Errorf("%w: JCEKS PBE parameters: %v", ErrMalformed, err)
	}
	if len(p.Salt) != 8 {
		return nil, fmt.Errorf("%w: JCEKS salt of %d bytes", ErrMalformed, len(p.Salt))
	}
	for range 2 {
		if err := budget.spend(p.Iterations); err != nil {
			return nil, err
		}
	}
	salt := append([]byte(nil), p.Salt...)
	if bytes.Equal(salt[:4], salt[4:]) {
		salt[0], salt[3] = salt[3], salt[0]
		salt[1], salt[2] = salt[2], salt[1]
	}
	pw := []byte(keyPassword)
	derived := make([]byte, 0, 32)
	for half := range 2 {
		d := salt[4*half : 4*half+4]
		for range p.Iterations {
			h := md5.New()
			h.Write(d)
			h.Write(pw)
			d = h.Sum(nil)
		}
		derived = append(derived, d...)
	}
	block, err := des.NewTripleDESCipher(derived[:24])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return cbcDecrypt(block, derived[24:], data)
}
