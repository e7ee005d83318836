package xmlsec

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/testutil"
)

// trickyAssertion is an assertion whose canonical form exercises the known
// differences between implementations: attribute order across namespaces,
// xmlns="" undeclaration, comments, PIs, CR and tab references, attribute
// whitespace and a namespace declared only on the root but used deep down.
const trickyAssertion = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:unused="urn:unused" ID="_tricky" Version="2.0" IssueInstant="2024-05-01T10:00:00Z">
	<saml:Issuer>https://sts.example.com/</saml:Issuer>
	<!-- a comment -->
	<saml:Subject><saml:NameID>bob&#13;&#9;<!-- split -->@example.com</saml:NameID></saml:Subject>
	<saml:AttributeStatement xml:lang="en">
		<saml:Attribute Name="a&#9;b" FriendlyName="x
y"><saml:AttributeValue xml:lang="de" xsi:type="xs:string">Grüße &lt;&amp;&gt; "q"</saml:AttributeValue></saml:Attribute>
		<Extra xmlns="urn:extra"><inner xmlns=""><?pi data?>text</inner></Extra>
	</saml:AttributeStatement>
</saml:Assertion>`

func TestXmlsec1VerifiesOurSignatures(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	key(t, "rsa")
	tests := []struct {
		name   string
		doc    string
		idAttr string // "" signs with URI=""
		idNode string
		signer Signer
		tamper [2]string // one byte changed in signed content
	}{
		{"an RSA-SHA256 signature on a SAML assertion",
			assertionXML, "ID", nsSAML2 + ":Assertion", signer(t, "rsa"), [2]string{"alice@", "alicf@"}},
		{"an RSA-SHA512 signature with a SHA-512 digest",
			assertionXML, "ID", nsSAML2 + ":Assertion", Signer{Key: keys["rsa"].key, Cert: keys["rsa"].cert, SignatureAlgorithm: AlgRSASHA512, DigestAlgorithm: AlgSHA512}, [2]string{`Version="2.0"`, `Version="2.1"`}},
		{"an RSA-SHA1 signature with a SHA-1 digest",
			assertionXML, "ID", nsSAML2 + ":Assertion", Signer{Key: keys["rsa"].key, Cert: keys["rsa"].cert, SignatureAlgorithm: AlgRSASHA1, DigestAlgorithm: AlgSHA1}, [2]string{"VPN", "VQN"}},
		{"an ECDSA-SHA256 signature (r||s, not DER)",
			assertionXML, "ID", nsSAML2 + ":Assertion", signer(t, "ec"), [2]string{"Approver", "Approves"}},
		{"a signature over content full of c14n trouble spots",
			trickyAssertion, "ID", nsSAML2 + ":Assertion", signer(t, "rsa"), [2]string{"Grüße", "Grüsse"}},
		{"a signature with an InclusiveNamespaces PrefixList",
			trickyAssertion, "ID", nsSAML2 + ":Assertion", Signer{Key: keys["ec"].key, Cert: keys["ec"].cert, InclusivePrefixes: []string{"xs", "unused", "#default"}}, [2]string{"text<", "texT<"}},
		{"a URI=\"\" signature on metadata",
			`<?xml-stylesheet href="a.xsl"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sts.example.com/"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>`,
			"", "", signer(t, "rsa"), [2]string{"https://sts", "https://stt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			doc := mustParse(t, tt.doc)
			if err := tt.signer.SignEnveloped(doc.Root(), tt.idAttr, 1); err != nil {
				t.Fatal(err)
			}
			signed := serialize(t, doc)
			name := "rsa"
			if tt.signer.Key == keys["ec"].key {
				name = "ec"
			}
			_, certPath := keys[name].writePEM(t, dir)
			verify := func(xml string) ([]byte, error) {
				f := filepath.Join(dir, "doc.xml")
				writeFile(t, f, []byte(xml))
				args := []string{"--verify", "--enabled-reference-uris", "empty,same-doc", "--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", certPath}
				if tt.idNode != "" {
					args = append(args, "--id-attr:"+tt.idAttr, tt.idNode)
				}
				return runTool(xmlsec1, append(args, f)...)
			}
			if out, err := verify(signed); err != nil {
				t.Fatalf("xmlsec1 refuses our signature: %v\n%s\n%s", err, out, signed)
			}
			tampered := tamperOutsideSignature(t, signed, tt.tamper[0], tt.tamper[1])
			if out, err := verify(tampered); err == nil {
				t.Fatalf("xmlsec1 accepts our signature after one byte changed:\n%s", out)
			}
			// And we agree on both.
			opts := VerifyOptions{Certs: []*x509.Certificate{keys[name].cert}, SignatureAlgorithms: []string{tt.signer.SignatureAlgorithm}, DigestAlgorithms: []string{tt.signer.DigestAlgorithm}}
			if opts.SignatureAlgorithms[0] == "" {
				opts.SignatureAlgorithms, opts.DigestAlgorithms = nil, nil
			}
			if _, _, err := VerifyEnveloped(mustParse(t, signed).Root(), opts); err != nil {
				t.Fatalf("we refuse our own signature: %v", err)
			}
			if _, _, err := VerifyEnveloped(mustParse(t, tampered).Root(), opts); err == nil {
				t.Fatal("we accept the tampered document")
			}
		})
	}
}

