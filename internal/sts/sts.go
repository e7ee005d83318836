// Package sts is the protocol-free token core: it authorises a principal
// against the STS policy, decides token type, lifetime, audience and claims,
// has a token builder write and sign the token, and records it for
// renew/validate/cancel. It knows no XML namespaces and no HTTP; front-ends
// (wstrust, later wsfed) translate their wire formats to and from it.
package sts

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/storage"
)

// Token type URIs (canonical spelling; front-ends map the profile spellings).
const (
	TokenSAML20 = "urn:oasis:names:tc:SAML:2.0:assertion"
	TokenSAML11 = "urn:oasis:names:tc:SAML:1.0:assertion"
)

// KeyType is the proof-of-possession type requested.
type KeyType int

const (
	KeyBearer KeyType = iota
	KeySymmetric
	KeyPublic
	KeyUnknown
)

func (k KeyType) String() string {
	return [...]string{"Bearer", "SymmetricKey", "PublicKey", "unknown"}[k]
}

// Principal is the authenticated caller the token is about.
type Principal struct {
	Name         string
	Domain       string
	Roles        []string
	Claims       map[string]string
	AuthnInstant time.Time
	// OverTLS: the password travelled over TLS (PasswordProtectedTransport).
	OverTLS bool
}

// ClaimRequest is one requested claim.
type ClaimRequest struct {
	URI      string
	Optional bool
}

// IssueRequest is a protocol-free request for a token.
type IssueRequest struct {
	Principal  Principal
	TokenType  string // canonical URI or "" for the default; anything else is refused
	KeyType    KeyType
	KeyTypeURI string // as sent, for messages when unknown
	AppliesTo  string
	// Requested lifetime; zero values mean "not requested".
	Created, Expires time.Time
	ClaimsDialect    string // "" when no Claims element was sent
	Claims           []ClaimRequest
	// Renewal policy asked for (wst:Renewing): NotRenewable = Allow="false";
	// RenewAfterExpiry = OK="true".
	NotRenewable     bool
	RenewAfterExpiry bool
	// DefaultNS writes the assertion ADFS-style in the default namespace.
	DefaultNS bool
}

// Token is an issued token.
type Token struct {
	ID        string
	Type      string // canonical token type URI
	XML       []byte // the signed assertion, exactly as signed
	Created   time.Time
	Expires   time.Time
	AppliesTo string
	KeyType   KeyType
}

// Config is the STS policy and token settings. It is swapped atomically when
// configuration changes.
type Config struct {
	Issuer             string
	DefaultLifetime    time.Duration
	MaxLifetime        time.Duration
	ClockSkew          time.Duration
	DefaultTokenType   string
	SignatureAlgorithm string
	DigestAlgorithm    string
	AllowedRoles       []string // "*" = any authenticated user
	// AllowedDomains are the user-store domains whose users may request
	// tokens; empty or containing AllDomains means all.
	AllowedDomains []string
	// RenewWindow is how long after expiry a token issued with OK="true" may
	// still be renewed.
	RenewWindow time.Duration
}

// Service is the token core.
type Service struct {
	cfg    atomic.Pointer[Config]
	signer atomic.Pointer[saml.Signer]
	certs  atomic.Pointer[[]*x509.Certificate]
	tokens storage.Tokens
	now    func() time.Time
}

// New returns a core with its configuration, signer and token store.
func New(cfg Config, signer *saml.Signer, tokens storage.Tokens, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{tokens: tokens, now: now}
	s.SetConfig(cfg)
	s.SetSigner(signer)
	if signer != nil && signer.Cert != nil {
		s.SetVerificationCerts([]*x509.Certificate{signer.Cert})
	}
	return s
}

// SetConfig replaces the configuration.
func (s *Service) SetConfig(c Config) { s.cfg.Store(&c) }

// Config returns the configuration in force.
func (s *Service) Config() Config { return *s.cfg.Load() }

// SetSigner replaces the signing key (rotation).
func (s *Service) SetSigner(sg *saml.Signer) { s.signer.Store(sg) }

// Now is the core's clock.
func (s *Service) Now() time.Time { return s.now() }

// Authorize checks the principal against the STS policy's allowed roles.
func (s *Service) Authorize(p *Principal) error {
	cfg := s.cfg.Load()
	if !domainAllowed(cfg.AllowedDomains, p.Domain) {
		return errorf(CodeRequestFailed, "users of this user store domain are not authorized to request security tokens")
	}
	for _, r := range cfg.AllowedRoles {
		if r == "*" {
			return nil
		}
		for _, have := range p.Roles {
			if have == r {
				return nil
			}
		}
	}
	return errorf(CodeRequestFailed, "the caller is not authorized to request security tokens from this STS")
}

// tokenRecord is what we keep to re-issue a token on renew or transform it on
// validate (storage treats it as opaque).
type tokenRecord struct {
	Subject    string           `json:"sub"`
	Domain     string           `json:"dom,omitempty"`
	Audiences  []string         `json:"aud,omitempty"`
	AuthnAt    time.Time        `json:"authn"`
	AuthnCtx   string           `json:"ac,omitempty"`
	Attributes []saml.Attribute `json:"attrs,omitempty"`
	DefaultNS  bool             `json:"dns,omitempty"`
}

