package wstrust

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/soap"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wholewrite"
	"github.com/avouch/avouch/internal/wssec"
	"github.com/avouch/avouch/internal/xmltext"
)

// Handler is the WS-Trust SOAP endpoint.
type Handler struct {
	Core     *sts.Service
	Security *wssec.Processor
	Limits   safexml.Limits
	Log      *slog.Logger
	// WSDL renders the endpoint's WSDL for the URL it was reached at.
	WSDL func(endpointURL string) []byte
	// Versions, when set, are the only WS-Trust versions this endpoint
	// accepts (the ADFS paths fix theirs: …/trust/13/… and …/trust/2005/…).
	Versions []Version
	// DefaultNSAssertions writes assertions ADFS-style in the default
	// namespace (<Assertion xmlns="…">) for clients that cut tokens out by text.
	DefaultNSAssertions bool
	// Tracer, when set and enabled, receives each exchange (the SOAP tracer).
	Tracer Tracer
	// OnFault, when set, is told the fault code of every fault (metrics).
	OnFault func(code string)
}

// Exchange is one request and its answer, for the SOAP tracer. Bodies are
// raw; the tracer masks secrets before keeping them.
type Exchange struct {
	Time     time.Time
	Endpoint string
	Caller   string // authenticated user, "" when authentication failed
	Request  []byte
	Response []byte
	Status   int
	Fault    string // fault QName, "" on success
}

// Tracer records exchanges. Enabled is checked first so that a disabled
// tracer costs nothing on the hot path.
type Tracer interface {
	Enabled() bool
	Record(Exchange)
}

// accepts reports whether the endpoint takes WS-Trust version v.
func (h *Handler) accepts(v Version) bool {
	if len(h.Versions) == 0 {
		return true
	}
	for _, x := range h.Versions {
		if x == v {
			return true
		}
	}
	return false
}

// addressing is the WS-Addressing data of a request.
type addressing struct {
	ns        string // "" when the request used no WS-Addressing
	action    string
	messageID string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		h.serveGet(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Guess the SOAP version from the content type for faults raised before
	// the envelope is parsed.
	guess := soap.V11
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/soap+xml") {
		guess = soap.V12
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, h.Limits.MaxBytes), r.ContentLength, h.Limits.MaxBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.writeFault(w, r, guess, addressing{}, &soap.Fault{Code: soap.CodeSender, Reason: "request body too large", HTTPStatus: http.StatusRequestEntityTooLarge}, "")
			return
		}
		h.writeFault(w, r, guess, addressing{}, soap.SenderFault("could not read the request body"), "")
		return
	}
	env, err := soap.Parse(body, h.Limits)
	if err != nil {
		h.writeFault(w, r, guess, addressing{}, err, "")
		return
	}
	tracing := h.Tracer != nil && h.Tracer.Enabled()
	if tracing {
		w = &traceWriter{ResponseWriter: w}
	}
	res, wsa, v, err := h.handle(r.Context(), r, env)
	if err != nil {
		f := h.writeFault(w, r, env.Version, wsa, err, v)
		if tracing {
			h.trace(r, body, w.(*traceWriter), "", f.Subcode.String())
		}
		return
	}
	out := &soap.Response{Version: env.Version, Headers: responseHeaders(wsa, res.action),
		WriteBody: func(b *bytes.Buffer) { render(b, res.v, res.outs, res.collection) }}
	buf := responseBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Grow(bodySize(res.outs) + 1024)
	out.AppendTo(buf)
	page := buf.Bytes()
	defer func() {
		if buf.Cap() <= maxPooledResponse {
			responseBuffers.Put(buf)
		}
	}()
	w.Header().Set("Content-Type", env.Version.ContentType())
	// A known length spares the chunked framing and its extra write.
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	wholewrite.Whole(r) // headers and page in one write(2), not two
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page)
	if tracing {
		h.trace(r, body, w.(*traceWriter), res.caller, "")
	}
}

// traceWriter keeps a copy of the response for the tracer.
type traceWriter struct {
	http.ResponseWriter
	status int
	buf    []byte
}

