package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/storage"
)

// lifecycleServer has alice (admin) and bob (admin, another user) and a
// helper to run lifecycle requests as either.
type lifecycleServer struct {
	*testServer
	t *testing.T
}

func newLifecycleServer(t *testing.T) *lifecycleServer {
	ts := newTestServer(t, nil)
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin", "staff"}, map[string]string{
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "alice@example.test"})
	ts.addUser(t, "bob", "Bob#pw12", false, []string{"sts-user"}, map[string]string{
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "bob@example.test"})
	cfg := ts.Core.Config()
	cfg.AllowedRoles = []string{"admin", "sts-user"}
	ts.Core.SetConfig(cfg)
	return &lifecycleServer{ts, t}
}

func (ls *lifecycleServer) opts(user string) *client.Options {
	pw := map[string]string{"alice": "Alice#pw1", "bob": "Bob#pw12"}[user]
	// The client's Timestamps follow the server's injected clock.
	return &client.Options{URL: ls.URL + "/services/sts", User: user, Password: pw, Now: ls.Clock.Now}
}

func (ls *lifecycleServer) issue(user, samlVersion string, edit func(string) string) []byte {
	ls.t.Helper()
	o := ls.opts(user)
	o.SAML, o.AppliesTo = samlVersion, "urn:rp:lifecycle"
	o.Claims = []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
	env, ctype, err := client.BuildIssue(o)
	if err != nil {
		ls.t.Fatal(err)
	}
	if edit != nil {
		env = []byte(edit(string(env)))
	}
	rstr, err := client.Post(context.Background(), http.DefaultClient, o.URL, env, ctype)
	if err != nil {
		ls.t.Fatalf("issue: %v", err)
	}
	tok, err := client.ExtractToken(rstr)
	if err != nil {
		ls.t.Fatal(err)
	}
	return tok
}

// do runs Renew/Validate/Cancel and returns the RSTR or the fault.
func (ls *lifecycleServer) do(user, rt string, token []byte, statusOnly bool) ([]byte, *client.FaultError) {
	ls.t.Helper()
	_, rstr, err := client.Lifecycle(context.Background(), http.DefaultClient, ls.opts(user), rt, token, statusOnly)
	if err != nil {
		fe, ok := err.(*client.FaultError)
		if !ok {
			ls.t.Fatalf("%s: %v", rt, err)
		}
		return rstr, fe
	}
	return rstr, nil
}

func (ls *lifecycleServer) status(token []byte) (bool, string) {
	ls.t.Helper()
	rstr, fe := ls.do("alice", "Validate", token, true)
	if fe != nil {
		ls.t.Fatalf("validate fault: %v", fe)
	}
	valid, _, reason, err := client.Status(rstr)
	if err != nil {
		ls.t.Fatal(err)
	}
	return valid, reason
}

