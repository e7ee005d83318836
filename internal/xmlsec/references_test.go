package xmlsec

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/testutil"
)

// detachedSpec describes a detached signature to make for a test.
type detachedSpec struct {
	refs         []string // IDs referenced
	transforms   string   // Transforms element content per reference; "" = exc-c14n
	noTransforms bool
	sigAlg       string // default rsa-sha256
	digAlg       string // default sha256
	keyInfo      string // KeyInfo element, "" = none
	extra        string // appended inside ds:Signature after KeyInfo
}

// detachedDoc is a WS-Security-like document with two signable elements
// and a place for the signature.
const detachedDoc = `<e:Envelope xmlns:e="urn:env" xmlns:u="urn:util"><e:Header><s:Security xmlns:s="urn:sec">` +
	`<u:Timestamp u:Id="ts"><u:Created>2026-11-22T12:00:00Z</u:Created></u:Timestamp>{{SIG}}</s:Security></e:Header>` +
	`<e:Body u:Id="body"><p:Request xmlns:p="urn:payload" xmlns:unused="urn:unused">hello <!-- a comment --> world</p:Request></e:Body></e:Envelope>`

// signDetached signs the elements of doc named by spec.refs. The digests
// come from this package's canonicalizer, which is differentially tested
// against xmlsec1 (and TestXmlsec1VerifiesOurDetachedTestSignature checks
// this helper's output with xmlsec1 too).
func signDetached(t testing.TB, k testKey, doc string, spec detachedSpec) string {
	t.Helper()
	if spec.sigAlg == "" {
		spec.sigAlg = AlgRSASHA256
	}
	if spec.digAlg == "" {
		spec.digAlg = AlgSHA256
	}
	plain := mustParse(t, strings.Replace(doc, "{{SIG}}", "", 1))
	ids, err := IndexIDs(plain.Root())
	if err != nil {
		t.Fatal(err)
	}
	var si strings.Builder
	si.WriteString(`<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="` + AlgExcC14N + `"></ds:CanonicalizationMethod>`)
	si.WriteString(`<ds:SignatureMethod Algorithm="` + spec.sigAlg + `"></ds:SignatureMethod>`)
	for _, id := range spec.refs {
		digest := "AAAA"
		if el := ids[strings.TrimPrefix(id, "#")]; el != nil {
			c, err := Canonicalize(el, C14NOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h := digestAlgs[spec.digAlg].New()
			h.Write(c)
			digest = base64.StdEncoding.EncodeToString(h.Sum(nil))
		}
		uri := id
		if !strings.HasPrefix(id, "#") && id != "" && !strings.HasPrefix(id, "xpointer") {
			uri = "#" + id
		}
		si.WriteString(`<ds:Reference URI="` + uri + `">`)
		switch {
		case spec.noTransforms:
		case spec.transforms != "":
			si.WriteString(`<ds:Transforms>` + spec.transforms + `</ds:Transforms>`)
		default:
			si.WriteString(`<ds:Transforms><ds:Transform Algorithm="` + AlgExcC14N + `"></ds:Transform></ds:Transforms>`)
		}
		si.WriteString(`<ds:DigestMethod Algorithm="` + spec.digAlg + `"></ds:DigestMethod><ds:DigestValue>` + digest + `</ds:DigestValue></ds:Reference>`)
	}
	si.WriteString(`</ds:SignedInfo>`)
	sig := `<ds:Signature xmlns:ds="` + NamespaceDSig + `">` + si.String() + `<ds:SignatureValue>SIGVALUE</ds:SignatureValue>` +
		spec.keyInfo + spec.extra + `</ds:Signature>`
	withSig := strings.Replace(doc, "{{SIG}}", sig, 1)
	parsed := mustParse(t, withSig)
	sigEl := parsed.FindElement("//Signature")
	c, err := Canonicalize(sigEl.SelectElement("SignedInfo"), C14NOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash := crypto.SHA256
	if sa, ok := signatureAlgs[spec.sigAlg]; ok {
		hash = sa.hash
	}
	h := hash.New()
	h.Write(c)
	value, err := k.key.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(withSig, "SIGVALUE", base64.StdEncoding.EncodeToString(value), 1)
}

// resolveIn is the resolver of a test: IDs of the document, restricted to
// the Body and the Timestamp in their places.
func resolveIn(t testing.TB, doc *etree.Document) func(string) (*etree.Element, error) {
	ids, err := IndexIDs(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	body := doc.Root().SelectElement("Body")
	ts := doc.FindElement("/Envelope/Header/Security/Timestamp")
	return func(id string) (*etree.Element, error) {
		el := ids[id]
		if el == nil {
			return nil, errors.New("unknown ID")
		}
		if el != body && el != ts {
			return nil, errors.New("not a signable element")
		}
		return el, nil
	}
}

func TestDetachedSignatureOverBodyAndTimestampVerifies(t *testing.T) {
	k := key(t, "rsa")
	out := signDetached(t, k, detachedDoc, detachedSpec{refs: []string{"body", "ts"}})
	doc := mustParse(t, out)
	d, err := VerifyDetached(doc.FindElement("//Signature"), resolveIn(t, doc), DetachedOptions{Certs: []*x509.Certificate{k.cert}})
	if err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if d.Cert != k.cert || len(d.References) != 2 || !d.Covers(doc.Root().SelectElement("Body")) {
		t.Fatalf("result %+v", d)
	}
	// Comments are not signed: the canonical octets have none, and Text
	// reads across them.
	if strings.Contains(string(d.References[0].Canonical), "comment") {
		t.Fatalf("digested a comment: %s", d.References[0].Canonical)
	}
	if got := d.References[0].Element.SelectElement("Request").Text(); got != "hello  world" {
		t.Fatalf("text %q", got)
	}
}

func TestDetachedSignaturesThatMustBeRefused(t *testing.T) {
	k, other := key(t, "rsa"), key(t, "rsa-other")
	trusted := DetachedOptions{Certs: []*x509.Certificate{k.cert}}
	excWithXPath := `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>` +
		`<ds:Transform Algorithm="` + AlgExcC14N + `"></ds:Transform>`
	cases := []struct {
		name    string
		signer  testKey
		spec    detachedSpec
		doc     string
		edit    func(string) string
		want    error
		options *DetachedOptions
	}{
		{name: "a reference to an element the resolver refuses", signer: k,
			spec: detachedSpec{refs: []string{"body", "created"}},
			doc:  strings.Replace(detachedDoc, `<u:Created>`, `<u:Created u:Id="created">`, 1), want: ErrBadReference},
		{name: "a reference changed after signing", signer: k, spec: detachedSpec{refs: []string{"body", "ts"}},
			edit: func(s string) string { return strings.Replace(s, `URI="#ts"`, `URI="#body"`, 1) }, want: ErrBadReference},
		{name: "an XPath transform", signer: k, spec: detachedSpec{refs: []string{"body"}, transforms: excWithXPath}, want: ErrAlgorithmNotAllowed},
		{name: "an XSLT transform", signer: k, spec: detachedSpec{refs: []string{"body"},
			transforms: `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"></ds:Transform>`}, want: ErrAlgorithmNotAllowed},
		{name: "an enveloped-signature transform", signer: k, spec: detachedSpec{refs: []string{"body"},
			transforms: `<ds:Transform Algorithm="` + AlgEnveloped + `"></ds:Transform><ds:Transform Algorithm="` + AlgExcC14N + `"></ds:Transform>`}, want: ErrAlgorithmNotAllowed},
		{name: "inclusive C14N 1.0", signer: k, spec: detachedSpec{refs: []string{"body"},
			transforms: `<ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"></ds:Transform>`}, want: ErrAlgorithmNotAllowed},
		{name: "a reference without transforms", signer: k, spec: detachedSpec{refs: []string{"body"}, noTransforms: true}, want: ErrMalformedSignature},
		{name: "an HMAC signature method", signer: k, spec: detachedSpec{refs: []string{"body"}, sigAlg: "http://www.w3.org/2000/09/xmldsig#hmac-sha1"}, want: ErrAlgorithmNotAllowed},
		{name: "RSA-SHA1 when only the defaults are allowed", signer: k, spec: detachedSpec{refs: []string{"body"}, sigAlg: AlgRSASHA1}, want: ErrAlgorithmNotAllowed},
		{name: "an SHA-1 digest when only the defaults are allowed", signer: k, spec: detachedSpec{refs: []string{"body"}, digAlg: AlgSHA1}, want: ErrAlgorithmNotAllowed},
		{name: "the same URI referenced twice", signer: k, spec: detachedSpec{refs: []string{"body", "body"}}, want: ErrBadReference},
		{name: "URI=\"\" (the whole document)", signer: k, spec: detachedSpec{refs: []string{""}}, want: ErrBadReference},
		{name: "an XPointer URI", signer: k, spec: detachedSpec{refs: []string{"#xpointer(id('body'))"}}, want: ErrBadReference},
		{name: "an external URI", signer: k, spec: detachedSpec{refs: []string{"http://evil.example/body"}}, want: ErrBadReference},
		{name: "a ds:Object in the Signature", signer: k, spec: detachedSpec{refs: []string{"body"},
			extra: `<ds:Object><e:Body xmlns:e="urn:env" u:Id="copy">x</e:Body></ds:Object>`}, want: ErrMalformedSignature},
		{name: "a signature by an untrusted key", signer: other, spec: detachedSpec{refs: []string{"body"}}, want: ErrBadSignature},
		{name: "a KeyInfo certificate that is not the trusted one", signer: other, spec: detachedSpec{refs: []string{"body"},
			keyInfo: `<ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + base64.StdEncoding.EncodeToString(other.cert.Raw) +
				`</ds:X509Certificate></ds:X509Data></ds:KeyInfo>`}, want: ErrUntrustedKey},
		{name: "a Body changed after signing", signer: k, spec: detachedSpec{refs: []string{"body", "ts"}},
			edit: func(s string) string { return strings.Replace(s, "hello", "HELLO", 1) }, want: ErrBadDigest},
		{name: "a Timestamp changed after signing", signer: k, spec: detachedSpec{refs: []string{"body", "ts"}},
			edit: func(s string) string { return strings.Replace(s, "12:00:00Z", "12:59:00Z", 1) }, want: ErrBadDigest},
		{name: "a namespace prefix of the Body rebound after signing", signer: k,
			spec: detachedSpec{refs: []string{"body"}},
			edit: func(s string) string { return strings.Replace(s, `xmlns:p="urn:payload"`, `xmlns:p="urn:evil"`, 1) }, want: ErrBadDigest},
		{name: "too many references", signer: k, spec: detachedSpec{refs: []string{"body", "ts"}},
			options: &DetachedOptions{Certs: []*x509.Certificate{k.cert}, MaxReferences: 1}, want: ErrMalformedSignature},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			doc := c.doc
			if doc == "" {
				doc = detachedDoc
			}
			out := signDetached(t, c.signer, doc, c.spec)
			if c.edit != nil {
				out = c.edit(out)
			}
			parsed := mustParse(t, out)
			opts := trusted
			if c.options != nil {
				opts = *c.options
			}
			if c.spec.sigAlg == AlgRSASHA1 || c.spec.digAlg == AlgSHA1 {
				opts.SignatureAlgorithms, opts.DigestAlgorithms = nil, nil
			}
			_, err := VerifyDetached(parsed.FindElement("//Signature"), resolveIn(t, parsed), opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// The resolver's verdict is final: an ID it refuses is a bad reference even
// when the signature and digest are right for that element.
func TestAResolverThatRefusesAnIDWins(t *testing.T) {
	k := key(t, "rsa")
	out := signDetached(t, k, detachedDoc, detachedSpec{refs: []string{"body"}})
	doc := mustParse(t, out)
	_, err := VerifyDetached(doc.FindElement("//Signature"), func(string) (*etree.Element, error) {
		return nil, errors.New("not here")
	}, DetachedOptions{Certs: []*x509.Certificate{k.cert}})
	if !errors.Is(err, ErrBadReference) {
		t.Fatalf("got %v", err)
	}
	// And a reference to an element holding the signature is refused.
	_, err = VerifyDetached(doc.FindElement("//Signature"), func(string) (*etree.Element, error) {
		return doc.Root(), nil
	}, DetachedOptions{Certs: []*x509.Certificate{k.cert}})
	if !errors.Is(err, ErrBadReference) {
		t.Fatalf("a reference to an ancestor of the signature: got %v", err)
	}
}

func TestIndexIDsRefusesAnIDCarriedTwice(t *testing.T) {
	cases := []struct {
		name, doc string
		dup       bool
	}{
		{"distinct wsu:Id values", `<a xmlns:u="urn:u"><b u:Id="x"></b><c u:Id="y"></c></a>`, false},
		{"the same wsu:Id on two elements", `<a xmlns:u="urn:u"><b u:Id="x"></b><c u:Id="x"></c></a>`, true},
		{"a wsu:Id repeated as an unprefixed Id", `<a xmlns:u="urn:u"><b u:Id="x"></b><c Id="x"></c></a>`, true},
		{"a wsu:Id repeated as a SAML ID", `<a xmlns:u="urn:u"><b u:Id="x"></b><c ID="x"></c></a>`, true},
		{"a wsu:Id repeated as xml:id", `<a xmlns:u="urn:u"><b u:Id="x"></b><c xml:id="x"></c></a>`, true},
		{"two ID attributes with one value on one element", `<a xmlns:u="urn:u"><b u:Id="x" ID="x"></b></a>`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := IndexIDs(mustParse(t, c.doc).Root())
			if (err != nil) != c.dup || (c.dup && !errors.Is(err, ErrDuplicateID)) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// The test signer is not trusted on its own word: xmlsec1 verifies what it
// makes (both references resolved by wsu:Id-like Id attributes).
func TestXmlsec1VerifiesOurDetachedTestSignature(t *testing.T) {
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	k := key(t, "rsa")
	dir := t.TempDir()
	_, certPath := k.writePEM(t, dir)
	out := signDetached(t, k, detachedDoc, detachedSpec{refs: []string{"body", "ts"}})
	f := filepath.Join(dir, "doc.xml")
	if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "same-doc", "--enabled-key-data", "raw-x509-cert",
		"--pubkey-cert-pem", certPath, "--id-attr:Id", "urn:env:Body", "--id-attr:Id", "urn:util:Timestamp", f)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("xmlsec1: %v\n%s\n%s", err, b, out))
	}
}
