package browser

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"
)

// passportCase is one input of js/passport_check.js.
type passportCase struct {
	Name       string `json:"name"`
	WResult    string `json:"wresult"`
	WCtx       string `json:"wctx,omitempty"`
	Realm      string `json:"realm"`
	Cert       string `json:"cert,omitempty"`
	Thumbprint string `json:"thumbprint,omitempty"`
}

type passportResult struct {
	Name    string         `json:"name"`
	OK      bool           `json:"ok"`
	Error   string         `json:"error"`
	Profile map[string]any `json:"profile"`
}

// TestPassportAcceptsOurWResult hands avouch's wresults to
// passport-wsfed-saml2 as its wsignin1.0 callback would receive them: the
// library must accept SAML 1.1 and SAML 2.0 tokens for its realm (checking
// the signature by certificate or by thumbprint, the audience and the
// lifetime) and refuse a token for another realm, a tampered one, an
// expired one and one signed by a key it does not trust.
func TestPassportAcceptsOurWResult(t *testing.T) {
	nodeModules(t)
	av := startAvouch(t)
	const realmA, realmB = "urn:avouch:passport:a", "https://passport-b.example/"
	for _, rp := range []struct{ name, realm string }{{"Passport A", realmA}, {"Passport B", realmB}} {
		newRelyingPartyAt(t, av, rp.name, rp.realm)
	}
	certB64 := base64.StdEncoding.EncodeToString(av.cert().Raw)
	sum := sha1.Sum(av.cert().Raw)
	thumb := hex.EncodeToString(sum[:])

	ua := newUserAgent(t)
	signIn := func(realm, wreq string) map[string]string {
		q := url.Values{"wa": {"wsignin1.0"}, "wtrealm": {realm}, "wctx": {"ctx-" + realm}}
		if wreq != "" {
			q.Set("wreq", wreq)
		}
		return ua.wresult(av.URL, q)
	}
	saml2 := `<trust:RequestSecurityToken xmlns:trust="http://docs.oasis-open.org/ws-sx/ws-trust/200512">` +
		`<trust:TokenType>http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0</trust:TokenType></trust:RequestSecurityToken>`
	saml11A := signIn(realmA, "")
	saml20A := signIn(realmA, saml2)
	av.Clock.Set(-2 * time.Hour)
	expired := signIn(realmA, "")
	av.Clock.Set(0)
	tampered := strings.Replace(saml11A["wresult"], "alice@example.test", "mallory@example.test", 1)
	if tampered == saml11A["wresult"] {
		t.Fatal("the e-mail claim is not in the SAML 1.1 token")
	}

	tests := []struct {
		c      passportCase
		wantOK bool
		errHas string
	}{
		{passportCase{"a SAML 1.1 token is accepted by certificate thumbprint", saml11A["wresult"], saml11A["wctx"], realmA, "", thumb}, true, ""},
		{passportCase{"a SAML 1.1 token is accepted by certificate", saml11A["wresult"], saml11A["wctx"], realmA, certB64, ""}, true, ""},
		{passportCase{"a SAML 2.0 token asked for in wreq is accepted by certificate", saml20A["wresult"], saml20A["wctx"], realmA, certB64, ""}, true, ""},
		{passportCase{"a SAML 2.0 token is accepted by certificate thumbprint", saml20A["wresult"], saml20A["wctx"], realmA, "", strings.ToUpper(thumb)}, true, ""},
		{passportCase{"a SAML 1.1 token for another realm is refused", saml11A["wresult"], "", realmB, certB64, ""}, false, "Audience is invalid"},
		{passportCase{"a SAML 2.0 token for another realm is refused", saml20A["wresult"], "", realmB, "", thumb}, false, "Audience is invalid"},
		{passportCase{"a token with a changed claim is refused", tampered, "", realmA, certB64, ""}, false, ""},
		{passportCase{"an expired token is refused", expired["wresult"], "", realmA, certB64, ""}, false, "expired"},
		{passportCase{"a token checked against another certificate's thumbprint is refused", saml11A["wresult"], "", realmA, "", strings.Repeat("ab", 20)}, false, "thumbprint"},
	}
	// One Node process checks every case (Node starts in about a second on
	// a loaded machine; the cases take milliseconds).
	var cases []passportCase
	for _, tc := range tests {
		cases = append(cases, tc.c)
	}
	var results []passportResult
	runNode(t, "passport_check.js", cases, &results)
	if len(results) != len(tests) {
		t.Fatalf("%d results for %d cases", len(results), len(tests))
	}
	for i, tc := range tests {
		t.Run(tc.c.Name, func(t *testing.T) {
			r := results[i]
			if r.OK != tc.wantOK {
				t.Fatalf("passport-wsfed-saml2: ok=%v error=%q, want ok=%v", r.OK, r.Error, tc.wantOK)
			}
			if !tc.wantOK {
				if !strings.Contains(r.Error, tc.errHas) {
					t.Errorf("refused for %q, want a reason containing %q", r.Error, tc.errHas)
				}
				return
			}
			if id := r.Profile["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"]; id != user {
				t.Errorf("name identifier %v, want %s (profile %v)", id, user, r.Profile)
			}
			if email := r.Profile[claimEmail]; email != "alice@example.test" {
				t.Errorf("e-mail claim %v (profile %v)", email, r.Profile)
			}
			if iss := r.Profile["issuer"]; iss != "avouch" {
				t.Errorf("issuer %v", iss)
			}
		})
	}
}
