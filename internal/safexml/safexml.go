// Package safexml parses untrusted XML into github.com/beevik/etree trees
// without the classic XML attack surface.
//
// Parse is its own single-pass, non-recursive XML 1.0 + Namespaces parser
// (it does not use encoding/xml, which accepts some non-well-formed input and
// does not normalize attribute values). It:
//
//   - refuses every DOCTYPE or other "<!" declaration, so no entity is ever
//     defined or expanded (only the five predefined ones and character
//     references are understood);
//   - bounds input size, element nesting depth and attributes per element;
//   - checks well-formedness: one root element, no text other than
//     whitespace outside it, matching tags, legal names and characters,
//     valid UTF-8, no duplicate attributes (also after namespace
//     resolution), every prefix bound, reserved prefixes used correctly;
//   - keeps comments, processing instructions and whitespace-only text
//     inside the root element, because XML signatures cover them.
//
// Normalization done here (what any conforming XML processor does, and what
// libxml2, hence xmlsec1, does; the canonicalizer in internal/xmlsec relies
// on it):
//
//   - line ends: every CR LF pair and every lone CR in the input become LF
//     (XML 1.0 §2.11); a CR written as the reference &#13; is kept;
//   - attribute values: after that, each literal tab, LF (or CR) becomes a
//     space (XML 1.0 §3.3.3, every attribute being CDATA without a DTD);
//     the same characters written as character references are kept.
//
// The returned Document's WriteSettings escape CR, and tab and newline in
// attribute values, so that writing it out and parsing it again gives the
// same tree (etree's defaults would not).
//
// The XML declaration is checked (version 1.0, encoding UTF-8 if given) but
// not stored in the tree; whitespace outside the root element is not stored
// either. CDATA sections are stored as CDATA CharData tokens.
package safexml

import (
	"errors"

	"github.com/beevik/etree"
)

// Limits bounds the resources Parse may spend on one document. A zero field
// means the DefaultLimits value.
type Limits struct {
	// MaxBytes is the largest accepted input, in bytes.
	MaxBytes int64
	// MaxDepth is the deepest accepted element nesting; the root element is
	// at depth 1.
	MaxDepth int
}

// DefaultLimits suits one STS request (about 2 KB) with a wide margin.
var DefaultLimits = Limits{MaxBytes: 1 << 20, MaxDepth: 64}

// MaxAttrs is the largest number of attributes (namespace declarations
// included) accepted on one element. Real messages use a few dozen at most;
// the bound keeps attribute handling linear-ish for hostile input.
const MaxAttrs = 256

// Sentinel errors. Parse wraps them with a short fixed reason and a byte
// offset; use errors.Is to classify. Their messages never quote the input,
// so they are safe to return to clients.
var (
	ErrDoctype  = errors.New("xml: DOCTYPE and other <! declarations are not allowed")
	ErrTooDeep  = errors.New("xml: elements nested too deeply")
	ErrTooLarge = errors.New("xml: document too large")
	// ErrTooManyAttributes: an element has more than MaxAttrs attributes (a
	// structural limit, not a size one: the body may be small).
	ErrTooManyAttributes = errors.New("xml: too many attributes on one element")
	ErrMalformed         = errors.New("xml: malformed document")
)

// Parse parses data as one XML document under lim. It never panics and uses
// no recursion, so hostile nesting cannot exhaust the stack.
func Parse(data []byte, lim Limits) (*etree.Document, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultLimits.MaxBytes
	}
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = DefaultLimits.MaxDepth
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, ErrTooLarge
	}
	s, err := prepare(data)
	if err != nil {
		return nil, err
	}
	p := parser{s: s, maxDepth: lim.MaxDepth, doc: etree.NewDocument(), oneAttr: make([]etree.Attr, 0, 1)}
	if err := p.parse(); err != nil {
		return nil, err
	}
	// etree's default escaping writes CR, and tab or newline in attribute
	// values, literally; a parser reading that back gets other characters
	// (and a signature over them breaks). Escape them when writing.
	p.doc.WriteSettings.CanonicalText = true
	p.doc.WriteSettings.CanonicalAttrVal = true
	return p.doc, nil
}

// Text returns the concatenation of all character data (text and CDATA)
// directly inside el, skipping comments and processing instructions.
//
// Use it, not etree's Element.Text, to read signed values: Element.Text stops
// at the first processing instruction, so "admin<?x?>@evil.example" would
// read as "admin" although the whole value was signed.
func Text(el *etree.Element) string {
	var first string
	var b []byte
	n := 0
	for _, t := range el.Child {
		cd, ok := t.(*etree.CharData)
		if !ok {
			continue
		}
		switch n {
		case 0:
			first = cd.Data
		case 1:
			b = append(append(b, first...), cd.Data...)
		default:
			b = append(b, cd.Data...)
		}
		n++
	}
	if n <= 1 {
		return first
	}
	return string(b)
}
