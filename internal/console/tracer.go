package console

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/wstrust"
)

// DefaultTraceCapacity is how many exchanges the SOAP tracer keeps.
const DefaultTraceCapacity = 100

// MaxTraceCapacity bounds the tracer's memory.
const MaxTraceCapacity = 1000

// Mask replaces a secret value (password, nonce, digest, key material) in a
// traced message.
const Mask = "[masked]"

// Trace is one recorded exchange with its secrets masked.
type Trace struct {
	ID       int64     `json:"id"`
	Time     time.Time `json:"time"`
	Endpoint string    `json:"endpoint"`
	Caller   string    `json:"caller"`
	Status   int       `json:"status"`
	Fault    string    `json:"fault,omitempty"`
	Request  string    `json:"request"`
	Response string    `json:"response"`
}

// Tracer is the SOAP tracer: when enabled it keeps the last Capacity
// exchanges of the WS-Trust endpoints in memory (on this node only), masked
// as they are recorded so no secret is ever held.
type Tracer struct {
	on   atomic.Bool
	mu   sync.Mutex
	cap  int
	ring []Trace // oldest first
	next int64
}

// NewTracer returns a disabled tracer keeping DefaultTraceCapacity exchanges.
func NewTracer() *Tracer { return &Tracer{cap: DefaultTraceCapacity} }

var _ wstrust.Tracer = (*Tracer)(nil)

// Enabled reports whether exchanges are recorded (cheap: the hot path asks).
func (t *Tracer) Enabled() bool { return t.on.Load() }

// SetEnabled turns recording on or off; turning it off drops what was kept.
func (t *Tracer) SetEnabled(on bool) {
	t.on.Store(on)
	if !on {
		t.Clear()
	}
}

// Capacity is the number of exchanges kept.
func (t *Tracer) Capacity() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cap
}

// SetCapacity changes how many exchanges are kept (1..MaxTraceCapacity).
func (t *Tracer) SetCapacity(n int) error {
	if n < 1 || n > MaxTraceCapacity {
		return fmt.Errorf("must be between 1 and %d", MaxTraceCapacity)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cap = n
	if len(t.ring) > n {
		t.ring = append([]Trace(nil), t.ring[len(t.ring)-n:]...)
	}
	return nil
}

// Record masks and keeps an exchange.
func (t *Tracer) Record(x wstrust.Exchange) {
	if !t.Enabled() {
		return
	}
	tr := Trace{Time: x.Time.UTC().Truncate(time.Millisecond), Endpoint: x.Endpoint, Caller: x.Caller, Status: x.Status, Fault: x.Fault,
		Request: MaskXML(x.Request), Response: MaskXML(x.Response)}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	tr.ID = t.next
	t.ring = append(t.ring, tr)
	if over := len(t.ring) - t.cap; over > 0 {
		t.ring = append(t.ring[:0:0], t.ring[over:]...)
	}
}

// List returns the kept exchanges, newest first.
func (t *Tracer) List() []Trace {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Trace, len(t.ring))
	for i, tr := range t.ring {
		out[len(t.ring)-1-i] = tr
	}
	return out
}

// Clear drops every kept exchange.
func (t *Tracer) Clear() {
	t.mu.Lock()
	t.ring = nil
	t.mu.Unlock()
}

// Elements whose text is a secret: passwords and password digests, nonces,
// symmetric keys, encrypted key and signature values.
var maskText = map[string]bool{
	"Password": true, "Nonce": true, "BinarySecret": true, "CipherValue": true, "SignatureValue": true,
}

// Elements whose whole content is a token or key material: issued tokens,
// assertions (also inside Renew/Validate/Cancel targets), encrypted data,
// entropy and proof tokens, binary security tokens.
var maskContent = map[string]bool{
	"RequestedSecurityToken": true, "Assertion": true, "EncryptedAssertion": true, "EncryptedData": true,
	"Entropy": true, "RequestedProofToken": true, "BinarySecurityToken": true,
}

// MaskXML returns a readable copy of a SOAP message with every secret
// replaced by Mask: see maskText and maskContent. A message that cannot be
// parsed is not shown at all.
func MaskXML(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	doc, err := safexml.Parse(data, safexml.Limits{MaxBytes: int64(len(data)) + 1, MaxDepth: 128})
	if err != nil {
		return fmt.Sprintf("%s (%d bytes that are not well-formed XML are not shown)", Mask, len(data))
	}
	if root := doc.Root(); root != nil {
		maskElement(root)
	}
	doc.Indent(2)
	out, err := doc.WriteToString()
	if err != nil {
		return Mask
	}
	return strings.TrimSpace(out)
}

func maskElement(el *etree.Element) {
	switch {
	case maskContent[el.Tag]:
		n := 0
		for _, c := range el.Child {
			if ce, ok := c.(*etree.Element); ok {
				d := etree.NewDocumentWithRoot(ce.Copy())
				if s, err := d.WriteToString(); err == nil {
					n += len(s)
				}
			} else if cd, ok := c.(*etree.CharData); ok {
				n += len(cd.Data)
			}
		}
		for len(el.Child) > 0 {
			el.RemoveChildAt(0)
		}
		el.SetText(fmt.Sprintf("%s (%d bytes)", Mask, n))
		return
	case maskText[el.Tag]:
		for len(el.Child) > 0 {
			el.RemoveChildAt(0)
		}
		el.SetText(Mask)
		return
	}
	for _, c := range el.ChildElements() {
		maskElement(c)
	}
}
