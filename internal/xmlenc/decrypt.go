package xmlenc

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// maxAncestors bounds the walk up the tree when resolving a prefix. Trees
// from internal/safexml are at most 64 deep; a deeper hand-built tree only
// fails to resolve.
const maxAncestors = 4096

// namespaceURI resolves el's prefix (iteratively, unlike etree's recursive
// NamespaceURI).
func namespaceURI(el *etree.Element) string {
	want := el.Space
	for e, n := el, 0; e != nil && n < maxAncestors; e, n = e.Parent(), n+1 {
		for _, a := range e.Attr {
			if (want == "" && a.Space == "" && a.Key == "xmlns") || (want != "" && a.Space == "xmlns" && a.Key == want) {
				return a.Value
			}
		}
	}
	return ""
}

func is(el *etree.Element, ns, local string) bool {
	return el.Tag == local && namespaceURI(el) == ns
}

// attr returns the value of el's unprefixed attribute name (etree's
// SelectAttr would also match a prefixed one).
func attr(el *etree.Element, name string) (string, bool) {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == name {
			return a.Value, true
		}
	}
	return "", false
}

func malformed(reason string) error { return fmt.Errorf("%w: %s", ErrMalformed, reason) }

// text returns the character data directly inside el; child elements are
// malformed, comments and processing instructions are skipped.
func text(el *etree.Element, limit int) (string, error) {
	var b []byte
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			if len(b)+len(t.Data) > limit {
				return "", ErrTooLarge
			}
			b = append(b, t.Data...)
		case *etree.Element:
			return "", malformed("unexpected element in text content")
		}
	}
	return string(b), nil
}

// decodeBase64 decodes el's text, ignoring XML whitespace (producers wrap
// lines), into at most max bytes.
func decodeBase64(el *etree.Element, max int) ([]byte, error) {
	// Base64 takes 4 characters per 3 bytes; allow generous line breaks.
	s, err := text(el, 2*(max/3*4+4)+1024)
	if err != nil {
		return nil, err
	}
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\r', '\n':
		default:
			clean = append(clean, c)
		}
	}
	if base64.StdEncoding.DecodedLen(len(clean)) > max+2 {
		return nil, ErrTooLarge
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, malformed("invalid base64")
	}
	if n > max {
		return nil, ErrTooLarge
	}
	return out[:n], nil
}

// encStructure holds the children of an EncryptedData or EncryptedKey
// (EncryptedType, §3.1), each present at most once and in schema order.
type encStructure struct {
	method, keyInfo, cipherValue *etree.Element
}

// parseEncrypted checks el's children: EncryptionMethod, ds:KeyInfo?,
// CipherData (with a CipherValue; CipherReference is refused, we fetch
// nothing), EncryptionProperties?, and for an EncryptedKey also
// ReferenceList? and CarriedKeyName?.
func parseEncrypted(el *etree.Element, isKey bool) (encStructure, error) {
	var s encStructure
	order := []string{"EncryptionMethod", "KeyInfo", "CipherData", "EncryptionProperties", "ReferenceList", "CarriedKeyName"}
	if !isKey {
		order = order[:4]
	}
	pos := 0
	for _, c := range el.ChildElements() {
		ns := namespaceURI(c)
		i := pos
		for i < len(order) && order[i] != c.Tag {
			i++
		}
		if i == len(order) || (order[i] == "KeyInfo") != (ns == NSDsig) || (order[i] != "KeyInfo" && ns != NSXenc) {
			return s, malformed("unexpected or misplaced child element")
		}
		pos = i + 1
		switch c.Tag {
		case "EncryptionMethod":
			s.method = c
		case "KeyInfo":
			s.keyInfo = c
		case "CipherData":
			kids := c.ChildElements()
			if len(kids) != 1 {
				return s, malformed("CipherData must hold one CipherValue")
			}
			if is(kids[0], NSXenc, "CipherReference") {
				return s, malformed("CipherReference is not supported")
			}
			if !is(kids[0], NSXenc, "CipherValue") {
				return s, malformed("CipherData must hold one CipherValue")
			}
			s.cipherValue = kids[0]
		}
	}
	if s.method == nil {
		// §3.2 lets the recipient "know" the algorithm; we never guess.
		return s, malformed("EncryptionMethod missing")
	}
	if s.cipherValue == nil {
		return s, malformed("CipherData missing")
	}
	return s, nil
}

