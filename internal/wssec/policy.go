package wssec

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/xmlsec"
)

// Method is one way a caller proves who it is.
type Method string

// The caller authentication methods (WSO2's security scenarios, ADFS's
// usernamemixed / certificatemixed / certificatetransport endpoints).
const (
	// MethodUsernameToken: a wsse:UsernameToken with the caller's password.
	MethodUsernameToken Method = "usernametoken"
	// MethodX509: a ds:Signature in wsse:Security over the Body and the
	// Timestamp (and every WS-Addressing header), by a certificate that the
	// trust store knows (X.509 Token Profile 1.1).
	MethodX509 Method = "x509"
	// MethodMutualTLS: a client certificate presented in the TLS handshake.
	MethodMutualTLS Method = "mutual-tls"
)

// DefaultScenario is the security_scenario when none is configured.
const DefaultScenario = string(MethodUsernameToken)

// Policy is a parsed security_scenario: alternatives, each a set of methods
// that must all be satisfied. "usernametoken+x509|mutual-tls" is two
// alternatives: a signed request carrying a UsernameToken, or a client
// certificate.
type Policy [][]Method

// ParsePolicy reads a security_scenario. Alternatives are separated by '|'
// or ',', methods within one by '+'. The empty string is DefaultScenario.
func ParsePolicy(s string) (Policy, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		s = DefaultScenario
	}
	var pol Policy
	for _, alt := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' }) {
		var ms []Method
		for _, m := range strings.Split(alt, "+") {
			switch mm := Method(strings.TrimSpace(m)); mm {
			case MethodUsernameToken, MethodX509, MethodMutualTLS:
				for _, have := range ms {
					if have == mm {
						return nil, fmt.Errorf("security scenario %q names %s twice in one alternative", s, mm)
					}
				}
				ms = append(ms, mm)
			default:
				return nil, fmt.Errorf("security scenario %q: unknown method %q (use usernametoken, x509, mutual-tls, joined with + and alternatives with |)", s, strings.TrimSpace(m))
			}
		}
		pol = append(pol, ms)
	}
	if len(pol) == 0 {
		return nil, fmt.Errorf("security scenario %q names no method", s)
	}
	return pol, nil
}

func (pol Policy) String() string {
	alts := make([]string, len(pol))
	for i, alt := range pol {
		ms := make([]string, len(alt))
		for j, m := range alt {
			ms[j] = string(m)
		}
		alts[i] = strings.Join(ms, "+")
	}
	return strings.Join(alts, "|")
}

// Uses reports whether any alternative of pol involves m.
func (pol Policy) Uses(m Method) bool {
	for _, alt := range pol {
		if has(alt, m) {
			return true
		}
	}
	return false
}

func has(alt []Method, m Method) bool {
	for _, x := range alt {
		if x == m {
			return true
		}
	}
	return false
}

// Request is what AuthenticateRequest looks at: the parts of a parsed SOAP
// envelope and the TLS client certificates.
type Request struct {
	Envelope *etree.Element // soap:Envelope
	Header   *etree.Element // soap:Header, nil when absent
	Body     *etree.Element // soap:Body (the element itself)
	// Security is the wsse:Security header addressed to this node, nil when
	// there is none.
	Security *etree.Element
	// PeerCerts is the certificate chain the TLS client presented (leaf
	// first), unverified; nil without TLS or without a client certificate.
	PeerCerts []*x509.Certificate
}

// Result is an authenticated request.
type Result struct {
	Principal *identity.Principal
	// Methods are the methods of the satisfied policy alternative.
	Methods []Method
	// Cert is the client certificate that authenticated the caller (x509
	// signer, else TLS client), nil for a UsernameToken alone.
	Cert   *x509.Certificate
	Header *Header
	// Signature is the verified request signature (x509), nil otherwise.
	Signature *xmlsec.DetachedSignature
}

// Has reports whether the satisfied alternative included m.
func (r *Result) Has(m Method) bool { return has(r.Methods, m) }

// Caller is "DOMAIN/name" of the authenticated caller.
func (r *Result) Caller() string { return r.Principal.Domain + "/" + r.Principal.Name }

