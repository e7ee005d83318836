// Package client is avouch's WS-Trust client: it builds RST envelopes with a
// WS-Security UsernameToken (text or digest) and a fresh Timestamp, posts them
// and extracts the token from the response. The CLI's `client` commands and
// `avouch bench` use it.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/xmltext"
)

// Options describe an Issue request.
type Options struct {
	URL       string
	User      string
	Password  string
	SAML      string // "2.0" (default) or "1.1"
	AppliesTo string
	Claims    []string
	SOAP      string // "1.1" (default) or "1.2"
	Digest    bool
	Lifetime  time.Duration // 0 = server default
	Now       func() time.Time
}

const (
	nsWST  = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	nsWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	nsWSA  = "http://www.w3.org/2005/08/addressing"
)

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// BuildIssue returns the RST envelope and its content type.
func BuildIssue(o *Options) ([]byte, string, error) {
	return build(o, "Issue", nil, false)
}

// BuildTarget returns a Renew, Validate or Cancel RST envelope carrying the
// token. For Validate, statusOnly asks for a status (TokenType …/RSTR/Status)
// instead of a transformed token of type o.SAML.
func BuildTarget(o *Options, requestType string, token []byte, statusOnly bool) ([]byte, string, error) {
	switch requestType {
	case "Renew", "Validate", "Cancel":
	default:
		return nil, "", fmt.Errorf("unknown request type %q", requestType)
	}
	return build(o, requestType, token, statusOnly)
}

