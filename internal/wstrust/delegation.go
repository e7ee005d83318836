package wstrust

import (
	"context"
	"errors"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wssec"
)

// DelegationToken is the content of wst14:ActAs or wst:OnBehalfOf: a SAML
// assertion, a reference to a token this STS issued, or a UsernameToken.
type DelegationToken struct {
	Kind          sts.DelegationKind
	Assertion     *etree.Element
	TokenID       string
	UsernameToken *wssec.UsernameToken
}

// parseDelegation reads an ActAs or OnBehalfOf element.
func parseDelegation(el *etree.Element) (*DelegationToken, error) {
	d := &DelegationToken{Kind: sts.OnBehalfOf}
	if el.Tag == "ActAs" {
		d.Kind = sts.ActAs
	}
	kids := el.ChildElements()
	if len(kids) == 1 && kids[0].Tag == "UsernameToken" && kids[0].NamespaceURI() == wssec.NSWSSE {
		ut, err := wssec.ParseUsernameToken(kids[0])
		if err != nil {
			var we *wssec.Error
			msg := "unusable UsernameToken"
			if errors.As(err, &we) {
				msg = we.Msg
			}
			// A UsernameToken that cannot be authenticated (no password)
			// names a subject nobody vouched for.
			return nil, &sts.Error{Code: sts.CodeRequestFailed, Msg: string(d.Kind) + ": " + msg}
		}
		d.UsernameToken = ut
		return d, nil
	}
	t, err := parseTarget(el)
	if err != nil {
		return nil, err
	}
	d.Assertion, d.TokenID = t.Element, t.ID
	return d, nil
}

// delegation turns the parsed token into the core's request. A
// UsernameToken's password is checked here (the front-end owns
// authentication); everything else the core validates.
func (h *Handler) delegation(ctx context.Context, d *DelegationToken) (*sts.Delegation, error) {
	if d == nil {
		return nil, nil
	}
	out := &sts.Delegation{Kind: d.Kind, Assertion: d.Assertion, TokenID: d.TokenID, Lookup: h.lookupUser}
	if d.UsernameToken != nil {
		pr, err := h.Security.VerifyUsernameToken(ctx, d.UsernameToken)
		if err != nil {
			// The cause is kept as text only: the fault table must see the
			// delegation failure (wst:RequestFailed), not the caller's
			// authentication failing (wsse:FailedAuthentication).
			cause := errors.New(err.Error())
			var we *wssec.Error
			if errors.As(err, &we) && we.Code == "RequestFailed" {
				return nil, &sts.Error{Code: sts.CodeUnavailable, Msg: we.Msg, Err: cause}
			}
			return nil, &sts.Error{Code: sts.CodeRequestFailed, Msg: "the " + string(d.Kind) + " UsernameToken could not be authenticated", Err: cause}
		}
		out.User = corePrincipal(pr)
	}
	return out, nil
}

// lookupUser finds a delegated subject in the user stores: (nil, nil) when
// unknown or disabled.
func (h *Handler) lookupUser(ctx context.Context, login string) (*sts.Principal, error) {
	pr, err := h.Security.LookupUser(ctx, login)
	switch {
	case err == nil:
		return corePrincipal(pr), nil
	case errors.Is(err, identity.ErrStoreUnavailable):
		return nil, err
	}
	return nil, nil
}

func corePrincipal(pr *identity.Principal) *sts.Principal {
	return &sts.Principal{Name: pr.Name, Domain: pr.Domain, Roles: pr.Roles, Claims: pr.Claims}
}

// authnContext is the SAML authentication context class of how the caller
// authenticated; "" for a password (the core picks Password or
// PasswordProtectedTransport).
func authnContext(res *wssec.Result) string {
	switch {
	case res.Has(wssec.MethodUsernameToken):
		return ""
	case res.Has(wssec.MethodX509):
		return saml.ACX509
	case res.Has(wssec.MethodMutualTLS):
		return saml.ACTLSClient
	}
	return ""
}
