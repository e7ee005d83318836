package metadata

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/soap"
	"github.com/avouch/avouch/internal/xmltext"
)

// WS-MetadataExchange and WS-Transfer names.
const (
	NSMEX            = "http://schemas.xmlsoap.org/ws/2004/09/mex"
	NSAddressing2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"

	ActionTransferGet         = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
	ActionTransferGetResponse = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse"
	ActionGetMetadata         = NSMEX + "/GetMetadata/Request"
	ActionGetMetadataResponse = NSMEX + "/GetMetadata/Response"

	// DialectWSDL is the MetadataSection dialect of a WSDL 1.1 document.
	DialectWSDL = NSWSDL
)

// Endpoint is one WS-Trust endpoint a MEX document offers.
type Endpoint struct {
	// URL is the endpoint's absolute address. Only https addresses get a
	// TransportBinding policy, and msal only considers https addresses.
	URL   string
	Trust Trust
	// Scenario is the endpoint's security scenario (see WSDLOptions).
	Scenario string
	// Name names the endpoint's port, and after it its binding
	// (Name+"Soap12Binding") and policy (Name+"Policy"). Default:
	// "SecurityTokenService13" or "SecurityTokenService2005"; a name already
	// taken gets a counter.
	Name string
}

// MEXOptions says which endpoints a MEX document offers. Which ones a client
// picks depends on what is offered: msal takes the first WS-Trust 1.3
// username/password endpoint and only falls back to a 2005/02 one, so a
// deployment that offers only 2005 lists only that.
type MEXOptions struct {
	Endpoints []Endpoint
}

// MEX returns the WS-MetadataExchange document of the offered endpoints: a
// WSDL 1.1 wsdl:definitions (the root, as ADFS serves it on GET) with one
// policy, one SOAP 1.2 binding and one port per endpoint. Each port carries
// a soap12:address and a wsa:EndpointReference with the endpoint's address.
//
// Only SOAP 1.2 bindings: msal's MEX reader dereferences the soap12:binding
// of every wsdl:binding in the document and fails on a SOAP 1.1 one, and
// ADFS's own MEX offers SOAP 1.2 only. SOAP 1.1 clients have each endpoint's
// ?wsdl, which describes both.
func MEX(o MEXOptions) []byte {
	return append([]byte(xmlDecl), mexDefinitions(o)...)
}

func mexDefinitions(o MEXOptions) []byte {
	scenario := ""
	if len(o.Endpoints) > 0 {
		scenario = o.Endpoints[0].Scenario
	}
	d := docData{Documentation: "avouch WS-Trust Security Token Service endpoints. " + authDocFor(alternatives(scenario))}
	profiles := map[Trust]*profileData{}
	taken := map[string]bool{}
	for _, ep := range o.Endpoints {
		prof, ok := profiles[ep.Trust]
		if !ok {
			p := profileOf(ep.Trust)
			// Both versions may share the document: their messages and
			// portTypes need distinct names.
			prof = &profileData{trustProfile: p, PortType: "SecurityTokenService" + p.Name, Msg: "Trust" + p.Name}
			profiles[ep.Trust] = prof
			d.Profiles = append(d.Profiles, prof)
			d.SecurityPolicies = append(d.SecurityPolicies, p.SP)
		}
		name := ep.Name
		if name == "" {
			name = "SecurityTokenService" + prof.Name
		}
		name = uniqueName(taken, name)
		d.Policies = append(d.Policies, policyData{ID: name + "Policy", TLS: isHTTPS(ep.URL), SP: prof.SP, Alternatives: alternatives(ep.Scenario)})
		d.Bindings = append(d.Bindings, bindingData{Name: name + "Soap12Binding", Profile: prof, PolicyID: name + "Policy", SOAP: "soap12"})
		d.Ports = append(d.Ports, portData{Name: name, Binding: name + "Soap12Binding", SOAP: "soap12", Address: ep.URL})
	}
	return render(d)
}

