package sts

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/storage"
)

// DelegationKind is how the caller asks for a token for someone else.
type DelegationKind string

const (
	// ActAs (WS-Trust 1.4): the caller acts as the subject; the token is
	// about the subject and names the caller as its delegate.
	ActAs DelegationKind = "ActAs"
	// OnBehalfOf (WS-Trust 1.3): the caller asks on the subject's behalf.
	OnBehalfOf DelegationKind = "OnBehalfOf"
)

// IssuerAliasPrefix marks the trust-store entries of SAML issuers whose
// assertions are accepted in ActAs/OnBehalfOf: "issuer:" + the assertion's
// Issuer.
const IssuerAliasPrefix = "issuer:"

// Delegation is an ActAs or OnBehalfOf request: the subject's token, as the
// front-end received it. Exactly one of Assertion, TokenID and User is set.
type Delegation struct {
	Kind DelegationKind
	// Assertion is a SAML 1.1 or 2.0 assertion: ours (verified with our
	// signing certificates and checked against the token store: not
	// cancelled, not expired) or from an issuer in the trust store (alias
	// IssuerAliasPrefix+Issuer). Its signature, lifetime and audience (when
	// present: this STS or a registered relying party) are checked here.
	Assertion *etree.Element
	// TokenID references a token this STS issued (SecurityTokenReference).
	TokenID string
	// User is a user the front-end authenticated with its password
	// (UsernameToken).
	User *Principal
	// Lookup finds a user by login ("name" or "DOMAIN/name") without a
	// password, for the roles and claims of a subject a token names. It
	// returns (nil, nil) for an unknown user and an error only when a store
	// is unavailable. Nil: the subject has the claims its token carries.
	Lookup func(ctx context.Context, login string) (*Principal, error)

	// Set by Issue: the authenticated caller, who becomes the delegate.
	caller *Principal
	at     time.Time
}

// delegateName is the caller recorded in the token ("" without delegation).
func (d *Delegation) delegateName() (string, time.Time) {
	if d == nil || d.caller == nil {
		return "", time.Time{}
	}
	return d.caller.Name, d.at
}

// refuse is the one error of every delegation failure the caller can cause.
func refuse(format string, args ...any) *Error {
	return &Error{Code: CodeRequestFailed, Msg: fmt.Sprintf(format, args...)}
}

// delegate validates an ActAs/OnBehalfOf request and, when the relying
// party's delegation rules allow the caller to obtain tokens for the
// subject, makes the subject the request's principal (the token is about
// the subject) and keeps the caller as the delegate (the token's
// DelegationRestriction condition, the token record, the audit log).
func (s *Service) delegate(ctx context.Context, req *IssueRequest) error {
	d := req.Delegation
	if d == nil {
		return nil
	}
	if d.Kind != ActAs && d.Kind != OnBehalfOf {
		return errorf(CodeInvalidRequest, "unknown delegation kind %q", d.Kind)
	}
	caller := req.Principal
	subject, via, err := s.delegatedSubject(ctx, d)
	if err != nil {
		return err
	}
	if subject.Domain != "" && !domainAllowed(s.cfg.Load().AllowedDomains, subject.Domain) {
		// allowed_domains binds tokens about users, whoever asks for them.
		return refuse("users of this user store domain are not authorized to receive security tokens")
	}
	rules, rp, err := s.delegationRules(req.AppliesTo, req.Passive)
	if err != nil {
		return err
	}
	allowed := false
	for _, r := range rules {
		if r.Allows(string(d.Kind), caller.Domain, caller.Name, subject.Domain, subject.Name) {
			allowed = true
			break
		}
	}
	if !allowed {
		return refuse("the relying party does not allow this caller to obtain tokens %s this subject", map[DelegationKind]string{ActAs: "acting as", OnBehalfOf: "on behalf of"}[d.Kind])
	}
	now := s.now().UTC()
	if a, ok := s.tokens.(storage.Audit); ok {
		// Written before the token exists: a delegated token is never
		// issued without a record of who asked for it.
		err := a.AppendAudit(ctx, storage.AuditEvent{Time: now, Actor: caller.Domain + "/" + caller.Name,
			Action: "token.delegate", Target: qualified(subject),
			Detail: fmt.Sprintf("%s subject token=%s rp=%s applies_to=%s", d.Kind, via, rp, req.AppliesTo)})
		if err != nil {
			return &Error{Code: CodeUnavailable, Msg: "the audit log is unavailable", Err: err}
		}
	}
	c := caller
	d.caller, d.at = &c, now
	subject.AuthnInstant = now
	subject.OverTLS = false
	req.Principal = *subject
	return nil
}

