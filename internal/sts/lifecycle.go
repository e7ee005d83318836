package sts

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/storage"
)

// Target is a token presented to Renew, Validate or Cancel: the token itself
// (Element, verified before use) or only a reference to its ID.
type Target struct {
	Element *etree.Element
	ID      string
}

// RenewRequest asks for a fresh lifetime on an issued token.
type RenewRequest struct {
	Principal        Principal
	Target           Target
	AppliesTo        string
	Created, Expires time.Time
}

// ValidateRequest asks whether a token is valid (Status) or for a token of
// another type about the same subject (TokenType SAML 1.1/2.0).
type ValidateRequest struct {
	Principal Principal
	Target    Target
	// TokenType is "" for a status answer, or a SAML token type to transform to.
	TokenType string
}

// Validation is the answer to a validate request.
type Validation struct {
	Valid  bool
	Reason string // why not valid: bad signature, unknown issuer, expired, …
	Token  *Token // the new token when a transformation was asked for
}

// Reasons a token is invalid (stable strings; documented in docs/INTEROP.md).
const (
	ReasonBadSignature  = "bad signature"
	ReasonUnknownIssuer = "unknown issuer"
	ReasonExpired       = "expired"
	ReasonNotYetValid   = "not yet valid"
	ReasonCancelled     = "cancelled"
	ReasonUnknown       = "unknown token"
)

// SetVerificationCerts sets the certificates whose signatures on presented
// tokens are ours: the active signing key and, during a rotation overlap, the
// previous ones.
func (s *Service) SetVerificationCerts(certs []*x509.Certificate) {
	c := append([]*x509.Certificate(nil), certs...)
	s.certs.Store(&c)
}

// resolved is a presented token after checks.
type resolved struct {
	parsed *saml.Parsed // nil when presented by reference
	record storage.Token
	data   tokenRecord
	reason string // non-empty: the token is not valid, and why
}

// resolve verifies the presented token (when included) and loads its record.
// It returns an error only for failures of the request or of a dependency;
// an invalid token yields a reason.
func (s *Service) resolve(ctx context.Context, t Target) (*resolved, error) {
	cfg := s.cfg.Load()
	r := &resolved{}
	id := t.ID
	if t.Element != nil {
		var certs []*x509.Certificate
		if p := s.certs.Load(); p != nil {
			certs = *p
		}
		opts := saml.VerifyOptions{Certs: certs}
		if cfg.SignatureAlgorithm == saml.AlgRSASHA1 || cfg.DigestAlgorithm == saml.AlgSHA1 {
			// Tokens we signed with SHA-1 (by configuration) must still verify.
			opts.SignatureAlgorithms = []string{saml.AlgRSASHA1, saml.AlgRSASHA256, saml.AlgRSASHA512, saml.AlgECDSASHA256}
			opts.DigestAlgorithms = []string{saml.AlgSHA1, saml.AlgSHA256, saml.AlgSHA512}
		}
		p, err := saml.Verify(t.Element, opts)
		switch {
		case errors.Is(err, saml.ErrNotAssertion):
			return nil, errorf(CodeInvalidRequest, "the target is not a SAML 1.1 or 2.0 assertion")
		case err != nil:
			r.reason = ReasonBadSignature
			return r, nil
		}
		if p.Issuer != cfg.Issuer {
			r.reason = ReasonUnknownIssuer
			return r, nil
		}
		r.parsed = p
		id = p.ID
	}
	if id == "" {
		return nil, errorf(CodeInvalidRequest, "the target holds neither a token nor a reference to one")
	}
	rec, err := s.tokens.GetToken(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		r.reason = ReasonUnknown
		return r, nil
	}
	if err != nil {
		return nil, &Error{Code: CodeUnavailable, Msg: "the token store is unavailable", Err: err}
	}
	r.record = rec
	if err := json.Unmarshal(rec.Data, &r.data); err != nil {
		return nil, &Error{Code: CodeInternal, Msg: "token record is unreadable", Err: err}
	}
	now := s.now()
	switch {
	case rec.State == storage.TokenCancelled:
		r.reason = ReasonCancelled
	case r.parsed != nil && !r.parsed.NotBefore.IsZero() && now.Add(cfg.ClockSkew).Before(r.parsed.NotBefore):
		r.reason = ReasonNotYetValid
	case !now.Before(rec.ExpiresAt):
		r.reason = ReasonExpired
	case r.parsed != nil && !r.parsed.NotOnOrAfter.Equal(rec.ExpiresAt):
		// A signature-valid copy from before a renewal: only the latest
		// lifetime counts, and an older copy is past its own NotOnOrAfter or
		// superseded.
		if !now.Before(r.parsed.NotOnOrAfter) {
			r.reason = ReasonExpired
		}
	}
	return r, nil
}