// MetadataBody returns the body of a WS-Transfer GetResponse (and of a
// GetMetadata response): a wsx:Metadata holding one wsx:MetadataSection of
// dialect WSDL with the same wsdl:definitions that MEX returns.
func MetadataBody(o MEXOptions) []byte {
	var b bytes.Buffer
	b.WriteString(`<wsx:Metadata xmlns:wsx="` + NSMEX + `"><wsx:MetadataSection Dialect="` + DialectWSDL +
		`" Identifier="` + TargetNamespace + `">`)
	b.Write(bytes.TrimRight(mexDefinitions(o), "\n"))
	b.WriteString(`</wsx:MetadataSection></wsx:Metadata>`)
	return b.Bytes()
}

// MEXHandler serves a MEX document over HTTP: GET returns the document
// itself (root wsdl:definitions), and a SOAP POST with WS-Addressing action
// WS-Transfer Get (or WS-MetadataExchange GetMetadata) returns it in a
// GetResponse, in the SOAP version of the request (svcutil and WCF use SOAP
// 1.2).
type MEXHandler struct {
	// Options returns the endpoints to offer for a request (their addresses
	// depend on the public URL, or on the request when none is configured).
	Options func(r *http.Request) MEXOptions
	Limits  safexml.Limits
}

func (h *MEXHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(MEX(h.Options(r)))
	case http.MethodPost:
		h.serveSOAP(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// transferRequest is what the handler reads from a metadata request.
type transferRequest struct {
	version   soap.Version
	wsaNS     string
	action    string
	messageID string
	body      *etree.Element // nil for an empty Body (WS-Transfer Get)
}

func (h *MEXHandler) serveSOAP(w http.ResponseWriter, r *http.Request) {
	guess := soap.V11
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/soap+xml") {
		guess = soap.V12
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBytes()))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeFault(w, transferRequest{version: guess}, &soap.Fault{Code: soap.CodeSender, Reason: "request body too large", HTTPStatus: http.StatusRequestEntityTooLarge})
			return
		}
		writeFault(w, transferRequest{version: guess}, soap.SenderFault("could not read the request body"))
		return
	}
	req, f := parseTransfer(data, h.Limits)
	if f != nil {
		if req.version == 0 {
			req.version = guess
		}
		writeFault(w, req, f)
		return
	}
	var body []byte
	var action string
	switch req.action {
	case ActionTransferGet:
		// WS-Transfer Get has an empty Body; anything in it is ignored, as
		// WCF and ADFS do.
		body, action = MetadataBody(h.Options(r)), ActionTransferGetResponse
	case ActionGetMetadata:
		if req.body == nil || req.body.Tag != "GetMetadata" || req.body.NamespaceURI() != NSMEX {
			writeFault(w, req, soap.SenderFault("GetMetadata/Request needs a wsx:GetMetadata body"))
			return
		}
		if d := strings.TrimSpace(childText(req.body, "Dialect")); d != "" && d != DialectWSDL {
			// Only WSDL is offered: an answer with no sections (WS-MEX §6).
			body = []byte(`<wsx:Metadata xmlns:wsx="` + NSMEX + `"/>`)
		} else {
			body = MetadataBody(h.Options(r))
		}
		action = ActionGetMetadataResponse
	case "":
		writeFault(w, req, &soap.Fault{Code: soap.CodeSender, Subcode: soap.QName{Space: wsaNSOr(req.wsaNS), Prefix: "wsa", Local: "MessageAddressingHeaderRequired"},
			Reason: "a metadata request needs a wsa:Action header (" + ActionTransferGet + ")"})
		return
	default:
		writeFault(w, req, &soap.Fault{Code: soap.CodeSender, Subcode: soap.QName{Space: req.wsaNS, Prefix: "wsa", Local: "ActionNotSupported"},
			Reason: "this is a metadata endpoint: use wsa:Action " + ActionTransferGet})
		return
	}
	out := &soap.Response{Version: req.version, Headers: addressingHeaders(req, action), Body: body}
	w.Header().Set("Content-Type", req.version.ContentType())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Render())
}

func (h *MEXHandler) maxBytes() int64 {
	if h.Limits.MaxBytes > 0 {
		return h.Limits.MaxBytes
	}
	return safexml.DefaultLimits.MaxBytes
}

func wsaNSOr(ns string) string {
	if ns == "" {
		return NSAddressing
	}
	return ns
}

