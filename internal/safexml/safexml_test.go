package safexml

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"a DOCTYPE is refused", `<!DOCTYPE r><r/>`, ErrDoctype},
		{"an internal entity declaration is refused before it can be used", `<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>`, ErrDoctype},
		{"an external entity (XXE) is refused", `<?xml version="1.0"?><!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>`, ErrDoctype},
		{"a billion-laughs DTD is refused", `<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>`, ErrDoctype},
		{"a <! declaration inside the root is refused", `<r><!ELEMENT r ANY></r>`, ErrDoctype},
		{"an undefined entity is malformed", `<r>&nbsp;</r>`, ErrMalformed},
		{"nesting past MaxDepth is refused", strings.Repeat("<a>", 65) + strings.Repeat("</a>", 65), ErrTooDeep},
		{"a second root element is refused", `<a/><b/>`, ErrMalformed},
		{"text before the root is refused", `x<a/>`, ErrMalformed},
		{"text after the root is refused", `<a/>x`, ErrMalformed},
		{"a character reference outside the root is refused", `<a/>&#32;`, ErrMalformed},
		{"CDATA outside the root is refused", `<a/><![CDATA[x]]>`, ErrMalformed},
		{"an empty document is refused", ``, ErrMalformed},
		{"a document of only comments is refused", `<!--x-->`, ErrMalformed},
		{"an unclosed element is refused", `<a><b></b>`, ErrMalformed},
		{"a mismatched end tag is refused", `<a></b>`, ErrMalformed},
		{"a stray end tag is refused", `<a/></a>`, ErrMalformed},
		{"a duplicate attribute is refused", `<a x="1" x="2"/>`, ErrMalformed},
		{"the same expanded attribute name twice is refused", `<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>`, ErrMalformed},
		{"an unbound element prefix is refused", `<p:a/>`, ErrMalformed},
		{"an unbound attribute prefix is refused", `<a p:x="1"/>`, ErrMalformed},
		{"undeclaring a prefix (XML 1.1 only) is refused", `<a xmlns:p=""/>`, ErrMalformed},
		{"rebinding the xml prefix is refused", `<a xmlns:xml="urn:x"/>`, ErrMalformed},
		{"declaring the xmlns prefix is refused", `<a xmlns:xmlns="urn:x"/>`, ErrMalformed},
		{"binding the XML namespace to another prefix is refused", `<a xmlns:x="http://www.w3.org/XML/1998/namespace"/>`, ErrMalformed},
		{"a QName with two colons is refused", `<a:b:c xmlns:a="u"/>`, ErrMalformed},
		{"an attribute without quotes is refused", `<a x=1/>`, ErrMalformed},
		{"attributes without whitespace between them are refused", `<a x="1"y="2"/>`, ErrMalformed},
		{"'<' in an attribute value is refused", `<a x="<"/>`, ErrMalformed},
		{"']]>' in text is refused", `<a>]]></a>`, ErrMalformed},
		{"'--' in a comment is refused", `<a><!-- a -- b --></a>`, ErrMalformed},
		{"a comment ending in '--->' is refused", `<a><!-- a ---></a>`, ErrMalformed},
		{"an XML declaration after the start is refused", ` <?xml version="1.0"?><a/>`, ErrMalformed},
		{"an XML 1.1 declaration is refused", `<?xml version="1.1"?><a/>`, ErrMalformed},
		{"a non-UTF-8 encoding declaration is refused", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, ErrMalformed},
		{"invalid UTF-8 is refused", "<a>\xff</a>", ErrMalformed},
		{"a NUL byte is refused", "<a>\x00</a>", ErrMalformed},
		{"a control character is refused", "<a>\x01</a>", ErrMalformed},
		{"U+FFFE is refused", "<a>\uFFFE</a>", ErrMalformed},
		{"a reference to a non-XML character is refused", `<a>&#0;</a>`, ErrMalformed},
		{"a reference to a surrogate is refused", `<a>&#xD800;</a>`, ErrMalformed},
		{"a huge character reference is refused", `<a>&#x1000000000041;</a>`, ErrMalformed},
		{"an empty character reference is refused", `<a>&#x;</a>`, ErrMalformed},
		{"a name starting with a digit is refused", `<1a/>`, ErrMalformed},
		{"an unterminated comment is refused", `<a><!-- x</a>`, ErrMalformed},
		{"an unterminated PI is refused", `<a><?pi x</a>`, ErrMalformed},
		{"a truncated document is refused", `<a><b x="1"`, ErrMalformed},
		{"a lone '<' at the end is refused", `<a/><`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.in), DefaultLimits)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) = %v, want %v", tt.in, err, tt.want)
			}
			if doc != nil {
				t.Fatal("a refused document must not be returned")
			}
			if strings.Contains(err.Error(), tt.in) && tt.in != "" {
				t.Fatalf("error message %q echoes the input; messages must be safe to show clients", err)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	lim := Limits{MaxBytes: 100, MaxDepth: 64}
	ok := "<a>" + strings.Repeat("x", 100-7) + "</a>"
	if _, err := Parse([]byte(ok), lim); err != nil {
		t.Fatalf("a document of exactly MaxBytes is accepted: %v", err)
	}
	if _, err := Parse([]byte(ok+" "), lim); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over MaxBytes: got %v, want ErrTooLarge", err)
	}
	var b strings.Builder
	b.WriteString("<a")
	for i := 0; i <= MaxAttrs; i++ {
		b.WriteString(" a")
		b.WriteString(strings.Repeat("z", i/26))
		b.WriteByte(byte('a' + i%26))
		b.WriteString(`=""`)
	}
	b.WriteString("/>")
	if _, err := Parse([]byte(b.String()), DefaultLimits); !errors.Is(err, ErrTooManyAttributes) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("more than MaxAttrs attributes: got %v, want ErrTooManyAttributes (not a size error)", err)
	}
}

