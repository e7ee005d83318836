// Package wssec processes the WS-Security header of a request: Timestamp
// freshness, UsernameToken (PasswordText and PasswordDigest) with nonce replay
// protection, and hands the verified user to the caller.
package wssec

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/identity"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/storage"
)

// Namespaces and URIs.
const (
	NSWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NSWSU  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

	PasswordText   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
	PasswordDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	Base64Binary   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

// Fault local names in the wsse namespace (WS-Security 1.1 §12).
const (
	FaultUnsupportedSecurityToken = "UnsupportedSecurityToken"
	FaultInvalidSecurity          = "InvalidSecurity"
	FaultInvalidSecurityToken     = "InvalidSecurityToken"
	FaultFailedAuthentication     = "FailedAuthentication"
	FaultMessageExpired           = "MessageExpired"
	FaultSecurityTokenUnavailable = "SecurityTokenUnavailable"
)

// Failure texts: one per password type, the same whatever the cause, so
// they reveal nothing about which accounts exist.
const (
	PasswordFailure = "the security token could not be authenticated"
	DigestFailure   = "the security token could not be authenticated; PasswordDigest is accepted only for accounts enabled for it (use PasswordText over TLS otherwise)"
)

// Error is a WS-Security processing failure: Code is a wsse fault local name
// (or "RequestFailed" for a dependency outage); Msg is safe for the client.
type Error struct {
	Code string
	Msg  string
	Err  error // cause, for logs only
}

func (e *Error) Error() string { return "wsse:" + e.Code + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func fail(code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Timestamp is a wsu:Timestamp.
type Timestamp struct {
	Created time.Time
	Expires time.Time // zero when absent
}

// UsernameToken is a wsse:UsernameToken.
type UsernameToken struct {
	Username   string
	Password   string
	Digest     bool
	Nonce      []byte
	CreatedRaw string // exactly as sent; the digest covers these bytes
	Created    time.Time
}

// Header is the parsed wsse:Security header.
type Header struct {
	Timestamp     *Timestamp
	UsernameToken *UsernameToken
}

// ParseTime accepts xs:dateTime as real clients send it: Z, +00:00, other
// offsets, with or without fractional seconds. A time without a zone is
// refused (ambiguous).
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// Parse reads a wsse:Security element. Unknown children are ignored unless
// they are security tokens we cannot process (then callers decide by policy).
func Parse(sec *etree.Element) (*Header, error) {
	h := &Header{}
	for c := range sec.ChildElementsSeq() {
		switch {
		case c.Tag == "Timestamp" && c.NamespaceURI() == NSWSU:
			if h.Timestamp != nil {
				return nil, fail(FaultInvalidSecurity, "more than one Timestamp")
			}
			ts, err := parseTimestamp(c)
			if err != nil {
				return nil, err
			}
			h.Timestamp = ts
		case c.Tag == "UsernameToken" && c.NamespaceURI() == NSWSSE:
			if h.UsernameToken != nil {
				return nil, fail(FaultInvalidSecurity, "more than one UsernameToken")
			}
			ut, err := parseUsernameToken(c)
			if err != nil {
				return nil, err
			}
			h.UsernameToken = ut
		}
	}
	return h, nil
}

func parseTimestamp(el *etree.Element) (*Timestamp, error) {
	ts := &Timestamp{}
	var haveCreated bool
	for c := range el.ChildElementsSeq() {
		if c.NamespaceURI() != NSWSU {
			continue
		}
		switch c.Tag {
		case "Created":
			if haveCreated {
				return nil, fail(FaultInvalidSecurity, "Timestamp has more than one Created")
			}
			t, err := ParseTime(safexml.Text(c))
			if err != nil {
				return nil, fail(FaultInvalidSecurity, "Timestamp Created is not a valid dateTime")
			}
			ts.Created, haveCreated = t, true
		case "Expires":
			if !ts.Expires.IsZero() {
				return nil, fail(FaultInvalidSecurity, "Timestamp has more than one Expires")
			}
			t, err := ParseTime(safexml.Text(c))
			if err != nil {
				return nil, fail(FaultInvalidSecurity, "Timestamp Expires is not a valid dateTime")
			}
			ts.Expires = t
		}
	}
	if !haveCreated {
		return nil, fail(FaultInvalidSecurity, "Timestamp without Created")
	}
	if !ts.Expires.IsZero() && ts.Expires.Before(ts.Created) {
		return nil, fail(FaultInvalidSecurity, "Timestamp Expires is before Created")
	}
	return ts, nil
}

func parseUsernameToken(el *etree.Element) (*UsernameToken, error) {
	ut := &UsernameToken{}
	var haveUser, havePassword bool
	for c := range el.ChildElementsSeq() {
		switch {
		case c.Tag == "Username" && c.NamespaceURI() == NSWSSE:
			if haveUser {
				return nil, fail(FaultInvalidSecurityToken, "UsernameToken has more than one Username")
			}
			ut.Username, haveUser = strings.TrimSpace(safexml.Text(c)), true
		case c.Tag == "Password" && c.NamespaceURI() == NSWSSE:
			if havePassword {
				return nil, fail(FaultInvalidSecurityToken, "UsernameToken has more than one Password")
			}
			havePassword = true
			ut.Password = safexml.Text(c)
			switch typ := strings.TrimSpace(c.SelectAttrValue("Type", "")); typ {
			case "", PasswordText: // no Type means PasswordText (UsernameToken Profile 1.1 §3.1)
			case PasswordDigest:
				ut.Digest = true
			default:
				return nil, fail(FaultUnsupportedSecurityToken, "unsupported password type %q", typ)
			}
		case c.Tag == "Nonce" && c.NamespaceURI() == NSWSSE:
			if ut.Nonce != nil {
				return nil, fail(FaultInvalidSecurityToken, "UsernameToken has more than one Nonce")
			}
			if enc := c.SelectAttrValue("EncodingType", Base64Binary); enc != Base64Binary {
				return nil, fail(FaultUnsupportedSecurityToken, "unsupported Nonce EncodingType %q", enc)
			}
			n, err := base64.StdEncoding.DecodeString(strings.TrimSpace(safexml.Text(c)))
			if err != nil || len(n) == 0 {
				return nil, fail(FaultInvalidSecurityToken, "Nonce is not valid base64")
			}
			ut.Nonce = n
		case c.Tag == "Created" && c.NamespaceURI() == NSWSU:
			if ut.CreatedRaw != "" {
				return nil, fail(FaultInvalidSecurityToken, "UsernameToken has more than one Created")
			}
			ut.CreatedRaw = safexml.Text(c)
			t, err := ParseTime(ut.CreatedRaw)
			if err != nil {
				return nil, fail(FaultInvalidSecurityToken, "UsernameToken Created is not a valid dateTime")
			}
			ut.Created = t
		}
	}
	if !haveUser || ut.Username == "" {
		return nil, fail(FaultInvalidSecurityToken, "UsernameToken without Username")
	}
	if !havePassword {
		return nil, fail(FaultUnsupportedSecurityToken, "UsernameToken without Password is not supported")
	}
	if ut.Digest && (ut.Nonce == nil || ut.CreatedRaw == "") {
		return nil, fail(FaultInvalidSecurityToken, "PasswordDigest requires Nonce and Created")
	}
	return ut, nil
}

// Processor checks freshness and authenticates the UsernameToken.
type Processor struct {
	Auth   *identity.Authenticator
	Replay storage.Replay
	// Skew is the tolerated clock difference; MaxAge the freshness window for
	// a Created without Expires (and for UsernameToken Created).
	Skew, MaxAge time.Duration
	// RequireTimestamp refuses requests without a wsu:Timestamp.
	RequireTimestamp bool
	Now              func() time.Time

	// Certs is the trust store that client certificates are checked
	// against (see certs.go for the aliases it reads); Users the embedded
	// user store, for users found by certificate or delegation. When nil,
	// both are taken from Replay if it also serves them (the server hands
	// its one Storage as Replay).
	Certs storage.Certificates
	Users storage.Users
	// Scenario returns the security_scenario in force (see ParsePolicy).
	// When nil, the value stored in the settings store under
	// SettingScenario is read (Replay, when it is also a storage.Settings),
	// else DefaultScenario applies.
	Scenario func() string
	// SignatureAlgorithms and DigestAlgorithms are allowed in signed
	// requests; empty means RSA-SHA1/256/512 and SHA-1/256/512 (what
	// WS-Security clients send, SHA-1 included: zeep's default).
	SignatureAlgorithms, DigestAlgorithms []string

	scenario scenarioCache
}

// WithScenario returns a processor like p whose scenario is fixed (an
// endpoint whose path fixes its policy, as ADFS's do).
func (p *Processor) WithScenario(scenario string) *Processor {
	return &Processor{Auth: p.Auth, Replay: p.Replay, Skew: p.Skew, MaxAge: p.MaxAge,
		RequireTimestamp: p.RequireTimestamp, Now: p.Now, Certs: p.Certs, Users: p.Users,
		Scenario: func() string { return scenario }, SignatureAlgorithms: p.SignatureAlgorithms,
		DigestAlgorithms: p.DigestAlgorithms}
}

// CheckTimestamp applies the freshness rules to a Timestamp.
func (p *Processor) CheckTimestamp(ts *Timestamp, now time.Time) error {
	if ts.Created.After(now.Add(p.Skew)) {
		return fail(FaultMessageExpired, "Timestamp Created is in the future")
	}
	if !ts.Expires.IsZero() {
		if !now.Add(-p.Skew).Before(ts.Expires) {
			return fail(FaultMessageExpired, "the message has expired")
		}
		return nil
	}
	if ts.Created.Before(now.Add(-p.MaxAge - p.Skew)) {
		return fail(FaultMessageExpired, "the message is stale")
	}
	return nil
}

// Authenticate verifies the header and returns the user (the usernametoken
// security scenario; see AuthenticateRequest for the others).
func (p *Processor) Authenticate(ctx context.Context, h *Header) (*identity.Principal, error) {
	now := p.Now().UTC()
	if err := p.checkHeaderTimestamp(h, now); err != nil {
		return nil, err
	}
	if h.UsernameToken == nil {
		return nil, fail(FaultInvalidSecurity, "the request carries no UsernameToken")
	}
	return p.VerifyUsernameToken(ctx, h.UsernameToken)
}

// checkHeaderTimestamp applies the freshness rules to the header's
// Timestamp, and RequireTimestamp.
func (p *Processor) checkHeaderTimestamp(h *Header, now time.Time) error {
	if h.Timestamp != nil {
		return p.CheckTimestamp(h.Timestamp, now)
	}
	if p.RequireTimestamp {
		return fail(FaultInvalidSecurity, "a wsu:Timestamp is required")
	}
	return nil
}

// VerifyUsernameToken checks a UsernameToken's freshness, claims its nonce
// and verifies its password (the caller's, or, in ActAs/OnBehalfOf, the
// delegated user's).
func (p *Processor) VerifyUsernameToken(ctx context.Context, ut *UsernameToken) (*identity.Principal, error) {
	now := p.Now().UTC()
	if ut.CreatedRaw != "" {
		if err := p.CheckTimestamp(&Timestamp{Created: ut.Created}, now); err != nil {
			return nil, fail(FaultMessageExpired, "UsernameToken Created is outside the freshness window")
		}
	}
	if ut.Nonce != nil {
		// Claimed before the password check: exactly one of any number of
		// concurrent replays gets through, on every node sharing the database.
		until := now.Add(p.MaxAge + 2*p.Skew)
		key := "ut:" + base64.StdEncoding.EncodeToString(ut.Nonce)
		if err := p.Replay.ClaimNonce(ctx, key, now, until); errors.Is(err, storage.ErrAlreadyExists) {
			return nil, fail(FaultInvalidSecurity, "the UsernameToken nonce has already been used (replay)")
		} else if err != nil {
			return nil, &Error{Code: "RequestFailed", Msg: "the replay cache is unavailable", Err: err}
		}
	}
	var (
		pr  *identity.Principal
		err error
	)
	if ut.Digest {
		pr, err = p.Auth.VerifyDigest(ctx, ut.Username, ut.Password, ut.Nonce, ut.CreatedRaw)
	} else {
		pr, err = p.Auth.VerifyPassword(ctx, ut.Username, ut.Password)
	}
	switch {
	case err == nil:
		return pr, nil
	case ut.Digest && (errors.Is(err, identity.ErrDigestNotAllowed) || errors.Is(err, identity.ErrInvalidCredentials) ||
		errors.Is(err, identity.ErrUnknownDomain)):
		// One text for every digest failure: a separate "not enabled" answer
		// would tell digest-enabled accounts from others and from unknown names.
		return nil, &Error{Code: FaultFailedAuthentication, Msg: DigestFailure}
	case errors.Is(err, identity.ErrInvalidCredentials), errors.Is(err, identity.ErrUnknownDomain):
		return nil, &Error{Code: FaultFailedAuthentication, Msg: PasswordFailure}
	case errors.Is(err, identity.ErrStoreUnavailable):
		return nil, &Error{Code: "RequestFailed", Msg: "user store unavailable", Err: err}
	default:
		return nil, &Error{Code: "RequestFailed", Msg: "authentication could not be completed", Err: err}
	}
}