// parseTransfer reads the envelope of a metadata request. The SOAP package's
// parser is for WS-Trust messages, whose Body holds exactly one element; a
// WS-Transfer Get has an empty Body, so the envelope is read here.
func parseTransfer(data []byte, lim safexml.Limits) (transferRequest, *soap.Fault) {
	var req transferRequest
	doc, err := safexml.Parse(data, lim)
	if err != nil {
		switch {
		case errors.Is(err, safexml.ErrTooLarge):
			return req, &soap.Fault{Code: soap.CodeSender, Reason: "request body too large", HTTPStatus: http.StatusRequestEntityTooLarge}
		case errors.Is(err, safexml.ErrDoctype):
			return req, soap.SenderFault("DTDs are not allowed in SOAP messages")
		case errors.Is(err, safexml.ErrTooDeep):
			return req, soap.SenderFault("XML nesting too deep")
		}
		return req, soap.SenderFault("malformed XML")
	}
	root := doc.Root()
	switch {
	case root == nil || root.Tag != "Envelope":
		return req, soap.SenderFault("not a SOAP envelope")
	case root.NamespaceURI() == soap.NS12:
		req.version = soap.V12
	case root.NamespaceURI() == soap.NS11:
		req.version = soap.V11
	default:
		return req, &soap.Fault{Code: soap.CodeVersionMismatch, Reason: "unsupported SOAP envelope namespace"}
	}
	ns := req.version.NS()
	var header, body *etree.Element
	for _, c := range root.ChildElements() {
		switch {
		case c.NamespaceURI() == ns && c.Tag == "Header" && header == nil && body == nil:
			header = c
		case c.NamespaceURI() == ns && c.Tag == "Body" && body == nil:
			body = c
		default:
			return req, soap.SenderFault("unexpected element in Envelope")
		}
	}
	if body == nil {
		return req, soap.SenderFault("missing Body")
	}
	switch kids := body.ChildElements(); len(kids) {
	case 0:
	case 1:
		req.body = kids[0]
	default:
		return req, soap.SenderFault("Body must hold at most one element")
	}
	env := &soap.Envelope{Version: req.version}
	if header != nil {
		for _, hb := range header.ChildElements() {
			hns := hb.NamespaceURI()
			if hns == NSAddressing || hns == NSAddressing2004 {
				req.wsaNS = hns
				switch hb.Tag {
				case "Action":
					req.action = strings.TrimSpace(safexml.Text(hb))
				case "MessageID":
					req.messageID = strings.TrimSpace(safexml.Text(hb))
				}
				// To, ReplyTo (anonymous), From: understood; the reply always
				// goes back on the HTTP response.
				continue
			}
			if env.MustUnderstand(hb) {
				return req, &soap.Fault{Code: soap.CodeMustUnderstand, Reason: "header " + hb.Tag + " {" + hns + "} was not understood",
					NotUnderstood: []soap.QName{{Space: hns, Local: hb.Tag}}}
			}
		}
	}
	return req, nil
}

func childText(el *etree.Element, local string) string {
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == NSMEX {
			return safexml.Text(c)
		}
	}
	return ""
}

// addressingHeaders answers in the request's WS-Addressing version: Action,
// and RelatesTo the request's MessageID.
func addressingHeaders(req transferRequest, action string) [][]byte {
	if req.wsaNS == "" {
		return nil
	}
	hs := [][]byte{[]byte(`<wsa:Action xmlns:wsa="` + req.wsaNS + `">` + xmltext.EscapeText(action) + `</wsa:Action>`)}
	if req.messageID != "" {
		hs = append(hs, []byte(`<wsa:RelatesTo xmlns:wsa="`+req.wsaNS+`">`+xmltext.EscapeText(req.messageID)+`</wsa:RelatesTo>`))
	}
	return hs
}

func writeFault(w http.ResponseWriter, req transferRequest, f *soap.Fault) {
	f.Version = req.version
	action := "http://www.w3.org/2005/08/addressing/soap/fault"
	if req.wsaNS == NSAddressing2004 {
		action = NSAddressing2004 + "/fault"
	}
	out := &soap.Response{Version: f.Version, Body: f.FaultBody()}
	out.Headers = append(addressingHeaders(req, action), f.NotUnderstoodHeaders()...)
	w.Header().Set("Content-Type", f.Version.ContentType())
	w.WriteHeader(f.Status())
	_, _ = w.Write(out.Render())
}