// xmlsec1Template inserts a signature template after the Issuer of the
// assertion text.
func xmlsec1Template(doc, uri, sigAlg, digAlg, siC14N, siPrefixes, tC14N, tPrefixes string) string {
	incl := func(p string) string {
		if p == "" {
			return ""
		}
		return `<ec:InclusiveNamespaces xmlns:ec="` + AlgExcC14N + `" PrefixList="` + p + `"/>`
	}
	comment := ""
	if siC14N == AlgExcC14NWithComments {
		comment = "<!-- signed, since SignedInfo keeps comments -->"
	}
	sig := `<ds:Signature xmlns:ds="` + NamespaceDSig + `">
  <ds:SignedInfo>` + comment + `
    <ds:CanonicalizationMethod Algorithm="` + siC14N + `">` + incl(siPrefixes) + `</ds:CanonicalizationMethod>
    <ds:SignatureMethod Algorithm="` + sigAlg + `"/>
    <ds:Reference URI="` + uri + `">
      <ds:Transforms>
        <ds:Transform Algorithm="` + AlgEnveloped + `"/>
        <ds:Transform Algorithm="` + tC14N + `">` + incl(tPrefixes) + `</ds:Transform>
      </ds:Transforms>
      <ds:DigestMethod Algorithm="` + digAlg + `"/>
      <ds:DigestValue/>
    </ds:Reference>
  </ds:SignedInfo>
  <ds:SignatureValue/>
  <ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>
</ds:Signature>`
	i := strings.Index(doc, "</saml:Issuer>") + len("</saml:Issuer>")
	return doc[:i] + sig + doc[i:]
}

func TestWeVerifyXmlsec1Signatures(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	key(t, "rsa")
	tests := []struct {
		name     string
		key      string
		template string
	}{
		{"xmlsec1's RSA-SHA256 signature on a SAML assertion", "rsa",
			xmlsec1Template(assertionXML, "#"+assertionID, AlgRSASHA256, AlgSHA256, AlgExcC14N, "", AlgExcC14N, "")},
		{"xmlsec1's RSA-SHA512 signature with a SHA-512 digest", "rsa",
			xmlsec1Template(assertionXML, "#"+assertionID, AlgRSASHA512, AlgSHA512, AlgExcC14N, "", AlgExcC14N, "xs")},
		{"xmlsec1's ECDSA-SHA256 signature", "ec",
			xmlsec1Template(assertionXML, "#"+assertionID, AlgECDSASHA256, AlgSHA256, AlgExcC14N, "", AlgExcC14N, "")},
		{"xmlsec1's signature with #WithComments SignedInfo, PrefixLists and a comment in SignedInfo", "rsa",
			xmlsec1Template(trickyAssertion, "#_tricky", AlgRSASHA256, AlgSHA256, AlgExcC14NWithComments, "xs #default saml", AlgExcC14NWithComments, "unused #default")},
		{"xmlsec1's signature over content full of c14n trouble spots", "ec",
			xmlsec1Template(trickyAssertion, "#_tricky", AlgECDSASHA256, AlgSHA512, AlgExcC14N, "", AlgExcC14N, "xs")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keyPath, certPath := keys[tt.key].writePEM(t, dir)
			in := filepath.Join(dir, "template.xml")
			out := filepath.Join(dir, "signed.xml")
			writeFile(t, in, []byte(tt.template))
			if res, err := runTool(xmlsec1, "--sign", "--privkey-pem", keyPath+","+certPath, "--id-attr:ID", nsSAML2+":Assertion", "--output", out, in); err != nil {
				t.Fatalf("xmlsec1 --sign: %v\n%s", err, res)
			}
			signed, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			verified, cert, err := VerifyEnveloped(mustParse(t, string(signed)).Root(), VerifyOptions{Certs: []*x509.Certificate{keys["rsa-other"].cert, keys[tt.key].cert}})
			if err != nil {
				t.Fatalf("we refuse xmlsec1's signature: %v\n%s", err, signed)
			}
			if !cert.Equal(keys[tt.key].cert) {
				t.Fatal("wrong certificate reported")
			}
			if verified.SelectElement("ds:Signature") != nil || verified.SelectElement("saml:Issuer") == nil {
				t.Fatal("verified is not the assertion without its signature")
			}
			// One changed byte in the content must be caught.
			tampered := strings.Replace(string(signed), "example.com</saml:NameID>", "example.con</saml:NameID>", 1)
			if tampered == string(signed) {
				t.Fatal("test bug: nothing tampered")
			}
			if _, _, err := VerifyEnveloped(mustParse(t, tampered).Root(), VerifyOptions{Certs: []*x509.Certificate{keys[tt.key].cert}}); err == nil {
				t.Fatal("we accept a tampered xmlsec1 signature")
			}
		})
	}
}

