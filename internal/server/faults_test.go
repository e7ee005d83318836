package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
)

// rst builds a request with the sample client's builder and lets a test
// rewrite it.
func rst(t *testing.T, url string, o client.Options, edit func(string) string) ([]byte, string) {
	t.Helper()
	o.URL = url
	env, ctype, err := client.BuildIssue(&o)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		env = []byte(edit(string(env)))
	}
	return env, ctype
}

func nested(depth int) []byte {
	var b bytes.Buffer
	b.WriteString(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>`)
	for i := 0; i < depth; i++ {
		b.WriteString("<a>")
	}
	for i := 0; i < depth; i++ {
		b.WriteString("</a>")
	}
	b.WriteString(`</s:Body></s:Envelope>`)
	return b.Bytes()
}

func TestBadRequestsGetPreciseFaultsAndTheServerKeepsServing(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "alice", "Secret#123", false, []string{"admin"}, nil)
	ts.addUser(t, "bob", "Bob#pass1", false, []string{"staff"}, nil)
	ts.addUser(t, "dave", "Dave#pass1", true, []string{"admin"}, nil)
	url := ts.URL + "/services/sts"
	good := client.Options{User: "alice", Password: "Secret#123"}
	replace := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("test bug: %q not in request", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	past := time.Now().Add(-time.Hour)
	cases := []struct {
		name       string
		opts       client.Options
		edit       func(string) string
		raw        []byte
		ctype      string
		wantStatus int
		wantFault  string
		wantReason string
	}{
		{name: "a wrong password is refused", opts: client.Options{User: "alice", Password: "nope"},
			wantStatus: 500, wantFault: "wsse:FailedAuthentication", wantReason: "could not be authenticated"},
		{name: "an unknown user gets the very same fault", opts: client.Options{User: "mallory", Password: "nope"},
			wantStatus: 500, wantFault: "wsse:FailedAuthentication", wantReason: "could not be authenticated"},
		{name: "an unknown user store domain gets the same fault too", opts: client.Options{User: "LDAP/alice", Password: "Secret#123"},
			wantStatus: 500, wantFault: "wsse:FailedAuthentication", wantReason: "could not be authenticated"},
		{name: "a user without the admin role is not authorised", opts: client.Options{User: "bob", Password: "Bob#pass1"},
			wantStatus: 500, wantFault: "wst:RequestFailed", wantReason: "not authorized"},
		{name: "a digest for a user without a digest secret is refused clearly", opts: client.Options{User: "alice", Password: "Secret#123", Digest: true},
			wantStatus: 500, wantFault: "wsse:FailedAuthentication", wantReason: "PasswordDigest is accepted only for accounts enabled for it"},
		{name: "a wrong digest for a digest-enabled user gets the very same fault", opts: client.Options{User: "dave", Password: "x", Digest: true},
			wantStatus: 500, wantFault: "wsse:FailedAuthentication", wantReason: "PasswordDigest is accepted only for accounts enabled for it"},
		{name: "a digest for an unknown user gets the very same fault", opts: client.Options{User: "mallory", Password: "x", Digest: true},
			wantStatus: 500, wantFault: "wsse:FailedAuthentication", wantReason: "PasswordDigest is accepted only for accounts enabled for it"},
		{name: "an expired Timestamp is refused", opts: client.Options{User: "alice", Password: "Secret#123", Now: func() time.Time { return past }},
			wantStatus: 500, wantFault: "wsse:MessageExpired"},
		{name: "a Timestamp from the future is refused", opts: client.Options{User: "alice", Password: "Secret#123", Now: func() time.Time { return time.Now().Add(time.Hour) }},
			wantStatus: 500, wantFault: "wsse:MessageExpired", wantReason: "future"},
		{name: "an unknown TokenType is refused", opts: good, edit: replace("oasis-wss-saml-token-profile-1.1#SAMLV2.0", "oasis-wss-saml-token-profile-1.1#SAMLV3.0"),
			wantStatus: 500, wantFault: "wst:InvalidRequest", wantReason: "unsupported TokenType"},
		{name: "an unknown KeyType is refused", opts: good, edit: replace("200512/Bearer", "200512/Quantum"),
			wantStatus: 500, wantFault: "wst:InvalidRequest", wantReason: "unknown KeyType"},
		{name: "a SymmetricKey request is refused until holder-of-key exists", opts: good, edit: replace("200512/Bearer", "200512/SymmetricKey"),
			wantStatus: 500, wantFault: "wst:InvalidRequest", wantReason: "SymmetricKey"},
		{name: "a lifetime beyond the maximum is refused", opts: client.Options{User: "alice", Password: "Secret#123", Lifetime: 48 * time.Hour},
			wantStatus: 500, wantFault: "wst:InvalidTimeRange"},
		{name: "an unknown claims dialect is refused", opts: client.Options{User: "alice", Password: "Secret#123", Claims: []string{"urn:x"}},
			edit:       replace(`Dialect="http://schemas.xmlsoap.org/ws/2005/05/identity"`, `Dialect="urn:other"`),
			wantStatus: 500, wantFault: "wst:InvalidRequest", wantReason: "dialect"},
		{name: "a required claim the user lacks is named in the fault", opts: client.Options{User: "alice", Password: "Secret#123",
			Claims: []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/country"}},
			wantStatus: 500, wantFault: "wst:RequestFailed", wantReason: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/country"},
		{name: "a missing RequestType is refused", opts: good, edit: replace("<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>", ""),
			wantStatus: 500, wantFault: "wst:InvalidRequest", wantReason: "RequestType"},
		{name: "a wsa:Action that contradicts the body is refused", opts: good,
			edit:       replace(">http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue<", ">http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Cancel<"),
			wantStatus: 500, wantFault: "wst:InvalidRequest", wantReason: "wsa:Action"},
		{name: "an unknown mustUnderstand header gets a MustUnderstand fault", opts: good,
			edit:       replace("<s:Header>", `<s:Header><x:Secret xmlns:x="urn:x" s:mustUnderstand="1">1</x:Secret>`),
			wantStatus: 500, wantFault: "s:MustUnderstand"},
		{name: "an unknown mustUnderstand header under SOAP 1.2 names it", opts: client.Options{User: "alice", Password: "Secret#123", SOAP: "1.2"},
			edit:       replace("<s:Header>", `<s:Header><x:Secret xmlns:x="urn:x" s:mustUnderstand="true">1</x:Secret>`),
			wantStatus: 500, wantFault: "s:MustUnderstand", wantReason: "Secret"},
		{name: "a request without a Security header is refused", opts: good,
			edit: func(s string) string {
				i, j := strings.Index(s, "<wsse:Security"), strings.Index(s, "</wsse:Security>")
				return s[:i] + s[j+16:]
			},
			wantStatus: 500, wantFault: "wsse:InvalidSecurity"},
		{name: "an unsupported password type is refused", opts: good, edit: replace("#PasswordText", "#PasswordSaltedHash"),
			wantStatus: 500, wantFault: "wsse:UnsupportedSecurityToken"},
		{name: "malformed XML is a Client fault", raw: []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a></b></s:Body></s:Envelope>`),
			ctype: "text/xml", wantStatus: 500, wantFault: "s:Client", wantReason: "malformed"},
		{name: "malformed XML under SOAP 1.2 is a Sender fault with 400", raw: []byte(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><a></b>`),
			ctype: "application/soap+xml", wantStatus: 400, wantFault: "s:Sender", wantReason: "malformed"},
		{name: "a DOCTYPE is refused", raw: []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&a;</s:Body></s:Envelope>`),
			ctype: "text/xml", wantStatus: 500, wantFault: "s:Client", wantReason: "DTD"},
		{name: "a 10 MB body is refused with 413", raw: bytes.Repeat([]byte("<a>"), 10<<20/3),
			ctype: "text/xml", wantStatus: 413, wantFault: "s:Client", wantReason: "too large"},
		{name: "10,000-deep nesting is refused", raw: nested(10000), ctype: "text/xml", wantStatus: 500, wantFault: "s:Client", wantReason: "deep"},
		{name: "an unknown body element is refused", raw: []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x:Hello xmlns:x="urn:x"/></s:Body></s:Envelope>`),
			ctype: "text/xml", wantStatus: 500, wantFault: "s:Client", wantReason: "unsupported body element"},
		{name: "a non-SOAP document is refused", raw: []byte(`<hello/>`), ctype: "text/xml", wantStatus: 500, wantFault: "s:Client", wantReason: "not a SOAP envelope"},
		{name: "an unknown envelope namespace is a VersionMismatch", raw: []byte(`<s:Envelope xmlns:s="urn:soap:99"><s:Body/></s:Envelope>`),
			ctype: "text/xml", wantStatus: 500, wantFault: "s:VersionMismatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ctype := c.raw, c.ctype
			if body == nil {
				body, ctype = rst(t, url, c.opts, c.edit)
			}
			r := ts.post(t, "/services/sts", ctype, body)
			if r.Status != c.wantStatus {
				t.Errorf("status %d, want %d", r.Status, c.wantStatus)
			}
			if got := faultCode(r.Body); got != c.wantFault {
				t.Errorf("fault %q, want %q: %.400s", got, c.wantFault, r.Body)
			}
			if !strings.Contains(r.Body, c.wantReason) {
				t.Errorf("reason does not mention %q: %.400s", c.wantReason, r.Body)
			}
			if strings.Contains(r.Body, "goroutine") || strings.Contains(r.Body, ".go:") {
				t.Errorf("fault leaks internals: %.400s", r.Body)
			}
			// The server keeps serving good requests.
			_, _, tok, err := client.Issue(context.Background(), http.DefaultClient, &client.Options{URL: url, User: "alice", Password: "Secret#123"})
			if err != nil || len(tok) == 0 {
				t.Fatalf("good request after %q failed: %v", c.name, err)
			}
		})
	}
}

func TestIssuedTokensSayWhatWasAsked(t *testing.T) {
	ts := newTestServer(t, nil)
	email := "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	ts.addUser(t, "carol", "Carol#pw1", true, []string{"admin", "staff"}, map[string]string{
		email: "carol@example.test", "http://wso2.org/claims/givenname": "Carol <&> \"Q\"",
	})
	url := ts.URL + "/services/sts"
	cases := []struct {
		name string
		o    client.Options
		want tokenExpectations
	}{
		{"SAML 2.0 over SOAP 1.1 with PasswordText and claims in both dialects",
			client.Options{User: "carol", Password: "Carol#pw1", AppliesTo: "https://rp.example/app",
				Claims: []string{email, "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}},
			tokenExpectations{subjectOneOf: []string{"carol"}, audience: "https://rp.example/app", lifetime: 5 * time.Minute,
				claims: map[string]string{email: "carol@example.test", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": "Carol <&> \"Q\"",
					"http://schemas.microsoft.com/ws/2008/06/identity/claims/role": "admin,staff"}}},
		{"SAML 1.1 over SOAP 1.2 with PasswordDigest and a requested lifetime",
			client.Options{User: "carol", Password: "Carol#pw1", SAML: "1.1", SOAP: "1.2", Digest: true, AppliesTo: "urn:rp:11",
				Lifetime: 30 * time.Minute, Claims: []string{email}},
			tokenExpectations{saml11: true, subjectOneOf: []string{"carol"}, audience: "urn:rp:11", lifetime: 30 * time.Minute,
				claims: map[string]string{email: "carol@example.test"}}},
		{"SAML 2.0 without AppliesTo has no audience restriction",
			client.Options{User: "carol", Password: "Carol#pw1"},
			tokenExpectations{subjectOneOf: []string{"carol"}, lifetime: 5 * time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.URL = url
			_, _, tok, err := client.Issue(context.Background(), http.DefaultClient, &c.o)
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, ts, tok, c.want)
		})
	}
}