func isAdmin(p *Principal) bool {
	for _, r := range p.Roles {
		if r == "admin" {
			return true
		}
	}
	return false
}

// owns reports whether p may renew or cancel the token: its subject, or an admin.
func owns(p *Principal, d *tokenRecord) bool {
	return isAdmin(p) || (p.Name == d.Subject && (d.Domain == "" || p.Domain == d.Domain))
}

// Renew re-issues a token with its ID, a new lifetime and a fresh signature.
func (s *Service) Renew(ctx context.Context, req *RenewRequest) (*Token, error) {
	cfg := s.cfg.Load()
	if err := s.Authorize(&req.Principal); err != nil {
		return nil, err
	}
	r, err := s.resolve(ctx, req.Target)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	switch r.reason {
	case "":
	case ReasonExpired:
		if !r.record.RenewAfterExpiry {
			return nil, errorf(CodeUnableToRenew, "the token has expired and was not issued renewable after expiry")
		}
		if now.Sub(r.record.ExpiresAt) > cfg.RenewWindow {
			return nil, errorf(CodeUnableToRenew, "the token expired more than %s ago", cfg.RenewWindow)
		}
	case ReasonBadSignature, ReasonUnknownIssuer:
		return nil, errorf(CodeUnableToRenew, "the token cannot be renewed: %s", r.reason)
	default:
		return nil, errorf(CodeUnableToRenew, "the token cannot be renewed: %s", r.reason)
	}
	if !r.record.Renewable {
		return nil, errorf(CodeUnableToRenew, "the token was issued as not renewable")
	}
	if !owns(&req.Principal, &r.data) {
		return nil, errorf(CodeRequestFailed, "only the token's subject or an administrator may renew it")
	}
	if req.AppliesTo != "" && (len(r.data.Audiences) == 0 || r.data.Audiences[0] != req.AppliesTo) {
		return nil, errorf(CodeInvalidRequest, "AppliesTo does not match the token's audience")
	}
	ts, err := s.settingsFor(cfg, &r.data)
	if err != nil {
		return nil, err
	}
	notBefore, notOnOrAfter, err := s.lifetime(cfg, ts.lifetime, now, req.Created, req.Expires)
	if err != nil {
		return nil, err
	}
	tok, err := s.mint(ctx, ts, r.record.Type, r.record.ID, now, notBefore, notOnOrAfter, &r.data)
	if err != nil {
		return nil, err
	}
	err = s.tokens.UpdateToken(ctx, r.record.ID, func(t storage.Token) (storage.Token, error) {
		if t.State == storage.TokenCancelled {
			return t, errorf(CodeUnableToRenew, "the token was cancelled")
		}
		t.ExpiresAt, t.UpdatedAt = notOnOrAfter, now
		return t, nil
	})
	var se *Error
	if errors.As(err, &se) {
		return nil, se
	} else if err != nil {
		return nil, &Error{Code: CodeUnavailable, Msg: "the token store is unavailable", Err: err}
	}
	tok.AppliesTo = firstOr(r.data.Audiences)
	if s.OnIssue != nil {
		s.OnIssue("renew", &req.Principal, tok)
	}
	return tok, nil
}

