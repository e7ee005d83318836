package wssec

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
)

// Client certificates live in the trust store (storage.Certificates, shared
// by every node) under aliases that say what they are:
//
//	user:LOGIN#FP      a user's registered certificate (exact match). LOGIN is
//	                   "name" (PRIMARY, then the secondary stores in order) or
//	                   "DOMAIN/name"; FP is the first 16 hex digits of the
//	                   certificate's SHA-256, so one user may have several.
//	ca:RULE:NAME       a CA whose certificates map to users by RULE: "upn"
//	                   (the Microsoft UPN subject alternative name), "email"
//	                   (the first rfc822Name), "cn" (the subject common name),
//	                   or "subject" (the whole subject DN, RFC 2253 form).
//	                   The mapped value is looked up as a login name.
//	client:NAME        a trusted client application (exact match) that maps
//	                   to no user: enough to sign a request whose
//	                   UsernameToken names the user (usernametoken+x509).
//
// Every other trust-store entry (relying parties' certificates, SAML
// issuers "issuer:NAME") authenticates nobody. Certificates are used only
// within their validity period; a CA-issued one must chain to the CA with
// the intermediates the client sent.
const (
	AliasUser   = "user:"
	AliasCA     = "ca:"
	AliasClient = "client:"
)

// CA mapping rules.
var caRules = []string{"upn", "email", "cn", "subject"}

// UserCertAlias is the trust-store alias of cert registered for login.
func UserCertAlias(login string, cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return AliasUser + login + "#" + hex.EncodeToString(sum[:8])
}

// ParseUserCertAlias returns the login of a user:LOGIN#FP alias.
func ParseUserCertAlias(alias string) (login string, ok bool) {
	if !strings.HasPrefix(alias, AliasUser) {
		return "", false
	}
	rest := alias[len(AliasUser):]
	if i := strings.LastIndexByte(rest, '#'); i > 0 {
		return rest[:i], true
	}
	return rest, rest != ""
}

// CAAlias is the trust-store alias of a user-mapping CA.
func CAAlias(rule, name string) (string, error) {
	for _, r := range caRules {
		if r == rule {
			if name == "" || strings.ContainsAny(name, " \t\r\n") {
				return "", errors.New("the CA needs a name without spaces")
			}
			return AliasCA + rule + ":" + name, nil
		}
	}
	return "", fmt.Errorf("unknown mapping rule %q (use %s)", rule, strings.Join(caRules, ", "))
}

// CertIdentity is what the trust store says about a client certificate.
type CertIdentity struct {
	// Entry is the trust-store alias that vouches for it.
	Entry string
	// Login is the user it maps to, "" for a client application.
	Login string
}

func (p *Processor) certStore() storage.Certificates {
	if p.Certs != nil {
		return p.Certs
	}
	c, _ := p.Replay.(storage.Certificates)
	return c
}

func (p *Processor) userStore() storage.Users {
	if p.Users != nil {
		return p.Users
	}
	u, _ := p.Replay.(storage.Users)
	return u
}

// storedCert is a parsed trust-store entry.
type storedCert struct {
	alias string
	cert  *x509.Certificate
}

// clientEntries reads the user:, client: and ca: entries of the trust store.
func (p *Processor) clientEntries(ctx context.Context) ([]storedCert, error) {
	st := p.certStore()
	if st == nil {
		return nil, nil
	}
	list, err := st.ListCertificates(ctx)
	if err != nil {
		return nil, &Error{Code: "RequestFailed", Msg: "the trust store is unavailable", Err: err}
	}
	var out []storedCert
	for _, e := range list {
		if !strings.HasPrefix(e.Alias, AliasUser) && !strings.HasPrefix(e.Alias, AliasClient) && !strings.HasPrefix(e.Alias, AliasCA) {
			continue
		}
		b, _ := pem.Decode(e.PEM)
		if b == nil {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		out = append(out, storedCert{e.Alias, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].alias < out[j].alias })
	return out, nil
}

// IdentifyCertificate decides whether the trust store vouches for leaf (a
// TLS client certificate with the intermediates the client sent, or the
// certificate of a request signature) and which user it maps to. Errors are
// *Error: FailedAuthentication with CertificateFailure when nothing vouches
// for it.
func (p *Processor) IdentifyCertificate(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate) (*CertIdentity, error) {
	now := p.Now().UTC()
	refuse := func(why string) error {
		return &Error{Code: FaultFailedAuthentication, Msg: CertificateFailure,
			Err: fmt.Errorf("certificate %q: %s", leaf.Subject, why)}
	}
	if now.Before(leaf.NotBefore.Add(-p.Skew)) || now.After(leaf.NotAfter.Add(p.Skew)) {
		return nil, refuse("outside its validity period")
	}
	entries, err := p.clientEntries(ctx)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	var cas []storedCert
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.alias, AliasUser) && bytes.Equal(e.cert.Raw, leaf.Raw):
			login, _ := ParseUserCertAlias(e.alias)
			return &CertIdentity{Entry: e.alias, Login: login}, nil
		case strings.HasPrefix(e.alias, AliasClient) && bytes.Equal(e.cert.Raw, leaf.Raw):
			return &CertIdentity{Entry: e.alias}, nil
		case strings.HasPrefix(e.alias, AliasCA):
			roots.AddCert(e.cert)
			cas = append(cas, e)
		}
	}
	if len(cas) == 0 {
		return nil, refuse("not registered and no user-mapping CA is trusted")
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, refuse("does not chain to a trusted CA: " + err.Error())
	}
	for _, e := range cas {
		for _, ch := range chains {
			if !ch[len(ch)-1].Equal(e.cert) {
				continue
			}
			rule := strings.SplitN(strings.TrimPrefix(e.alias, AliasCA), ":", 2)[0]
			return &CertIdentity{Entry: e.alias, Login: mapCertificate(leaf, rule)}, nil
		}
	}
	return nil, refuse("chains to no user-mapping CA")
}

