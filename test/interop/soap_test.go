package interop

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Namespaces the tests read and write.
const (
	nsSOAP11   = "http://schemas.xmlsoap.org/soap/envelope/"
	nsSOAP12   = "http://www.w3.org/2003/05/soap-envelope"
	nsWST      = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	nsWST2005  = "http://schemas.xmlsoap.org/ws/2005/02/trust"
	nsWSSE     = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU      = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	nsWSA      = "http://www.w3.org/2005/08/addressing"
	nsWSP      = "http://schemas.xmlsoap.org/ws/2004/09/policy"
	nsIdentity = "http://schemas.xmlsoap.org/ws/2005/05/identity"
	nsSAML2    = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsSAML1    = "urn:oasis:names:tc:SAML:1.0:assertion"

	actionIssue13 = nsWST + "/RST/Issue"
	// Token type URIs as the SAML Token Profile spells them; the STS must
	// also accept the assertion namespaces as token types.
	tokenSAML20 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
	tokenSAML11 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
	pwText      = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
	pwDigest    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	b64Encoding = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// rst is a WS-Trust 1.3 Issue request written by hand, for the cases no real
// client would send (faults) and for a known-good request after each of them.
type rst struct {
	SOAP12         bool
	User, Password string
	Digest         bool
	// Timestamp, when set, adds a wsu:Timestamp with these Created/Expires.
	Timestamp *[2]time.Time
	TokenType string // default: none (the server's default type)
	AppliesTo string // default: urn:interop:rp
	// Extra is raw XML appended inside the RST (an extension element the
	// server must ignore, or a payload only a guard should stop).
	Extra string
	// Prolog is raw text before the Envelope (e.g. a DOCTYPE).
	Prolog string
}

func (r rst) soapNS() string {
	if r.SOAP12 {
		return nsSOAP12
	}
	return nsSOAP11
}

func (r rst) contentType() http.Header {
	h := http.Header{}
	if r.SOAP12 {
		h.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+actionIssue13+`"`)
	} else {
		h.Set("Content-Type", "text/xml; charset=utf-8")
		h.Set("SOAPAction", `"`+actionIssue13+`"`)
	}
	return h
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func zulu(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// envelope renders the request. A digest request gets a fresh nonce each
// time it is rendered; to replay one, render once and post the bytes twice.
func (r rst) envelope() []byte {
	var b strings.Builder
	b.WriteString(r.Prolog)
	fmt.Fprintf(&b, `<s:Envelope xmlns:s="%s" xmlns:a="%s" xmlns:wsse="%s" xmlns:wsu="%s">`, r.soapNS(), nsWSA, nsWSSE, nsWSU)
	fmt.Fprintf(&b, `<s:Header><a:Action s:mustUnderstand="1">%s</a:Action><a:MessageID>%s</a:MessageID>`, actionIssue13, newID())
	b.WriteString(`<wsse:Security s:mustUnderstand="1">`)
	if r.Timestamp != nil {
		fmt.Fprintf(&b, `<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>%s</wsu:Created><wsu:Expires>%s</wsu:Expires></wsu:Timestamp>`,
			zulu(r.Timestamp[0]), zulu(r.Timestamp[1]))
	}
	fmt.Fprintf(&b, `<wsse:UsernameToken><wsse:Username>%s</wsse:Username>`, esc(r.User))
	if r.Digest {
		nonce := make([]byte, 16)
		_, _ = rand.Read(nonce)
		created := zulu(time.Now())
		h := sha1.New()
		h.Write(nonce)
		h.Write([]byte(created))
		h.Write([]byte(r.Password))
		fmt.Fprintf(&b, `<wsse:Password Type="%s">%s</wsse:Password><wsse:Nonce EncodingType="%s">%s</wsse:Nonce><wsu:Created>%s</wsu:Created>`,
			pwDigest, base64.StdEncoding.EncodeToString(h.Sum(nil)), b64Encoding, base64.StdEncoding.EncodeToString(nonce), created)
	} else {
		fmt.Fprintf(&b, `<wsse:Password Type="%s">%s</wsse:Password>`, pwText, esc(r.Password))
	}
	b.WriteString(`</wsse:UsernameToken></wsse:Security></s:Header><s:Body>`)
	fmt.Fprintf(&b, `<t:RequestSecurityToken xmlns:t="%s">`, nsWST)
	if r.TokenType != "" {
		fmt.Fprintf(&b, `<t:TokenType>%s</t:TokenType>`, esc(r.TokenType))
	}
	fmt.Fprintf(&b, `<t:RequestType>%s/Issue</t:RequestType>`, nsWST)
	appliesTo := r.AppliesTo
	if appliesTo == "" {
		appliesTo = "urn:interop:rp"
	}
	fmt.Fprintf(&b, `<wsp:AppliesTo xmlns:wsp="%s"><a:EndpointReference><a:Address>%s</a:Address></a:EndpointReference></wsp:AppliesTo>`, nsWSP, esc(appliesTo))
	fmt.Fprintf(&b, `<t:KeyType>%s/Bearer</t:KeyType>`, nsWST)
	b.WriteString(r.Extra)
	b.WriteString(`</t:RequestSecurityToken></s:Body></s:Envelope>`)
	return []byte(b.String())
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

// post sends a SOAP request and returns the HTTP status and body.
func post(url string, body []byte, h http.Header) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, out, err
}

// fault is a SOAP fault with its QNames resolved: Code is the SOAP 1.2
// env:Code value (SOAP 1.1 Client/Server are mapped to Sender/Receiver, and a
// SOAP 1.1 faultcode that is not in the envelope namespace is taken as the
// subcode, which is how WS-Security and WS-Trust faults travel in SOAP 1.1).
type fault struct {
	EnvelopeNS string
	Code       xml.Name
	Subcode    xml.Name
	Reason     string
}

// Is reports whether the most specific code of f is {space}local.
func (f fault) Is(space, local string) bool {
	c := f.Subcode
	if c.Local == "" {
		c = f.Code
	}
	return c.Space == space && c.Local == local
}

func (f fault) String() string {
	s := fmt.Sprintf("{%s}%s", f.Code.Space, f.Code.Local)
	if f.Subcode.Local != "" {
		s += fmt.Sprintf(" / {%s}%s", f.Subcode.Space, f.Subcode.Local)
	}
	return s + fmt.Sprintf(" %q", f.Reason)
}

var errNoFault = errors.New("response is not a SOAP fault")

// parseFault reads a SOAP 1.1 or 1.2 fault, resolving QName-valued text
// (faultcode, Value) against the namespace declarations in scope.
func parseFault(body []byte) (fault, error) {
	var f fault
	type frame struct {
		name  xml.Name // resolved
		scope map[string]string
	}
	var stack []frame
	lookup := func(prefix string) (string, bool) {
		for i := len(stack) - 1; i >= 0; i-- {
			if ns, ok := stack[i].scope[prefix]; ok {
				return ns, true
			}
		}
		return "", prefix == "" // no default namespace: the empty one
	}
	resolve := func(qname string) xml.Name {
		prefix, local, ok := strings.Cut(strings.TrimSpace(qname), ":")
		if !ok {
			prefix, local = "", prefix
		}
		ns, found := lookup(prefix)
		if !found {
			ns = "(undeclared prefix " + prefix + ")"
		}
		return xml.Name{Space: ns, Local: local}
	}
	var text strings.Builder
	found := false
	// RawToken keeps prefixes, which QNames in text need.
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, fmt.Errorf("fault is not well-formed XML: %w", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			fr := frame{scope: map[string]string{}}
			for _, a := range tok.Attr {
				switch {
				case a.Name.Space == "xmlns":
					fr.scope[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					fr.scope[""] = a.Value
				}
			}
			stack = append(stack, fr)
			stack[len(stack)-1].name = resolve(tok.Name.Space + ":" + tok.Name.Local)
			if tok.Name.Space == "" {
				stack[len(stack)-1].name = resolve(tok.Name.Local)
			}
			if len(stack) == 1 {
				f.EnvelopeNS = stack[0].name.Space
			}
			text.Reset()
		case xml.CharData:
			text.Write(tok)
		case xml.EndElement:
			if len(stack) == 0 {
				return f, errors.New("unbalanced XML")
			}
			var path []string
			inFault := false
			for _, fr := range stack {
				if fr.name.Local == "Fault" && (fr.name.Space == nsSOAP11 || fr.name.Space == nsSOAP12) {
					inFault, found = true, true
					path = path[:0]
				}
				path = append(path, fr.name.Local)
			}
			if inFault {
				switch p := strings.Join(path, "/"); p {
				case "Fault/faultcode":
					c := resolve(text.String())
					if c.Space == nsSOAP11 {
						mapped := map[string]string{"Client": "Sender", "Server": "Receiver"}[c.Local]
						if mapped == "" {
							mapped = c.Local
						}
						f.Code = xml.Name{Space: nsSOAP12, Local: mapped}
					} else {
						f.Subcode = c
					}
				case "Fault/faultstring":
					f.Reason = strings.TrimSpace(text.String())
				case "Fault/Code/Value":
					f.Code = resolve(text.String())
				case "Fault/Code/Subcode/Value":
					f.Subcode = resolve(text.String())
				case "Fault/Reason/Text":
					if f.Reason == "" {
						f.Reason = strings.TrimSpace(text.String())
					}
				}
			}
			stack = stack[:len(stack)-1]
			text.Reset()
		}
	}
	if !found {
		return f, errNoFault
	}
	return f, nil
}

// Real clients (msal; anyone who must keep the signed bytes intact) take the
// token out of the RSTR as text, not through a DOM that would re-serialise
// it. These patterns do the same: an optional prefix, any attributes.
var (
	reRequestedToken = regexp.MustCompile(`(?s)<(?:[\w.-]+:)?RequestedSecurityToken(?:\s[^>]*)?>(.*?)</(?:[\w.-]+:)?RequestedSecurityToken\s*>`)
	reTokenType      = regexp.MustCompile(`(?s)<(?:[\w.-]+:)?TokenType(?:\s[^>]*)?>([^<]*)</(?:[\w.-]+:)?TokenType\s*>`)
)

// extractToken returns the assertion text inside RequestedSecurityToken and
// the RSTR's TokenType.
func extractToken(rstr []byte) (assertion []byte, tokenType string, err error) {
	m := reRequestedToken.FindAllSubmatch(rstr, -1)
	if len(m) != 1 {
		return nil, "", fmt.Errorf("response has %d RequestedSecurityToken elements, want 1", len(m))
	}
	assertion = bytes.TrimSpace(m[0][1])
	if tt := reTokenType.FindSubmatch(rstr); tt != nil {
		tokenType = strings.TrimSpace(string(tt[1]))
	}
	return assertion, tokenType, nil
}
