package server

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/sts"
)

// Delegation: a service authenticated as itself asks for a token for a
// backend relying party ActAs / OnBehalfOf a user whose token it holds.

const (
	frontendRP   = "https://frontend.example/"
	backendRP    = "https://backend.example/"
	restrictedRP = "https://restricted.example/"
	actAsOnlyRP  = "https://actas.example/"
	noDelegRP    = "https://other.example/"
	foreignIdP   = "https://idp.example/"
	delegEmail   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	nsTrust14    = "http://docs.oasis-open.org/ws-sx/ws-trust/200802"
)

var delegPasswords = map[string]string{"alice": "Alice#pw1", "bob": "Bob#pw12", "svc-frontend": "Front#pw1", "svc-other": "Other#pw1"}

func delegationServer(t *testing.T) *testServer {
	t.Helper()
	ts := newTestServer(t, func(c *config.Config) { c.AllowedRoles = []string{"admin", "services"} })
	ts.addUser(t, "alice", delegPasswords["alice"], false, []string{"admin"}, map[string]string{delegEmail: "alice@example.test"})
	ts.addUser(t, "bob", delegPasswords["bob"], false, []string{"admin"}, map[string]string{delegEmail: "bob@example.test"})
	ts.addUser(t, "svc-frontend", delegPasswords["svc-frontend"], false, []string{"services"}, nil)
	ts.addUser(t, "svc-other", delegPasswords["svc-other"], false, []string{"services"}, nil)
	rp := func(name, endpoint string, rules ...registry.DelegationRule) {
		sp := &registry.ServiceProvider{Name: name, WSTrust: &registry.WSTrust{Endpoints: []string{endpoint},
			Token: registry.Token{Delegation: rules}}, Claims: registry.ClaimConfig{Always: []string{delegEmail}}}
		if err := ts.Registry.Put(context.Background(), sp); err != nil {
			t.Fatal(err)
		}
	}
	rp("frontend", frontendRP)
	rp("backend", backendRP, registry.DelegationRule{Caller: "svc-frontend", Subjects: []string{"*/*"}})
	rp("restricted", restrictedRP, registry.DelegationRule{Caller: "svc-frontend", Subjects: []string{"alice"}})
	rp("actas-only", actAsOnlyRP, registry.DelegationRule{Caller: "svc-*", Subjects: []string{"*"}, Kinds: []string{"ActAs"}})
	rp("other", noDelegRP)
	return ts
}

func (ts *testServer) delegOpts(user, appliesTo string) *client.Options {
	return &client.Options{URL: ts.URL + "/services/sts", User: user, Password: delegPasswords[user], AppliesTo: appliesTo, Now: ts.Clock.Now}
}