func build(o *Options, requestType string, token []byte, statusOnly bool) ([]byte, string, error) {
	action := nsWST + "/RST/" + requestType
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := now().UTC()
	created := t.Format("2006-01-02T15:04:05.000Z")
	soapNS, ctype := "http://schemas.xmlsoap.org/soap/envelope/", "text/xml; charset=utf-8"
	if o.SOAP == "1.2" {
		soapNS, ctype = "http://www.w3.org/2003/05/soap-envelope", `application/soap+xml; charset=utf-8; action="`+action+`"`
	} else if o.SOAP != "" && o.SOAP != "1.1" {
		return nil, "", fmt.Errorf("--soap must be 1.1 or 1.2")
	}
	tokenType := "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
	switch o.SAML {
	case "", "2.0":
	case "1.1":
		tokenType = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
	default:
		return nil, "", fmt.Errorf("--saml must be 1.1 or 2.0")
	}
	var b bytes.Buffer
	b.WriteString(`<s:Envelope xmlns:s="` + soapNS + `" xmlns:wsa="` + nsWSA + `" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `" xmlns:wst="` + nsWST + `">`)
	b.WriteString(`<s:Header><wsa:Action s:mustUnderstand="1">` + action + `</wsa:Action>`)
	b.WriteString(`<wsa:MessageID>` + newUUID() + `</wsa:MessageID>`)
	b.WriteString(`<wsa:To s:mustUnderstand="1">` + xmltext.EscapeText(o.URL) + `</wsa:To>`)
	b.WriteString(`<wsse:Security s:mustUnderstand="1"><wsu:Timestamp wsu:Id="_0"><wsu:Created>` + created + `</wsu:Created>`)
	b.WriteString(`<wsu:Expires>` + t.Add(5*time.Minute).Format("2006-01-02T15:04:05.000Z") + `</wsu:Expires></wsu:Timestamp>`)
	b.WriteString(`<wsse:UsernameToken><wsse:Username>` + xmltext.EscapeText(o.User) + `</wsse:Username>`)
	if o.Digest {
		nonce := make([]byte, 16)
		_, _ = rand.Read(nonce)
		h := sha1.New()
		h.Write(nonce)
		h.Write([]byte(created))
		h.Write([]byte(o.Password))
		b.WriteString(`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">`)
		b.WriteString(base64.StdEncoding.EncodeToString(h.Sum(nil)) + `</wsse:Password>`)
		b.WriteString(`<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">`)
		b.WriteString(base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce><wsu:Created>` + created + `</wsu:Created>`)
	} else {
		b.WriteString(`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">`)
		b.WriteString(xmltext.EscapeText(o.Password) + `</wsse:Password>`)
	}
	b.WriteString(`</wsse:UsernameToken></wsse:Security></s:Header><s:Body><wst:RequestSecurityToken>`)
	b.WriteString(`<wst:RequestType>` + nsWST + `/` + requestType + `</wst:RequestType>`)
	switch requestType {
	case "Issue":
		b.WriteString(`<wst:TokenType>` + tokenType + `</wst:TokenType>`)
		b.WriteString(`<wst:KeyType>` + nsWST + `/Bearer</wst:KeyType>`)
	case "Validate":
		if statusOnly {
			tokenType = nsWST + "/RSTR/Status"
		}
		b.WriteString(`<wst:TokenType>` + tokenType + `</wst:TokenType>`)
	}
	if token != nil {
		b.WriteString(`<wst:` + requestType + `Target>`)
		b.Write(token)
		b.WriteString(`</wst:` + requestType + `Target>`)
	}
	if o.AppliesTo != "" {
		b.WriteString(`<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference><wsa:Address>`)
		b.WriteString(xmltext.EscapeText(o.AppliesTo) + `</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`)
	}
	if o.Lifetime > 0 {
		b.WriteString(`<wst:Lifetime><wsu:Created>` + created + `</wsu:Created><wsu:Expires>`)
		b.WriteString(t.Add(o.Lifetime).Format("2006-01-02T15:04:05.000Z") + `</wsu:Expires></wst:Lifetime>`)
	}
	if len(o.Claims) > 0 {
		b.WriteString(`<wst:Claims Dialect="http://schemas.xmlsoap.org/ws/2005/05/identity" xmlns:i="http://schemas.xmlsoap.org/ws/2005/05/identity">`)
		for _, c := range o.Claims {
			b.WriteString(`<i:ClaimType Uri="` + xmltext.EscapeAttr(c) + `"/>`)
		}
		b.WriteString(`</wst:Claims>`)
	}
	b.WriteString(`</wst:RequestSecurityToken></s:Body></s:Envelope>`)
	return b.Bytes(), ctype, nil
}

// FaultError is a SOAP fault returned by the server.
type FaultError struct {
	Status int
	Code   string
	Reason string
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("server fault %s (HTTP %d): %s", e.Code, e.Status, e.Reason)
}

// Post sends an envelope and returns the response body, or a *FaultError.
// The SOAPAction (SOAP 1.1) is taken from the envelope's wsa:Action.
func Post(ctx context.Context, hc *http.Client, url string, env []byte, ctype string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(env))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	if m := actionRE.FindSubmatch(env); m != nil && strings.HasPrefix(ctype, "text/xml") {
		req.Header.Set("SOAPAction", `"`+string(m[1])+`"`)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, parseFault(resp.StatusCode, body)
	}
	return body, nil
}

func parseFault(status int, body []byte) error {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err == nil {
		if f := doc.FindElement("//Fault"); f != nil {
			fe := &FaultError{Status: status}
			if c := f.FindElement("faultcode"); c != nil {
				fe.Code = strings.TrimSpace(c.Text())
			}
			if c := f.FindElement("faultstring"); c != nil {
				fe.Reason = strings.TrimSpace(c.Text())
			}
			if c := f.FindElement("Code/Subcode/Value"); c != nil {
				fe.Code = strings.TrimSpace(c.Text())
			} else if c := f.FindElement("Code/Value"); c != nil {
				fe.Code = strings.TrimSpace(c.Text())
			}
			if c := f.FindElement("Reason/Text"); c != nil {
				fe.Reason = strings.TrimSpace(c.Text())
			}
			return fe
		}
	}
	return &FaultError{Status: status, Code: "http", Reason: strings.TrimSpace(string(body))}
}

var (
	actionRE = regexp.MustCompile(`<wsa:Action[^>]*>([^<]+)</wsa:Action>`)
	rstStart = regexp.MustCompile(`<(?:[A-Za-z_][\w.-]*:)?RequestedSecurityToken(?:\s[^>]*)?>`)
	rstEnd   = regexp.MustCompile(`</(?:[A-Za-z_][\w.-]*:)?RequestedSecurityToken\s*>`)
)

// ExtractToken cuts the token out of an RSTR by text, as real clients do, so
// the bytes are exactly what the server signed.
func ExtractToken(rstr []byte) ([]byte, error) {
	s := rstStart.FindIndex(rstr)
	if s == nil {
		return nil, errors.New("no RequestedSecurityToken in the response")
	}
	e := rstEnd.FindIndex(rstr[s[1]:])
	if e == nil {
		return nil, errors.New("unterminated RequestedSecurityToken")
	}
	return bytes.TrimSpace(rstr[s[1] : s[1]+e[0]]), nil
}

// Issue requests a token and returns the RST sent, the RSTR received and the
// token.
func Issue(ctx context.Context, hc *http.Client, o *Options) (rst, rstr, token []byte, err error) {
	rst, ctype, err := BuildIssue(o)
	if err != nil {
		return nil, nil, nil, err
	}
	rstr, err = Post(ctx, hc, o.URL, rst, ctype)
	if err != nil {
		return rst, rstr, nil, err
	}
	token, err = ExtractToken(rstr)
	return rst, rstr, token, err
}

// MaskSecrets hides passwords, password digests and nonces in an envelope for
// printing.
func MaskSecrets(env []byte) []byte {
	return maskRE.ReplaceAll(env, []byte("${1}***${3}"))
}

var maskRE = regexp.MustCompile(`(<(?:[\w.-]+:)?(?:Password|Nonce)(?:\s[^>]*)?>)([^<]*)(</(?:[\w.-]+:)?(?:Password|Nonce)>)`)

// Lifecycle sends a Renew, Validate or Cancel request for token and returns
// the RST and RSTR.
func Lifecycle(ctx context.Context, hc *http.Client, o *Options, requestType string, token []byte, statusOnly bool) (rst, rstr []byte, err error) {
	rst, ctype, err := BuildTarget(o, requestType, token, statusOnly)
	if err != nil {
		return nil, nil, err
	}
	rstr, err = Post(ctx, hc, o.URL, rst, ctype)
	return rst, rstr, err
}

var (
	statusCodeRE   = regexp.MustCompile(`<(?:[\w.-]+:)?Code>([^<]*)</(?:[\w.-]+:)?Code>`)
	statusReasonRE = regexp.MustCompile(`<(?:[\w.-]+:)?Reason>([^<]*)</(?:[\w.-]+:)?Reason>`)
)

// Status extracts a Validate response's status code (valid/invalid) and reason.
func Status(rstr []byte) (valid bool, code, reason string, err error) {
	m := statusCodeRE.FindSubmatch(rstr)
	if m == nil {
		return false, "", "", errors.New("no wst:Status in the response")
	}
	code = string(m[1])
	if r := statusReasonRE.FindSubmatch(rstr); r != nil {
		reason = string(r[1])
	}
	return strings.HasSuffix(code, "/status/valid"), code, reason, nil
}
