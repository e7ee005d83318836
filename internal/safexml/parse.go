package safexml

import (
	"github.com/avouch/avouch/internal/xmlns"

	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

// malformed wraps ErrMalformed with a fixed reason and the byte offset (in
// the line-end-normalized input) where the problem was found.
func malformed(reason string, off int) error {
	return fmt.Errorf("%w: %s at offset %d", ErrMalformed, reason, off)
}

// prepare checks that data is UTF-8 made only of XML Chars and applies XML
// line-end normalization (CR LF and lone CR become LF). It returns the input
// as one string so that names and most values can be substrings of it.
func prepare(data []byte) (string, error) {
	hasCR := false
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' {
				if c != '\r' {
					return "", malformed("control character", i)
				}
				hasCR = true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return "", malformed("invalid UTF-8", i)
		}
		if r == 0xFFFE || r == 0xFFFF {
			return "", malformed("character not allowed in XML", i)
		}
		i += size
	}
	if !hasCR {
		return string(data), nil
	}
	b := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '\r' {
			b = append(b, '\n')
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			continue
		}
		b = append(b, c)
	}
	return string(b), nil
}

type openElement struct {
	el     *etree.Element
	qname  string
	nsMark int // len(parser.ns) before this element's declarations
}

type rawAttr struct {
	qname, value string
	uri, local   string // expanded name
	off          int
}

// smallAttrs is the attribute count up to which pairwise work beats maps.
const smallAttrs = 16

type parser struct {
	s        string
	doc      *etree.Document
	maxDepth int
	stack    []openElement
	ns       xmlns.Stack
	attrs    []rawAttr    // scratch, reused per start tag
	oneAttr  []etree.Attr // scratch of capacity 1, see startTag
	rootSeen bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) skipSpace(i int) int {
	for i < len(p.s) && isSpace(p.s[i]) {
		i++
	}
	return i
}

func (p *parser) parent() *etree.Element {
	if len(p.stack) == 0 {
		return &p.doc.Element
	}
	return p.stack[len(p.stack)-1].el
}

func (p *parser) parse() error {
	s := p.s
	i := 0
	if strings.HasPrefix(s, "\uFEFF") {
		i = len("\uFEFF")
	}
	if strings.HasPrefix(s[i:], "<?xml") && i+5 < len(s) && isSpace(s[i+5]) {
		var err error
		if i, err = p.xmlDecl(i); err != nil {
			return err
		}
	}
	for i < len(s) {
		var err error
		if s[i] != '<' {
			if len(p.stack) == 0 {
				j := p.skipSpace(i)
				if j == i {
					return malformed("text outside the root element", i)
				}
				i = j
				continue
			}
			i, err = p.text(i)
		} else if i+1 >= len(s) {
			return malformed("unexpected end of input", i)
		} else {
			switch s[i+1] {
			case '/':
				i, err = p.endTag(i)
			case '?':
				i, err = p.procInst(i)
			case '!':
				switch {
				case strings.HasPrefix(s[i:], "<!--"):
					i, err = p.comment(i)
				case strings.HasPrefix(s[i:], "<![CDATA["):
					i, err = p.cdata(i)
				default:
					return fmt.Errorf("%w (offset %d)", ErrDoctype, i)
				}
			default:
				i, err = p.startTag(i)
			}
		}
		if err != nil {
			return err
		}
	}
	if len(p.stack) > 0 {
		return malformed("unclosed element", len(s))
	}
	if !p.rootSeen {
		return malformed("no root element", len(s))
	}
	return nil
}

// xmlDecl checks the XML declaration starting at i and returns the offset
// after it.
func (p *parser) xmlDecl(i int) (int, error) {
	s := p.s
	end := strings.Index(s[i:], "?>")
	if end < 0 {
		return 0, malformed("unterminated XML declaration", i)
	}
	end += i
	j := i + len("<?xml")
	seen := 0 // 1 version, 2 encoding, 3 standalone: must come in this order
	for {
		k := p.skipSpace(j)
		if k == end {
			break
		}
		if k == j {
			return 0, malformed("bad XML declaration", k)
		}
		n := k
		for n < end && s[n] >= 'a' && s[n] <= 'z' {
			n++
		}
		name := s[k:n]
		n = p.skipSpace(n)
		if n >= end || s[n] != '=' {
			return 0, malformed("bad XML declaration", n)
		}
		n = p.skipSpace(n + 1)
		if n >= end || (s[n] != '"' && s[n] != '\'') {
			return 0, malformed("bad XML declaration", n)
		}
		q := strings.IndexByte(s[n+1:end], s[n])
		if q < 0 {
			return 0, malformed("bad XML declaration", n)
		}
		val := s[n+1 : n+1+q]
		j = n + 2 + q
		switch {
		case name == "version" && seen == 0:
			if val != "1.0" {
				return 0, malformed("unsupported XML version", k)
			}
			seen = 1
		case name == "encoding" && seen == 1:
			if !strings.EqualFold(val, "UTF-8") {
				return 0, malformed("unsupported encoding", k)
			}
			seen = 2
		case name == "standalone" && seen >= 1 && seen < 3:
			if val != "yes" && val != "no" {
				return 0, malformed("bad XML declaration", k)
			}
			seen = 3
		default:
			return 0, malformed("bad XML declaration", k)
		}
	}
	if seen == 0 {
		return 0, malformed("XML declaration without version", i)
	}
	return end + 2, nil
}