// userToken is user's own token for the frontend (what the service holds).
func (ts *testServer) userToken(t *testing.T, user string) []byte {
	t.Helper()
	env, ctype, err := client.BuildIssue(ts.delegOpts(user, frontendRP))
	if err != nil {
		t.Fatal(err)
	}
	r := ts.post(t, "/services/sts", ctype, env)
	if r.Status != 200 {
		t.Fatalf("%s's token: %s", user, r.Body)
	}
	tok, err := client.ExtractToken([]byte(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// onBehalfOf wraps a token in wst:OnBehalfOf, actAs in wst14:ActAs.
func onBehalfOf(tok []byte) string { return `<wst:OnBehalfOf>` + string(tok) + `</wst:OnBehalfOf>` }
func actAs(tok []byte) string {
	return `<wst14:ActAs xmlns:wst14="` + nsTrust14 + `">` + string(tok) + `</wst14:ActAs>`
}

// delegated sends caller's Issue request for appliesTo carrying element.
func (ts *testServer) delegated(t *testing.T, caller, appliesTo, element string) reply {
	t.Helper()
	env, ctype, err := client.BuildIssue(ts.delegOpts(caller, appliesTo))
	if err != nil {
		t.Fatal(err)
	}
	env = []byte(strings.Replace(string(env), `</wst:RequestSecurityToken>`, element+`</wst:RequestSecurityToken>`, 1))
	return ts.post(t, "/services/sts", ctype, env)
}

// delegatedToken checks a successful answer: a token about subject for
// appliesTo, naming delegate in its DelegationRestriction condition.
func delegatedToken(t *testing.T, ts *testServer, r reply, subject, delegate, appliesTo string, claims map[string]string) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("refused: %s", r.Body)
	}
	tok, err := client.ExtractToken([]byte(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	a := checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{subject}, audience: appliesTo, claims: claims})
	cond := a.FindElement("./Conditions/Condition")
	if cond == nil || cond.SelectAttrValue("xsi:type", "") != "del:DelegationRestrictionType" {
		t.Fatalf("no delegation condition in %s", tok)
	}
	if d := cond.FindElement("./Delegate"); d == nil || d.NamespaceURI() != saml.NSDelegation || textOf(d, "./NameID") != delegate {
		t.Fatalf("delegate is not %q in %s", delegate, tok)
	}
}

func TestAServiceGetsATokenOnBehalfOfAUserForAnRPThatAllowsIt(t *testing.T) {
	ts := delegationServer(t)
	alice := ts.userToken(t, "alice")
	r := ts.delegated(t, "svc-frontend", backendRP, onBehalfOf(alice))
	delegatedToken(t, ts, r, "alice", "svc-frontend", backendRP, map[string]string{delegEmail: "alice@example.test"})

	t.Run("the delegation is in the audit log with the caller as actor", func(t *testing.T) {
		events, err := ts.Store.ListAudit(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Action == "token.delegate" && e.Actor == "PRIMARY/svc-frontend" && e.Target == "PRIMARY/alice" &&
				strings.Contains(e.Detail, "OnBehalfOf") && strings.Contains(e.Detail, "rp=backend") {
				return
			}
		}
		t.Fatalf("no token.delegate event in %+v", events)
	})
	t.Run("the delegated token keeps its delegate when renewed", func(t *testing.T) {
		tok, _ := client.ExtractToken([]byte(r.Body))
		_, rstr, err := client.Lifecycle(context.Background(), http.DefaultClient, ts.delegOpts("alice", ""), "Renew", tok, false)
		if err != nil {
			t.Fatal(err)
		}
		renewed, _ := client.ExtractToken(rstr)
		a := checkToken(t, ts, renewed, tokenExpectations{subjectOneOf: []string{"alice"}, audience: backendRP})
		if textOf(a, "./Conditions/Condition/Delegate/NameID") != "svc-frontend" {
			t.Fatalf("renewed token lost its delegate: %s", renewed)
		}
	})
}

func TestEveryFormOfDelegationTokenIsAccepted(t *testing.T) {
	ts := delegationServer(t)
	alice := ts.userToken(t, "alice")
	idp := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "idp.example"}}, nil)
	ts.trustAs(t, sts.IssuerAliasPrefix+foreignIdP, idp.cert)
	foreign := foreignAssertion(t, idp, "erin@idp.example", time.Minute)
	ref := `<wst:OnBehalfOf><wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType="http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID">` +
		idOf(alice) + `</wsse:KeyIdentifier></wsse:SecurityTokenReference></wst:OnBehalfOf>`
	ut := `<wst:OnBehalfOf><wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password>` + delegPasswords["alice"] +
		`</wsse:Password></wsse:UsernameToken></wst:OnBehalfOf>`
	cases := []struct {
		name, rp, element, subject string
		claims                     map[string]string
	}{
		{"our SAML 2.0 assertion in OnBehalfOf", backendRP, onBehalfOf(alice), "alice", map[string]string{delegEmail: "alice@example.test"}},
		{"our SAML 2.0 assertion in WS-Trust 1.4 ActAs", actAsOnlyRP, actAs(alice), "alice", nil},
		{"a SecurityTokenReference to our token", backendRP, ref, "alice", nil},
		{"the user's UsernameToken with the right password", backendRP, ut, "alice", nil},
		{"an assertion of a SAML issuer in the trust store, its attributes as claims", backendRP, onBehalfOf(foreign), "erin@idp.example",
			map[string]string{delegEmail: "erin@idp.example"}},
	}
	for _, c := range cases {
		t.Run(c.name+" gives a token about the user naming the service", func(t *testing.T) {
			delegatedToken(t, ts, ts.delegated(t, "svc-frontend", c.rp, c.element), c.subject, "svc-frontend", c.rp, c.claims)
		})
	}
}

