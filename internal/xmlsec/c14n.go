package xmlsec

import (
	"github.com/avouch/avouch/internal/xmlns"

	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/beevik/etree"
)

const nsXML = "http://www.w3.org/XML/1998/namespace"

// maxCanonicalSize bounds the output of one canonicalization. Exclusive c14n
// repeats namespace declarations on every element that uses them, so
// hostile input can amplify; past this size we give up rather than spend
// memory and CPU. A variable so tests can lower it.
var maxCanonicalSize = 64 << 20

// ErrC14N is wrapped by every canonicalization error.
var ErrC14N = errors.New("xmlsec: cannot canonicalize")

// C14NOptions selects the variant of Exclusive XML Canonicalization 1.0.
type C14NOptions struct {
	// InclusivePrefixes is the InclusiveNamespaces PrefixList: prefixes whose
	// in-scope declarations are rendered as in inclusive C14N even when not
	// visibly utilized. "#default" stands for the default namespace.
	InclusivePrefixes []string
	// WithComments keeps comments (AlgExcC14NWithComments).
	WithComments bool
	// Exclude, if set, is a descendant element left out with its whole
	// subtree: the enveloped-signature transform removing the ds:Signature
	// being processed.
	Exclude *etree.Element
}

// Canonicalize returns the Exclusive XML Canonicalization 1.0 of the
// document subset made of el and its descendants (minus opts.Exclude), with
// el in its document context: namespace declarations of ancestors are
// rendered where el's subtree visibly utilizes them (or where listed in
// InclusivePrefixes); xml:* attributes of ancestors are not inherited.
//
// Attribute values are taken as stored in the tree. safexml.Parse has
// already applied XML attribute-value normalization (a literal tab or
// newline in an attribute becomes a space), as libxml2/xmlsec1 do; a tree
// built by other means is canonicalized as it is.
func Canonicalize(el *etree.Element, opts C14NOptions) ([]byte, error) {
	return canonicalize(el, opts, false)
}

// canonicalize implements Canonicalize; with wholeDoc it renders the whole
// document el is the root element of (the URI="" node-set): processing
// instructions, and comments if kept, outside the root element too.
func canonicalize(el *etree.Element, opts C14NOptions, wholeDoc bool) ([]byte, error) {
	if el == nil {
		return nil, fmt.Errorf("%w: nil element", ErrC14N)
	}
	c := canon{opts: opts}
	for _, p := range opts.InclusivePrefixes {
		if p == "#default" {
			c.inclDefault = true
		} else if p != "" {
			c.incl = append(c.incl, p)
		}
	}
	// In-scope namespace declarations of el's ancestors, outermost first so
	// that a backwards search finds the nearest.
	var anc []*etree.Element
	for a := el.Parent(); a != nil; a = a.Parent() {
		anc = append(anc, a)
	}
	for i := len(anc) - 1; i >= 0; i-- {
		c.declare(anc[i])
	}
	var before, after []etree.Token
	if wholeDoc {
		if doc := el.Parent(); doc != nil {
			before, after = splitAround(doc.Child, el)
		}
	}
	for _, t := range before {
		if c.misc(t) {
			c.buf = append(c.buf, '\n')
		}
	}
	if err := c.element(el); err != nil {
		return nil, err
	}
	for _, t := range after {
		n := len(c.buf)
		c.buf = append(c.buf, '\n')
		if !c.misc(t) {
			c.buf = c.buf[:n]
		}
	}
	return c.buf, nil
}

func splitAround(ts []etree.Token, el *etree.Element) (before, after []etree.Token) {
	for i, t := range ts {
		if t == etree.Token(el) {
			return ts[:i], ts[i+1:]
		}
	}
	return nil, nil
}

type sortAttr struct {
	uri, local string
	a          *etree.Attr
}

type canon struct {
	opts        C14NOptions
	incl        []string
	inclDefault bool
	buf         []byte
	scope       xmlns.Stack // declarations in the document
	rendered    xmlns.Stack // declarations in the output
	nsOut       []nsDecl    // scratch: declarations to render on one element
	attrs       []sortAttr  // scratch: attributes of one element
}

// declare pushes el's namespace declarations onto the scope.
func (c *canon) declare(el *etree.Element) {
	for _, a := range el.Attr {
		switch {
		case a.Space == "" && a.Key == "xmlns":
			c.scope.Push("", a.Value)
		case a.Space == "xmlns":
			c.scope.Push(a.Key, a.Value)
		}
	}
}

// misc writes a document-level processing instruction or comment, reporting
// whether anything was written.
func (c *canon) misc(t etree.Token) bool {
	switch t := t.(type) {
	case *etree.ProcInst:
		if strings.EqualFold(t.Target, "xml") {
			return false // the XML declaration is not a node
		}
		c.procInst(t)
		return true
	case *etree.Comment:
		if c.opts.WithComments {
			c.comment(t)
			return true
		}
	}
	return false
}

func (c *canon) procInst(p *etree.ProcInst) {
	c.buf = append(c.buf, "<?"...)
	c.buf = append(c.buf, p.Target...)
	if p.Inst != "" {
		c.buf = append(c.buf, ' ')
		c.buf = append(c.buf, p.Inst...)
	}
	c.buf = append(c.buf, "?>"...)
}

func (c *canon) comment(t *etree.Comment) {
	c.buf = append(c.buf, "<!--"...)
	c.buf = append(c.buf, t.Data...)
	c.buf = append(c.buf, "-->"...)
}

