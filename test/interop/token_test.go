package interop

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// node is a minimal namespace-resolved DOM for reading assertions.
type node struct {
	Name     xml.Name
	Attrs    []xml.Attr
	Children []*node
	Text     string
}

func (n *node) attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// find returns the descendants of n named {space}local, in document order.
func (n *node) find(space, local string) []*node {
	var out []*node
	for _, c := range n.Children {
		if c.Name.Space == space && c.Name.Local == local {
			out = append(out, c)
		}
		out = append(out, c.find(space, local)...)
	}
	return out
}

// parseStandalone parses doc as a document on its own. A token cut out of an
// RSTR by text must be such a document: every prefix it uses must be declared
// inside it, or a relying party that receives it cannot even parse it.
func parseStandalone(doc []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			// encoding/xml leaves an undeclared prefix in Name.Space.
			if !strings.Contains(tok.Name.Space, ":") {
				return nil, fmt.Errorf("element <%s> uses undeclared prefix %q (or no namespace)", tok.Name.Local, tok.Name.Space)
			}
			for _, a := range tok.Attr {
				if a.Name.Space != "" && a.Name.Space != "xmlns" && !strings.Contains(a.Name.Space, ":") && a.Name.Space != "xml" {
					return nil, fmt.Errorf("attribute %s:%s uses an undeclared prefix", a.Name.Space, a.Name.Local)
				}
			}
			n := &node{Name: tok.Name, Attrs: tok.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			} else if len(bytes.TrimSpace(tok)) > 0 {
				return nil, errors.New("text outside the root element")
			}
		case xml.Directive:
			return nil, fmt.Errorf("unexpected directive %s", tok)
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// expect is what a token must say.
type expect struct {
	SAML     string // "1.1" or "2.0"
	User     string // NameID / NameIdentifier
	Audience string // = AppliesTo
	Lifetime time.Duration
	// Requested is the wst:Lifetime (Created, Expires) the client sent, when
	// it sent one.
	Requested [2]time.Time
	Claims    map[string]string // claim URI → value
}

const defaultLifetime = 5 * time.Minute

// verifyToken is the common check of every token any client got: the
// assertion must be a document of its own, carry what was asked for, and be
// accepted by both xmlsec1 and OpenSAML's samlsign — and refused by both once
// one byte of signed content changes.
func verifyToken(t *testing.T, srv *server, assertion []byte, tokenType string, want expect) {
	t.Helper()
	if len(assertion) == 0 {
		t.Fatal("no assertion")
	}
	root, err := parseStandalone(assertion)
	if err != nil {
		t.Fatalf("the assertion cut from the RSTR by text is not a standalone XML document: %v\n%s", err, assertion)
	}
	checkTokenType(t, tokenType, want.SAML)
	checkAssertion(t, root, want)

	file := filepath.Join(t.TempDir(), "token.xml")
	if err := os.WriteFile(file, assertion, 0o644); err != nil {
		t.Fatal(err)
	}
	verifiers := signatureVerifiers(t, srv, want.SAML)
	for _, v := range verifiers {
		if out, err := v.run(file); err != nil {
			t.Errorf("%s refuses the token as issued: %v\n%s\ntoken:\n%s", v.name, err, out, assertion)
		}
	}

	tampered, what, err := tamper(assertion, want.SAML)
	if err != nil {
		t.Fatalf("cannot tamper with the token: %v", err)
	}
	tfile := filepath.Join(t.TempDir(), "tampered.xml")
	if err := os.WriteFile(tfile, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range verifiers {
		if out, err := v.run(tfile); err == nil {
			t.Errorf("%s accepts the token after %s:\n%s", v.name, what, out)
		}
	}
}

func checkTokenType(t *testing.T, tokenType, saml string) {
	t.Helper()
	ok := map[string][]string{
		"2.0": {tokenSAML20, nsSAML2},
		"1.1": {tokenSAML11, nsSAML1},
	}[saml]
	for _, o := range ok {
		if tokenType == o {
			return
		}
	}
	t.Errorf("RSTR TokenType is %q, want one of %q", tokenType, ok)
}

func checkAssertion(t *testing.T, root *node, want expect) {
	t.Helper()
	ns, idAttr := nsSAML2, "ID"
	if want.SAML == "1.1" {
		ns, idAttr = nsSAML1, "AssertionID"
	}
	if root.Name != (xml.Name{Space: ns, Local: "Assertion"}) {
		t.Fatalf("root element is {%s}%s, want {%s}Assertion", root.Name.Space, root.Name.Local, ns)
	}
	if root.attr(idAttr) == "" {
		t.Errorf("assertion has no %s attribute", idAttr)
	}
	if want.SAML == "1.1" && (root.attr("MajorVersion") != "1" || root.attr("MinorVersion") != "1") {
		t.Errorf("SAML 1.1 assertion has MajorVersion=%q MinorVersion=%q", root.attr("MajorVersion"), root.attr("MinorVersion"))
	}
	if want.SAML == "2.0" && root.attr("Version") != "2.0" {
		t.Errorf("SAML 2.0 assertion has Version=%q", root.attr("Version"))
	}
	if sigs := root.find("http://www.w3.org/2000/09/xmldsig#", "Signature"); len(sigs) != 1 {
		t.Errorf("assertion has %d ds:Signature elements, want 1", len(sigs))
	}

	// Subject.
	nameTag := "NameID"
	if want.SAML == "1.1" {
		nameTag = "NameIdentifier"
	}
	names := root.find(ns, nameTag)
	if len(names) == 0 {
		t.Errorf("assertion has no %s", nameTag)
	}
	for _, n := range names {
		if strings.TrimSpace(n.Text) != want.User {
			t.Errorf("%s = %q, want %q", nameTag, n.Text, want.User)
		}
	}

	// Audience = AppliesTo.
	var auds []string
	for _, a := range root.find(ns, "Audience") {
		auds = append(auds, strings.TrimSpace(a.Text))
	}
	if len(auds) != 1 || auds[0] != want.Audience {
		t.Errorf("Audience = %q, want exactly [%q] (the AppliesTo)", auds, want.Audience)
	}

	// Lifetime.
	conds := root.find(ns, "Conditions")
	if len(conds) != 1 {
		t.Fatalf("assertion has %d Conditions, want 1", len(conds))
	}
	nb, err1 := time.Parse(time.RFC3339Nano, conds[0].attr("NotBefore"))
	na, err2 := time.Parse(time.RFC3339Nano, conds[0].attr("NotOnOrAfter"))
	if err1 != nil || err2 != nil {
		t.Fatalf("Conditions NotBefore=%q NotOnOrAfter=%q: %v %v", conds[0].attr("NotBefore"), conds[0].attr("NotOnOrAfter"), err1, err2)
	}
	if want.Requested[1].IsZero() {
		// The default lifetime, counted from the STS's own clock.
		if got := na.Sub(nb); got != want.Lifetime {
			t.Errorf("NotOnOrAfter-NotBefore = %v, want the default %v", got, want.Lifetime)
		}
	} else {
		// A requested lifetime: the token ends exactly at the requested
		// Expires. It may start later than the requested Created (the STS
		// does not issue tokens valid before it was asked), never earlier.
		if !na.Equal(want.Requested[1]) {
			t.Errorf("NotOnOrAfter = %v, want the requested Expires %v", na, want.Requested[1])
		}
		if nb.Before(want.Requested[0]) || nb.After(time.Now()) {
			t.Errorf("NotBefore = %v, want between the requested Created %v and now", nb, want.Requested[0])
		}
		if got := na.Sub(nb); got > want.Lifetime || got < want.Lifetime-time.Minute {
			t.Errorf("NotOnOrAfter-NotBefore = %v, want the requested %v (less transit time)", got, want.Lifetime)
		}
	}
	if d := time.Since(nb); d < -time.Minute || d > 5*time.Minute {
		t.Errorf("NotBefore %v is %v away from now", nb, d)
	}
	for _, a := range []string{"NotBefore", "NotOnOrAfter"} {
		if v := conds[0].attr(a); !strings.HasSuffix(v, "Z") {
			t.Errorf("Conditions %s=%q is not UTC with Z", a, v)
		}
	}

	// Claims, as SAML attributes.
	got := map[string][]string{}
	for _, a := range root.find(ns, "Attribute") {
		name := a.attr("Name")
		if want.SAML == "1.1" {
			// SAML 1.1 splits a claim URI into namespace and name.
			name = a.attr("AttributeName")
			if n := a.attr("AttributeNamespace"); n != "" && !strings.HasPrefix(name, n) {
				name = strings.TrimSuffix(n, "/") + "/" + name
			}
		}
		for _, v := range a.find(ns, "AttributeValue") {
			got[name] = append(got[name], strings.TrimSpace(v.Text))
		}
	}
	for uri, v := range want.Claims {
		if len(got[uri]) != 1 || got[uri][0] != v {
			t.Errorf("claim %s = %q, want [%q] (all attributes: %v)", uri, got[uri], v, got)
		}
	}
}

type verifier struct {
	name string
	run  func(file string) ([]byte, error)
}

// signatureVerifiers returns xmlsec1 and samlsign set up to check a token of
// the given SAML version against the server's certificate (pinned: no chain
// building, no KeyInfo trust).
func signatureVerifiers(t *testing.T, srv *server, saml string) []verifier {
	t.Helper()
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	samlsign := testutil.Tool(t, "samlsign")
	idAttr := "--id-attr:ID"
	idNode := nsSAML2 + ":Assertion"
	if saml == "1.1" {
		idAttr, idNode = "--id-attr:AssertionID", nsSAML1+":Assertion"
	}
	return []verifier{
		{"xmlsec1", func(file string) ([]byte, error) {
			return exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "empty,same-doc",
				"--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", srv.CertFile,
				idAttr, idNode, file).CombinedOutput()
		}},
		{"samlsign", func(file string) ([]byte, error) {
			// Absolute paths: relative ones resolve under /etc/opensaml.
			abs, err := filepath.Abs(file)
			if err != nil {
				return nil, err
			}
			return exec.Command(samlsign, "-c", srv.CertFile, "-f", abs).CombinedOutput()
		}},
	}
}

var (
	reNameID2 = regexp.MustCompile(`(<(?:[\w.-]+:)?NameID(?:\s[^>]*)?>)([^<])`)
	reNameID1 = regexp.MustCompile(`(<(?:[\w.-]+:)?NameIdentifier(?:\s[^>]*)?>)([^<])`)
)

// tamper changes the first character of the subject's name: a one-byte
// change of signed content that, unlike whitespace, no canonicalisation can
// undo.
func tamper(assertion []byte, saml string) ([]byte, string, error) {
	re := reNameID2
	if saml == "1.1" {
		re = reNameID1
	}
	loc := re.FindSubmatchIndex(assertion)
	if loc == nil {
		return nil, "", errors.New("no name identifier found")
	}
	out := bytes.Clone(assertion)
	i := loc[4] // first byte of the name
	if out[i] == 'X' {
		out[i] = 'Y'
	} else {
		out[i] = 'X'
	}
	return out, fmt.Sprintf("changing the first byte of the name identifier from %q to %q", assertion[i], out[i]), nil
}