func (t *traceWriter) WriteHeader(code int) { t.status = code; t.ResponseWriter.WriteHeader(code) }
func (t *traceWriter) Write(b []byte) (int, error) {
	t.buf = append(t.buf, b...)
	return t.ResponseWriter.Write(b)
}

func (h *Handler) trace(r *http.Request, req []byte, tw *traceWriter, caller, fault string) {
	h.Tracer.Record(Exchange{Time: h.Core.Now(), Endpoint: r.URL.Path, Caller: caller, Request: req,
		Response: tw.buf, Status: tw.status, Fault: fault})
}

// readBody reads r to EOF into one allocation when the declared length
// (bounded by max; r enforces the bound whatever is declared) is right,
// instead of io.ReadAll's doubling from 512 bytes.
func readBody(r io.Reader, declared, max int64) ([]byte, error) {
	n := int64(512)
	if declared > 0 && declared <= max {
		n = declared + 1 // room to see EOF without growing
	}
	b := make([]byte, 0, n)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// result is a successful response: its outcomes and wsa:Action.
type result struct {
	v          Version
	outs       []*outcome
	collection bool
	action     string
	caller     string
}

// responseBuffers recycles response buffers: the envelope is written once,
// sent, and dropped, so a pooled buffer saves an allocation of the whole
// response (and the collector's work) per request. Buffers that grew past
// maxPooledResponse (large batches) are left to the collector.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledResponse = 256 << 10

func (h *Handler) serveGet(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.URL.Query()["wsdl"]; ok && h.WSDL != nil {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(h.WSDL(scheme + "://" + r.Host + r.URL.Path))
		return
	}
	http.Error(w, "this is a WS-Trust SOAP endpoint: POST a RequestSecurityToken, or GET ?wsdl", http.StatusMethodNotAllowed)
}

// handle processes a parsed envelope and returns the response body.
func (h *Handler) handle(ctx context.Context, r *http.Request, env *soap.Envelope) (*result, addressing, Version, error) {
	var wsa addressing
	var security *etree.Element
	for _, hb := range env.Headers {
		ns := hb.NamespaceURI()
		switch {
		case isWSANS(ns):
			wsa.ns = ns
			switch hb.Tag {
			case "Action":
				wsa.action = strings.TrimSpace(hb.Text())
			case "MessageID":
				wsa.messageID = strings.TrimSpace(hb.Text())
			}
			continue
		case ns == wssec.NSWSSE && hb.Tag == "Security":
			if !soap.Targeted(actorOf(env, hb)) {
				continue // addressed to another node
			}
			if security != nil {
				return nil, wsa, "", &wssec.Error{Code: wssec.FaultInvalidSecurity, Msg: "more than one Security header for this node"}
			}
			security = hb
			continue
		}
		if env.MustUnderstand(hb) {
			return nil, wsa, "", &soap.Fault{Version: env.Version, Code: soap.CodeMustUnderstand,
				Reason:        "header " + hb.Tag + " {" + ns + "} was not understood",
				NotUnderstood: []soap.QName{{Space: ns, Local: hb.Tag}}}
		}
	}
	// Dispatch on the body element (and wsa:Action), never on HTTP headers.
	body := env.Body
	bns := body.NamespaceURI()
	if (bns != NS13 && bns != NS2005) || (body.Tag != "RequestSecurityToken" && body.Tag != "RequestSecurityTokenCollection") {
		return nil, wsa, "", &soap.Fault{Version: env.Version, Code: soap.CodeSender,
			Reason: "unsupported body element {" + bns + "}" + body.Tag}
	}
	v := Version(bns)
	if !h.accepts(v) {
		return nil, wsa, v, invalid("this endpoint does not accept WS-Trust namespace " + bns)
	}
	rsts, batch, err := parseBody(body, v)
	if err != nil {
		return nil, wsa, v, err
	}
	rt := rsts[0].RequestType
	if wsa.action != "" && !actionMatches(v, wsa.action, rt, batch) {
		return nil, wsa, v, invalid("wsa:Action " + wsa.action + " does not match the RequestType")
	}
	// Caller authentication under the endpoint's security policy
	// (security_scenario): UsernameToken, X.509-signed request, TLS client
	// certificate, or combinations.
	var peer []*x509.Certificate
	if r.TLS != nil {
		peer = r.TLS.PeerCertificates
	}
	auth, err := h.Security.AuthenticateRequest(ctx, &wssec.Request{Envelope: env.Root, Header: env.Header,
		Body: env.Body.Parent(), Security: security, PeerCerts: peer})
	if err != nil {
		return nil, wsa, v, err
	}
	user := auth.Principal
	p := sts.Principal{Name: user.Name, Domain: user.Domain, Roles: user.Roles, Claims: user.Claims,
		AuthnInstant: h.Core.Now(), OverTLS: r.TLS != nil, AuthnContext: authnContext(auth)}
	outs := make([]*outcome, 0, len(rsts))
	for _, rst := range rsts {
		o, err := h.one(ctx, &p, rst)
		if err != nil {
			return nil, wsa, v, err
		}
		outs = append(outs, o)
	}
	collection := batch || (v == V13 && rt == Issue)
	return &result{v: v, outs: outs, collection: collection, action: v.responseAction(rt, batch),
		caller: user.Domain + "/" + user.Name}, wsa, v, nil
}

// parseBody reads an RST, or an RSTC whose RSTs share one RequestType.
func parseBody(body *etree.Element, v Version) ([]*RST, bool, error) {
	if body.Tag == "RequestSecurityToken" {
		rst, err := ParseRST(body)
		if err != nil {
			return nil, false, err
		}
		return []*RST{rst}, false, nil
	}
	var out []*RST
	for c := range body.ChildElementsSeq() {
		if c.Tag != "RequestSecurityToken" || c.NamespaceURI() != string(v) {
			return nil, true, invalid("a RequestSecurityTokenCollection may hold only RequestSecurityToken elements")
		}
		rst, err := ParseRST(c)
		if err != nil {
			return nil, true, err
		}
		if len(out) > 0 && rst.RequestType != out[0].RequestType {
			return nil, true, invalid("a batch must not mix RequestTypes")
		}
		out = append(out, rst)
	}
	if len(out) == 0 {
		return nil, true, invalid("empty RequestSecurityTokenCollection")
	}
	if len(out) > maxBatch {
		return nil, true, invalid("too many requests in one batch")
	}
	return out, true, nil
}

// maxBatch bounds the work one message can ask for.
const maxBatch = 50

// actionMatches accepts the RST actions of the binding (…/RST/Issue), and for
// batches …/RSTC/BatchIssue or …/RST/BatchIssue as clients differ.
func actionMatches(v Version, action string, rt RequestType, batch bool) bool {
	if batch {
		return action == v.action("RSTC", "Batch"+string(rt)) || action == v.action("RST", "Batch"+string(rt)) ||
			action == v.action("RST", string(rt))
	}
	return action == v.action("RST", string(rt))
}

// one executes a single RST against the core.
func (h *Handler) one(ctx context.Context, p *sts.Principal, rst *RST) (*outcome, error) {
	o := &outcome{rst: rst}
	if rst.Delegation != nil && rst.RequestType != Issue {
		return nil, invalid("ActAs and OnBehalfOf are only supported in Issue requests")
	}
	switch rst.RequestType {
	case Issue:
		deleg, err := h.delegation(ctx, rst.Delegation)
		if err != nil {
			return nil, err
		}
		tok, err := h.Core.Issue(ctx, &sts.IssueRequest{
			Principal: *p, TokenType: rst.TokenType, KeyType: rst.KeyType, KeyTypeURI: rst.KeyTypeURI, AppliesTo: rst.AppliesTo,
			Created: rst.Created, Expires: rst.Expires, ClaimsDialect: rst.ClaimsDialect, Claims: rst.Claims,
			NotRenewable: rst.NotRenewable, RenewAfterExpiry: rst.RenewAfterExpiry, DefaultNS: h.DefaultNSAssertions,
			HoK: rst.HoK, Delegation: deleg,
		})
		if err != nil {
			return nil, err
		}
		// Debug, not Info: at thousands of tokens a second a line each is a
		// log flood and a write(2) per token; the audit log and the
		// avouch_tokens_total metric already count every issuance.
		h.Log.LogAttrs(ctx, slog.LevelDebug, "token issued", slog.String("user", p.Name),
			slog.String("token_id", tok.ID), slog.String("type", tok.Type), slog.String("applies_to", tok.AppliesTo))
		o.token = tok
	case Renew:
		tok, err := h.Core.Renew(ctx, &sts.RenewRequest{Principal: *p, Target: rst.Target, AppliesTo: rst.AppliesTo,
			Created: rst.Created, Expires: rst.Expires})
		if err != nil {
			return nil, err
		}
		h.Log.LogAttrs(ctx, slog.LevelDebug, "token renewed", slog.String("user", p.Name), slog.String("token_id", tok.ID))
		o.token = tok
	case Validate:
		tt := ""
		if rst.TokenTypeURI != "" && rst.TokenTypeURI != string(rst.Version)+"/RSTR/Status" {
			tt = rst.TokenType
		}
		val, err := h.Core.Validate(ctx, &sts.ValidateRequest{Principal: *p, Target: rst.Target, TokenType: tt})
		if err != nil {
			return nil, err
		}
		o.validation = val
	case Cancel:
		if err := h.Core.Cancel(ctx, *p, rst.Target); err != nil {
			return nil, err
		}
		h.Log.LogAttrs(ctx, slog.LevelInfo, "token cancelled", slog.String("user", p.Name))
		o.cancelled = true
	}
	return o, nil
}

func actorOf(env *soap.Envelope, hb *etree.Element) string {
	for _, a := range hb.Attr {
		if a.NamespaceURI() == env.Version.NS() && (a.Key == "actor" || a.Key == "role") {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// responseHeaders echoes WS-Addressing in the request's version.
func responseHeaders(wsa addressing, action string) [][]byte {
	if wsa.ns == "" {
		return nil
	}
	hs := [][]byte{[]byte(`<wsa:Action xmlns:wsa="` + wsa.ns + `">` + xmltext.EscapeText(action) + `</wsa:Action>`)}
	if wsa.messageID != "" {
		hs = append(hs, []byte(`<wsa:RelatesTo xmlns:wsa="`+wsa.ns+`">`+xmltext.EscapeText(wsa.messageID)+`</wsa:RelatesTo>`))
	}
	return hs
}

func (h *Handler) writeFault(w http.ResponseWriter, r *http.Request, sv soap.Version, wsa addressing, err error, v Version) *soap.Fault {
	f := faultFor(err, v)
	if f.Version == 0 {
		f.Version = sv
	}
	level := slog.LevelInfo
	if f.Code == soap.CodeReceiver {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("fault", f.Subcode.String()), slog.String("reason", f.Reason)}
	if cause := errors.Unwrap(err); cause != nil && f.Code == soap.CodeReceiver {
		attrs = append(attrs, slog.String("cause", cause.Error()))
	}
	h.Log.LogAttrs(r.Context(), level, "request refused", attrs...)
	if h.OnFault != nil {
		code := f.Subcode.String()
		if code == "" {
			code = [...]string{"Sender", "Receiver", "MustUnderstand", "VersionMismatch"}[f.Code]
		}
		h.OnFault(code)
	}

	faultAction := "http://www.w3.org/2005/08/addressing/soap/fault"
	if wsa.ns == NSWSA2004 {
		faultAction = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
	}
	out := &soap.Response{Version: f.Version, Body: f.FaultBody()}
	out.Headers = append(responseHeaders(wsa, faultAction), f.NotUnderstoodHeaders()...)
	page := out.Render()
	w.Header().Set("Content-Type", f.Version.ContentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(f.Status())
	_, _ = w.Write(page)
	return f
}