// name scans an XML Name at i and returns its end. It does not split QNames.
func (p *parser) name(i int) (int, error) {
	s := p.s
	j := i
	for j < len(s) {
		c := s[j]
		if c < utf8.RuneSelf {
			if isASCIINameStart(c) || (j > i && (c == '-' || c == '.' || (c >= '0' && c <= '9'))) {
				j++
				continue
			}
			break
		}
		r, size := utf8.DecodeRuneInString(s[j:])
		if !isNameStartRune(r) && (j == i || !isNameRune(r)) {
			break
		}
		j += size
	}
	if j == i {
		return 0, malformed("expected a name", i)
	}
	return j, nil
}

func isASCIINameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
}

func isNameStartRune(r rune) bool {
	switch {
	case r < 0x80:
		return r < utf8.RuneSelf && isASCIINameStart(byte(r))
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}

// splitQName splits a QName into prefix and local part; ok is false when the
// name is not a valid QName (empty part or more than one colon).
func splitQName(q string) (prefix, local string, ok bool) {
	c := strings.IndexByte(q, ':')
	if c < 0 {
		return "", q, true
	}
	prefix, local = q[:c], q[c+1:]
	if prefix == "" || local == "" || strings.IndexByte(local, ':') >= 0 {
		return "", "", false
	}
	// The local part must itself start like a name (no leading digit etc.).
	if r, _ := utf8.DecodeRuneInString(local); !isNameStartRune(r) {
		return "", "", false
	}
	return prefix, local, true
}

func (p *parser) lookup(prefix string) (string, bool) {
	if uri, ok := p.ns.Lookup(prefix); ok {
		return uri, true
	}
	if prefix == "xml" {
		return nsXML, true
	}
	return "", prefix == ""
}

func (p *parser) startTag(i int) (int, error) {
	s := p.s
	if len(p.stack) == 0 && p.rootSeen {
		return 0, malformed("more than one root element", i)
	}
	if len(p.stack)+1 > p.maxDepth {
		return 0, fmt.Errorf("%w (limit %d, offset %d)", ErrTooDeep, p.maxDepth, i)
	}
	j, err := p.name(i + 1)
	if err != nil {
		return 0, err
	}
	qname := s[i+1 : j]
	attrs := p.attrs[:0]
	empty := false
	for {
		k := p.skipSpace(j)
		if k >= len(s) {
			return 0, malformed("unterminated start tag", i)
		}
		if s[k] == '>' {
			j = k + 1
			break
		}
		if s[k] == '/' {
			if k+1 >= len(s) || s[k+1] != '>' {
				return 0, malformed("bad start tag", k)
			}
			j, empty = k+2, true
			break
		}
		if k == j {
			return 0, malformed("missing whitespace before attribute", k)
		}
		if len(attrs) == MaxAttrs {
			return 0, fmt.Errorf("%w: more than %d (offset %d)", ErrTooManyAttributes, MaxAttrs, k)
		}
		n, err := p.name(k)
		if err != nil {
			return 0, err
		}
		aname := s[k:n]
		n = p.skipSpace(n)
		if n >= len(s) || s[n] != '=' {
			return 0, malformed("attribute without value", n)
		}
		n = p.skipSpace(n + 1)
		val, end, err := p.attrValue(n)
		if err != nil {
			return 0, err
		}
		attrs = append(attrs, rawAttr{qname: aname, value: val, off: k})
		j = end
	}
	p.attrs = attrs

	// Namespace declarations first: they apply to the element's own name and
	// attributes.
	mark := p.ns.Mark()
	for _, a := range attrs {
		var prefix string
		switch {
		case a.qname == "xmlns":
		case strings.HasPrefix(a.qname, "xmlns:"):
			prefix = a.qname[len("xmlns:"):]
			if _, _, ok := splitQName(a.qname); !ok {
				return 0, malformed("bad namespace prefix", a.off)
			}
		default:
			continue
		}
		switch {
		case prefix == "xmlns":
			return 0, malformed("the xmlns prefix cannot be declared", a.off)
		case prefix == "xml":
			if a.value != nsXML {
				return 0, malformed("the xml prefix cannot be rebound", a.off)
			}
			continue
		case a.value == nsXML || a.value == nsXMLNS:
			return 0, malformed("reserved namespace name bound to another prefix", a.off)
		case prefix != "" && a.value == "":
			return 0, malformed("namespace prefix undeclared (XML 1.1 only)", a.off)
		}
		p.ns.Push(prefix, a.value)
	}
	prefix, _, ok := splitQName(qname)
	if !ok || prefix == "xmlns" {
		return 0, malformed("bad element name", i+1)
	}
	if _, bound := p.lookup(prefix); !bound {
		return 0, malformed("unbound namespace prefix", i+1)
	}
	// Each attribute's expanded name (namespace URI, local name) must be
	// unique. Declarations get the xmlns namespace so they cannot collide
	// with other attributes.
	for x := range attrs {
		a := &attrs[x]
		ap, al, ok := splitQName(a.qname)
		if !ok {
			return 0, malformed("bad attribute name", a.off)
		}
		switch {
		case a.qname == "xmlns":
			a.uri, a.local = nsXMLNS, ""
		case ap == "xmlns":
			a.uri, a.local = nsXMLNS, al
		case ap == "":
			a.uri, a.local = "", al
		default:
			u, bound := p.lookup(ap)
			if !bound {
				return 0, malformed("unbound namespace prefix", a.off)
			}
			a.uri, a.local = u, al
		}
	}
	if len(attrs) <= smallAttrs {
		for x := 1; x < len(attrs); x++ {
			for _, b := range attrs[:x] {
				if b.local == attrs[x].local && b.uri == attrs[x].uri {
					return 0, malformed("duplicate attribute", attrs[x].off)
				}
			}
		}
	} else {
		seen := make(map[[2]string]struct{}, len(attrs))
		for _, a := range attrs {
			k := [2]string{a.uri, a.local}
			if _, dup := seen[k]; dup {
				return 0, malformed("duplicate attribute", a.off)
			}
			seen[k] = struct{}{}
		}
	}

	el := p.parent().CreateElement(qname)
	switch {
	case len(attrs) == 0:
	case len(attrs) <= smallAttrs:
		el.Attr = make([]etree.Attr, 0, len(attrs))
		for _, a := range attrs {
			el.CreateAttr(a.qname, a.value)
		}
	default:
		// CreateAttr scans the element's attributes for one to replace,
		// which is quadratic; uniqueness is already checked, so create each
		// on an empty list and collect the results (each keeps its pointer
		// to el).
		all := make([]etree.Attr, 0, len(attrs))
		for _, a := range attrs {
			el.Attr = p.oneAttr[:0]
			el.CreateAttr(a.qname, a.value)
			all = append(all, el.Attr[0])
		}
		el.Attr = all
	}
	p.rootSeen = true
	if empty {
		p.ns.PopTo(mark)
		return j, nil
	}
	p.stack = append(p.stack, openElement{el: el, qname: qname, nsMark: mark})
	return j, nil
}

func (p *parser) endTag(i int) (int, error) {
	s := p.s
	j, err := p.name(i + 2)
	if err != nil {
		return 0, err
	}
	name := s[i+2 : j]
	j = p.skipSpace(j)
	if j >= len(s) || s[j] != '>' {
		return 0, malformed("bad end tag", j)
	}
	if len(p.stack) == 0 {
		return 0, malformed("end tag without start tag", i)
	}
	top := p.stack[len(p.stack)-1]
	if top.qname != name {
		return 0, malformed("mismatched end tag", i)
	}
	p.ns.PopTo(top.nsMark)
	p.stack = p.stack[:len(p.stack)-1]
	return j + 1, nil
}

// attrValue reads a quoted attribute value at i, returning the normalized
// value and the offset after the closing quote.
func (p *parser) attrValue(i int) (string, int, error) {
	s := p.s
	if i >= len(s) || (s[i] != '"' && s[i] != '\'') {
		return "", 0, malformed("attribute value not quoted", i)
	}
	q := s[i]
	start := i + 1
	end := strings.IndexByte(s[start:], q)
	if end < 0 {
		return "", 0, malformed("unterminated attribute value", i)
	}
	end += start
	raw := s[start:end]
	simple := true
	for k := 0; k < len(raw); k++ {
		switch raw[k] {
		case '<':
			return "", 0, malformed("'<' in attribute value", start+k)
		case '&', '\t', '\n':
			simple = false
		}
	}
	if simple {
		return raw, end + 1, nil
	}
	b := make([]byte, 0, len(raw))
	for k := 0; k < len(raw); {
		c := raw[k]
		switch c {
		case '\t', '\n':
			// XML 1.0 §3.3.3: literal white space becomes a space.
			b = append(b, ' ')
			k++
		case '&':
			var err error
			b, k, err = p.reference(b, raw, k, start)
			if err != nil {
				return "", 0, err
			}
		default:
			b = append(b, c)
			k++
		}
	}
	return string(b), end + 1, nil
}

// reference decodes the entity or character reference at raw[k] (raw starts
// at offset base in the input), appends its value to b and returns the index
// after it.
func (p *parser) reference(b []byte, raw string, k, base int) ([]byte, int, error) {
	semi := strings.IndexByte(raw[k:], ';')
	if semi < 0 || semi > 12 {
		return nil, 0, malformed("bad reference", base+k)
	}
	ref := raw[k+1 : k+semi]
	next := k + semi + 1
	switch ref {
	case "lt":
		return append(b, '<'), next, nil
	case "gt":
		return append(b, '>'), next, nil
	case "amp":
		return append(b, '&'), next, nil
	case "quot":
		return append(b, '"'), next, nil
	case "apos":
		return append(b, '\''), next, nil
	}
	if len(ref) < 2 || ref[0] != '#' {
		return nil, 0, malformed("undefined entity", base+k)
	}
	digits, radix := ref[1:], rune(10)
	if digits[0] == 'x' {
		digits, radix = digits[1:], 16
	}
	if digits == "" {
		return nil, 0, malformed("bad character reference", base+k)
	}
	var r rune
	for x := 0; x < len(digits); x++ {
		c := digits[x]
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case radix == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case radix == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return nil, 0, malformed("bad character reference", base+k)
		}
		r = r*radix + d
		if r > 0x10FFFF {
			return nil, 0, malformed("bad character reference", base+k)
		}
	}
	if !isXMLChar(r) {
		return nil, 0, malformed("character reference to a non-XML character", base+k)
	}
	return utf8.AppendRune(b, r), next, nil
}

