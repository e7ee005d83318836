package wsfed

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/authn"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/sts"
)

// Issuer is the core's Issue.
type Issuer interface {
	Issue(ctx context.Context, req *sts.IssueRequest) (*sts.Token, error)
}

// Realms resolves a realm to its registered service provider.
type Realms interface {
	MatchRealm(realm string) (*registry.ServiceProvider, error)
}

// Handler serves the passive STS endpoint (/passivests, /adfs/ls/).
type Handler struct {
	Core  Issuer
	RPs   Realms
	Authn *authn.Service
	Log   *slog.Logger
	Now   func() time.Time
	// Product is the name on the auto-POST page (default "avouch").
	Product string
	// RequestID returns the request's ID for logs (optional).
	RequestID func(ctx context.Context) string
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// ServeHTTP dispatches on wa.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Not HEAD: a sign-in through a live session issues and records a
	// token, which a probe must not do.
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		h.Authn.ErrorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This sign-in endpoint accepts GET and POST.")
		return
	}
	p, err := ParseParams(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch p.Action {
	case ActionSignIn:
		h.signIn(w, r, p)
	case ActionSignOut, ActionSignOutCleanup:
		h.signOut(w, r, p)
	case "":
		h.fail(w, r, refuse("this is a WS-Federation passive endpoint: the wa parameter (wsignin1.0 or wsignout1.0) is missing"))
	default:
		h.fail(w, r, refuse("the action wa=%s is not supported", p.Action))
	}
}

// signIn validates the request, finds or starts the session, issues the
// token and posts it to the relying party. Every check that can refuse
// the request runs before the login page is shown: a user never types a
// password for a request that cannot succeed.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, p *Params) {
	ctx := r.Context()
	if p.Realm == "" {
		h.fail(w, r, refuse("wtrealm is required: it names the application to sign in to"))
		return
	}
	if p.ReqPtr != "" {
		h.fail(w, r, refuse("wreqptr is not supported; send the request in wreq"))
		return
	}
	sp, err := h.RPs.MatchRealm(p.Realm)
	if err != nil || sp.Passive == nil {
		h.fail(w, r, refuse("the application (wtrealm) is not registered with this sign-in service"))
		return
	}
	reply, err := ResolveReply(sp, p.Reply, p.ReplyGiven)
	if err != nil {
		h.Log.Info("wsfed: wreply refused", "realm", p.Realm, "request_id", h.requestID(r))
		h.fail(w, r, refuse("the return address (wreply) is not registered for this application"))
		return
	}
	tr := &TokenRequest{}
	if p.Req != "" {
		if tr, err = ParseWreq(p.Req); err != nil {
			h.fail(w, r, err)
			return
		}
		if tr.AppliesTo != "" && tr.AppliesTo != p.Realm {
			h.fail(w, r, refuse("the AppliesTo of wreq does not name the realm in wtrealm"))
			return
		}
	}
	tokenType, tokenTypeURI, err := chooseTokenType(tr, sp)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// The core refuses these too, but only after the user has typed a
	// password.
	if tokenType != sts.TokenSAML11 && tokenType != sts.TokenSAML20 {
		h.fail(w, r, refuse("the token type %q is not supported; ask for SAML 1.1 or SAML 2.0", tokenTypeURI))
		return
	}
	if tr.ClaimsDialect != "" && tr.ClaimsDialect != sts.DialectIdentity && tr.ClaimsDialect != sts.DialectWSO2 {
		h.fail(w, r, refuse("the claims dialect %q is not supported", tr.ClaimsDialect))
		return
	}
	back := returnTo(r.URL.Path, p)
	if len(back) > authn.MaxReturn {
		h.fail(w, r, refuse("the sign-in request is too large"))
		return
	}

	se, err := h.Authn.Current(r)
	if err != nil {
		h.fail(w, r, &sts.Error{Code: sts.CodeUnavailable, Msg: "your session could not be read", Err: err})
		return
	}
	if se != nil && !fresh(se, p.Fresh, h.now()) {
		se = nil
	}
	login := authn.LoginRequest{ReturnTo: back, For: sp.Name, DomainHint: p.HomeRealm}
	if se == nil {
		h.Authn.ShowLogin(w, r, login)
		return
	}
	user, err := h.Authn.Principal(ctx, se)
	if errors.Is(err, identity.ErrInvalidCredentials) {
		h.Authn.ShowLogin(w, r, login) // the account is gone or disabled
		return
	}
	if err != nil {
		h.fail(w, r, &sts.Error{Code: sts.CodeUnavailable, Msg: "the user store cannot be reached", Err: err})
		return
	}
	tok, err := h.Core.Issue(ctx, &sts.IssueRequest{
		Principal: sts.Principal{Name: user.Name, Domain: user.Domain, Roles: user.Roles, Claims: user.Claims,
			AuthnInstant: se.AuthnInstant, OverTLS: se.OverTLS},
		AppliesTo: p.Realm, Passive: true, TokenType: tokenType, KeyType: sts.KeyBearer,
		ClaimsDialect: tr.ClaimsDialect, Claims: tr.Claims,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Record the relying party before the token leaves: sign-out must know
	// every relying party that has a token from this session.
	if err := h.Authn.AddParticipant(ctx, se, authn.Participant{Protocol: ProtocolName, ID: p.Realm, Reply: reply}); err != nil {
		h.fail(w, r, &sts.Error{Code: sts.CodeUnavailable, Msg: "your session could not be updated", Err: err})
		return
	}
	h.Log.Info("wsfed: token issued", "realm", p.Realm, "user", se.User(), "token_type", tok.Type, "request_id", h.requestID(r))
	resp := &Response{Reply: reply, Result: WResult(tok, tokenTypeURI, p.Realm), Context: p.Context, For: sp.Name}
	if err := WriteAutoPost(w, resp, h.product()); err != nil {
		h.Log.Error("wsfed: response not written", "err", err, "request_id", h.requestID(r))
	}
}

func (h *Handler) product() string {
	if h.Product == "" {
		return "avouch"
	}
	return h.Product
}

// chooseTokenType decides the token type: wreq's TokenType when it asks for
// one, else the relying party's passive token setting, else SAML 1.1 (what
// WS-Federation relying parties expect without being asked).
func chooseTokenType(tr *TokenRequest, sp *registry.ServiceProvider) (canonical, echo string, err error) {
	if tr.TokenTypeURI != "" {
		return tr.TokenType, tr.TokenTypeURI, nil
	}
	if t := sp.Passive.Token.TokenType; t != "" {
		uri, err := config.TokenTypeURI(t)
		if err != nil {
			return "", "", &sts.Error{Code: sts.CodeInternal, Msg: "relying party configuration is invalid", Err: err}
		}
		return uri, "", nil
	}
	return sts.TokenSAML11, "", nil
}

// fresh applies wfresh: the session's sign-in must be at most that many
// minutes old; 0 asks for a new sign-in. An unreadable value is ignored.
func fresh(se *authn.Session, wfresh string, now time.Time) bool {
	if wfresh == "" {
		return true
	}
	n, err := strconv.Atoi(wfresh)
	if err != nil || n < 0 {
		return true
	}
	if n == 0 {
		return false
	}
	return now.Sub(se.AuthnInstant) <= time.Duration(n)*time.Minute
}

// returnTo is the local URL the login page continues at: this endpoint with
// the request's parameters (a POSTed request becomes a GET). wfresh is left
// out: the user has just signed in, so the request is fresh, and keeping
// wfresh=0 would ask for a password forever.
func returnTo(path string, p *Params) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("wa", p.Action)
	set("wtrealm", p.Realm)
	set("wreply", p.Reply)
	set("wctx", p.Context)
	set("wct", p.CurrentTime)
	set("wreq", p.Req)
	set("whr", p.HomeRealm)
	return path + "?" + v.Encode()
}

