// Package soap parses SOAP 1.1 and 1.2 envelopes and renders responses and
// faults with the HTTP status each version's HTTP binding prescribes. It knows
// nothing of WS-Trust; it hands the front-end the header blocks and the body
// element.
package soap

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/xmltext"
)

// Namespaces of the two SOAP versions.
const (
	NS11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NS12 = "http://www.w3.org/2003/05/soap-envelope"
)

// Version is a SOAP version.
type Version int

const (
	V11 Version = 11
	V12 Version = 12
)

// NS returns the envelope namespace of v.
func (v Version) NS() string {
	if v == V12 {
		return NS12
	}
	return NS11
}

// ContentType returns the HTTP content type of a response in version v.
func (v Version) ContentType() string {
	if v == V12 {
		return "application/soap+xml; charset=utf-8"
	}
	return "text/xml; charset=utf-8"
}

// Envelope is a parsed request envelope.
type Envelope struct {
	Version Version
	Doc     *etree.Document
	Root    *etree.Element
	Header  *etree.Element   // nil when absent
	Headers []*etree.Element // header blocks in document order
	Body    *etree.Element   // the single child of soap:Body
}

// Parse parses a SOAP request. Errors are *Fault values ready to render.
func Parse(data []byte, lim safexml.Limits) (*Envelope, error) {
	doc, err := safexml.Parse(data, lim)
	if err != nil {
		switch {
		case errors.Is(err, safexml.ErrTooLarge):
			return nil, &Fault{Code: CodeSender, Subcode: QName{}, Reason: "request body too large", HTTPStatus: 413}
		case errors.Is(err, safexml.ErrDoctype):
			return nil, SenderFault("DTDs are not allowed in SOAP messages")
		case errors.Is(err, safexml.ErrTooDeep):
			return nil, SenderFault("XML nesting too deep")
		case errors.Is(err, safexml.ErrTooManyAttributes):
			return nil, SenderFault("too many attributes on one element")
		default:
			return nil, SenderFault("malformed XML")
		}
	}
	root := doc.Root()
	if root == nil {
		return nil, SenderFault("empty document")
	}
	env := &Envelope{Doc: doc, Root: root}
	switch {
	case root.Tag == "Envelope" && root.NamespaceURI() == NS11:
		env.Version = V11
	case root.Tag == "Envelope" && root.NamespaceURI() == NS12:
		env.Version = V12
	case root.Tag == "Envelope":
		return nil, &Fault{Code: CodeVersionMismatch, Reason: "unsupported SOAP envelope namespace"}
	default:
		return nil, SenderFault("not a SOAP envelope")
	}
	ns := env.Version.NS()
	for c := range root.ChildElementsSeq() {
		if c.NamespaceURI() != ns {
			return nil, env.senderFault("unexpected element in Envelope")
		}
		switch c.Tag {
		case "Header":
			if env.Header != nil || env.Body != nil {
				return nil, env.senderFault("misplaced or duplicate Header")
			}
			env.Header = c
			env.Headers = c.ChildElements()
		case "Body":
			if env.Body != nil {
				return nil, env.senderFault("duplicate Body")
			}
			kids := c.ChildElements()
			if len(kids) != 1 {
				return nil, env.senderFault("Body must hold exactly one element")
			}
			env.Body = kids[0]
		default:
			return nil, env.senderFault("unexpected element in Envelope")
		}
	}
	if env.Body == nil {
		return nil, env.senderFault("missing Body")
	}
	return env, nil
}

func (e *Envelope) senderFault(reason string) *Fault {
	f := SenderFault(reason)
	f.Version = e.Version
	return f
}

// MustUnderstand reports whether header block h is marked mustUnderstand and
// is targeted at us (no actor/role, or the ultimate receiver / next role).
func (e *Envelope) MustUnderstand(h *etree.Element) bool {
	ns := e.Version.NS()
	var mu, target string
	for _, a := range h.Attr {
		if a.NamespaceURI() != ns {
			continue
		}
		switch a.Key {
		case "mustUnderstand":
			mu = strings.TrimSpace(a.Value)
		case "actor", "role":
			target = strings.TrimSpace(a.Value)
		}
	}
	if mu != "1" && mu != "true" {
		return false
	}
	return Targeted(target)
}

// Targeted reports whether a header's actor/role value addresses this node.
func Targeted(target string) bool {
	switch target {
	case "", "http://schemas.xmlsoap.org/soap/actor/next",
		"http://www.w3.org/2003/05/soap-envelope/role/next",
		"http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver":
		return true
	}
	return false
}

// QName is a namespace-qualified name used in fault codes.
type QName struct {
	Space, Prefix, Local string
}

// IsZero reports whether q is unset.
func (q QName) IsZero() bool { return q.Local == "" }

func (q QName) String() string {
	if q.Prefix == "" {
		return q.Local
	}
	return q.Prefix + ":" + q.Local
}

// Code is the generic fault class: Sender/Client, Receiver/Server, etc.
type Code int

const (
	CodeSender Code = iota
	CodeReceiver
	CodeMustUnderstand
	CodeVersionMismatch
)

