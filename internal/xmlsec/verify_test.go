package xmlsec

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
)

func verifyText(t *testing.T, xml string, opts VerifyOptions) (*etree.Element, *x509.Certificate, error) {
	t.Helper()
	doc, err := safexml.Parse([]byte(xml), safexml.DefaultLimits)
	if err != nil {
		t.Fatalf("safexml.Parse: %v", err)
	}
	el := doc.Root()
	if el.Tag == "wrapper" {
		// Tests put the signed element in a <wrapper> to give it context.
		el = el.ChildElements()[0]
	}
	return VerifyEnveloped(el, opts)
}

func trust(names ...string) VerifyOptions {
	var certs []*x509.Certificate
	for _, n := range names {
		certs = append(certs, keys[n].cert)
	}
	return VerifyOptions{Certs: certs, IDAttribute: "ID"}
}

func TestVerifyAcceptsOwnSignatures(t *testing.T) {
	key(t, "rsa") // generate the keys
	tests := []struct {
		name   string
		signer Signer
		opts   VerifyOptions
		by     string // the key expected to be reported as signer
	}{
		{"RSA-SHA256 with SHA-256 verifies", signer(t, "rsa"), trust("rsa"), "rsa"},
		{"RSA-SHA512 with SHA-512 verifies", Signer{Key: keys["rsa"].key, Cert: keys["rsa"].cert, SignatureAlgorithm: AlgRSASHA512, DigestAlgorithm: AlgSHA512}, trust("rsa"), "rsa"},
		{"ECDSA-SHA256 verifies", signer(t, "ec"), trust("ec"), "ec"},
		{"a signature without KeyInfo verifies with the trusted key", Signer{Key: keys["rsa"].key}, trust("rsa-other", "rsa"), "rsa"},
		{"KeyInfo selects the right one of several trusted certificates", signer(t, "rsa"), trust("ec", "rsa-other", "rsa"), "rsa"},
		{"RSA-SHA1 and SHA-1 verify when explicitly allowed",
			Signer{Key: keys["rsa"].key, Cert: keys["rsa"].cert, SignatureAlgorithm: AlgRSASHA1, DigestAlgorithm: AlgSHA1},
			VerifyOptions{Certs: []*x509.Certificate{keys["rsa"].cert}, SignatureAlgorithms: []string{AlgRSASHA1}, DigestAlgorithms: []string{AlgSHA1}}, "rsa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verified, cert, err := verifyText(t, signedAssertion(t, tt.signer, nil), tt.opts)
			if err != nil {
				t.Fatalf("VerifyEnveloped: %v", err)
			}
			if cert == nil || !cert.Equal(keys[tt.by].cert) {
				t.Fatal("the returned certificate is not the signer's")
			}
			if verified.Tag != "Assertion" || verified.FindElement("./Signature") != nil {
				t.Fatal("verified must be the assertion without its signature")
			}
			if got := safexml.Text(verified.FindElement("./Subject/NameID")); got != "alice@example.com" {
				t.Fatalf("NameID = %q", got)
			}
		})
	}
}

// A signature over the document element by URI="" verifies too (metadata).
func TestVerifyAcceptsWholeDocumentReference(t *testing.T) {
	doc := mustParse(t, `<?pi before?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sts.example.com/"><md:IDPSSODescriptor/></md:EntityDescriptor>`)
	if err := signer(t, "rsa").SignEnveloped(doc.Root(), "", 0); err != nil {
		t.Fatal(err)
	}
	verified, _, err := verifyText(t, serialize(t, doc), trust("rsa"))
	if err != nil {
		t.Fatal(err)
	}
	if verified.Tag != "EntityDescriptor" || verified.SelectElement("md:IDPSSODescriptor") == nil {
		t.Fatal("verified is not the signed metadata")
	}
}