// signOut ends the session, calls every relying party of the session
// front-channel, and continues at wreply only when it is a URL this session
// or the registry vouches for.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, p *Params) {
	h.Authn.SignOut(w, r, func(se *authn.Session) string {
		if !p.ReplyGiven {
			return ""
		}
		var allowed []string
		if se != nil {
			for _, q := range se.Participants {
				if q.Protocol != ProtocolName {
					continue
				}
				allowed = append(allowed, q.Reply)
				if sp, err := h.RPs.MatchRealm(q.ID); err == nil {
					allowed = append(allowed, registeredURLs(sp)...)
				}
			}
		}
		if p.Realm != "" {
			if sp, err := h.RPs.MatchRealm(p.Realm); err == nil {
				allowed = append(allowed, registeredURLs(sp)...)
			}
		}
		if oneOf(p.Reply, allowed) {
			return p.Reply
		}
		h.Log.Info("wsfed: sign-out wreply not accepted; staying on the signed-out page", "request_id", h.requestID(r))
		return ""
	})
}

// FrontChannelLogout implements authn.Protocol: the relying party's
// sign-out URL (or, without one, the reply URL its token went to) with
// wa=wsignoutcleanup1.0.
func (h *Handler) FrontChannelLogout(p authn.Participant) (string, string, bool) {
	sp, err := h.RPs.MatchRealm(p.ID)
	if err != nil || sp.Passive == nil || len(sp.Passive.ReplyURLs) == 0 {
		return "", "", false
	}
	base := sp.Passive.SignOutURL
	if !plainURL(base) {
		base = sp.Passive.ReplyURLs[0]
		if oneOf(p.Reply, sp.Passive.ReplyURLs) {
			base = p.Reply
		}
	}
	return sp.Name, addQuery(base, "wa", ActionSignOutCleanup), true
}

// plainURL reports whether u is an absolute http(s) URL without fragment.
func plainURL(u string) bool {
	if u == "" {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != "" && p.Fragment == "" &&
		!strings.ContainsAny(u, " \t\r\n\\")
}