func firstOr(s []string) string {
	if len(s) > 0 {
		return s[0]
	}
	return ""
}

// settingsFor resolves the relying party of a recorded token: renewals and
// transformations use its current settings (lifetime, algorithms,
// encryption), as a fresh Issue would.
func (s *Service) settingsFor(cfg *Config, d *tokenRecord) (*tokenSettings, error) {
	return s.resolveRP(cfg, firstOr(d.Audiences), d.Passive)
}

// Validate reports whether a token is valid, or transforms a valid token
// into a new token of another type for the same subject and claims.
func (s *Service) Validate(ctx context.Context, req *ValidateRequest) (*Validation, error) {
	if err := s.Authorize(&req.Principal); err != nil {
		return nil, err
	}
	r, err := s.resolve(ctx, req.Target)
	if err != nil {
		return nil, err
	}
	if r.reason != "" {
		if req.TokenType != "" {
			return nil, errorf(CodeInvalidSecurityToken, "the token is not valid: %s", r.reason)
		}
		return &Validation{Reason: r.reason}, nil
	}
	v := &Validation{Valid: true}
	if req.TokenType == "" {
		return v, nil
	}
	if req.TokenType != TokenSAML20 && req.TokenType != TokenSAML11 {
		return nil, errorf(CodeInvalidRequest, "cannot transform to TokenType %q", req.TokenType)
	}
	cfg := s.cfg.Load()
	now := s.now().UTC().Truncate(time.Millisecond)
	ts, err := s.settingsFor(cfg, &r.data)
	if err != nil {
		return nil, err
	}
	// The new token lives no longer than the one it was derived from.
	expires := now.Add(ts.lifetime)
	if r.record.ExpiresAt.Before(expires) {
		expires = r.record.ExpiresAt
	}
	tok, err := s.mint(ctx, ts, req.TokenType, saml.NewID(), now, now, expires, &r.data)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, tok, now, &r.data, true, false); err != nil {
		return nil, err
	}
	v.Token = tok
	return v, nil
}

// Cancel marks a token cancelled: it no longer validates or renews.
func (s *Service) Cancel(ctx context.Context, p Principal, t Target) error {
	if err := s.Authorize(&p); err != nil {
		return err
	}
	r, err := s.resolve(ctx, t)
	if err != nil {
		return err
	}
	switch r.reason {
	case "", ReasonExpired, ReasonNotYetValid:
	case ReasonCancelled:
		return errorf(CodeRequestFailed, "the token is already cancelled")
	default:
		return errorf(CodeInvalidSecurityToken, "the token cannot be cancelled: %s", r.reason)
	}
	if !owns(&p, &r.data) {
		return errorf(CodeRequestFailed, "only the token's subject or an administrator may cancel it")
	}
	now := s.now().UTC()
	err = s.tokens.UpdateToken(ctx, r.record.ID, func(t storage.Token) (storage.Token, error) {
		t.State, t.UpdatedAt = storage.TokenCancelled, now
		return t, nil
	})
	if err != nil {
		return &Error{Code: CodeUnavailable, Msg: "the token store is unavailable", Err: err}
	}
	return nil
}

// record stores a token record (written before the token is returned).
func (s *Service) record(ctx context.Context, tok *Token, now time.Time, d *tokenRecord, renewable, afterExpiry bool) error {
	data, err := d.marshal()
	if err != nil {
		return &Error{Code: CodeInternal, Msg: "token record failed", Err: err}
	}
	if err := s.tokens.CreateToken(ctx, storage.Token{
		ID: tok.ID, Type: tok.Type, Subject: d.Subject, RelyingParty: tok.AppliesTo,
		IssuedAt: now, ExpiresAt: tok.Expires, State: storage.TokenActive, Renewable: renewable,
		RenewAfterExpiry: afterExpiry, Data: data, UpdatedAt: now,
	}); err != nil {
		return &Error{Code: CodeUnavailable, Msg: "the token store is unavailable", Err: err}
	}
	return nil
}
