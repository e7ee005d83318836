package xmlsec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
)

func TestCanonicalizeSubsets(t *testing.T) {
	const doc = `<r xmlns="urn:r" xmlns:p="urn:p" xml:lang="en"><p:a b="1"><!--c--><p:b/><c/></p:a></r>`
	tests := []struct {
		name string
		pick func(root *etree.Element) *etree.Element
		opts func(root *etree.Element) C14NOptions
		want string
	}{
		{"a subtree renders the inherited declarations it uses, not xml:lang",
			func(r *etree.Element) *etree.Element { return r.ChildElements()[0] }, nil,
			`<p:a xmlns:p="urn:p" b="1"><p:b></p:b><c xmlns="urn:r"></c></p:a>`},
		{"WithComments keeps the comment",
			func(r *etree.Element) *etree.Element { return r.ChildElements()[0] },
			func(*etree.Element) C14NOptions { return C14NOptions{WithComments: true} },
			`<p:a xmlns:p="urn:p" b="1"><!--c--><p:b></p:b><c xmlns="urn:r"></c></p:a>`},
		{"Exclude drops a descendant with its subtree",
			func(r *etree.Element) *etree.Element { return r },
			func(r *etree.Element) C14NOptions {
				return C14NOptions{Exclude: r.ChildElements()[0].ChildElements()[0]}
			},
			`<r xmlns="urn:r" xml:lang="en"><p:a xmlns:p="urn:p" b="1"><c></c></p:a></r>`},
		{"InclusivePrefixes renders an unused prefix at the apex only",
			func(r *etree.Element) *etree.Element { return r },
			func(*etree.Element) C14NOptions { return C14NOptions{InclusivePrefixes: []string{"p"}} },
			`<r xmlns="urn:r" xmlns:p="urn:p" xml:lang="en"><p:a b="1"><p:b></p:b><c></c></p:a></r>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := mustParse(t, doc).Root()
			var opts C14NOptions
			if tt.opts != nil {
				opts = tt.opts(root)
			}
			got, err := Canonicalize(tt.pick(root), opts)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// Trees built with etree's API (not parsed) canonicalize too; what they
// cannot express in XML is an error, not bad output.
func TestCanonicalizeBuiltTrees(t *testing.T) {
	built := etree.NewElement("x:r")
	built.CreateAttr("xmlns:x", "urn:x")
	built.CreateAttr("v", "tab\there \"q\" <&>\r\n")
	built.CreateText("a\r<&>\"")
	built.CreateCData("]]>")
	got, err := Canonicalize(built, C14NOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `<x:r xmlns:x="urn:x" v="tab&#x9;here &quot;q&quot; &lt;&amp;>&#xD;&#xA;">a&#xD;&lt;&amp;&gt;"]]&gt;</x:r>`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	tests := []struct {
		name string
		el   func() *etree.Element
	}{
		{"a nil element", func() *etree.Element { return nil }},
		{"an undeclared element prefix", func() *etree.Element { return etree.NewElement("p:a") }},
		{"an undeclared attribute prefix", func() *etree.Element {
			e := etree.NewElement("a")
			e.CreateAttr("p:x", "1")
			return e
		}},
		{"a directive inside an element", func() *etree.Element {
			e := etree.NewElement("a")
			e.AddChild(etree.NewDirective("ENTITY x 'y'"))
			return e
		}},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			if _, err := Canonicalize(tt.el(), C14NOptions{}); !errors.Is(err, ErrC14N) {
				t.Fatalf("got %v, want ErrC14N", err)
			}
		})
	}
}

// Exclusive c14n repeats declarations on every element using them; a
// hostile document can make the output much larger than the input. The
// output is bounded.
func TestCanonicalizeBoundsAmplification(t *testing.T) {
	defer func(old int) { maxCanonicalSize = old }(maxCanonicalSize)
	maxCanonicalSize = 1 << 20
	var b strings.Builder
	b.WriteString(`<r`)
	for i := range 200 {
		b.WriteString(` xmlns:p` + string(rune('a'+i%26)) + strings.Repeat("z", i/26) + `="urn:` + strings.Repeat("long", 50) + strconv.Itoa(i) + `"`)
	}
	b.WriteString(`>`)
	el := `<e`
	for i := range 200 {
		el += ` p` + string(rune('a'+i%26)) + strings.Repeat("z", i/26) + `:a=""`
	}
	el += `/>`
	b.WriteString(strings.Repeat(el, 100))
	b.WriteString(`</r>`)
	doc := mustParse(t, b.String())
	if _, err := Canonicalize(doc.Root(), C14NOptions{}); !errors.Is(err, ErrC14N) {
		t.Fatalf("got %v, want the output bound to stop canonicalization", err)
	}
}

// FuzzCanonicalize: Canonicalize never panics or fails on what safexml
// accepts, and is idempotent: canonicalizing the parsed canonical output
// gives the same bytes.
func FuzzCanonicalize(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "c14n", "*.xml"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0))
	}
	f.Add([]byte(assertionXML), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		lim := safexml.Limits{MaxBytes: 1 << 16, MaxDepth: 32}
		doc, err := safexml.Parse(data, lim)
		if err != nil {
			return
		}
		opts := C14NOptions{WithComments: mode&1 != 0}
		if mode&2 != 0 {
			opts.InclusivePrefixes = []string{"#default", "p", "xs", "saml"}
		}
		root := doc.Root()
		targets := append([]*etree.Element{root}, root.ChildElements()...)
		for i, el := range targets {
			once, err := canonicalize(el, opts, i == 0)
			if err != nil {
				t.Fatalf("canonicalize: %v", err)
			}
			again, err := safexml.Parse(once, safexml.Limits{MaxBytes: int64(len(once)) + 1, MaxDepth: 64})
			if err != nil {
				t.Fatalf("canonical output does not parse: %v\n%s", err, once)
			}
			twice, err := canonicalize(again.Root(), opts, i == 0)
			if err != nil {
				t.Fatalf("canonicalize again: %v", err)
			}
			if !bytes.Equal(once, twice) {
				t.Fatalf("not idempotent:\n%s\n%s", once, twice)
			}
		}
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	doc := mustParse(b, assertionXML)
	out, _ := Canonicalize(doc.Root(), C14NOptions{})
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(doc.Root(), C14NOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