// foreignAssertion is a SAML 2.0 assertion of another IdP about subject,
// for the frontend, valid for lifetime.
func foreignAssertion(t *testing.T, idp keyCert, subject string, lifetime time.Duration) []byte {
	t.Helper()
	s, err := saml.NewSigner(idp.key, idp.cert, saml.AlgRSASHA256, saml.AlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	tok, err := s.Build20(&saml.Assertion{ID: saml.NewID(), Issuer: foreignIdP, IssueInstant: now, NotBefore: now.Add(-time.Minute),
		NotOnOrAfter: now.Add(lifetime), Subject: subject, Audiences: []string{frontendRP}, AuthnInstant: now,
		Attributes: []saml.Attribute{{Name: delegEmail, Values: []string{subject}}}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var signatureRE = regexp.MustCompile(`<ds:Signature .*</ds:Signature>`)

func TestDelegationIsRefusedWithRequestFailed(t *testing.T) {
	ts := delegationServer(t)
	alice, bob := ts.userToken(t, "alice"), ts.userToken(t, "bob")
	untrusted := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "not trusted"}}, nil)
	wrongPassword := `<wst:OnBehalfOf><wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password>guess</wsse:Password></wsse:UsernameToken></wst:OnBehalfOf>`
	noPassword := `<wst:OnBehalfOf><wsse:UsernameToken><wsse:Username>alice</wsse:Username></wsse:UsernameToken></wst:OnBehalfOf>`
	cases := []struct {
		name, caller, rp, element string
	}{
		{"the same request for an RP without delegation rules", "svc-frontend", noDelegRP, onBehalfOf(alice)},
		{"the same request without AppliesTo", "svc-frontend", "", onBehalfOf(alice)},
		{"a caller the RP's rules do not name", "svc-other", backendRP, onBehalfOf(alice)},
		{"a subject the RP's rules do not name", "svc-frontend", restrictedRP, onBehalfOf(bob)},
		{"OnBehalfOf at an RP that allows only ActAs", "svc-frontend", actAsOnlyRP, onBehalfOf(alice)},
		{"a forged token (subject changed after signing)", "svc-frontend", backendRP,
			onBehalfOf([]byte(strings.Replace(string(alice), ">alice<", ">bob<", 1)))},
		{"an unsigned token", "svc-frontend", backendRP, onBehalfOf(signatureRE.ReplaceAll(alice, nil))},
		{"a token of an issuer not in the trust store", "svc-frontend", backendRP, onBehalfOf(foreignAssertion(t, untrusted, "alice", time.Minute))},
		{"a UsernameToken with a wrong password", "svc-frontend", backendRP, wrongPassword},
		{"a UsernameToken without a password", "svc-frontend", backendRP, noPassword},
		{"a reference to a token nobody issued", "svc-frontend", backendRP,
			`<wst:OnBehalfOf><wsse:SecurityTokenReference><wsse:KeyIdentifier>_0000</wsse:KeyIdentifier></wsse:SecurityTokenReference></wst:OnBehalfOf>`},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			r := ts.delegated(t, c.caller, c.rp, c.element)
			if got := faultCode(r.Body); got != "wst:RequestFailed" {
				t.Fatalf("got %q: %s", got, r.Body)
			}
		})
	}
	t.Run("a cancelled token is refused", func(t *testing.T) {
		tok := ts.userToken(t, "alice")
		if _, _, err := client.Lifecycle(context.Background(), http.DefaultClient, ts.delegOpts("alice", ""), "Cancel", tok, false); err != nil {
			t.Fatal(err)
		}
		if got := faultCode(ts.delegated(t, "svc-frontend", backendRP, onBehalfOf(tok)).Body); got != "wst:RequestFailed" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("an expired token is refused", func(t *testing.T) {
		tok := ts.userToken(t, "alice")
		ts.Clock.Set(time.Now().Add(10 * time.Minute))
		defer ts.Clock.Set(time.Time{})
		if got := faultCode(ts.delegated(t, "svc-frontend", backendRP, onBehalfOf(tok)).Body); got != "wst:RequestFailed" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("an expired token of a trusted foreign issuer is refused", func(t *testing.T) {
		idp := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "idp.example"}}, nil)
		ts.trustAs(t, sts.IssuerAliasPrefix+foreignIdP, idp.cert)
		if got := faultCode(ts.delegated(t, "svc-frontend", backendRP, onBehalfOf(foreignAssertion(t, idp, "erin", -time.Hour))).Body); got != "wst:RequestFailed" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("an issuer removed from the trust store elsewhere is distrusted at once", func(t *testing.T) {
		idp := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "idp.example"}}, nil)
		ts.trustAs(t, sts.IssuerAliasPrefix+foreignIdP, idp.cert)
		tok := foreignAssertion(t, idp, "erin@idp.example", time.Minute)
		if r := ts.delegated(t, "svc-frontend", backendRP, onBehalfOf(tok)); r.Status != http.StatusOK {
			t.Fatalf("trusted: status %d: %s", r.Status, r.Body)
		}
		// As another node or the CLI would: storage only, no cache told.
		if err := ts.Store.DeleteCertificate(t.Context(), sts.IssuerAliasPrefix+foreignIdP); err != nil {
			t.Fatal(err)
		}
		if got := faultCode(ts.delegated(t, "svc-frontend", backendRP, onBehalfOf(tok)).Body); got != "wst:RequestFailed" {
			t.Fatalf("after removal: got %q", got)
		}
	})
	t.Run("a holder-of-key token of a trusted foreign issuer is refused", func(t *testing.T) {
		idp := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "idp.example"}}, nil)
		ts.trustAs(t, sts.IssuerAliasPrefix+foreignIdP, idp.cert)
		s, err := saml.NewSigner(idp.key, idp.cert, saml.AlgRSASHA256, saml.AlgSHA256)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		hok, err := s.Build20(&saml.Assertion{ID: saml.NewID(), Issuer: foreignIdP, IssueInstant: now, NotBefore: now, NotOnOrAfter: now.Add(time.Minute),
			Subject: "erin", AuthnInstant: now, KeyInfo: []byte(`<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:KeyName>k</ds:KeyName></ds:KeyInfo>`)})
		if err != nil {
			t.Fatal(err)
		}
		r := ts.delegated(t, "svc-frontend", backendRP, onBehalfOf(hok))
		if got := faultCode(r.Body); got != "wst:RequestFailed" || !strings.Contains(r.Body, "holder-of-key") {
			t.Fatalf("got %q: %s", got, r.Body)
		}
	})
}