func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// text reads character data at i (inside an element) up to the next '<'.
func (p *parser) text(i int) (int, error) {
	s := p.s
	end := strings.IndexByte(s[i:], '<')
	if end < 0 {
		return 0, malformed("unexpected end of input", len(s))
	}
	end += i
	raw := s[i:end]
	if x := strings.Index(raw, "]]>"); x >= 0 {
		return 0, malformed("']]>' in text", i+x)
	}
	amp := strings.IndexByte(raw, '&')
	if amp < 0 {
		p.parent().CreateText(raw)
		return end, nil
	}
	b := make([]byte, 0, len(raw))
	b = append(b, raw[:amp]...)
	for k := amp; k < len(raw); {
		if raw[k] != '&' {
			b = append(b, raw[k])
			k++
			continue
		}
		var err error
		b, k, err = p.reference(b, raw, k, i)
		if err != nil {
			return 0, err
		}
	}
	p.parent().CreateText(string(b))
	return end, nil
}

func (p *parser) comment(i int) (int, error) {
	s := p.s
	start := i + len("<!--")
	x := strings.Index(s[start:], "--")
	if x < 0 {
		return 0, malformed("unterminated comment", i)
	}
	if start+x+2 >= len(s) || s[start+x+2] != '>' {
		return 0, malformed("'--' in comment", start+x)
	}
	p.parent().CreateComment(s[start : start+x])
	return start + x + 3, nil
}