// rewrite applies string replacements to a signed document, failing if one
// does not apply (so a refusal is never for the wrong reason).
func rewrite(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("test bug: %q not in the document", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestVerifyRefuses(t *testing.T) {
	key(t, "rsa")
	good := signedAssertion(t, signer(t, "rsa"), nil)
	sigStart := strings.Index(good, "<ds:Signature")
	sigEnd := strings.Index(good, "</ds:Signature>") + len("</ds:Signature>")
	sigXML := good[sigStart:sigEnd]
	withoutSig := good[:sigStart] + good[sigEnd:]

	tests := []struct {
		name string
		doc  string
		opts VerifyOptions
		want error
	}{
		{"a signature by another key whose certificate is in KeyInfo is untrusted",
			signedAssertion(t, signer(t, "rsa-other"), nil), trust("rsa"), ErrUntrustedKey},
		{"a signature by another key without KeyInfo does not verify",
			signedAssertion(t, Signer{Key: keys["rsa-other"].key}, nil), trust("rsa"), ErrBadSignature},
		{"a KeyInfo certificate that is trusted but did not sign does not verify",
			rewrite(t, signedAssertion(t, Signer{Key: keys["rsa-other"].key}, nil), "</ds:SignatureValue>", "</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>"+b64(keys["rsa"].cert.Raw)+"</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"),
			trust("rsa"), ErrBadSignature},
		{"no trusted certificates means nothing verifies", good, VerifyOptions{}, ErrUntrustedKey},
		{"an ECDSA key cannot verify an RSA signature method", good, VerifyOptions{Certs: []*x509.Certificate{keys["ec"].cert}}, ErrUntrustedKey},
		{"tampered content changes the digest", rewrite(t, good, "alice@example.com</saml:NameID>", "admin@example.com</saml:NameID>"), trust("rsa"), ErrBadDigest},
		{"a tampered attribute changes the digest", rewrite(t, good, `Version="2.0"`, `Version="2.1"`), trust("rsa"), ErrBadDigest},
		{"an added attribute changes the digest", rewrite(t, good, `<saml:Assertion `, `<saml:Assertion Extra="1" `), trust("rsa"), ErrBadDigest},
		{"a tampered SignedInfo breaks the signature", rewrite(t, good, `<ds:SignedInfo>`, `<ds:SignedInfo> `), trust("rsa"), ErrBadSignature},
		{"a tampered DigestValue breaks the signature", rewriteDigest(t, good), trust("rsa"), ErrBadSignature},
		{"a tampered SignatureValue breaks the signature", rewriteSigValue(t, good), trust("rsa"), ErrBadSignature},
		{"HMAC-SHA1 is not allowed", rewrite(t, good, AlgRSASHA256, "http://www.w3.org/2000/09/xmldsig#hmac-sha1"), trust("rsa"), ErrAlgorithmNotAllowed},
		{"HMAC-SHA256 is not allowed even if listed",
			rewrite(t, good, AlgRSASHA256, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
			VerifyOptions{Certs: trust("rsa").Certs, SignatureAlgorithms: []string{"http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"}}, ErrAlgorithmNotAllowed},
		{"a 'none' signature method is not allowed", rewrite(t, good, AlgRSASHA256, "none"), trust("rsa"), ErrAlgorithmNotAllowed},
		{"RSA-SHA1 is not allowed by default",
			signedAssertion(t, Signer{Key: keys["rsa"].key, Cert: keys["rsa"].cert, SignatureAlgorithm: AlgRSASHA1}, nil), trust("rsa"), ErrAlgorithmNotAllowed},
		{"a SHA-1 digest is not allowed by default",
			signedAssertion(t, Signer{Key: keys["rsa"].key, Cert: keys["rsa"].cert, DigestAlgorithm: AlgSHA1}, nil), trust("rsa"), ErrAlgorithmNotAllowed},
		{"an XPath transform is not allowed",
			rewrite(t, good, `<ds:Transform Algorithm="`+AlgEnveloped+`"/>`, `<ds:Transform Algorithm="`+AlgEnveloped+`"/><ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>`),
			trust("rsa"), ErrAlgorithmNotAllowed},
		{"an XSLT transform is not allowed",
			rewrite(t, good, `<ds:Transform Algorithm="`+AlgEnveloped+`"/>`, `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/><ds:Transform Algorithm="`+AlgEnveloped+`"/>`),
			trust("rsa"), ErrAlgorithmNotAllowed},
		{"inclusive C14N for SignedInfo is not allowed",
			rewrite(t, good, `<ds:CanonicalizationMethod Algorithm="`+AlgExcC14N+`"/>`, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>`),
			trust("rsa"), ErrAlgorithmNotAllowed},
		{"a reference without the enveloped-signature transform is refused",
			rewrite(t, good, `<ds:Transform Algorithm="`+AlgEnveloped+`"/>`, ``), trust("rsa"), ErrMalformedSignature},
		{"a reference to another ID is refused", rewrite(t, good, `URI="#`+assertionID+`"`, `URI="#other"`), trust("rsa"), ErrBadReference},
		{"an XPointer reference is refused", rewrite(t, good, `URI="#`+assertionID+`"`, `URI="#xpointer(/)"`), trust("rsa"), ErrBadReference},
		{"URI=\"\" on an element that is not the document element is refused",
			`<wrapper>` + rewrite(t, good, `URI="#`+assertionID+`"`, `URI=""`) + `</wrapper>`, trust("rsa"), ErrBadReference},
		{"the SAML 1.1 ID attribute name does not match a SAML 2.0 ID",
			good, VerifyOptions{Certs: trust("rsa").Certs, IDAttribute: "AssertionID"}, ErrBadReference},
		{"an element without a signature is refused", withoutSig, trust("rsa"), ErrNoSignature},
		{"a signature in another namespace is no signature",
			rewrite(t, good, `xmlns:ds="`+NamespaceDSig+`"`, `xmlns:ds="urn:not-dsig"`), trust("rsa"), ErrNoSignature},
		{"two signatures are refused", rewrite(t, good, sigXML, sigXML+sigXML), trust("rsa"), ErrMalformedSignature},
		{"two references are refused",
			rewrite(t, good, `</ds:Reference>`, `</ds:Reference><ds:Reference URI=""><ds:DigestMethod Algorithm="`+AlgSHA256+`"/><ds:DigestValue>AA==</ds:DigestValue></ds:Reference>`),
			trust("rsa"), ErrMalformedSignature},
		{"a ds:Object in the signature is refused",
			rewrite(t, good, `</ds:Signature>`, `<ds:Object><saml:Assertion ID="x"/></ds:Object></ds:Signature>`), trust("rsa"), ErrMalformedSignature},
		{"a duplicate of the signed ID elsewhere in the document is refused",
			`<wrapper>` + good + `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="` + assertionID + `"/></wrapper>`, trust("rsa"), ErrDuplicateID},
		{"a duplicate ID under another ID attribute name is refused",
			rewrite(t, good, `<saml:Issuer>`, `<saml:Issuer Id="`+assertionID+`">`), trust("rsa"), ErrDuplicateID},
		{"undecodable base64 in SignatureValue is refused",
			rewrite(t, good, `<ds:SignatureValue>`, `<ds:SignatureValue>!!`), trust("rsa"), ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			verified, cert, err := verifyText(t, tt.doc, tt.opts)
			if !errors.Is(err, want) {
				t.Fatalf("VerifyEnveloped = %v, want %v", err, want)
			}
			if verified != nil || cert != nil {
				t.Fatal("a refused signature must return no element and no certificate")
			}
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// rewriteDigest replaces the DigestValue by another valid one.
func rewriteDigest(t *testing.T, s string) string {
	i := strings.Index(s, "<ds:DigestValue>") + len("<ds:DigestValue>")
	j := strings.Index(s, "</ds:DigestValue>")
	return s[:i] + b64(make([]byte, 32)) + s[j:]
}

// rewriteSigValue flips one bit of the SignatureValue.
func rewriteSigValue(t *testing.T, s string) string {
	i := strings.Index(s, "<ds:SignatureValue>") + len("<ds:SignatureValue>")
	j := strings.Index(s, "</ds:SignatureValue>")
	v, err := base64.StdEncoding.DecodeString(s[i:j])
	if err != nil {
		t.Fatal(err)
	}
	v[len(v)/2] ^= 1
	return s[:i] + b64(v) + s[j:]
}

// Signature wrapping: the attacker keeps the signed assertion but moves its
// signature to wrap a forged copy, or keeps the signature and changes what
// the caller looks at. Each shape must fail, or return only signed content.
func TestVerifyDefeatsSignatureWrapping(t *testing.T) {
	key(t, "rsa")
	good := signedAssertion(t, signer(t, "rsa"), nil)
	sigStart := strings.Index(good, "<ds:Signature")
	sigEnd := strings.Index(good, "</ds:Signature>") + len("</ds:Signature>")
	sigXML := good[sigStart:sigEnd]
	// The forged assertion: the original with another NameID and ID.
	forged := func(id string) string {
		f := rewrite(t, good[:sigStart]+good[sigEnd:], "alice@example.com</saml:NameID>", "admin@example.com</saml:NameID>")
		return strings.Replace(f, `ID="`+assertionID+`"`, `ID="`+id+`"`, 1)
	}
	insertSig := func(assertion, content string) string {
		i := strings.Index(assertion, "</saml:Issuer>") + len("</saml:Issuer>")
		return assertion[:i] + content + assertion[i:]
	}
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"the signature moved into a forged assertion with a new ID, original tucked inside",
			insertSig(forged("_evil"), sigXML+`<saml:Advice>`+good+`</saml:Advice>`), ErrBadReference},
		{"the signature moved into a forged assertion with the same ID, original tucked inside",
			insertSig(forged(assertionID), sigXML+`<saml:Advice>`+good+`</saml:Advice>`), ErrDuplicateID},
		{"the signature moved onto a forged assertion with the same ID, original dropped",
			insertSig(forged(assertionID), sigXML), ErrBadDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := verifyText(t, tt.doc, trust("rsa"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyEnveloped = %v, want %v", err, tt.want)
			}
		})
	}

	// The forged assertion, signed, placed next to the genuine one: the
	// genuine one verifies, and what comes back is the genuine content.
	t.Run("verifying the genuine assertion returns its content, not a sibling's", func(t *testing.T) {
		doc := mustParse(t, `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r">`+forged("_other")+good+`</samlp:Response>`)
		genuine := doc.Root().ChildElements()[1]
		verified, _, err := VerifyEnveloped(genuine, trust("rsa"))
		if err != nil {
			t.Fatal(err)
		}
		if got := safexml.Text(verified.FindElement("./Subject/NameID")); got != "alice@example.com" {
			t.Fatalf("NameID = %q", got)
		}
	})
}

// With exclusive c14n without comments (what URI="#id" always means), a
// comment inside a text node is not signed: "admin<!---->@evil.example" has
// the digest of "admin@evil.example". That is by design of XML-DSig; the
// danger is a caller that reads only the first text node ("admin"). The
// verified element is re-parsed from the canonical bytes, so its text is one
// node holding the whole signed value.
func TestVerifyCommentInsideTextYieldsWholeValue(t *testing.T) {
	key(t, "rsa")
	signed := signedAssertion(t, signer(t, "rsa"), func(a *etree.Element) {
		a.FindElement("./Subject/NameID").SetText("admin@evil.example")
	})
	injected := rewrite(t, signed, "admin@evil.example", "admin<!---->@evil.example")
	verified, _, err := verifyText(t, injected, trust("rsa"))
	if err != nil {
		t.Fatalf("a comment in a text node does not change the exc-c14n digest, so this must verify: %v", err)
	}
	nameID := verified.FindElement("./Subject/NameID")
	if len(nameID.Child) != 1 {
		t.Fatalf("the verified NameID must hold one text node, has %d children", len(nameID.Child))
	}
	if got := nameID.Text(); got != "admin@evil.example" {
		t.Fatalf("verified NameID text = %q, want the whole signed value", got)
	}
}

func TestVerifiedIsExactlyTheDigestedBytes(t *testing.T) {
	key(t, "rsa")
	signed := signedAssertion(t, signer(t, "rsa"), nil)
	doc := mustParse(t, signed)
	verified, _, err := VerifyEnveloped(doc.Root(), trust("rsa"))
	if err != nil {
		t.Fatal(err)
	}
	sig := doc.Root().SelectElement("ds:Signature")
	want, err := Canonicalize(doc.Root(), C14NOptions{Exclude: sig})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Canonicalize(verified, C14NOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("verified element canonicalizes to\n%s\nwant\n%s", got, want)
	}
}

// FuzzVerify: VerifyEnveloped never panics on whatever safexml accepts.
func FuzzVerify(f *testing.F) {
	key(f, "rsa")
	s := signer(f, "rsa")
	f.Add([]byte(signedAssertion(f, s, nil)))
	f.Add([]byte(signedAssertion(f, Signer{Key: keys["ec"].key, Cert: keys["ec"].cert}, nil)))
	f.Add([]byte(`<a ID="x"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature></a>`))
	opts := VerifyOptions{Certs: []*x509.Certificate{keys["rsa"].cert, keys["ec"].cert}}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := safexml.Parse(data, safexml.DefaultLimits)
		if err != nil {
			return
		}
		for _, el := range append([]*etree.Element{doc.Root()}, doc.Root().ChildElements()...) {
			verified, _, err := VerifyEnveloped(el, opts)
			if err == nil && verified == nil {
				t.Fatal("success without a verified element")
			}
		}
	})
}

func BenchmarkVerifyEnveloped(b *testing.B) {
	for _, name := range []string{"rsa", "ec"} {
		b.Run(name, func(b *testing.B) {
			data := []byte(signedAssertion(b, signer(b, name), nil))
			opts := VerifyOptions{Certs: []*x509.Certificate{keys[name].cert}}
			b.ReportAllocs()
			for b.Loop() {
				doc, err := safexml.Parse(data, safexml.DefaultLimits)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := VerifyEnveloped(doc.Root(), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