func qualified(p *Principal) string {
	if p.Domain == "" {
		return p.Name
	}
	return p.Domain + "/" + p.Name
}

// delegationRules returns the rules of the relying party AppliesTo names;
// none when it names no registered one.
func (s *Service) delegationRules(appliesTo string, passive bool) ([]registry.DelegationRule, string, error) {
	if appliesTo == "" || s.rps == nil {
		return nil, "", refuse("delegation needs an AppliesTo naming a registered relying party that allows it")
	}
	var sp *registry.ServiceProvider
	var err error
	if passive {
		sp, err = s.rps.MatchRealm(appliesTo)
	} else {
		sp, err = s.rps.MatchAppliesTo(appliesTo)
	}
	if err != nil {
		return nil, "", refuse("delegation needs an AppliesTo naming a registered relying party that allows it")
	}
	switch {
	case passive && sp.Passive != nil:
		return sp.Passive.Token.Delegation, sp.Name, nil
	case !passive && sp.WSTrust != nil:
		return sp.WSTrust.Token.Delegation, sp.Name, nil
	}
	return nil, sp.Name, nil
}

// delegatedSubject validates the subject's token and returns the subject,
// and a word for the kind of token (for the audit log).
func (s *Service) delegatedSubject(ctx context.Context, d *Delegation) (*Principal, string, error) {
	switch {
	case d.User != nil:
		u := *d.User
		return &u, "usernametoken", nil
	case d.TokenID != "":
		rec, err := s.tokens.GetToken(ctx, d.TokenID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, "", refuse("the referenced token is unknown")
		} else if err != nil {
			return nil, "", &Error{Code: CodeUnavailable, Msg: "the token store is unavailable", Err: err}
		}
		switch {
		case rec.State == storage.TokenCancelled:
			return nil, "", refuse("the referenced token was cancelled")
		case !s.now().Before(rec.ExpiresAt):
			return nil, "", refuse("the referenced token has expired")
		}
		var data tokenRecord
		if err := json.Unmarshal(rec.Data, &data); err != nil {
			return nil, "", &Error{Code: CodeInternal, Msg: "token record is unreadable", Err: err}
		}
		p, err := s.subjectOf(ctx, d, data.Subject, data.Domain, data.Attributes, true)
		return p, "reference", err
	case d.Assertion != nil:
		return s.assertionSubject(ctx, d)
	}
	return nil, "", errorf(CodeInvalidRequest, "%s holds no token", d.Kind)
}