func (p *parser) cdata(i int) (int, error) {
	s := p.s
	if len(p.stack) == 0 {
		return 0, malformed("CDATA section outside the root element", i)
	}
	start := i + len("<![CDATA[")
	x := strings.Index(s[start:], "]]>")
	if x < 0 {
		return 0, malformed("unterminated CDATA section", i)
	}
	p.parent().CreateCData(s[start : start+x])
	return start + x + 3, nil
}

func (p *parser) procInst(i int) (int, error) {
	s := p.s
	j, err := p.name(i + 2)
	if err != nil {
		return 0, err
	}
	target := s[i+2 : j]
	if strings.EqualFold(target, "xml") {
		return 0, malformed("XML declaration not at the start", i)
	}
	if strings.IndexByte(target, ':') >= 0 {
		return 0, malformed("colon in processing instruction target", i)
	}
	if strings.HasPrefix(s[j:], "?>") {
		p.parent().CreateProcInst(target, "")
		return j + 2, nil
	}
	if j >= len(s) || !isSpace(s[j]) {
		return 0, malformed("bad processing instruction", j)
	}
	j = p.skipSpace(j)
	x := strings.Index(s[j:], "?>")
	if x < 0 {
		return 0, malformed("unterminated processing instruction", i)
	}
	p.parent().CreateProcInst(target, s[j:j+x])
	return j + x + 2, nil
}