// Issue authorises the principal and issues a token.
func (s *Service) Issue(ctx context.Context, req *IssueRequest) (*Token, error) {
	cfg := s.cfg.Load()
	if err := s.Authorize(&req.Principal); err != nil {
		return nil, err
	}
	tokenType := req.TokenType
	if tokenType == "" {
		tokenType = cfg.DefaultTokenType
	}
	if tokenType != TokenSAML20 && tokenType != TokenSAML11 {
		return nil, errorf(CodeInvalidRequest, "unsupported TokenType %q", tokenType)
	}
	switch req.KeyType {
	case KeyBearer:
	case KeySymmetric, KeyPublic:
		return nil, errorf(CodeInvalidRequest, "KeyType %s is not supported; use Bearer", req.KeyType)
	default:
		return nil, errorf(CodeInvalidRequest, "unknown KeyType %q", req.KeyTypeURI)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	notBefore, notOnOrAfter, err := s.lifetime(cfg, now, req.Created, req.Expires)
	if err != nil {
		return nil, err
	}
	attrs, err := resolveClaims(&req.Principal, req.ClaimsDialect, req.Claims)
	if err != nil {
		return nil, err
	}
	a := &saml.Assertion{
		ID:           saml.NewID(),
		Issuer:       cfg.Issuer,
		IssueInstant: now,
		NotBefore:    notBefore,
		NotOnOrAfter: notOnOrAfter,
		Subject:      req.Principal.Name,
		AuthnInstant: req.Principal.AuthnInstant,
		AuthnContext: saml.ACPassword,
		Attributes:   attrs,
		DefaultNS:    req.DefaultNS,
	}
	if req.Principal.OverTLS {
		a.AuthnContext = saml.ACPasswordProtectedTransport
	}
	if a.AuthnInstant.IsZero() {
		a.AuthnInstant = now
	}
	if req.AppliesTo != "" {
		a.Audiences = []string{req.AppliesTo}
	}
	signer := s.signer.Load()
	var xml []byte
	if tokenType == TokenSAML20 {
		xml, err = signer.Build20(a)
	} else {
		xml, err = signer.Build11(a)
	}
	if err != nil {
		return nil, &Error{Code: CodeInternal, Msg: "token signing failed", Err: err}
	}
	tok := &Token{ID: a.ID, Type: tokenType, XML: xml, Created: notBefore, Expires: notOnOrAfter,
		AppliesTo: req.AppliesTo, KeyType: req.KeyType}
	// The record is written before the token is returned: a token a client has
	// seen is always known to renew, validate and cancel, even after a crash.
	rec := &tokenRecord{Subject: a.Subject, Domain: req.Principal.Domain, Audiences: a.Audiences,
		AuthnAt: a.AuthnInstant, AuthnCtx: a.AuthnContext, Attributes: attrs, DefaultNS: req.DefaultNS}
	if err := s.record(ctx, tok, now, rec, !req.NotRenewable, req.RenewAfterExpiry); err != nil {
		return nil, err
	}
	return tok, nil
}

// lifetime decides NotBefore/NotOnOrAfter from the requested lifetime.
func (s *Service) lifetime(cfg *Config, now, created, expires time.Time) (time.Time, time.Time, error) {
	notBefore := now
	if !created.IsZero() && created.After(now.Add(cfg.ClockSkew)) {
		return time.Time{}, time.Time{}, errorf(CodeInvalidTimeRange, "requested Lifetime Created %s is in the future", created.UTC().Format(saml.TimeFormat))
	}
	if expires.IsZero() {
		return notBefore, now.Add(cfg.DefaultLifetime), nil
	}
	expires = expires.UTC().Truncate(time.Millisecond)
	if !expires.After(now) {
		return time.Time{}, time.Time{}, errorf(CodeInvalidTimeRange, "requested Lifetime Expires %s is not in the future", expires.Format(saml.TimeFormat))
	}
	if expires.Sub(now) > cfg.MaxLifetime {
		return time.Time{}, time.Time{}, errorf(CodeInvalidTimeRange, "requested lifetime exceeds the maximum of %s", cfg.MaxLifetime)
	}
	return notBefore, expires, nil
}

func resolveClaims(p *Principal, dialect string, reqs []ClaimRequest) ([]saml.Attribute, error) {
	if dialect == "" && len(reqs) == 0 {
		return nil, nil
	}
	if dialect != DialectIdentity && dialect != DialectWSO2 {
		return nil, errorf(CodeInvalidRequest, "unsupported claims dialect %q", dialect)
	}
	var out []saml.Attribute
	seen := make(map[string]bool, len(reqs))
	for _, c := range reqs {
		if c.URI == "" {
			return nil, errorf(CodeInvalidRequest, "ClaimType without Uri")
		}
		if seen[c.URI] {
			continue
		}
		seen[c.URI] = true
		vals := claimValues(p, c.URI)
		if len(vals) == 0 {
			if c.Optional {
				continue
			}
			return nil, errorf(CodeRequestFailed, "required claim %s is not available for this user", c.URI)
		}
		out = append(out, saml.Attribute{Name: c.URI, Values: vals})
	}
	return out, nil
}

// IsCode reports whether err is a core error of code c.
func IsCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}

// AllDomains is WSO2's spelling for "every user store domain".
const AllDomains = "ALL-USER-STORE-DOMAINS"

func domainAllowed(allowed []string, domain string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, d := range allowed {
		if d == AllDomains || strings.EqualFold(d, domain) || (domain == "" && strings.EqualFold(d, "PRIMARY")) {
			return true
		}
	}
	return false
}