// Decrypt decrypts the xenc:EncryptedData element encData with priv and
// returns the plaintext bytes (for Type Element, one serialised element).
//
// The data key comes from an xenc:EncryptedKey that is either inside
// encData's ds:KeyInfo, referenced from it by a ds:RetrievalMethod
// (Type ...#EncryptedKey, URI "#id") to a sibling, or (with no such
// KeyInfo) a sibling of encData whose ReferenceList names encData's Id or
// which has no ReferenceList: the layouts of SAML 2.0 EncryptedAssertion.
// Several candidates (several recipients) are tried in order; at most 4.
//
// Every structural and algorithm check, including the RSA-1.5 refusal and
// the allow-list, is done on all candidates before any RSA operation.
func Decrypt(encData *etree.Element, priv crypto.Decrypter, allowed Allowed) ([]byte, error) {
	if encData == nil || !is(encData, NSXenc, "EncryptedData") {
		return nil, malformed("not an xenc:EncryptedData")
	}
	s, err := parseEncrypted(encData, false)
	if err != nil {
		return nil, err
	}
	alg, _ := attr(s.method, "Algorithm")
	b, ok := blockAlgs[alg]
	if !ok {
		if alg == AlgRSA15 {
			return nil, ErrRSA15
		}
		return nil, fmt.Errorf("%w: data encryption", ErrUnsupportedAlgorithm)
	}
	if !allowed.data(alg) {
		return nil, fmt.Errorf("%w: data encryption", ErrNotAllowed)
	}
	if err := checkBlockMethod(s.method, b); err != nil {
		return nil, err
	}
	ct, err := decodeBase64(s.cipherValue, MaxCipherText)
	if err != nil {
		return nil, err
	}
	if err := checkCipherTextLength(b, ct); err != nil {
		return nil, err
	}

	cands, err := encryptedKeys(encData, s.keyInfo)
	if err != nil {
		return nil, err
	}
	parsed := make([]parsedKey, len(cands))
	for i, ek := range cands {
		if parsed[i], err = parseEncryptedKey(ek, priv, allowed); err != nil {
			return nil, err
		}
	}
	var key []byte
	for _, pk := range parsed {
		k, err := pk.decrypt(priv)
		// A key of another length cannot be ours: its OAEP padding
		// happened to decode (or an attacker chose it). Same error.
		if err == nil && len(k) == b.keySize {
			key = k
			break
		}
	}
	if key == nil {
		return nil, ErrDecrypt
	}
	return decryptData(b, key, ct)
}

// checkBlockMethod allows only xenc:KeySize in a block EncryptionMethod,
// and only with the algorithm's key size.
func checkBlockMethod(method *etree.Element, b blockAlg) error {
	for _, c := range method.ChildElements() {
		if !is(c, NSXenc, "KeySize") {
			return malformed("unexpected element in EncryptionMethod")
		}
		v, err := text(c, 64)
		if err != nil || strings.TrimSpace(v) != fmt.Sprint(8*b.keySize) {
			return malformed("KeySize does not match the algorithm")
		}
	}
	return nil
}

func checkCipherTextLength(b blockAlg, ct []byte) error {
	if b.gcm {
		if len(ct) < gcmIVSize+gcmTagSize {
			return malformed("ciphertext too short")
		}
		return nil
	}
	if len(ct) < 2*aes.BlockSize || len(ct)%aes.BlockSize != 0 {
		return malformed("ciphertext is not IV and whole blocks")
	}
	return nil
}