// oidUPN is Microsoft's User Principal Name otherName (szOID_NT_PRINCIPAL_NAME).
var (
	oidUPN            = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// mapCertificate applies a CA's mapping rule; "" when the certificate does
// not carry the attribute.
func mapCertificate(c *x509.Certificate, rule string) string {
	switch rule {
	case "cn":
		return c.Subject.CommonName
	case "email":
		if len(c.EmailAddresses) > 0 {
			return c.EmailAddresses[0]
		}
	case "subject":
		return c.Subject.String()
	case "upn":
		return UPN(c)
	}
	return ""
}

// UPN returns the certificate's Microsoft UPN (otherName
// 1.3.6.1.4.1.311.20.2.3 in subjectAltName), or "".
func UPN(c *x509.Certificate) string {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &names); err != nil || len(rest) > 0 {
			return ""
		}
		for _, n := range names {
			// otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
			if n.Class != asn1.ClassContextSpecific || n.Tag != 0 || !n.IsCompound {
				continue
			}
			var on struct {
				ID    asn1.ObjectIdentifier
				Value asn1.RawValue `asn1:"explicit,tag:0"`
			}
			if _, err := asn1.UnmarshalWithParams(n.FullBytes, &on, "tag:0"); err != nil || !on.ID.Equal(oidUPN) {
				continue
			}
			// encoding/asn1 leaves an explicitly tagged RawValue wrapped:
			// Value is the [0] and its content the UTF8String.
			var s string
			if _, err := asn1.UnmarshalWithParams(on.Value.Bytes, &s, "utf8"); err == nil {
				return s
			}
		}
	}
	return ""
}

// LookupUser returns the user named login without a password: "name"
// (PRIMARY first, then each secondary store in order) or "DOMAIN/name".
// Unknown and disabled users give identity.ErrInvalidCredentials; an
// unreachable store identity.ErrStoreUnavailable.
func (p *Processor) LookupUser(ctx context.Context, login string) (*identity.Principal, error) {
	domain, name := identity.SplitDomain(login)
	explicit := strings.Contains(login, "/")
	var stores []identity.UserStore
	if p.Auth != nil {
		stores = p.Auth.Stores()
	}
	if domain == identity.PrimaryDomain {
		if us := p.userStore(); us != nil {
			u, err := us.GetUser(ctx, name)
			switch {
			case err == nil && u.Disabled:
				return nil, identity.ErrInvalidCredentials
			case err == nil:
				claims := make(map[string]string, len(u.Claims))
				for k, v := range u.Claims {
					claims[k] = v
				}
				return &identity.Principal{Name: u.Name, Domain: identity.PrimaryDomain,
					Roles: append([]string(nil), u.Roles...), Claims: claims}, nil
			case !errors.Is(err, storage.ErrNotFound):
				return nil, fmt.Errorf("%w: %w", identity.ErrStoreUnavailable, err)
			}
		}
		if explicit {
			return nil, identity.ErrInvalidCredentials
		}
		for _, st := range stores {
			pr, err := st.Lookup(ctx, name)
			if err == nil || errors.Is(err, identity.ErrStoreUnavailable) {
				return pr, err
			}
		}
		return nil, identity.ErrInvalidCredentials
	}
	for _, st := range stores {
		if strings.EqualFold(st.Domain(), domain) {
			return st.Lookup(ctx, name)
		}
	}
	return nil, identity.ErrUnknownDomain
}

// certByHint finds a registered certificate (user: or client:) by a
// KeyInfo hint: SHA-1 thumbprint, subject key identifier, or issuer and
// serial. Certificates issued by a CA entry are not stored and so cannot be
// found by hint: their clients must send them (BinarySecurityToken).
func (p *Processor) certByHint(ctx context.Context, match func(*x509.Certificate) bool) (*x509.Certificate, error) {
	entries, err := p.clientEntries(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.alias, AliasCA) {
			continue
		}
		if match(e.cert) {
			return e.cert, nil
		}
	}
	return nil, &Error{Code: FaultFailedAuthentication, Msg: CertificateFailure, Err: errors.New("KeyInfo names no registered certificate")}
}

func thumbprintSHA1(c *x509.Certificate) []byte {
	s := sha1.Sum(c.Raw)
	return s[:]
}
