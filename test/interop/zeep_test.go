package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/testutil"
)

// zeepResult is what clients/zeep_issue.py prints.
type zeepResult struct {
	OK              bool              `json:"ok"`
	Status          int               `json:"status"`
	Request         string            `json:"request"`
	Response        string            `json:"response"`
	ParsedAssertion *string           `json:"parsed_assertion"`
	Lifetime        []string          `json:"lifetime"` // Created, Expires sent
	Fault           map[string]string `json:"fault"`
	Error           string            `json:"error"`
}

type zeepCall struct {
	Mode      string // wsdl | raw
	SOAP      string // 1.1 | 1.2
	User      user
	Digest    bool
	TokenType string
	AppliesTo string
	Claims    []string
	Lifetime  time.Duration // 0: none requested
}

func runZeep(t *testing.T, srv *server, c zeepCall) zeepResult {
	t.Helper()
	python := testutil.PythonModule(t, "zeep")
	args := []string{"clients/zeep_issue.py", "--url", srv.STS, "--mode", c.Mode, "--soap", c.SOAP,
		"--user", c.User.Name, "--password", c.User.Password}
	if c.Digest {
		args = append(args, "--digest")
	}
	if c.TokenType != "" {
		args = append(args, "--token-type", c.TokenType)
	}
	if c.AppliesTo != "" {
		args = append(args, "--applies-to", c.AppliesTo)
	}
	for _, cl := range c.Claims {
		args = append(args, "--claim", cl)
	}
	if c.Lifetime > 0 {
		args = append(args, "--lifetime", strconv.Itoa(int(c.Lifetime.Seconds())))
	}
	cmd := exec.Command(python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zeep client crashed: %v\n%s", err, stderr.String())
	}
	var r zeepResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("zeep client output: %v\n%s\n%s", err, out, stderr.String())
	}
	return r
}

// TestZeepGetsVerifiableTokens drives python3-zeep in both ways people use
// it — a client generated from our WSDL, and a hand-built RST posted through
// zeep's transport — over SOAP 1.1 and 1.2, with PasswordText and
// PasswordDigest, for SAML 1.1 and 2.0 tokens. The WSDL calls ask for a
// 10-minute Lifetime; the raw ones take the default (5 minutes) and spell
// the token type as the assertion namespace, the other spelling clients use.
func TestZeepGetsVerifiableTokens(t *testing.T) {
	srv := sharedServer(t)
	type tc struct {
		call zeepCall
		want expect
	}
	var cases []tc
	for _, mode := range []string{"wsdl", "raw"} {
		for _, soap := range []string{"1.1", "1.2"} {
			for _, digest := range []bool{false, true} {
				for _, saml := range []string{"1.1", "2.0"} {
					u := textUser
					if digest {
						u = digestUser
					}
					c := zeepCall{Mode: mode, SOAP: soap, User: u, Digest: digest,
						AppliesTo: fmt.Sprintf("urn:interop:zeep:%s:soap%s", mode, soap)}
					w := expect{SAML: saml, User: u.Name, Audience: c.AppliesTo, Lifetime: defaultLifetime}
					switch {
					case mode == "wsdl" && saml == "2.0":
						c.TokenType = tokenSAML20
					case mode == "wsdl":
						c.TokenType = tokenSAML11
					case saml == "2.0":
						c.TokenType = nsSAML2
					default:
						c.TokenType = nsSAML1
					}
					if mode == "wsdl" {
						c.Lifetime = 10 * time.Minute
						w.Lifetime = c.Lifetime
					}
					cases = append(cases, tc{c, w})
				}
			}
		}
	}
	for _, c := range cases {
		t.Run(zeepName(c.call, c.want.SAML), func(t *testing.T) {
			t.Parallel()
			r := runZeep(t, srv, c.call)
			checkZeepResult(t, srv, c.call, r, c.want)
		})
	}
}

// TestZeepClaimsRequestGetsClaimValues asks for identity-dialect claims the
// user has; the token must carry their values as SAML attributes.
func TestZeepClaimsRequestGetsClaimValues(t *testing.T) {
	srv := sharedServer(t)
	for _, c := range []zeepCall{
		{Mode: "wsdl", SOAP: "1.2", User: textUser, TokenType: tokenSAML20},
		{Mode: "wsdl", SOAP: "1.1", User: textUser, TokenType: tokenSAML11},
		{Mode: "raw", SOAP: "1.1", User: digestUser, Digest: true, TokenType: nsSAML2},
	} {
		saml := "2.0"
		if c.TokenType == tokenSAML11 || c.TokenType == nsSAML1 {
			saml = "1.1"
		}
		c.AppliesTo = "urn:interop:claims"
		want := expect{SAML: saml, User: c.User.Name, Audience: c.AppliesTo, Lifetime: defaultLifetime, Claims: map[string]string{}}
		for uri, v := range c.User.Claims {
			c.Claims = append(c.Claims, uri)
			want.Claims[uri] = v
		}
		t.Run(zeepName(c, saml)+" carrying the requested claims", func(t *testing.T) {
			t.Parallel()
			r := runZeep(t, srv, c)
			checkZeepResult(t, srv, c, r, want)
		})
	}
}

func zeepName(c zeepCall, saml string) string {
	how := "from our WSDL"
	if c.Mode == "raw" {
		how = "with a raw RST"
	}
	pw := "PasswordText"
	if c.Digest {
		pw = "PasswordDigest"
	}
	return fmt.Sprintf("zeep %s over SOAP %s with %s gets a SAML %s token", how, c.SOAP, pw, saml)
}

func checkZeepResult(t *testing.T, srv *server, c zeepCall, r zeepResult, want expect) {
	t.Helper()
	if !r.OK || r.Status != 200 {
		t.Fatalf("zeep got no token: status %d fault %v error %q\nrequest:\n%s\nresponse:\n%s",
			r.Status, r.Fault, r.Error, r.Request, r.Response)
	}
	if c.Mode == "wsdl" {
		// zeep parsed the RSTRC with our schema and kept the assertion.
		wantTag := "{" + nsSAML2 + "}Assertion"
		if want.SAML == "1.1" {
			wantTag = "{" + nsSAML1 + "}Assertion"
		}
		if r.ParsedAssertion == nil || *r.ParsedAssertion != wantTag {
			t.Errorf("zeep's parsed response holds assertion %v, want %s", r.ParsedAssertion, wantTag)
		}
	}
	// The server must answer in the SOAP version it was asked in.
	envNS := nsSOAP11
	if c.SOAP == "1.2" {
		envNS = nsSOAP12
	}
	if !strings.Contains(r.Response, `"`+envNS+`"`) {
		t.Errorf("response is not a SOAP %s envelope:\n%s", c.SOAP, r.Response)
	}
	// WS-Trust 1.3 answers Issue with a collection (RSTRC), even of one.
	if !strings.Contains(r.Response, "RequestSecurityTokenResponseCollection") {
		t.Errorf("WS-Trust 1.3 Issue response has no RequestSecurityTokenResponseCollection:\n%s", r.Response)
	}
	assertion, tokenType, err := extractToken([]byte(r.Response))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Response)
	}
	if c.Lifetime > 0 {
		if len(r.Lifetime) != 2 {
			t.Fatalf("zeep client did not report the Lifetime it sent")
		}
		var err1, err2 error
		want.Requested[0], err1 = time.Parse(time.RFC3339, r.Lifetime[0])
		want.Requested[1], err2 = time.Parse(time.RFC3339, r.Lifetime[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("Lifetime sent: %v %v", err1, err2)
		}
	}
	verifyToken(t, srv, assertion, tokenType, want)
}
