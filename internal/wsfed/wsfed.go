// Package wsfed is the WS-Federation 1.2 passive requestor front-end (the
// "passive STS"): it reads wsignin1.0, wsignout1.0 and wsignoutcleanup1.0
// requests, checks the realm and the reply address against the registry,
// has the shared browser sign-in (internal/authn) find or start the user's
// session, asks the core for a token, and answers with an auto-POST form
// whose wresult is a WS-Trust 2005/02 RequestSecurityTokenResponse.
//
// It knows the WS-Federation wire format and nothing of users, sessions or
// token formats: tokens are the core's bytes, embedded verbatim.
package wsfed

import (
	"fmt"
	"net/http"
	"strings"
)

// Actions (the wa parameter).
const (
	ActionSignIn         = "wsignin1.0"
	ActionSignOut        = "wsignout1.0"
	ActionSignOutCleanup = "wsignoutcleanup1.0"
)

// Namespaces of the wresult and of wreq.
const (
	NSTrust2005  = "http://schemas.xmlsoap.org/ws/2005/02/trust"
	NSTrust13    = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	NSTrust14    = "http://docs.oasis-open.org/ws-sx/ws-trust/200802"
	NSPolicy2004 = "http://schemas.xmlsoap.org/ws/2004/09/policy"
	NSPolicy2006 = "http://www.w3.org/2006/07/ws-policy"
	NSPolicyW3C  = "http://www.w3.org/ns/ws-policy"
	NSWSA2005    = "http://www.w3.org/2005/08/addressing"
	NSWSA2004    = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	NSWSU        = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

	// KeyTypeNoProofKey is the bearer key type of WS-Trust 2005/02
	// responses, as ADFS writes it in a wresult.
	KeyTypeNoProofKey = "http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey"

	TokenProfileSAML20 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
	TokenProfileSAML11 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
)

// ProtocolName is this front-end's name in the shared sign-in's session
// bookkeeping.
const ProtocolName = "wsfed"

// Limits on what a request may carry. A URL longer than a few kilobytes
// breaks in proxies anyway; wreq is the only big parameter.
const (
	maxBody  = 256 << 10
	maxParam = 8 << 10
	maxWreq  = 16 << 10
)

// Params are a WS-Federation request's parameters.
type Params struct {
	Action      string // wa
	Realm       string // wtrealm
	Reply       string // wreply
	ReplyGiven  bool   // wreply was sent non-empty
	Context     string // wctx: echoed to the relying party untouched
	CurrentTime string // wct: the relying party's clock (informational)
	Req         string // wreq: a wst:RequestSecurityToken
	ReqPtr      string // wreqptr: not supported
	HomeRealm   string // whr: a user-store domain hint
	Fresh       string // wfresh: maximum age of the sign-in, in minutes
}

// RequestError is a malformed or refused request; its message is safe to
// show.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func refuse(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

// ParseParams reads the parameters from the query (GET) or from the query
// and an application/x-www-form-urlencoded body (POST). A parameter sent
// twice is refused: two wreply values are an attack on whichever one a
// check reads, not a mistake to guess at.
func ParseParams(w http.ResponseWriter, r *http.Request) (*Params, error) {
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	if err := r.ParseForm(); err != nil {
		return nil, refuse("the request parameters could not be read")
	}
	one := func(name string, limit int) (string, error) {
		vs := r.Form[name]
		switch {
		case len(vs) == 0:
			return "", nil
		case len(vs) > 1:
			return "", refuse("the parameter %s was sent more than once", name)
		case len(vs[0]) > limit:
			return "", refuse("the parameter %s is too long", name)
		}
		return vs[0], nil
	}
	p := &Params{}
	var err error
	for _, f := range []struct {
		name  string
		dst   *string
		limit int
	}{
		{"wa", &p.Action, 64}, {"wtrealm", &p.Realm, maxParam}, {"wreply", &p.Reply, maxParam},
		{"wctx", &p.Context, maxParam}, {"wct", &p.CurrentTime, 64}, {"wreq", &p.Req, maxWreq},
		{"wreqptr", &p.ReqPtr, maxParam}, {"whr", &p.HomeRealm, maxParam}, {"wfresh", &p.Fresh, 32},
	} {
		if *f.dst, err = one(f.name, f.limit); err != nil {
			return nil, err
		}
	}
	p.ReplyGiven = p.Reply != ""
	return p, nil
}

// addQuery appends name=value to a URL that has no fragment.
func addQuery(u, name, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + name + "=" + value
}