func TestParseZeroLimitsMeanDefaults(t *testing.T) {
	if _, err := Parse([]byte(strings.Repeat("<a>", 64)+strings.Repeat("</a>", 64)), Limits{}); err != nil {
		t.Fatalf("depth 64 with zero Limits: %v", err)
	}
	if _, err := Parse([]byte(strings.Repeat("<a>", 65)+strings.Repeat("</a>", 65)), Limits{}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth 65 with zero Limits: %v", err)
	}
	big := []byte("<a>" + strings.Repeat("x", 1<<20) + "</a>")
	if _, err := Parse(big, Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over 1 MiB with zero Limits: %v", err)
	}
}

// Hostile shapes must be refused (or parsed) without panicking or
// overflowing the stack, whatever limits the caller picked.
func TestParseSurvivesHostileShapes(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(strings.Repeat("<a>", n) + strings.Repeat("</a>", n))
	}
	huge := Limits{MaxBytes: 64 << 20, MaxDepth: 1 << 30}
	tests := []struct {
		name string
		in   []byte
		lim  Limits
		want error
	}{
		{"10,000-deep nesting is refused under the default depth", deep(10000), DefaultLimits, ErrTooDeep},
		{"20,000-deep nesting is refused under the default depth", deep(20000), Limits{MaxBytes: 1 << 30}, ErrTooDeep},
		{"20,000-deep nesting parses without recursion when allowed", deep(20000), huge, nil},
		{"20,000 unclosed elements are refused", []byte(strings.Repeat("<a>", 20000)), huge, ErrMalformed},
		{"10 MB of input is refused under the default size", bytes.Repeat([]byte("<a>"), 10<<20/3), DefaultLimits, ErrTooLarge},
		{"10 MB of text parses when allowed", []byte("<a>" + strings.Repeat("x", 10<<20) + "</a>"), huge, nil},
		{"10 MB of sibling elements parse when allowed", []byte("<r>" + strings.Repeat("<a/>", 10<<20/4) + "</r>"), huge, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseKeepsWhatSignaturesCover(t *testing.T) {
	in := "<?xml version='1.0' encoding='utf-8'?>\n<!--before-->\n<r xmlns='urn:r' xmlns:p=\"urn:p\">\n  <p:a x='1'>t<!--c-->u<?pi data?><![CDATA[<&>]]></p:a>\n</r>\n<?after?>"
	doc, err := Parse([]byte(in), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	if root.Tag != "r" || root.NamespaceURI() != "urn:r" {
		t.Fatalf("root is %s in %q", root.Tag, root.NamespaceURI())
	}
	// Document level: the comment and the trailing PI are kept (the XML
	// declaration and whitespace are not).
	var kinds []string
	for _, c := range doc.Child {
		switch c := c.(type) {
		case *etree.Comment:
			kinds = append(kinds, "comment:"+c.Data)
		case *etree.ProcInst:
			kinds = append(kinds, "pi:"+c.Target)
		case *etree.Element:
			kinds = append(kinds, "element:"+c.Tag)
		default:
			kinds = append(kinds, "other")
		}
	}
	if got := strings.Join(kinds, " "); got != "comment:before element:r pi:after" {
		t.Fatalf("document children: %s", got)
	}
	if len(root.Child) != 3 {
		t.Fatalf("whitespace text around p:a must be kept, root has %d children", len(root.Child))
	}
	a := root.SelectElement("p:a")
	if a == nil || a.NamespaceURI() != "urn:p" || a.SelectAttrValue("x", "") != "1" {
		t.Fatal("p:a not parsed with its namespace and attribute")
	}
	if len(a.Child) != 5 {
		t.Fatalf("p:a must hold text, comment, text, PI, CDATA; has %d children", len(a.Child))
	}
	if cd, ok := a.Child[4].(*etree.CharData); !ok || !cd.IsCData() || cd.Data != "<&>" {
		t.Fatalf("CDATA section not kept as CDATA: %#v", a.Child[4])
	}
	if pi, ok := a.Child[3].(*etree.ProcInst); !ok || pi.Target != "pi" || pi.Inst != "data" {
		t.Fatalf("PI not kept: %#v", a.Child[3])
	}
	if got := Text(a); got != "tu<&>" {
		t.Fatalf("Text = %q, want all character data joined across the comment and PI", got)
	}
}

func TestParseNormalizes(t *testing.T) {
	tests := []struct {
		name, in, attr, text string
	}{
		{"CR LF in text becomes LF", "<a x=''>1\r\n2</a>", "", "1\n2"},
		{"a lone CR in text becomes LF", "<a x=''>1\r2</a>", "", "1\n2"},
		{"&#13; in text stays CR", "<a x=''>1&#13;2</a>", "", "1\r2"},
		{"a literal tab in an attribute becomes a space", "<a x='1\t2'/>", "1 2", ""},
		{"a literal newline in an attribute becomes a space", "<a x='1\n2'/>", "1 2", ""},
		{"CR LF in an attribute becomes one space", "<a x='1\r\n2'/>", "1 2", ""},
		{"character references in an attribute are kept", "<a x='1&#9;&#10;&#13;2'/>", "1\t\n\r2", ""},
		{"predefined entities are decoded", "<a x='&lt;&gt;&amp;&quot;&apos;'>&lt;&amp;lt;</a>", `<>&"'`, "<&lt;"},
		{"a supplementary character reference is decoded", "<a x='&#x1F600;'>&#128512;</a>", "😀", "😀"},
		{"a UTF-8 BOM is skipped", "\uFEFF<a x=''>t</a>", "", "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.in), DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			r := doc.Root()
			if got := r.SelectAttrValue("x", ""); got != tt.attr {
				t.Errorf("attribute = %q, want %q", got, tt.attr)
			}
			if got := Text(r); got != tt.text {
				t.Errorf("text = %q, want %q", got, tt.text)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, in string }{
		{"an XML declaration with standalone", `<?xml version="1.0" encoding="UTF-8" standalone="no"?><a/>`},
		{"single-quoted XML declaration", `<?xml version='1.0'?><a/>`},
		{"the xml prefix without declaration", `<a xml:lang="en"/>`},
		{"an explicit xml prefix declaration", `<a xmlns:xml="http://www.w3.org/XML/1998/namespace" xml:lang="en"/>`},
		{"xmlns=\"\" undeclaring the default namespace", `<a xmlns="urn:a"><b xmlns=""/></a>`},
		{"same local name in different namespaces", `<a xmlns:p="urn:1" xmlns:q="urn:2" p:x="1" q:x="2" x="3"/>`},
		{"whitespace inside tags", "<a \n x = '1'\t></a \n>"},
		{"non-ASCII names", `<données é="1"><ñ/></données>`},
		{"'>' in text and attributes", `<a x=">">></a>`},
		{"an empty CDATA section", `<a><![CDATA[]]></a>`},
		{"a comment with single dashes", `<a><!-- a - b --></a>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.in), DefaultLimits); err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
		})
	}
}

// FuzzParse: Parse never panics, and what it accepts has one root element
// within the depth limit.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<a/>`, `<?xml version="1.0"?><r xmlns="u" xmlns:p="v"><p:a p:x="1" y='2'>t&amp;&#x41;<![CDATA[c]]><!--c--><?p i?></p:a></r>`,
		`<!DOCTYPE a><a/>`, "<a x='1\r\n2'>\r</a>", `<a><b><c/></b></a>`, `<a xmlns:p=""/>`,
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBytes: 1 << 16, MaxDepth: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data, lim)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDoctype) && !errors.Is(err, ErrTooDeep) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		roots := 0
		for _, c := range doc.Child {
			switch c.(type) {
			case *etree.Element:
				roots++
			case *etree.CharData, *etree.Directive:
				t.Fatal("character data or directive at document level")
			}
		}
		if roots != 1 {
			t.Fatalf("%d root elements", roots)
		}
		var depth func(*etree.Element) int
		depth = func(e *etree.Element) int {
			d := 0
			for _, c := range e.ChildElements() {
				d = max(d, depth(c))
			}
			return d + 1
		}
		if d := depth(doc.Root()); d > lim.MaxDepth {
			t.Fatalf("depth %d over the limit", d)
		}
	})
}

// stsRequest is a typical ~2 KB WS-Trust 1.3 Issue request.
const stsRequest = `<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:u="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
  <s:Header>
    <a:Action s:mustUnderstand="1">http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue</a:Action>
    <a:MessageID>urn:uuid:6a5e4c7b-8f2d-4e43-9b7a-2f1c3d4e5f60</a:MessageID>
    <a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>
    <a:To s:mustUnderstand="1">https://sts.example.com/adfs/services/trust/13/usernamemixed</a:To>
    <o:Security s:mustUnderstand="1" xmlns:o="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">
      <u:Timestamp u:Id="_0"><u:Created>2024-05-01T10:00:00.000Z</u:Created><u:Expires>2024-05-01T10:05:00.000Z</u:Expires></u:Timestamp>
      <o:UsernameToken u:Id="uuid-0b8f3c2e-1d4a-4f5b-8c6d-7e8f9a0b1c2d-1">
        <o:Username>EXAMPLE\alice</o:Username>
        <o:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">correct horse battery staple &amp; more</o:Password>
      </o:UsernameToken>
    </o:Security>
  </s:Header>
  <s:Body>
    <trust:RequestSecurityToken xmlns:trust="http://docs.oasis-open.org/ws-sx/ws-trust/200512">
      <wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy">
        <a:EndpointReference><a:Address>https://sp.example.org/</a:Address></a:EndpointReference>
      </wsp:AppliesTo>
      <trust:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer</trust:KeyType>
      <trust:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</trust:RequestType>
      <trust:TokenType>urn:oasis:names:tc:SAML:2.0:assertion</trust:TokenType>
    </trust:RequestSecurityToken>
  </s:Body>
</s:Envelope>`

func BenchmarkParse(b *testing.B) {
	data := []byte(stsRequest)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEtreeReadFromBytes is the baseline: etree's own parser (which
// has none of the checks above).
func BenchmarkEtreeReadFromBytes(b *testing.B) {
	data := []byte(stsRequest)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}