// Fault is a SOAP fault. Subcode carries the WS-Trust/WS-Security fault QName.
// Reason is shown to the client: it never contains a secret.
type Fault struct {
	Version       Version // 0 = unknown; rendered as SOAP 1.1 then
	Code          Code
	Subcode       QName
	Reason        string
	HTTPStatus    int     // overrides the binding's status when non-zero
	NotUnderstood []QName // SOAP 1.2 NotUnderstood header blocks
}

func (f *Fault) Error() string {
	if f.Subcode.IsZero() {
		return "soap fault: " + f.Reason
	}
	return fmt.Sprintf("soap fault %s: %s", f.Subcode, f.Reason)
}

// SenderFault is a Client/Sender fault with no subcode.
func SenderFault(reason string) *Fault { return &Fault{Code: CodeSender, Reason: reason} }

// Status returns the HTTP status for the fault: SOAP 1.1 always 500; SOAP 1.2
// 400 for Sender faults and 500 otherwise.
func (f *Fault) Status() int {
	if f.HTTPStatus != 0 {
		return f.HTTPStatus
	}
	if f.Version == V12 && f.Code == CodeSender {
		return 400
	}
	return 500
}

// Response is what a front-end writes back: header blocks and a body, each
// already serialised. Bodies are byte slices so a signed token inside them is
// sent exactly as it was signed.
type Response struct {
	Version Version
	// Namespaces maps prefixes to URIs declared on the Envelope.
	Namespaces [][2]string
	Headers    [][]byte
	Body       []byte
	// WriteBody, when set, writes the body in place of Body: a front-end
	// renders straight into the envelope instead of into a buffer of its
	// own that is then copied.
	WriteBody func(*bytes.Buffer)
}

// Render writes the envelope.
func (r *Response) Render() []byte {
	var b bytes.Buffer
	b.Grow(len(r.Body) + 512)
	r.AppendTo(&b)
	return b.Bytes()
}

// AppendTo writes the envelope to b.
func (r *Response) AppendTo(b *bytes.Buffer) {
	b.WriteString(`<s:Envelope xmlns:s="`)
	b.WriteString(r.Version.NS())
	b.WriteByte('"')
	for _, ns := range r.Namespaces {
		b.WriteString(` xmlns:`)
		b.WriteString(ns[0])
		b.WriteString(`="`)
		b.WriteString(ns[1])
		b.WriteByte('"')
	}
	b.WriteByte('>')
	if len(r.Headers) > 0 {
		b.WriteString(`<s:Header>`)
		for _, h := range r.Headers {
			b.Write(h)
		}
		b.WriteString(`</s:Header>`)
	}
	b.WriteString(`<s:Body>`)
	if r.WriteBody != nil {
		r.WriteBody(b)
	} else {
		b.Write(r.Body)
	}
	b.WriteString(`</s:Body></s:Envelope>`)
}

// FaultBody renders f as the body content for its version.
func (f *Fault) FaultBody() []byte {
	var b bytes.Buffer
	sub := f.Subcode
	nsDecl := ""
	if !sub.IsZero() {
		nsDecl = ` xmlns:` + sub.Prefix + `="` + xmltext.EscapeAttr(sub.Space) + `"`
	}
	if f.Version == V12 {
		code := map[Code]string{CodeSender: "s:Sender", CodeReceiver: "s:Receiver",
			CodeMustUnderstand: "s:MustUnderstand", CodeVersionMismatch: "s:VersionMismatch"}[f.Code]
		b.WriteString(`<s:Fault` + nsDecl + `><s:Code><s:Value>` + code + `</s:Value>`)
		if !sub.IsZero() {
			b.WriteString(`<s:Subcode><s:Value>` + sub.String() + `</s:Value></s:Subcode>`)
		}
		b.WriteString(`</s:Code><s:Reason><s:Text xml:lang="en">`)
		b.WriteString(xmltext.EscapeText(f.Reason))
		b.WriteString(`</s:Text></s:Reason></s:Fault>`)
		return b.Bytes()
	}
	code := sub.String()
	if sub.IsZero() {
		code = map[Code]string{CodeSender: "s:Client", CodeReceiver: "s:Server",
			CodeMustUnderstand: "s:MustUnderstand", CodeVersionMismatch: "s:VersionMismatch"}[f.Code]
	}
	b.WriteString(`<s:Fault` + nsDecl + `><faultcode>` + code + `</faultcode><faultstring>`)
	b.WriteString(xmltext.EscapeText(f.Reason))
	b.WriteString(`</faultstring></s:Fault>`)
	return b.Bytes()
}

// NotUnderstoodHeaders renders SOAP 1.2 NotUnderstood header blocks.
func (f *Fault) NotUnderstoodHeaders() [][]byte {
	if f.Version != V12 {
		return nil
	}
	var out [][]byte
	for _, q := range f.NotUnderstood {
		out = append(out, []byte(`<s:NotUnderstood xmlns:q="`+xmltext.EscapeAttr(q.Space)+`" qname="q:`+xmltext.EscapeAttr(q.Local)+`"/>`))
	}
	return out
}
