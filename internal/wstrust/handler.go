package wstrust

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/soap"
	"github.com/avouch/avouch/internal/sts"
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.Limits.MaxBytes))
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
	res, wsa, v, err := h.handle(r.Context(), r, env)
	if err != nil {
		h.writeFault(w, r, env.Version, wsa, err, v)
		return
	}
	out := &soap.Response{Version: env.Version, Body: res.body}
	out.Headers = responseHeaders(wsa, res.action)
	w.Header().Set("Content-Type", env.Version.ContentType())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Render())
}

// result is a successful response: its body and wsa:Action.
type result struct {
	body   []byte
	action string
}

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
			if !soap.Targeted(env.Version, actorOf(env, hb)) {
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
	if body.Tag != "RequestSecurityToken" || (bns != NS13 && bns != NS2005) {
		return nil, wsa, "", &soap.Fault{Version: env.Version, Code: soap.CodeSender,
			Reason: "unsupported body element {" + bns + "}" + body.Tag}
	}
	v := Version(bns)
	rst, err := ParseRST(body)
	if err != nil {
		return nil, wsa, v, err
	}
	if wsa.action != "" && wsa.action != v.action("RST", string(rst.RequestType)) {
		return nil, wsa, v, invalid("wsa:Action " + wsa.action + " does not match the RequestType")
	}
	if security == nil {
		return nil, wsa, v, &wssec.Error{Code: wssec.FaultInvalidSecurity, Msg: "the request has no wsse:Security header"}
	}
	hdr, err := wssec.Parse(security)
	if err != nil {
		return nil, wsa, v, err
	}
	user, err := h.Security.Authenticate(ctx, hdr)
	if err != nil {
		return nil, wsa, v, err
	}
	if rst.RequestType != Issue {
		return nil, wsa, v, invalid("RequestType " + string(rst.RequestType) + " is not supported on this endpoint yet")
	}
	tok, err := h.Core.Issue(ctx, &sts.IssueRequest{
		Principal: sts.Principal{Name: user.Name, Domain: user.Domain, Roles: user.Roles, Claims: user.Claims,
			AuthnInstant: h.Core.Now(), OverTLS: r.TLS != nil},
		TokenType: rst.TokenType, KeyType: rst.KeyType, KeyTypeURI: rst.KeyTypeURI, AppliesTo: rst.AppliesTo,
		Created: rst.Created, Expires: rst.Expires, ClaimsDialect: rst.ClaimsDialect, Claims: rst.Claims,
	})
	if err != nil {
		return nil, wsa, v, err
	}
	h.Log.LogAttrs(ctx, slog.LevelInfo, "token issued", slog.String("user", user.Name),
		slog.String("token_id", tok.ID), slog.String("type", tok.Type), slog.String("applies_to", tok.AppliesTo))
	return &result{body: renderIssue(rst, tok), action: v.responseAction(Issue)}, wsa, v, nil
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

func (h *Handler) writeFault(w http.ResponseWriter, r *http.Request, sv soap.Version, wsa addressing, err error, v Version) {
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

	faultAction := "http://www.w3.org/2005/08/addressing/soap/fault"
	if wsa.ns == NSWSA2004 {
		faultAction = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
	}
	out := &soap.Response{Version: f.Version, Body: f.FaultBody()}
	out.Headers = append(responseHeaders(wsa, faultAction), f.NotUnderstoodHeaders()...)
	w.Header().Set("Content-Type", f.Version.ContentType())
	w.WriteHeader(f.Status())
	_, _ = w.Write(out.Render())
}