func TestDelegationRulesAreValidated(t *testing.T) {
	cases := []struct {
		name string
		rule registry.DelegationRule
		ok   bool
	}{
		{"a rule naming a caller and subjects is valid", registry.DelegationRule{Caller: "svc", Subjects: []string{"*", "LDAP/*"}}, true},
		{"a rule limited to ActAs is valid", registry.DelegationRule{Caller: "svc", Subjects: []string{"alice"}, Kinds: []string{"ActAs"}}, true},
		{"a rule without caller is invalid", registry.DelegationRule{Subjects: []string{"*"}}, false},
		{"a rule without subjects is invalid", registry.DelegationRule{Caller: "svc"}, false},
		{"a pattern with two slashes is invalid", registry.DelegationRule{Caller: "A/B/c", Subjects: []string{"*"}}, false},
		{"an unknown kind is invalid", registry.DelegationRule{Caller: "svc", Subjects: []string{"*"}, Kinds: []string{"Impersonate"}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := &registry.ServiceProvider{Name: "x", WSTrust: &registry.WSTrust{Endpoints: []string{"urn:x"},
				Token: registry.Token{Delegation: []registry.DelegationRule{c.rule}}}}
			if err := sp.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
	matches := []struct {
		pattern, domain, name string
		want                  bool
	}{
		{"alice", "PRIMARY", "alice", true},
		{"alice", "LDAP", "alice", false},
		{"svc-*", "PRIMARY", "svc-frontend", true},
		{"ldap/*", "LDAP", "anyone", true},
		{"*/*", "", "erin@idp.example", true},
		{"*", "", "erin@idp.example", false},
		{"*@corp.example", "PRIMARY", "dora@corp.example", true},
		{"*@corp.example", "PRIMARY", "dora@corp.example.evil", false},
	}
	for _, m := range matches {
		t.Run("pattern "+m.pattern+" against "+m.domain+"/"+m.name, func(t *testing.T) {
			r := registry.DelegationRule{Caller: "*/*", Subjects: []string{m.pattern}}
			if got := r.Allows("OnBehalfOf", "PRIMARY", "svc", m.domain, m.name); got != m.want {
				t.Fatalf("Allows = %v, want %v", got, m.want)
			}
		})
	}
}
