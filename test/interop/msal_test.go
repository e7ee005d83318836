package interop

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/avouch/avouch/internal/testutil"
)

// TestMSALWSTrustLegGetsAToken runs the WS-Trust leg of MSAL's ADFS
// username/password flow (msal.wstrust_request.send_request) for both SOAP
// actions it knows. MSAL sends no TokenType, so the token is the server's
// default type, which MSAL reads back from the RSTR; MSAL cuts the assertion
// out of the response by text, and that text is what we verify.
func TestMSALWSTrustLegGetsAToken(t *testing.T) {
	srv := sharedServer(t)
	alice := fixtureUsers[1] // msal users sign in as user@domain
	const audience = "urn:federation:MicrosoftOnline"
	for _, c := range []struct{ name, version string }{
		{"msal with ACTION_13 (WS-Trust 1.3) gets a token and its TokenType", "13"},
		{"msal with ACTION_2005 (WS-Trust 2005/02) gets a token and its TokenType", "2005"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			python := testutil.PythonModule(t, "msal")
			cmd := exec.Command(python, "clients/msal_issue.py", "--url", srv.STS, "--version", c.version,
				"--user", alice.Name, "--password", alice.Password, "--audience", audience)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("msal client crashed: %v\n%s", err, stderr.String())
			}
			var r struct {
				OK    bool   `json:"ok"`
				Token string `json:"token"`
				Type  string `json:"type"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("msal client output: %v\n%s", err, out)
			}
			if !r.OK {
				t.Fatalf("msal got no token: %s", r.Error)
			}
			saml := ""
			switch r.Type {
			case tokenSAML20, nsSAML2:
				saml = "2.0"
			case tokenSAML11, nsSAML1:
				saml = "1.1"
			default:
				t.Fatalf("msal read TokenType %q, which is no SAML token type it knows", r.Type)
			}
			verifyToken(t, srv, []byte(r.Token), r.Type, expect{
				SAML: saml, User: alice.Name, Audience: audience, Lifetime: defaultLifetime,
			})
		})
	}
}