// assertionSubject verifies a SAML assertion presented for delegation.
func (s *Service) assertionSubject(ctx context.Context, d *Delegation) (*Principal, string, error) {
	cfg := s.cfg.Load()
	el := d.Assertion
	via := "saml2.0"
	if el.NamespaceURI() == saml.NS11 {
		via = "saml1.1"
	}
	// The claimed issuer only selects the key; what counts is the issuer of
	// the verified assertion.
	claimed := el.SelectAttrValue("Issuer", "")
	if el.NamespaceURI() == saml.NS20 {
		claimed = ""
		for c := range el.ChildElementsSeq() {
			if c.Tag == "Issuer" && c.NamespaceURI() == saml.NS20 {
				claimed = strings.TrimSpace(c.Text())
			}
		}
	}
	if claimed == cfg.Issuer {
		r, err := s.resolve(ctx, Target{Element: el})
		if err != nil {
			return nil, "", err
		}
		if r.reason != "" {
			return nil, "", refuse("the %s token is not valid: %s", d.Kind, r.reason)
		}
		if err := s.checkAudience(cfg, r.parsed.Audiences); err != nil {
			return nil, "", err
		}
		if r.data.KeyInfo != nil {
			return nil, "", refuse(holderOfKeyRefused, d.Kind)
		}
		p, err := s.subjectOf(ctx, d, r.data.Subject, r.data.Domain, r.data.Attributes, true)
		return p, via, err
	}
	trust := s.issuerTrust
	if trust == nil {
		trust = s.trust
	}
	if trust == nil || claimed == "" {
		return nil, "", refuse("the %s token's issuer is not trusted", d.Kind)
	}
	cert, err := trust.Certificate(ctx, IssuerAliasPrefix+claimed)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", refuse("the %s token's issuer is not trusted", d.Kind)
	} else if err != nil {
		return nil, "", &Error{Code: CodeUnavailable, Msg: "the trust store is unavailable", Err: err}
	}
	p, err := saml.Verify(el, saml.VerifyOptions{Certs: []*x509.Certificate{cert},
		SignatureAlgorithms: []string{saml.AlgRSASHA1, saml.AlgRSASHA256, saml.AlgRSASHA512, saml.AlgECDSASHA256},
		DigestAlgorithms:    []string{saml.AlgSHA1, saml.AlgSHA256, saml.AlgSHA512}})
	switch {
	case errors.Is(err, saml.ErrNotAssertion):
		return nil, "", errorf(CodeInvalidRequest, "the %s token is not a SAML 1.1 or 2.0 assertion", d.Kind)
	case err != nil:
		return nil, "", &Error{Code: CodeRequestFailed, Msg: fmt.Sprintf("the %s token's signature does not verify", d.Kind), Err: err}
	case p.Issuer != claimed:
		return nil, "", refuse("the %s token's issuer is not trusted", d.Kind)
	}
	now := s.now()
	switch {
	case p.NotOnOrAfter.IsZero():
		return nil, "", refuse("the %s token has no expiry (Conditions NotOnOrAfter)", d.Kind)
	case !now.Add(-cfg.ClockSkew).Before(p.NotOnOrAfter):
		return nil, "", refuse("the %s token has expired", d.Kind)
	case !p.NotBefore.IsZero() && now.Add(cfg.ClockSkew).Before(p.NotBefore):
		return nil, "", refuse("the %s token is not yet valid", d.Kind)
	}
	if err := s.checkAudience(cfg, p.Audiences); err != nil {
		return nil, "", err
	}
	if holderOfKey(el) {
		return nil, "", refuse(holderOfKeyRefused, d.Kind)
	}
	pr, err := s.subjectOf(ctx, d, p.Subject, "", p.Attributes, false)
	return pr, via, err
}

// checkAudience accepts a token without audience restriction, or one
// restricted to this STS (its issuer name) or to a registered relying party
// (the service that received the user's token and now presents it).
func (s *Service) checkAudience(cfg *Config, audiences []string) error {
	if len(audiences) == 0 {
		return nil
	}
	for _, a := range audiences {
		if a == cfg.Issuer {
			return nil
		}
		if s.rps != nil {
			if _, err := s.rps.MatchAppliesTo(a); err == nil {
				return nil
			}
		}
	}
	return refuse("the delegated token's audience is neither this STS nor a registered relying party")
}

// subjectOf returns the subject a validated token names: the user from the
// user stores (current roles and claims), or, for a user of a foreign
// issuer unknown here, a principal with the token's attributes as claims.
// A subject of one of our own tokens must still exist.
func (s *Service) subjectOf(ctx context.Context, d *Delegation, name, domain string, attrs []saml.Attribute, ours bool) (*Principal, error) {
	if d.Lookup != nil {
		login := name
		if domain != "" {
			login = domain + "/" + name
		}
		p, err := d.Lookup(ctx, login)
		if err != nil {
			return nil, &Error{Code: CodeUnavailable, Msg: "user store unavailable", Err: err}
		}
		if p != nil {
			return p, nil
		}
		if ours {
			return nil, refuse("the delegated user no longer exists or is disabled")
		}
	}
	claims := make(map[string]string, len(attrs))
	for _, a := range attrs {
		if len(a.Values) > 0 && a.Name != "" {
			claims[a.Name] = a.Values[0]
		}
	}
	if !ours {
		domain = ""
	}
	return &Principal{Name: name, Domain: domain, Claims: claims}, nil
}

// holderOfKeyRefused: the caller cannot prove possession of the subject's
// proof key, so a holder-of-key token is not usable by it (as CXF's default
// SAMLDelegationHandler decides).
const holderOfKeyRefused = "the %s token is a holder-of-key token, which only its holder may use"

// holderOfKey reports whether a (verified) assertion confirms its subject
// by holder-of-key.
func holderOfKey(a *etree.Element) bool {
	for _, sc := range a.FindElements(".//SubjectConfirmation") {
		if strings.Contains(sc.SelectAttrValue("Method", ""), "holder-of-key") {
			return true
		}
		for _, m := range sc.SelectElements("ConfirmationMethod") {
			if strings.Contains(m.Text(), "holder-of-key") {
				return true
			}
		}
	}
	return false
}