// decryptData reverses encryptData. Its failures are all ErrDecrypt.
func decryptData(b blockAlg, key, ct []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrDecrypt
	}
	if err := checkCipherTextLength(b, ct); err != nil {
		return nil, err
	}
	if b.gcm {
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, ErrDecrypt
		}
		pt, err := aead.Open(nil, ct[:gcmIVSize], ct[gcmIVSize:], nil)
		if err != nil {
			return nil, ErrDecrypt
		}
		return pt, nil
	}
	iv := ct[:aes.BlockSize]
	pt := make([]byte, len(ct)-aes.BlockSize)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct[aes.BlockSize:])
	// XML-Enc padding: only the last byte is defined (1..16); the others
	// are arbitrary and must not be checked. Checked without branching on
	// the value; the error is the same as every other failure.
	pad := int(pt[len(pt)-1])
	valid := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	if valid != 1 {
		return nil, ErrDecrypt
	}
	return pt[:len(pt)-pad], nil
}

// encryptedKeys finds the EncryptedKey candidates for encData.
func encryptedKeys(encData, keyInfo *etree.Element) ([]*etree.Element, error) {
	var cands []*etree.Element
	add := func(ek *etree.Element) error {
		if len(cands) == maxEncryptedKeys {
			return malformed("too many EncryptedKey elements")
		}
		cands = append(cands, ek)
		return nil
	}
	var siblings []*etree.Element
	if p := encData.Parent(); p != nil {
		for _, c := range p.ChildElements() {
			if c != encData && is(c, NSXenc, "EncryptedKey") {
				siblings = append(siblings, c)
			}
		}
	}
	referenced := false
	if keyInfo != nil {
		for _, c := range keyInfo.ChildElements() {
			switch {
			case is(c, NSXenc, "EncryptedKey"):
				if err := add(c); err != nil {
					return nil, err
				}
			case is(c, NSDsig, "RetrievalMethod"):
				if t, ok := attr(c, "Type"); ok && t != TypeEncryptedKey {
					continue
				}
				uri, _ := attr(c, "URI")
				if len(uri) < 2 || uri[0] != '#' {
					return nil, malformed("RetrievalMethod URI must be a same-document #id")
				}
				referenced = true
				found := 0
				for _, ek := range siblings {
					if id, _ := attr(ek, "Id"); id == uri[1:] {
						found++
						if err := add(ek); err != nil {
							return nil, err
						}
					}
				}
				if found != 1 {
					return nil, malformed("RetrievalMethod must name exactly one sibling EncryptedKey")
				}
			}
		}
	}
	if len(cands) > 0 {
		return cands, nil
	}
	if referenced {
		return nil, ErrNoKey
	}
	id, _ := attr(encData, "Id")
	for _, ek := range siblings {
		refs, listed := dataReferences(ek)
		if !listed || (id != "" && refs["#"+id]) {
			if err := add(ek); err != nil {
				return nil, err
			}
		}
	}
	if len(cands) == 0 {
		return nil, ErrNoKey
	}
	return cands, nil
}

// dataReferences returns the DataReference URIs of ek's ReferenceList and
// whether it has one.
func dataReferences(ek *etree.Element) (map[string]bool, bool) {
	for _, c := range ek.ChildElements() {
		if is(c, NSXenc, "ReferenceList") {
			refs := map[string]bool{}
			for _, r := range c.ChildElements() {
				if is(r, NSXenc, "DataReference") {
					if u, ok := attr(r, "URI"); ok {
						refs[u] = true
					}
				}
			}
			return refs, true
		}
	}
	return nil, false
}

// parsedKey is an EncryptedKey checked and ready for one RSA operation.
type parsedKey struct {
	ct   []byte
	opts rsa.OAEPOptions
}

func (p parsedKey) decrypt(priv crypto.Decrypter) ([]byte, error) {
	opts := p.opts
	k, err := priv.Decrypt(rand.Reader, p.ct, &opts)
	if err != nil {
		return nil, ErrDecrypt
	}
	return k, nil
}