// considerNS adds prefix to the declarations rendered on the current element
// if its in-scope value differs from what the output already has in effect.
func (c *canon) considerNS(prefix string, utilized bool) error {
	for _, b := range c.nsOut {
		if b.prefix == prefix {
			return nil
		}
	}
	uri, ok := c.scope.Lookup(prefix)
	if !ok && prefix != "" {
		if utilized {
			return fmt.Errorf("%w: namespace prefix %q is not declared", ErrC14N, prefix)
		}
		return nil // an InclusiveNamespaces prefix not in scope here
	}
	have, ok := c.rendered.Lookup(prefix)
	if prefix == "" && !ok {
		// No default namespace rendered yet: the empty one is in effect.
		have, ok = "", true
	}
	if ok && have == uri {
		return nil
	}
	c.nsOut = append(c.nsOut, nsDecl{prefix: prefix, uri: uri})
	return nil
}

func (c *canon) element(el *etree.Element) error {
	if el.Tag == "" {
		return fmt.Errorf("%w: element without a name", ErrC14N)
	}
	if len(c.buf) > maxCanonicalSize {
		return fmt.Errorf("%w: output larger than %d bytes", ErrC14N, maxCanonicalSize)
	}
	scopeMark, renderedMark := c.scope.Mark(), c.rendered.Mark()
	c.declare(el)

	// Namespace axis: visibly utilized prefixes, then the PrefixList ones.
	c.nsOut = c.nsOut[:0]
	if el.Space != "xml" {
		if err := c.considerNS(el.Space, true); err != nil {
			return err
		}
	}
	for i := range el.Attr {
		a := &el.Attr[i]
		if a.Space != "" && a.Space != "xmlns" && a.Space != "xml" {
			if err := c.considerNS(a.Space, true); err != nil {
				return err
			}
		}
	}
	if c.inclDefault {
		if err := c.considerNS("", false); err != nil {
			return err
		}
	}
	for _, p := range c.incl {
		if p != "xml" && p != "xmlns" {
			if err := c.considerNS(p, false); err != nil {
				return err
			}
		}
	}
	slices.SortFunc(c.nsOut, func(a, b nsDecl) int { return strings.Compare(a.prefix, b.prefix) })
	for _, n := range c.nsOut {
		c.rendered.Push(n.prefix, n.uri)
	}

	// Attributes sort by namespace URI, then local name.
	c.attrs = c.attrs[:0]
	for i := range el.Attr {
		a := &el.Attr[i]
		var uri string
		switch {
		case a.Space == "xmlns" || a.Space == "" && a.Key == "xmlns":
			continue
		case a.Space == "":
		case a.Space == "xml":
			uri = nsXML
		default:
			uri, _ = c.scope.Lookup(a.Space)
		}
		c.attrs = append(c.attrs, sortAttr{uri, a.Key, a})
	}
	slices.SortFunc(c.attrs, func(a, b sortAttr) int {
		if v := strings.Compare(a.uri, b.uri); v != 0 {
			return v
		}
		return strings.Compare(a.local, b.local)
	})

	c.buf = append(c.buf, '<')
	c.qname(el.Space, el.Tag)
	for _, n := range c.nsOut {
		if n.prefix == "" {
			c.buf = append(c.buf, ` xmlns="`...)
		} else {
			c.buf = append(c.buf, ` xmlns:`...)
			c.buf = append(c.buf, n.prefix...)
			c.buf = append(c.buf, `="`...)
		}
		c.attrValue(n.uri)
		c.buf = append(c.buf, '"')
	}
	for _, sa := range c.attrs {
		c.buf = append(c.buf, ' ')
		c.qname(sa.a.Space, sa.a.Key)
		c.buf = append(c.buf, `="`...)
		c.attrValue(sa.a.Value)
		c.buf = append(c.buf, '"')
	}
	c.buf = append(c.buf, '>')

	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			if t == c.opts.Exclude {
				continue
			}
			if err := c.element(t); err != nil {
				return err
			}
		case *etree.CharData:
			c.text(t.Data)
		case *etree.Comment:
			if c.opts.WithComments {
				c.comment(t)
			}
		case *etree.ProcInst:
			c.procInst(t)
		case *etree.Directive:
			return fmt.Errorf("%w: directive inside an element", ErrC14N)
		}
	}

	c.buf = append(c.buf, "</"...)
	c.qname(el.Space, el.Tag)
	c.buf = append(c.buf, '>')
	c.scope.PopTo(scopeMark)
	c.rendered.PopTo(renderedMark)
	return nil
}

func (c *canon) qname(space, local string) {
	if space != "" {
		c.buf = append(c.buf, space...)
		c.buf = append(c.buf, ':')
	}
	c.buf = append(c.buf, local...)
}

// text escapes character data as C14N requires: & < > and CR.
func (c *canon) text(s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		c.buf = append(c.buf, s[last:i]...)
		c.buf = append(c.buf, esc...)
		last = i + 1
	}
	c.buf = append(c.buf, s[last:]...)
}

// attrValue escapes an attribute value as C14N requires: & < " TAB LF CR.
func (c *canon) attrValue(s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		c.buf = append(c.buf, s[last:i]...)
		c.buf = append(c.buf, esc...)
		last = i + 1
	}
	c.buf = append(c.buf, s[last:]...)
}

// nsDecl is a namespace declaration to render.
type nsDecl struct{ prefix, uri string }
