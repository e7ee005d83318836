package xmlenc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/beevik/etree"
)

// collect returns up to max elements named ns:local under el, depth first,
// without recursion (fuzzed trees can be deep).
func collect(el *etree.Element, ns, local string, max int) []*etree.Element {
	var out []*etree.Element
	stack := []*etree.Element{el}
	for len(stack) > 0 && len(out) < max {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if is(e, ns, local) {
			out = append(out, e)
		}
		kids := e.ChildElements()
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, kids[i])
		}
	}
	return out
}

var sentinels = []error{ErrDecrypt, ErrRSA15, ErrUnsupportedAlgorithm, ErrNotAllowed, ErrMalformed, ErrTooLarge, ErrNoKey}

// FuzzDecrypt feeds arbitrary documents to Decrypt and DecryptKey: they
// must never panic, and every refusal must be one of the package's
// sentinel errors (so callers can classify it and nothing leaks).
//
//	go test -run '^$' -fuzz '^FuzzDecrypt$' -fuzztime 60s ./internal/xmlenc
func FuzzDecrypt(f *testing.F) {
	rp := key(f, "rp")
	for _, o := range []Options{
		{DataAlgorithm: AlgAES128CBC},
		{DataAlgorithm: AlgAES256GCM},
		{DataAlgorithm: AlgAES192CBC, KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA256},
		{DataAlgorithm: AlgAES128GCM, KeyTransport: AlgRSAOAEP, OAEPDigest: DigestSHA1, KeyInfo: KeyIdentifierIssuerSerial},
	} {
		enc, err := EncryptElement([]byte(rawBytes), rp.cert, o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add([]byte(wrapperOpen + string(enc) + wrapperClose))
		ek, err := EncryptKey([]byte("0123456789abcdef"), rp.cert, o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ek)
		// The sibling layout: the key beside the data, found by Id.
		i := bytes.Index(enc, []byte("<ds:KeyInfo>"))
		j := bytes.LastIndex(enc, []byte("</ds:KeyInfo>"))
		f.Add([]byte(`<a xmlns:xenc="` + NSXenc + `" xmlns:ds="` + NSDsig + `" xmlns:xenc11="` + NSXenc11 + `">` +
			string(enc[:i]) + `<ds:KeyInfo><ds:RetrievalMethod Type="` + TypeEncryptedKey + `" URI="#k"/></ds:KeyInfo>` +
			string(enc[j+len("</ds:KeyInfo>"):]) +
			`<xenc:EncryptedKey Id="k"` + string(enc[bytes.Index(enc, []byte("<xenc:EncryptedKey>"))+len("<xenc:EncryptedKey"):j]) + `</a>`))
	}
	f.Add([]byte(`<xenc:EncryptedData xmlns:xenc="` + NSXenc + `"><xenc:EncryptionMethod Algorithm="` + AlgAES128CBC + `"/><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(data); err != nil || doc.Root() == nil {
			return
		}
		check := func(what string, err error) {
			if err == nil {
				return
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("%s returned a non-sentinel error: %v", what, err)
		}
		for _, ed := range collect(&doc.Element, NSXenc, "EncryptedData", 4) {
			_, err := Decrypt(ed, rp.priv, Allowed{})
			check("Decrypt", err)
		}
		for _, ek := range collect(&doc.Element, NSXenc, "EncryptedKey", 4) {
			_, err := DecryptKey(ek, rp.priv, Allowed{})
			check("DecryptKey", err)
		}
	})
}