// DecryptKey unwraps the symmetric key in the xenc:EncryptedKey encKey with
// priv (e.g. a proof key sent to us). RSA-1.5 is refused before any RSA
// operation; OAEP failures are ErrDecrypt.
func DecryptKey(encKey *etree.Element, priv crypto.Decrypter, allowed Allowed) ([]byte, error) {
	p, err := parseEncryptedKey(encKey, priv, allowed)
	if err != nil {
		return nil, err
	}
	return p.decrypt(priv)
}

func parseEncryptedKey(ek *etree.Element, priv crypto.Decrypter, allowed Allowed) (parsedKey, error) {
	var p parsedKey
	if ek == nil || !is(ek, NSXenc, "EncryptedKey") {
		return p, malformed("not an xenc:EncryptedKey")
	}
	s, err := parseEncrypted(ek, true)
	if err != nil {
		return p, err
	}
	alg, _ := attr(s.method, "Algorithm")
	switch alg {
	case AlgRSA15:
		return p, ErrRSA15
	case AlgRSAOAEPMGF1P, AlgRSAOAEP:
	default:
		return p, fmt.Errorf("%w: key transport", ErrUnsupportedAlgorithm)
	}
	if !allowed.transport(alg) {
		return p, fmt.Errorf("%w: key transport", ErrNotAllowed)
	}
	if p.opts, err = oaepOptions(s.method, alg, allowed); err != nil {
		return p, err
	}
	if priv == nil {
		return p, fmt.Errorf("xmlenc: no private key")
	}
	pub, ok := priv.Public().(*rsa.PublicKey)
	if !ok {
		return p, fmt.Errorf("xmlenc: the private key is not RSA")
	}
	// An RSA ciphertext is exactly the modulus size.
	if p.ct, err = decodeBase64(s.cipherValue, pub.Size()); err != nil {
		return p, err
	}
	if len(p.ct) != pub.Size() {
		return p, malformed("key ciphertext is not the size of the RSA modulus")
	}
	return p, nil
}

// oaepOptions reads the RSA-OAEP parameters of an EncryptionMethod
// (§5.5.2): ds:DigestMethod (default SHA-1), xenc:OAEPparams (the label,
// default empty), xenc11:MGF (AlgRSAOAEP only; default MGF1 with SHA-1);
// also xenc:KeySize, which is ignored.
func oaepOptions(method *etree.Element, alg string, allowed Allowed) (rsa.OAEPOptions, error) {
	o := rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA1}
	seen := map[string]bool{}
	for _, c := range method.ChildElements() {
		ns := namespaceURI(c)
		key := ns + c.Tag
		if seen[key] {
			return o, malformed("repeated element in EncryptionMethod")
		}
		seen[key] = true
		switch {
		case ns == NSDsig && c.Tag == "DigestMethod":
			u, _ := attr(c, "Algorithm")
			h, ok := digestHashes[u]
			if !ok {
				return o, fmt.Errorf("%w: OAEP digest", ErrUnsupportedAlgorithm)
			}
			o.Hash = h
		case ns == NSXenc11 && c.Tag == "MGF" && alg == AlgRSAOAEP:
			u, _ := attr(c, "Algorithm")
			h, ok := mgfHashes[u]
			if !ok {
				return o, fmt.Errorf("%w: OAEP MGF", ErrUnsupportedAlgorithm)
			}
			o.MGFHash = h
		case ns == NSXenc && c.Tag == "OAEPparams":
			l, err := decodeBase64(c, 1024)
			if err != nil {
				return o, err
			}
			o.Label = l
		case ns == NSXenc && c.Tag == "KeySize":
		default:
			// Includes xenc11:MGF under rsa-oaep-mgf1p, whose MGF is
			// fixed to MGF1 with SHA-1.
			return o, malformed("unexpected element in EncryptionMethod")
		}
	}
	if !allowed.hash(o.Hash) || !allowed.hash(o.MGFHash) {
		return o, fmt.Errorf("%w: OAEP hash", ErrNotAllowed)
	}
	return o, nil
}
