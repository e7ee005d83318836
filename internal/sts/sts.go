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
	// AuthnContext, when set, is the SAML 2.0 authentication context class
	// of how the principal authenticated (X509, TLSClient); empty means a
	// password (Password, or PasswordProtectedTransport OverTLS).
	AuthnContext string
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
	// Passive: AppliesTo is a WS-Federation realm (the RP's passive settings).
	Passive bool
	// Holder-of-key: client Entropy, KeySize, and UseKey for PublicKey.
	HoK
	// Delegation, when set, asks for a token about another user (ActAs,
	// OnBehalfOf): Principal is the caller, who becomes the delegate.
	Delegation *Delegation
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
	// RelyingParty is the registered RP's name ("" when none matched).
	RelyingParty string
	// Encrypted: XML is an EncryptedAssertion / EncryptedData for the RP.
	Encrypted bool
	// Holder-of-key (SymmetricKey): the proof key the requestor uses; when
	// ComputedKey, the requestor computes it from its entropy and
	// ServerEntropy (P_SHA1) and ProofKey is not sent.
	ProofKey      []byte
	ServerEntropy []byte
	ComputedKey   bool
	KeySize       int
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
	// RefuseUnknownRP refuses an AppliesTo that matches no registered relying
	// party (else the token is issued with the server's settings, unencrypted).
	RefuseUnknownRP bool
}

// Service is the token core.
type Service struct {
	cfg    atomic.Pointer[Config]
	signer atomic.Pointer[saml.Signer]
	certs  atomic.Pointer[[]*x509.Certificate]
	tokens storage.Tokens
	rps    RelyingParties
	trust  TrustStore
	// issuerTrust, when set, is used for trusted issuers instead of trust.
	issuerTrust TrustStore
	// OnIssue, when set, is told of every token issued, renewed or
	// transformed (metrics, audit). It must not block.
	OnIssue func(op string, p *Principal, t *Token)
	// Limit, when set, is asked before every request of a user; false
	// refuses it (per-user rate limit).
	Limit func(user string) bool
	now   func() time.Time
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
	if s.Limit != nil && !s.Limit(p.Domain+"/"+p.Name) {
		return errorf(CodeRequestFailed, "too many requests for this user; try again shortly")
	}
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
	Passive    bool             `json:"passive,omitempty"`
	// KeyInfo is the holder-of-key confirmation (proof key encrypted for the
	// RP, or the requestor's public key): renewals keep the same proof key.
	KeyInfo []byte `json:"keyinfo,omitempty"`
	// Delegate is the caller that obtained the token ActAs/OnBehalfOf the
	// subject, and when (SAML 2.0 DelegationRestriction condition).
	Delegate    string    `json:"del,omitempty"`
	DelegatedAt time.Time `json:"delat,omitempty"`
}

