package hostile

import (
	"crypto"
	"crypto/hmac"
	_ "crypto/md5" // registers crypto.MD5 for the rsa-md5 case
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// Token surgery for the Validate/Renew cases. Our tokens are written in
// exclusive canonical form (docs/ARCHITECTURE.md), so string edits are
// precise: the assertion is head + <ds:Signature>…</ds:Signature> + tail, and
// head + tail are exactly the bytes that were digested.

const (
	nsDSig       = "http://www.w3.org/2000/09/xmldsig#"
	algExcC14N   = "http://www.w3.org/2001/10/xml-exc-c14n#"
	algEnveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	algRSASHA1   = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	algRSAMD5    = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"
	algHMACSHA1  = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
	algSHA256    = "http://www.w3.org/2001/04/xmlenc#sha256"
	algSHA1      = "http://www.w3.org/2000/09/xmldsig#sha1"
)

// target is what a token case puts into the request: the token for
// {{TOKEN}}, and wrapper material for {{WRAP_BEFORE}} / {{WRAP_AFTER}}
// (elsewhere in the RST, outside the target).
type target struct {
	token, before, after string
	id                   string // the genuine token's ID, for {{TOKEN_ID}}
}

// parts splits a token at its signature.
type parts struct {
	head, sig, tail string
	id, idAttr      string // ID value and attribute ("ID" or "AssertionID")
	closeTag        string // "</saml2:Assertion>" or "</saml:Assertion>"
}

func split(t testing.TB, tok string) parts {
	t.Helper()
	i, j := strings.Index(tok, "<ds:Signature"), strings.Index(tok, "</ds:Signature>")
	if i < 0 || j < 0 {
		t.Fatalf("test bug: token without ds:Signature: %.200s", tok)
	}
	j += len("</ds:Signature>")
	p := parts{head: tok[:i], sig: tok[i:j], tail: tok[j:], idAttr: "ID", closeTag: "</saml2:Assertion>"}
	if strings.HasPrefix(tok, "<saml:Assertion") {
		p.idAttr, p.closeTag = "AssertionID", "</saml:Assertion>"
	}
	p.id = between(tok, " "+p.idAttr+`="`, `"`)
	if p.id == "" {
		t.Fatalf("test bug: token without %s", p.idAttr)
	}
	return p
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	rest := s[i+len(start):]
	j := strings.Index(rest, end)
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// unsigned is the token without its signature: what was digested.
func (p parts) unsigned() string { return p.head + p.tail }

// evil rewrites s as the attacker wants it read: another subject and, when
// newID, another ID (so the genuine ID is free for the wrapped original).
func (p parts) evil(s string, newID bool) string {
	s = strings.Replace(s, ">alice<", ">mallory<", 1)
	if newID {
		s = strings.Replace(s, " "+p.idAttr+`="`+p.id+`"`, " "+p.idAttr+`="_evil"`, 1)
	}
	return s
}

// xsw builds the signature-wrapping variants of "On Breaking SAML: Be
// Whoever You Want to Be" (Somorovsky et al., USENIX Security 2012), in the
// shapes SAML Raider generates them. XSW1 and XSW2 are defined there on the
// signed Response; a WS-Trust target carries a bare assertion, so they are
// applied to the assertion, the one signed element, which makes XSW1 and
// XSW6 coincide in shape. Each leaves the genuine signed bytes somewhere in
// the message, so a verifier that resolves the Reference by ID anywhere in
// the document, or that checks one element and reads another, accepts it.
func xsw(t testing.TB, n int, tok string) target {
	p := split(t, tok)
	out := target{id: p.id}
	orig := p.unsigned()
	evilHead, evilTail := p.evil(p.head, true), p.evil(p.tail, true)
	sigWith := func(inner string) string { // inner appended inside ds:Signature
		return strings.TrimSuffix(p.sig, "</ds:Signature>") + inner + "</ds:Signature>"
	}
	switch n {
	case 1: // evil (new ID) carries the signature; the original sits inside it
		out.token = evilHead + sigWith(orig) + evilTail
	case 2: // evil (new ID); the original is a sibling before the signature
		out.token = evilHead + orig + p.sig + evilTail
	case 3: // an unsigned evil copy (new ID) before the signed original
		out.token = p.evil(orig, true) + tok
	case 4: // an unsigned evil copy (new ID) wrapping the signed original
		e := p.evil(orig, true)
		out.token = strings.TrimSuffix(e, p.closeTag) + tok + p.closeTag
	case 5: // evil (new ID) keeps the signature; the original goes to the end
		out.token = evilHead + p.sig + evilTail
		out.after = orig
	case 6: // evil (new ID) keeps the signature; the original inside it
		out.token = evilHead + sigWith(orig) + evilTail
	case 7: // an Extensions element before the target holds an evil copy with the same ID
		out.token = tok
		out.before = "<Extensions>" + p.evil(orig, false) + "</Extensions>"
	case 8: // evil (same ID) keeps the signature; the original in a ds:Object inside it
		out.token = p.evil(p.head, false) + sigWith(`<ds:Object>`+orig+`</ds:Object>`) + p.evil(p.tail, false)
	default:
		t.Fatalf("test bug: no XSW%d", n)
	}
	return out
}

// attacker is a key and self-signed certificate named like ours.
type attacker struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	attackerOnce sync.Once
	theAttacker  attacker
)

func getAttacker(t testing.TB) attacker {
	attackerOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(666), Subject: pkix.Name{CommonName: "avouch token signing", Organization: []string{"avouch"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		cert, _ := x509.ParseCertificate(der)
		theAttacker = attacker{key, cert}
	})
	return theAttacker
}

// signing describes how resign writes the signature.
type signing struct {
	sigAlg, digestAlg string
	digest            crypto.Hash            // hash of digestAlg
	value             func(si []byte) []byte // SignatureValue over canonical SignedInfo
	keyInfo           string                 // ds:KeyInfo element, "" for none
	methodBody        string                 // content of ds:SignatureMethod (HMACOutputLength)
}

// resign replaces a token's signature by one made as s says, over the same
// content (same ID, subject, record): only the signature differs from a
// token the server issued.
func resign(t testing.TB, tok string, s signing) string {
	p := split(t, tok)
	h := s.digest.New()
	h.Write([]byte(p.unsigned()))
	si := `<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="` + algExcC14N + `"></ds:CanonicalizationMethod>` +
		`<ds:SignatureMethod Algorithm="` + s.sigAlg + `">` + s.methodBody + `</ds:SignatureMethod>` +
		`<ds:Reference URI="#` + p.id + `"><ds:Transforms><ds:Transform Algorithm="` + algEnveloped + `"></ds:Transform>` +
		`<ds:Transform Algorithm="` + algExcC14N + `"></ds:Transform></ds:Transforms>` +
		`<ds:DigestMethod Algorithm="` + s.digestAlg + `"></ds:DigestMethod><ds:DigestValue>` +
		base64.StdEncoding.EncodeToString(h.Sum(nil)) + `</ds:DigestValue></ds:Reference></ds:SignedInfo>`
	// Exclusive c14n of SignedInfo renders the ds declaration on it.
	canonical := strings.Replace(si, "<ds:SignedInfo>", `<ds:SignedInfo xmlns:ds="`+nsDSig+`">`, 1)
	sig := `<ds:Signature xmlns:ds="` + nsDSig + `">` + si + `<ds:SignatureValue>` +
		base64.StdEncoding.EncodeToString(s.value([]byte(canonical))) + `</ds:SignatureValue>` + s.keyInfo + `</ds:Signature>`
	// The signature goes where the issuer put it (after Issuer in 2.0, last in 1.1).
	return p.head + sig + p.tail
}

func rsaValue(t testing.TB, key *rsa.PrivateKey, h crypto.Hash) func([]byte) []byte {
	return func(si []byte) []byte {
		d := h.New()
		d.Write(si)
		v, err := rsa.SignPKCS1v15(rand.Reader, key, h, d.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func x509KeyInfo(c *x509.Certificate) string {
	return `<ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + base64.StdEncoding.EncodeToString(c.Raw) +
		`</ds:X509Certificate></ds:X509Data></ds:KeyInfo>`
}

// transform applies a named attack to a genuine token. h supplies the
// server's own signing key for the algorithm-downgrade cases: with our key,
// only the algorithm stands between the token and "valid".
func transform(t testing.TB, h *harness, name, tok string) target {
	if strings.HasPrefix(name, "xsw") {
		var n int
		if _, err := fmt.Sscanf(name, "xsw%d", &n); err != nil {
			t.Fatalf("test bug: %q", name)
		}
		return xsw(t, n, tok)
	}
	p := split(t, tok)
	out := target{id: p.id}
	ours, _ := h.SigningKey().Signer.(*rsa.PrivateKey)
	if ours == nil {
		t.Fatal("test bug: the corpus expects an RSA signing key")
	}
	ourCert := h.SigningKey().Cert
	att := getAttacker(t)
	switch name {
	case "", "genuine":
		out.token = tok
	case "attacker-keyinfo": // genuine signature, KeyInfo names the attacker's certificate
		out.token = p.head + strings.Replace(p.sig, between(p.sig, "<ds:X509Certificate>", "</"),
			base64.StdEncoding.EncodeToString(att.cert.Raw), 1) + p.tail
	case "attacker-signed": // signed by the attacker, with the attacker's certificate
		out.token = resign(t, tok, signing{sigAlg: algRSASHA256, digestAlg: algSHA256, digest: crypto.SHA256,
			value: rsaValue(t, att.key, crypto.SHA256), keyInfo: x509KeyInfo(att.cert)})
	case "attacker-signed-our-cert": // signed by the attacker, claiming our certificate
		out.token = resign(t, tok, signing{sigAlg: algRSASHA256, digestAlg: algSHA256, digest: crypto.SHA256,
			value: rsaValue(t, att.key, crypto.SHA256), keyInfo: x509KeyInfo(ourCert)})
	case "attacker-keyvalue": // signed by the attacker, with a bare RSAKeyValue
		pub := att.key.PublicKey
		out.token = resign(t, tok, signing{sigAlg: algRSASHA256, digestAlg: algSHA256, digest: crypto.SHA256,
			value: rsaValue(t, att.key, crypto.SHA256),
			keyInfo: `<ds:KeyInfo><ds:KeyValue><ds:RSAKeyValue><ds:Modulus>` + base64.StdEncoding.EncodeToString(pub.N.Bytes()) +
				`</ds:Modulus><ds:Exponent>AQAB</ds:Exponent></ds:RSAKeyValue></ds:KeyValue></ds:KeyInfo>`})
	case "hmac-keyed-with-our-cert": // the key-confusion classic: HMAC keyed with public material
		out.token = resign(t, tok, signing{sigAlg: algHMACSHA1, digestAlg: algSHA256, digest: crypto.SHA256,
			value: func(si []byte) []byte {
				m := hmac.New(sha1.New, ourCert.Raw)
				m.Write(si)
				return m.Sum(nil)
			}, keyInfo: x509KeyInfo(ourCert)})
	case "hmac-output-length-zero": // CVE-2009-0217: a zero-bit HMAC "verifies" anything
		out.token = resign(t, tok, signing{sigAlg: algHMACSHA1, digestAlg: algSHA256, digest: crypto.SHA256,
			methodBody: `<ds:HMACOutputLength>0</ds:HMACOutputLength>`, value: func([]byte) []byte { return nil }})
	case "alg-none": // no signature algorithm at all, empty value
		out.token = resign(t, tok, signing{sigAlg: "none", digestAlg: algSHA256, digest: crypto.SHA256,
			value: func([]byte) []byte { return nil }})
	case "signature-stripped":
		out.token = p.unsigned()
	case "rsa-sha1": // our own key, SHA-1 signature method (not allowed by default)
		out.token = resign(t, tok, signing{sigAlg: algRSASHA1, digestAlg: algSHA256, digest: crypto.SHA256,
			value: rsaValue(t, ours, crypto.SHA1), keyInfo: x509KeyInfo(ourCert)})
	case "sha1-digest": // our own key and rsa-sha256, SHA-1 digest (not allowed by default)
		out.token = resign(t, tok, signing{sigAlg: algRSASHA256, digestAlg: algSHA1, digest: crypto.SHA1,
			value: rsaValue(t, ours, crypto.SHA256), keyInfo: x509KeyInfo(ourCert)})
	case "rsa-md5": // our own key, MD5 (never allowed)
		out.token = resign(t, tok, signing{sigAlg: algRSAMD5, digestAlg: algSHA256, digest: crypto.SHA256,
			value: rsaValue(t, ours, crypto.MD5), keyInfo: x509KeyInfo(ourCert)})
	case "nameid-comment", "nameid-pi":
		// Split the NameID around "alice": "alice<!---->.attacker" or
		// "attacker.<!---->alice". Exclusive c14n drops comments, so the
		// signature still verifies; a processing instruction is signed.
		mark := "<!---->"
		if name == "nameid-pi" {
			mark = "<?split?>"
		}
		out.token = strings.Replace(tok, ">alice.", ">alice"+mark+".", 1)
		out.token = strings.Replace(out.token, ".alice<", "."+mark+"alice<", 1)
		if out.token == tok {
			t.Fatalf("test bug: %s needs a token of alice.attacker or attacker.alice", name)
		}
	default:
		t.Fatalf("test bug: unknown token transform %q", name)
	}
	return out
}