// AuthenticateRequest authenticates a request under the security policy in
// force (Scenario). The first alternative whose tokens the request carries
// (a UsernameToken, a signature in the Security header, a TLS client
// certificate) is the one checked, and all its methods must pass; a request
// that carries what no alternative needs does not meet the policy:
// wsse:InvalidSecurity. Tokens the chosen alternative does not use are
// ignored.
//
// When the alternative has a UsernameToken, its user is the caller and the
// certificates only need to be trusted (registered user certificates, ones
// issued by a trusted CA, or trusted client applications: see certs.go);
// otherwise each certificate must map to a user, the same one.
func (p *Processor) AuthenticateRequest(ctx context.Context, req *Request) (*Result, error) {
	pol, err := p.policy(ctx)
	if err != nil {
		return nil, err
	}
	var hasUT, hasSig bool
	if req.Security != nil {
		for c := range req.Security.ChildElementsSeq() {
			switch {
			case c.Tag == "UsernameToken" && c.NamespaceURI() == NSWSSE:
				hasUT = true
			case c.Tag == "Signature" && c.NamespaceURI() == xmlsec.NamespaceDSig:
				hasSig = true
			}
		}
	}
	hasTLS := len(req.PeerCerts) > 0
	var alt []Method
	for _, a := range pol {
		ok := true
		for _, m := range a {
			switch m {
			case MethodUsernameToken:
				ok = ok && hasUT
			case MethodX509:
				ok = ok && hasSig
			case MethodMutualTLS:
				ok = ok && hasTLS
			}
		}
		if ok {
			alt = a
			break
		}
	}
	if alt == nil {
		switch {
		case req.Security == nil && !pol.onlyTLSPossible():
			return nil, fail(FaultInvalidSecurity, "the request has no wsse:Security header")
		case len(pol) == 1 && len(pol[0]) == 1 && pol[0][0] == MethodUsernameToken:
			return nil, fail(FaultInvalidSecurity, "the request carries no UsernameToken")
		}
		return nil, fail(FaultInvalidSecurity, "the request does not meet the security policy of this endpoint (%s)", describe(pol))
	}
	return p.authenticate(ctx, req, alt)
}

// onlyTLSPossible: some alternative needs no Security header at all.
func (pol Policy) onlyTLSPossible() bool {
	for _, alt := range pol {
		if len(alt) == 1 && alt[0] == MethodMutualTLS {
			return true
		}
	}
	return false
}

func describe(pol Policy) string {
	words := map[Method]string{
		MethodUsernameToken: "a UsernameToken",
		MethodX509:          "an X.509 signature over the Body and Timestamp",
		MethodMutualTLS:     "a TLS client certificate",
	}
	alts := make([]string, len(pol))
	for i, alt := range pol {
		ms := make([]string, len(alt))
		for j, m := range alt {
			ms[j] = words[m]
		}
		alts[i] = strings.Join(ms, " and ")
	}
	return "expected " + strings.Join(alts, ", or ")
}

