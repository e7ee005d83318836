package sts

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/xmlenc"
)

// RelyingParties resolves AppliesTo addresses and passive realms.
type RelyingParties interface {
	MatchAppliesTo(appliesTo string) (*registry.ServiceProvider, error)
	MatchRealm(realm string) (*registry.ServiceProvider, error)
}

// TrustStore returns RP certificates by alias.
type TrustStore interface {
	Certificate(ctx context.Context, alias string) (*x509.Certificate, error)
}

// SetRelyingParties connects the registry and the trust store.
func (s *Service) SetRelyingParties(rps RelyingParties, ts TrustStore) {
	s.rps, s.trust = rps, ts
}

// SetIssuerTrust sets where the certificates of trusted token issuers
// (ActAs/OnBehalfOf assertions) are looked up, when that must differ from
// the relying parties' trust store: the server caches RP certificates for
// up to a second, but an issuer removed from the trust store is distrusted
// at once, on every node.
func (s *Service) SetIssuerTrust(ts TrustStore) { s.issuerTrust = ts }

// tokenSettings are the effective settings for one token: the RP's where it
// has them, else the server's.
type tokenSettings struct {
	rpName       string
	tokenType    string
	lifetime     time.Duration
	sigAlg       string
	digAlg       string
	nameIDFormat string
	encrypt      bool
	certAlias    string
	encryption   xmlenc.Options
	defaultNS    bool
	always       []string
	mapping      map[string]string
	keyTypes     []string
}

// resolveRP finds the relying party of a request and the settings in force.
// passive selects the RP's passive configuration (AppliesTo is a realm).
func (s *Service) resolveRP(cfg *Config, appliesTo string, passive bool) (*tokenSettings, error) {
	ts := &tokenSettings{tokenType: cfg.DefaultTokenType, lifetime: cfg.DefaultLifetime,
		sigAlg: cfg.SignatureAlgorithm, digAlg: cfg.DigestAlgorithm}
	if appliesTo == "" || s.rps == nil {
		if appliesTo == "" && cfg.RefuseUnknownRP {
			return nil, errorf(CodeRequestFailed, "an AppliesTo naming a registered relying party is required")
		}
		return ts, nil
	}
	var sp *registry.ServiceProvider
	var err error
	if passive {
		sp, err = s.rps.MatchRealm(appliesTo)
	} else {
		sp, err = s.rps.MatchAppliesTo(appliesTo)
	}
	switch {
	case errors.Is(err, registry.ErrNoMatch):
		if cfg.RefuseUnknownRP || passive {
			return nil, errorf(CodeRequestFailed, "no relying party is registered for %q", appliesTo)
		}
		return ts, nil
	case err != nil:
		return nil, errorf(CodeRequestFailed, "%s", err.Error())
	}
	var t registry.Token
	if passive && sp.Passive != nil {
		t = sp.Passive.Token
	} else if sp.WSTrust != nil {
		t = sp.WSTrust.Token
	}
	ts.rpName = sp.Name
	if t.TokenType != "" {
		if ts.tokenType, err = config.TokenTypeURI(t.TokenType); err != nil {
			return nil, &Error{Code: CodeInternal, Msg: "relying party configuration is invalid", Err: err}
		}
	}
	if t.Lifetime > 0 {
		ts.lifetime = time.Duration(t.Lifetime)
	}
	if t.SignatureAlgorithm != "" {
		if ts.sigAlg, err = config.SignatureAlgorithmURI(t.SignatureAlgorithm); err != nil {
			return nil, &Error{Code: CodeInternal, Msg: "relying party configuration is invalid", Err: err}
		}
	}
	if t.DigestAlgorithm != "" {
		if ts.digAlg, err = config.DigestAlgorithmURI(t.DigestAlgorithm); err != nil {
			return nil, &Error{Code: CodeInternal, Msg: "relying party configuration is invalid", Err: err}
		}
	}
	ts.nameIDFormat = t.NameIDFormat
	ts.encrypt, ts.certAlias = t.Encrypt, t.CertAlias
	if ts.encryption, err = t.EncryptionOptions(); err != nil {
		return nil, &Error{Code: CodeInternal, Msg: "relying party configuration is invalid", Err: err}
	}
	ts.defaultNS = t.DefaultNamespace
	ts.always, ts.mapping, ts.keyTypes = sp.Claims.Always, sp.Claims.Mapping, t.AllowedKeyTypes
	return ts, nil
}

func (ts *tokenSettings) allows(k KeyType) bool {
	if len(ts.keyTypes) == 0 {
		return true
	}
	for _, x := range ts.keyTypes {
		if x == k.String() {
			return true
		}
	}
	return false
}

// signerFor returns the signer with the token's algorithms.
func (s *Service) signerFor(ts *tokenSettings) (*saml.Signer, error) {
	base := s.signer.Load()
	if base.SignatureAlgorithm == ts.sigAlg && base.DigestAlgorithm == ts.digAlg {
		return base, nil
	}
	sg, err := saml.NewSigner(base.Key, base.Cert, ts.sigAlg, ts.digAlg)
	if err != nil {
		return nil, errorf(CodeRequestFailed, "the relying party's signature algorithm does not fit the signing key: %v", err)
	}
	return sg, nil
}

// encrypt wraps a signed assertion for the RP: SAML 2.0 as
// saml2:EncryptedAssertion, SAML 1.1 as a bare xenc:EncryptedData.
func (s *Service) encrypt(ctx context.Context, ts *tokenSettings, tokenType string, signed []byte) ([]byte, error) {
	if s.trust == nil {
		return nil, errorf(CodeRequestFailed, "no trust store to find the relying party's certificate")
	}
	cert, err := s.trust.Certificate(ctx, ts.certAlias)
	if err != nil {
		return nil, &Error{Code: CodeRequestFailed, Msg: "the relying party's certificate " + ts.certAlias + " is not in the trust store", Err: err}
	}
	enc, err := xmlenc.EncryptElement(signed, cert, ts.encryption)
	if err != nil {
		return nil, &Error{Code: CodeInternal, Msg: "token encryption failed", Err: err}
	}
	if tokenType == TokenSAML11 {
		return enc, nil
	}
	out := make([]byte, 0, len(enc)+128)
	out = append(out, `<saml2:EncryptedAssertion xmlns:saml2="`+saml.NS20+`">`...)
	out = append(out, enc...)
	out = append(out, `</saml2:EncryptedAssertion>`...)
	return out, nil
}

// applyClaimConfig adds the RP's always-included claims and renames claim
// URIs per its mapping.
func applyClaimConfig(p *Principal, ts *tokenSettings, attrs []saml.Attribute) []saml.Attribute {
	have := map[string]bool{}
	for _, a := range attrs {
		have[a.Name] = true
	}
	for _, uri := range ts.always {
		if have[uri] {
			continue
		}
		if vals := claimValues(p, uri); len(vals) > 0 {
			attrs = append(attrs, saml.Attribute{Name: uri, Values: vals})
			have[uri] = true
		}
	}
	if len(ts.mapping) > 0 {
		for i := range attrs {
			if to, ok := ts.mapping[attrs[i].Name]; ok {
				attrs[i].Name = to
			}
		}
	}
	return attrs
}