// Issue authorises the principal and issues a token.
func (s *Service) Issue(ctx context.Context, req *IssueRequest) (*Token, error) {
	cfg := s.cfg.Load()
	if err := s.Authorize(&req.Principal); err != nil {
		return nil, err
	}
	ts, err := s.resolveRP(cfg, req.AppliesTo, req.Passive)
	if err != nil {
		return nil, err
	}
	if err := s.delegate(ctx, req); err != nil {
		return nil, err
	}
	tokenType := req.TokenType
	if tokenType == "" {
		tokenType = ts.tokenType
	}
	if tokenType != TokenSAML20 && tokenType != TokenSAML11 {
		return nil, errorf(CodeInvalidRequest, "unsupported TokenType %q", tokenType)
	}
	if req.KeyType == KeyUnknown {
		return nil, errorf(CodeInvalidRequest, "unknown KeyType %q", req.KeyTypeURI)
	}
	if !ts.allows(req.KeyType) {
		return nil, errorf(CodeInvalidRequest, "KeyType %s is not allowed for this relying party", req.KeyType)
	}
	pf, err := s.holderOfKey(ctx, ts, req)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	notBefore, notOnOrAfter, err := s.lifetime(cfg, ts.lifetime, now, req.Created, req.Expires)
	if err != nil {
		return nil, err
	}
	attrs, err := resolveClaims(&req.Principal, req.ClaimsDialect, req.Claims)
	if err != nil {
		return nil, err
	}
	attrs = applyClaimConfig(&req.Principal, ts, attrs)
	authnAt := req.Principal.AuthnInstant
	if authnAt.IsZero() {
		authnAt = now
	}
	rec := &tokenRecord{Subject: req.Principal.Name, Domain: req.Principal.Domain, AuthnAt: authnAt,
		AuthnCtx: saml.ACPassword, Attributes: attrs, DefaultNS: req.DefaultNS || ts.defaultNS, Passive: req.Passive}
	if req.Principal.OverTLS {
		rec.AuthnCtx = saml.ACPasswordProtectedTransport
	}
	if req.Principal.AuthnContext != "" {
		rec.AuthnCtx = req.Principal.AuthnContext
	}
	rec.Delegate, rec.DelegatedAt = req.Delegation.delegateName()
	if req.AppliesTo != "" {
		rec.Audiences = []string{req.AppliesTo}
	}
	if pf != nil {
		rec.KeyInfo = pf.keyInfo
	}
	tok, err := s.mint(ctx, ts, tokenType, saml.NewID(), now, notBefore, notOnOrAfter, rec)
	if err != nil {
		return nil, err
	}
	tok.KeyType = req.KeyType
	if pf != nil {
		tok.ProofKey, tok.ServerEntropy, tok.ComputedKey, tok.KeySize = pf.key, pf.serverEntropy, pf.computed, pf.keySize
	}
	// The record is written before the token is returned: a token a client has
	// seen is always known to renew, validate and cancel, even after a crash.
	if err := s.record(ctx, tok, now, rec, !req.NotRenewable, req.RenewAfterExpiry); err != nil {
		return nil, err
	}
	if s.OnIssue != nil {
		s.OnIssue("issue", &req.Principal, tok)
	}
	return tok, nil
}

// mint writes, signs and (for RPs that ask) encrypts a token from a record.
func (s *Service) mint(ctx context.Context, ts *tokenSettings, tokenType, id string, now, notBefore, notOnOrAfter time.Time, d *tokenRecord) (*Token, error) {
	a := &saml.Assertion{
		ID: id, Issuer: s.cfg.Load().Issuer, IssueInstant: now, NotBefore: notBefore, NotOnOrAfter: notOnOrAfter,
		Subject: d.Subject, NameIDFormat: ts.nameIDFormat, Audiences: d.Audiences, AuthnInstant: d.AuthnAt,
		AuthnContext: d.AuthnCtx, Attributes: d.Attributes, DefaultNS: d.DefaultNS, KeyInfo: d.KeyInfo,
		Delegate: d.Delegate, DelegationInstant: d.DelegatedAt,
	}
	signer, err := s.signerFor(ts)
	if err != nil {
		return nil, err
	}
	var xml []byte
	if tokenType == TokenSAML11 {
		xml, err = signer.Build11(a)
	} else {
		xml, err = signer.Build20(a)
	}
	if err != nil {
		return nil, &Error{Code: CodeInternal, Msg: "token signing failed", Err: err}
	}
	tok := &Token{ID: id, Type: tokenType, XML: xml, Created: notBefore, Expires: notOnOrAfter,
		AppliesTo: firstOr(d.Audiences), RelyingParty: ts.rpName}
	if ts.encrypt {
		if tok.XML, err = s.encrypt(ctx, ts, tokenType, xml); err != nil {
			return nil, err
		}
		tok.Encrypted = true
	}
	return tok, nil
}

// lifetime decides NotBefore/NotOnOrAfter from the requested lifetime.
func (s *Service) lifetime(cfg *Config, defaultLifetime time.Duration, now, created, expires time.Time) (time.Time, time.Time, error) {
	notBefore := now
	if !created.IsZero() && created.After(now.Add(cfg.ClockSkew)) {
		return time.Time{}, time.Time{}, errorf(CodeInvalidTimeRange, "requested Lifetime Created %s is in the future", created.UTC().Format(saml.TimeFormat))
	}
	if expires.IsZero() {
		return notBefore, now.Add(defaultLifetime), nil
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