func (p *Processor) authenticate(ctx context.Context, req *Request, alt []Method) (*Result, error) {
	res := &Result{Methods: alt}
	// The certificates that authenticate, each with what the trust store
	// says about it.
	type clientCert struct {
		cert *x509.Certificate
		id   *CertIdentity
	}
	var certs []clientCert
	if has(alt, MethodX509) {
		sig, cert, id, err := p.verifySignedRequest(ctx, req)
		if err != nil {
			return nil, err
		}
		res.Signature = sig
		certs = append(certs, clientCert{cert, id})
	}
	hdr := &Header{}
	if req.Security != nil {
		var err error
		if hdr, err = Parse(req.Security); err != nil {
			return nil, err
		}
	}
	res.Header = hdr
	now := p.Now().UTC()
	if err := p.checkHeaderTimestamp(hdr, now); err != nil {
		return nil, err
	}
	if res.Signature != nil {
		if err := p.claimSignature(ctx, res.Signature, hdr.Timestamp, now); err != nil {
			return nil, err
		}
	}
	if has(alt, MethodMutualTLS) {
		id, err := p.IdentifyCertificate(ctx, req.PeerCerts[0], req.PeerCerts[1:])
		if err != nil {
			return nil, err
		}
		certs = append(certs, clientCert{req.PeerCerts[0], id})
	}
	if has(alt, MethodUsernameToken) {
		// The UsernameToken names the caller; the certificates only had to
		// be trusted.
		pr, err := p.VerifyUsernameToken(ctx, hdr.UsernameToken)
		if err != nil {
			return nil, err
		}
		res.Principal = pr
	}
	for _, c := range certs {
		if res.Cert == nil {
			res.Cert = c.cert
		}
		if has(alt, MethodUsernameToken) {
			continue
		}
		if c.id.Login == "" {
			return nil, &Error{Code: FaultFailedAuthentication, Msg: CertificateFailure,
				Err: fmt.Errorf("certificate %q is trusted (%s) but maps to no user", c.cert.Subject, c.id.Entry)}
		}
		pr, err := p.LookupUser(ctx, c.id.Login)
		if err != nil {
			return nil, certLookupError(err)
		}
		if res.Principal != nil && (res.Principal.Name != pr.Name || res.Principal.Domain != pr.Domain) {
			return nil, &Error{Code: FaultFailedAuthentication, Msg: "the signing certificate and the TLS client certificate belong to different users"}
		}
		res.Principal = pr
	}
	if res.Principal == nil {
		return nil, fail(FaultFailedAuthentication, "the request was not authenticated")
	}
	return res, nil
}

// CertificateFailure is the one text for every certificate that does not
// authenticate (unknown, expired, not trusted, mapped to no or an unknown
// user), so that answers reveal nothing about the trust store.
const CertificateFailure = "the certificate could not be authenticated"

func certLookupError(err error) error {
	if errors.Is(err, identity.ErrStoreUnavailable) {
		return &Error{Code: "RequestFailed", Msg: "user store unavailable", Err: err}
	}
	return &Error{Code: FaultFailedAuthentication, Msg: CertificateFailure, Err: err}
}

// ParseUsernameToken reads a wsse:UsernameToken element (for tokens carried
// elsewhere than the Security header, such as wst:OnBehalfOf).
func ParseUsernameToken(el *etree.Element) (*UsernameToken, error) { return parseUsernameToken(el) }

// SettingScenario is where the runtime security_scenario is stored when the
// processor reads it itself (Scenario nil).
const SettingScenario = "config.security_scenario"

// policy returns the policy in force.
func (p *Processor) policy(ctx context.Context) (Policy, error) {
	var s string
	if p.Scenario != nil {
		s = p.Scenario()
	} else {
		var err error
		if s, err = p.storedScenario(ctx); err != nil {
			return nil, &Error{Code: "RequestFailed", Msg: "the security policy could not be read", Err: err}
		}
	}
	pol, err := ParsePolicy(s)
	if err != nil {
		return nil, &Error{Code: "RequestFailed", Msg: "the security policy of this endpoint is misconfigured", Err: err}
	}
	return pol, nil
}

// scenarioCache keeps the stored scenario for a second (real time, not the
// injectable clock: it bounds staleness, not protocol times).
type scenarioCache struct {
	mu    sync.Mutex
	value string
	until time.Time
}

// storedScenario reads security_scenario from the settings store when the
// processor's Replay store is also one (the server's Storage is), cached for
// a second like the server's runtime settings. A store that cannot be read
// is an error, never a silent fallback to a weaker policy.
func (p *Processor) storedScenario(ctx context.Context) (string, error) {
	st, ok := p.Replay.(storage.Settings)
	if !ok {
		return DefaultScenario, nil
	}
	p.scenario.mu.Lock()
	defer p.scenario.mu.Unlock()
	if time.Now().Before(p.scenario.until) {
		return p.scenario.value, nil
	}
	v, err := st.GetSetting(ctx, SettingScenario)
	if errors.Is(err, storage.ErrNotFound) {
		v, err = "", nil
	}
	if err != nil {
		return "", err
	}
	p.scenario.value, p.scenario.until = v, time.Now().Add(time.Second)
	return v, nil
}