func idOf(tok []byte) string {
	s := string(tok)
	for _, attr := range []string{` ID="`, ` AssertionID="`} {
		if i := strings.Index(s, attr); i >= 0 {
			rest := s[i+len(attr):]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	return ""
}

func TestRenewKeepsTheIDWithANewLifetimeAndAFreshSignature(t *testing.T) {
	for _, v := range []struct{ name, saml string }{{"SAML 2.0", "2.0"}, {"SAML 1.1", "1.1"}} {
		t.Run(v.name, func(t *testing.T) {
			ls := newLifecycleServer(t)
			start := time.Now()
			ls.Clock.Set(start)
			orig := ls.issue("alice", v.saml, nil)
			ls.Clock.Set(start.Add(3 * time.Minute))
			rstr, fe := ls.do("alice", "Renew", orig, false)
			if fe != nil {
				t.Fatalf("renew: %v", fe)
			}
			renewed, err := client.ExtractToken(rstr)
			if err != nil {
				t.Fatal(err)
			}
			if idOf(renewed) != idOf(orig) || idOf(orig) == "" {
				t.Fatalf("renewed ID %q, original %q", idOf(renewed), idOf(orig))
			}
			if string(renewed) == string(orig) {
				t.Fatal("renewed token is byte-identical to the original")
			}
			a := checkToken(t, ls.testServer, renewed, tokenExpectations{saml11: v.saml == "1.1", subjectOneOf: []string{"alice"},
				audience: "urn:rp:lifecycle", lifetime: 5 * time.Minute,
				claims: map[string]string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "alice@example.test"}})
			nb, _ := time.Parse(time.RFC3339Nano, a.FindElement("./Conditions").SelectAttrValue("NotBefore", ""))
			if d := nb.Sub(start); d < 3*time.Minute-time.Second || d > 3*time.Minute+time.Second {
				t.Fatalf("renewed NotBefore is %s after the original issue, want 3m", d)
			}
			if !strings.Contains(string(rstr), "Lifetime") {
				t.Fatal("renew RSTR has no Lifetime")
			}
			if ok, reason := ls.status(renewed); !ok {
				t.Fatalf("renewed token invalid: %s", reason)
			}
		})
	}
}

// forge signs an assertion with another key under our issuer name.
func forge(t *testing.T, id string) []byte {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "avouch token signing"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	s, err := saml.NewSigner(key, cert, saml.AlgRSASHA256, saml.AlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := s.Build20(&saml.Assertion{ID: id, Issuer: "avouch", IssueInstant: now, NotBefore: now,
		NotOnOrAfter: now.Add(5 * time.Minute), Subject: "alice", Audiences: []string{"urn:rp:lifecycle"}, AuthnInstant: now})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ours signs an assertion with the server's own key without recording it:
// a token the STS never issued.
func ours(t *testing.T, ts *testServer, issuer string) []byte {
	s, err := saml.NewSigner(ts.Signing.Signer, ts.Signing.Cert, saml.AlgRSASHA256, saml.AlgSHA256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := s.Build20(&saml.Assertion{ID: saml.NewID(), Issuer: issuer, IssueInstant: now, NotBefore: now,
		NotOnOrAfter: now.Add(5 * time.Minute), Subject: "alice", AuthnInstant: now})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBadTokensAreRefusedWithTheDocumentedStatusOrFault(t *testing.T) {
	ls := newLifecycleServer(t)
	good := ls.issue("alice", "2.0", nil)
	id := idOf(good)
	wrapped := func() []byte {
		// XSW: the signed original moves inside an attacker's outer assertion
		// with the same ID and another subject.
		evil := strings.Replace(string(good), ">alice<", ">mallory<", 1)
		i := strings.Index(evil, "<ds:Signature")
		return []byte(evil[:i] + "<saml2:Advice>" + string(good) + "</saml2:Advice>" + evil[i:])
	}()
	cancelled := ls.issue("alice", "2.0", nil)
	if _, fe := ls.do("alice", "Cancel", cancelled, false); fe != nil {
		t.Fatal(fe)
	}
	cases := []struct {
		name         string
		token        []byte
		wantReason   string // Validate status reason
		wantRenewErr string // Renew fault code
	}{
		{"a token forged with another key", forge(t, id), "bad signature", "wst:UnableToRenew"},
		{"a token with one changed byte", []byte(strings.Replace(string(good), "urn:rp:lifecycle", "urn:rp:lifecyclf", 1)), "bad signature", "wst:UnableToRenew"},
		{"a signature-wrapped token", wrapped, "bad signature", "wst:UnableToRenew"},
		{"a cancelled token", cancelled, "cancelled", "wst:UnableToRenew"},
		{"a token we signed but never issued", ours(t, ls.testServer, "avouch"), "unknown token", "wst:UnableToRenew"},
		{"a token signed by our key under another issuer name", ours(t, ls.testServer, "someone-else"), "unknown issuer", "wst:UnableToRenew"},
	}
	for _, c := range cases {
		t.Run(c.name+" validates as invalid", func(t *testing.T) {
			ok, reason := ls.status(c.token)
			if ok || reason != c.wantReason {
				t.Fatalf("valid=%v reason=%q, want invalid %q", ok, reason, c.wantReason)
			}
		})
		t.Run(c.name+" is not renewed", func(t *testing.T) {
			_, fe := ls.do("alice", "Renew", c.token, false)
			if fe == nil || fe.Code != c.wantRenewErr {
				t.Fatalf("renew fault %v, want %s", fe, c.wantRenewErr)
			}
		})
	}
	t.Run("the good token still validates", func(t *testing.T) {
		if ok, reason := ls.status(good); !ok {
			t.Fatal(reason)
		}
	})
}

func TestOnlyTheSubjectOrAnAdminMayRenewOrCancel(t *testing.T) {
	ls := newLifecycleServer(t)
	alices := ls.issue("alice", "2.0", nil)
	bobs := ls.issue("bob", "1.1", nil)
	if _, fe := ls.do("bob", "Renew", alices, false); fe == nil || fe.Code != "wst:RequestFailed" {
		t.Fatalf("bob renewed alice's token: %v", fe)
	}
	if _, fe := ls.do("bob", "Cancel", alices, false); fe == nil || fe.Code != "wst:RequestFailed" {
		t.Fatalf("bob cancelled alice's token: %v", fe)
	}
	if _, fe := ls.do("bob", "Renew", bobs, false); fe != nil {
		t.Fatalf("bob could not renew his own token: %v", fe)
	}
	if _, fe := ls.do("alice", "Cancel", bobs, false); fe != nil { // alice is an admin
		t.Fatalf("an admin could not cancel another user's token: %v", fe)
	}
	if ok, reason := ls.status(bobs); ok || reason != "cancelled" {
		t.Fatalf("after cancel: valid=%v %q", ok, reason)
	}
	if _, fe := ls.do("bob", "Renew", bobs, false); fe == nil || fe.Code != "wst:UnableToRenew" {
		t.Fatalf("renew after cancel: %v", fe)
	}
}

func TestRenewalPolicyAndExpiry(t *testing.T) {
	ls := newLifecycleServer(t)
	start := time.Now()
	ls.Clock.Set(start)
	plain := ls.issue("alice", "2.0", nil)
	withRenewing := func(attrs string) func(string) string {
		return func(s string) string {
			return strings.Replace(s, "</wst:RequestSecurityToken>", "<wst:Renewing "+attrs+"/></wst:RequestSecurityToken>", 1)
		}
	}
	never := ls.issue("alice", "2.0", withRenewing(`Allow="false"`))
	afterExpiry := ls.issue("alice", "1.1", withRenewing(`OK="true"`))
	afterExpiryLate := ls.issue("alice", "2.0", withRenewing(`OK="true"`))

	t.Run("a token issued with Allow=false is never renewed", func(t *testing.T) {
		if _, fe := ls.do("alice", "Renew", never, false); fe == nil || fe.Code != "wst:UnableToRenew" {
			t.Fatalf("%v", fe)
		}
	})
	ls.Clock.Set(start.Add(10 * time.Minute)) // all have expired (5 min)
	t.Run("an expired token is invalid", func(t *testing.T) {
		if ok, reason := ls.status(plain); ok || reason != "expired" {
			t.Fatalf("valid=%v %q", ok, reason)
		}
	})
	t.Run("an expired token without OK=true is not renewed", func(t *testing.T) {
		if _, fe := ls.do("alice", "Renew", plain, false); fe == nil || fe.Code != "wst:UnableToRenew" {
			t.Fatalf("%v", fe)
		}
	})
	t.Run("an expired token with OK=true is renewed within the window", func(t *testing.T) {
		if _, fe := ls.do("alice", "Renew", afterExpiry, false); fe != nil {
			t.Fatalf("%v", fe)
		}
	})
	ls.Clock.Set(start.Add(40 * time.Minute)) // 35 min after expiry: beyond the 30 min window
	t.Run("an expired token with OK=true is not renewed beyond the window", func(t *testing.T) {
		if _, fe := ls.do("alice", "Renew", afterExpiryLate, false); fe == nil || fe.Code != "wst:UnableToRenew" || !strings.Contains(fe.Reason, "30m") {
			t.Fatalf("%v", fe)
		}
	})
}

func TestRenewAppliesToMustMatchTheAudience(t *testing.T) {
	ls := newLifecycleServer(t)
	tok := ls.issue("alice", "2.0", nil)
	env, ctype, err := client.BuildTarget(ls.opts("alice"), "Renew", tok, false)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(env), "</wst:RequestSecurityToken>", `<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference><wsa:Address>urn:rp:other</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken>`, 1)
	r := ls.post(t, "/services/sts", ctype, []byte(bad))
	if got := faultCode(r.Body); got != "wst:InvalidRequest" {
		t.Fatalf("fault %q: %.300s", got, r.Body)
	}
}

func TestValidateTransformsBetweenSAMLVersions(t *testing.T) {
	ls := newLifecycleServer(t)
	for _, c := range []struct{ from, to string }{{"2.0", "1.1"}, {"1.1", "2.0"}} {
		t.Run("SAML "+c.from+" becomes SAML "+c.to, func(t *testing.T) {
			tok := ls.issue("alice", c.from, nil)
			o := ls.opts("alice")
			o.SAML = c.to
			_, rstr, err := client.Lifecycle(context.Background(), http.DefaultClient, o, "Validate", tok, false)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _, _, err := client.Status(rstr); err != nil || !ok {
				t.Fatalf("status %v %v", ok, err)
			}
			nt, err := client.ExtractToken(rstr)
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, ls.testServer, nt, tokenExpectations{saml11: c.to == "1.1", subjectOneOf: []string{"alice"}, audience: "urn:rp:lifecycle",
				claims: map[string]string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "alice@example.test"}})
			if idOf(nt) == idOf(tok) {
				t.Fatal("the transformed token reuses the original ID")
			}
		})
	}
}

func TestTokensSurviveARestart(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin"}, nil)
	o := &client.Options{URL: ts.URL + "/services/sts", User: "alice", Password: "Alice#pw1", AppliesTo: "urn:rp:restart"}
	_, _, tok, err := client.Issue(context.Background(), http.DefaultClient, o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *ts.Config
	ts.Close() // stop the first instance (its HTTP server keeps no state)
	srv2, err := New(context.Background(), &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	hs := httptest.NewServer(srv2.Handler)
	defer hs.Close()
	o.URL = hs.URL + "/services/sts"
	ctx := context.Background()
	_, rstr, err := client.Lifecycle(ctx, http.DefaultClient, o, "Validate", tok, true)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, reason, _ := client.Status(rstr); !ok {
		t.Fatalf("after restart: invalid (%s)", reason)
	}
	if _, _, err := client.Lifecycle(ctx, http.DefaultClient, o, "Renew", tok, false); err != nil {
		t.Fatalf("renew after restart: %v", err)
	}
	if _, _, err := client.Lifecycle(ctx, http.DefaultClient, o, "Cancel", tok, false); err != nil {
		t.Fatalf("cancel after restart: %v", err)
	}
	_, rstr, _ = client.Lifecycle(ctx, http.DefaultClient, o, "Validate", tok, true)
	if ok, _, reason, _ := client.Status(rstr); ok || reason != "cancelled" {
		t.Fatalf("after cancel: %v %q", ok, reason)
	}
	// The signing key was reloaded, not regenerated.
	pemCert, _ := keys.ActiveCertPEM(ctx, srv2.Store, keys.PurposeSigning)
	if string(pemCert) != string(ts.Signing.CertPEM) {
		t.Fatal("signing key changed across the restart")
	}
}

func TestBatchRequests(t *testing.T) {
	ls := newLifecycleServer(t)
	o := ls.opts("alice")
	env, ctype, err := client.BuildIssue(o)
	if err != nil {
		t.Fatal(err)
	}
	s := string(env)
	i, j := strings.Index(s, "<wst:RequestSecurityToken>"), strings.Index(s, "</wst:RequestSecurityToken>")+len("</wst:RequestSecurityToken>")
	one := s[i:j]
	item := func(tokenType, aud string) string {
		x := strings.Replace(one, "oasis-wss-saml-token-profile-1.1#SAMLV2.0", tokenType, 1)
		x = strings.Replace(x, "200512/Issue</wst:RequestType>", "200512/BatchIssue</wst:RequestType>", 1)
		return strings.Replace(x, "</wst:RequestSecurityToken>", `<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference><wsa:Address>`+aud+`</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken>`, 1)
	}
	batch := func(items ...string) []byte {
		b := s[:i] + "<wst:RequestSecurityTokenCollection>" + strings.Join(items, "") + "</wst:RequestSecurityTokenCollection>" + s[j:]
		return []byte(strings.Replace(b, "200512/RST/Issue<", "200512/RSTC/BatchIssue<", 1))
	}
	t.Run("three Issue requests of mixed SAML versions return three tokens in order", func(t *testing.T) {
		r := ls.post(t, "/services/sts", ctype, batch(item("oasis-wss-saml-token-profile-1.1#SAMLV2.0", "urn:one"),
			item("oasis-wss-saml-token-profile-1.1#SAMLV1.1", "urn:two"), item("oasis-wss-saml-token-profile-1.1#SAMLV2.0", "urn:three")))
		if r.Status != 200 {
			t.Fatalf("%d %.400s", r.Status, r.Body)
		}
		if !strings.Contains(r.Body, "RSTRC/BatchIssueFinal") {
			t.Error("response action is not BatchIssueFinal")
		}
		parts := strings.Split(r.Body, "<wst:RequestSecurityTokenResponse>")[1:]
		if len(parts) != 3 {
			t.Fatalf("%d responses", len(parts))
		}
		for k, want := range []struct {
			aud string
			v11 bool
		}{{"urn:one", false}, {"urn:two", true}, {"urn:three", false}} {
			tok, err := client.ExtractToken([]byte(parts[k]))
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, ls.testServer, tok, tokenExpectations{saml11: want.v11, subjectOneOf: []string{"alice"}, audience: want.aud})
		}
	})
	t.Run("a batch mixing RequestTypes is refused", func(t *testing.T) {
		tok := ls.issue("alice", "2.0", nil)
		validate := `<wst:RequestSecurityToken><wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/BatchValidate</wst:RequestType><wst:ValidateTarget>` + string(tok) + `</wst:ValidateTarget></wst:RequestSecurityToken>`
		r := ls.post(t, "/services/sts", ctype, batch(item("oasis-wss-saml-token-profile-1.1#SAMLV2.0", "urn:one"), validate))
		if got := faultCode(r.Body); got != "wst:InvalidRequest" || !strings.Contains(r.Body, "mix") {
			t.Fatalf("fault %q: %.300s", got, r.Body)
		}
	})
}

// TestHousekeepingPurgesTokenRecordsPastTheirRenewWindow: records are kept
// while a token may still be renewed (renew_window after expiry, plus an
// hour of grace), then deleted, so the table does not grow forever.
func TestHousekeepingPurgesTokenRecordsPastTheirRenewWindow(t *testing.T) {
	ls := newLifecycleServer(t)
	start := time.Now()
	ls.Clock.Set(start)
	tok := ls.issue("alice", "2.0", nil)
	id := idOf(tok)
	expires := start.Add(5 * time.Minute) // the default lifetime
	window := ls.Core.Config().RenewWindow
	ctx := t.Context()

	ls.purge(ctx, expires.Add(window+tokenRecordGrace-time.Second))
	if _, err := ls.Store.GetToken(ctx, id); err != nil {
		t.Fatalf("record purged while still within its renew window and grace: %v", err)
	}
	ls.purge(ctx, expires.Add(window+tokenRecordGrace+time.Second))
	if _, err := ls.Store.GetToken(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("record still there after its renew window and grace: %v", err)
	}
}