// Our signer writes the signature where asked and leaves the element alone
// on error.
func TestSignEnvelopedPlacement(t *testing.T) {
	key(t, "rsa")
	s := signer(t, "rsa")
	tests := []struct {
		name     string
		insertAt int
		want     []string // child element tags after signing
	}{
		{"insertAt 0 puts the signature first", 0, []string{"Signature", "Issuer", "Subject"}},
		{"insertAt 1 puts it after the Issuer, as SAML requires", 1, []string{"Issuer", "Signature", "Subject"}},
		{"insertAt -1 appends it", -1, []string{"Issuer", "Subject", "Signature"}},
		{"insertAt past the end appends it", 7, []string{"Issuer", "Subject", "Signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := mustParse(t, `<a:A xmlns:a="urn:a" ID="x"> <a:Issuer/> <a:Subject/> </a:A>`)
			if err := s.SignEnveloped(doc.Root(), "ID", tt.insertAt); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range doc.Root().ChildElements() {
				got = append(got, c.Tag)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("children %v, want %v", got, tt.want)
			}
			if _, _, err := VerifyEnveloped(doc.Root(), trust("rsa")); err != nil {
				t.Fatalf("does not verify in place: %v", err)
			}
		})
	}
}

func TestSignEnvelopedRefuses(t *testing.T) {
	key(t, "rsa")
	tests := []struct {
		name   string
		doc    string
		idAttr string
		signer Signer
	}{
		{"an element without the ID attribute", `<a/>`, "ID", signer(t, "rsa")},
		{"URI=\"\" on an element that is not the document element", `<r><a/></r>`, "", signer(t, "rsa")},
		{"a certificate that does not match the key", `<a ID="x"/>`, "ID", Signer{Key: keys["rsa"].key, Cert: keys["rsa-other"].cert}},
		{"an ECDSA key with an RSA signature method", `<a ID="x"/>`, "ID", Signer{Key: keys["ec"].key, SignatureAlgorithm: AlgRSASHA256}},
		{"an HMAC signature method", `<a ID="x"/>`, "ID", Signer{Key: keys["rsa"].key, SignatureAlgorithm: "http://www.w3.org/2000/09/xmldsig#hmac-sha1"}},
		{"an unknown digest method", `<a ID="x"/>`, "ID", Signer{Key: keys["rsa"].key, DigestAlgorithm: "urn:md5"}},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			doc := mustParse(t, tt.doc)
			el := doc.Root()
			if el.Tag == "r" {
				el = el.ChildElements()[0]
			}
			before := serialize(t, doc)
			if err := tt.signer.SignEnveloped(el, tt.idAttr, -1); err == nil {
				t.Fatal("SignEnveloped succeeded")
			}
			if serialize(t, doc) != before {
				t.Fatal("the element was changed although signing failed")
			}
		})
	}
}

// tamperOutsideSignature replaces the first occurrence of from that is not
// inside the Signature element. The Signature's base64 (the value, the
// digest, the certificate) is random and holds a short string like "VPN"
// now and then: changing a byte of the KeyInfo certificate, which the
// verifier is told to ignore, is no tampering, and the test failed about
// one run in a hundred.
func tamperOutsideSignature(t *testing.T, signed, from, to string) string {
	t.Helper()
	start := strings.Index(signed, ":Signature ")
	end := strings.Index(signed, ":Signature>")
	if start < 0 || end < start {
		t.Fatalf("test bug: no Signature element in %s", signed)
	}
	start = strings.LastIndex(signed[:start], "<")
	end += len(":Signature>")
	for off := 0; ; {
		i := strings.Index(signed[off:], from)
		if i < 0 {
			t.Fatalf("test bug: %q not in the signed content", from)
		}
		i += off
		if i+len(from) <= start || i >= end {
			return signed[:i] + to + signed[i+len(from):]
		}
		off = i + 1
	}
}
