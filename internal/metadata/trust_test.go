package metadata

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/testutil"
)

// trustCases are the per-endpoint WSDLs of the ADFS paths: each fixes a
// WS-Trust version, and the policy must be written in the WS-SecurityPolicy
// version that goes with it.
var trustCases = []struct {
	name      string
	trust     Trust
	trustNS   string
	spNS      string
	signedTok string // supporting-token assertion over TLS
	issueOut  string // wsa:Action of the Issue response
	issueMsg  string // element of the Issue response
}{
	{"WS-Trust 1.3", Trust13, NSTrust13, NSSecPolicy, "SignedEncryptedSupportingTokens",
		NSTrust13 + "/RSTRC/IssueFinal", "RequestSecurityTokenResponseCollection"},
	{"WS-Trust 2005/02", Trust2005, NSTrust2005, NSSecPolicy2005, "SignedSupportingTokens",
		NSTrust2005 + "/RSTR/Issue", "RequestSecurityTokenResponse"},
}

func TestEachTrustVersionsWSDLSpeaksOnlyThatVersion(t *testing.T) {
	for _, tc := range trustCases {
		for _, tls := range []bool{false, true} {
			url := "http://127.0.0.1:1/adfs/services/trust/x/usernamemixed"
			if tls {
				url = "https://sts.example.test/adfs/services/trust/x/usernamemixed"
			}
			t.Run("the "+tc.name+" WSDL at "+url, func(t *testing.T) {
				root := parse(t, WSDL(WSDLOptions{EndpointURL: url, Trust: tc.trust}))
				// Every operation's soapAction and wsam:Action is in the
				// endpoint's namespace: the server refuses the other one.
				for _, soapNS := range []string{NSWSDLSOAP11, NSWSDLSOAP12} {
					ops := root.all(soapNS, "operation")
					if len(ops) != 4 {
						t.Fatalf("%d %s operations, want 4", len(ops), soapNS)
					}
					for _, op := range ops {
						if a := op.attr("soapAction"); !strings.HasPrefix(a, tc.trustNS+"/RST/") {
							t.Errorf("soapAction %q is not a %s action", a, tc.name)
						}
					}
				}
				// The Issue output names the element the server answers
				// with: an RSTRC for 1.3, a bare RSTR for 2005/02.
				var issueOutMsg string
				for _, op := range root.all(NSWSDL, "portType")[0].children {
					if op.attr("name") != "Issue" {
						continue
					}
					out := op.all(NSWSDL, "output")[0]
					if got := out.attrNS(NSAddrMeta, "Action"); got != tc.issueOut {
						t.Errorf("Issue output action %q, want %q", got, tc.issueOut)
					}
					issueOutMsg = strings.TrimPrefix(out.attr("message"), "tns:")
				}
				for _, m := range root.all(NSWSDL, "message") {
					if m.attr("name") != issueOutMsg {
						continue
					}
					_, local, _ := strings.Cut(m.all(NSWSDL, "part")[0].attr("element"), ":")
					if local != tc.issueMsg {
						t.Errorf("Issue output message %s carries %q, want %s", issueOutMsg, local, tc.issueMsg)
					}
				}
				declared := false
				for _, s := range root.all(NSXSD, "schema") {
					if s.attr("targetNamespace") == tc.trustNS {
						for _, e := range s.children {
							declared = declared || e.attr("name") == tc.issueMsg
						}
					}
					if ns := s.attr("targetNamespace"); ns == NSTrust13 && tc.trust != Trust13 || ns == NSTrust2005 && tc.trust != Trust2005 {
						t.Errorf("schema for the other trust namespace %s", ns)
					}
				}
				if !declared {
					t.Errorf("schema does not declare {%s}%s", tc.trustNS, tc.issueMsg)
				}

				// The policy is in the matching WS-SecurityPolicy version,
				// and claims the transport only over https.
				other := NSSecPolicy2005
				if tc.spNS == NSSecPolicy2005 {
					other = NSSecPolicy
				}
				if n := len(root.all(other, "UsernameToken")); n != 0 {
					t.Errorf("policy uses the other security policy namespace %s", other)
				}
				if n := len(root.all(tc.spNS, "WssUsernameToken10")); n != 1 {
					t.Errorf("%d WssUsernameToken10 in %s, want 1", n, tc.spNS)
				}
				transport := len(root.all(tc.spNS, "TransportBinding")) == 1
				signed := len(root.all(tc.spNS, tc.signedTok)) == 1
				plain := len(root.all(tc.spNS, "SupportingTokens")) == 1
				if tls != transport || tls != signed || tls == plain {
					t.Errorf("https=%v: TransportBinding=%v %s=%v SupportingTokens=%v", tls, transport, tc.signedTok, signed, plain)
				}
				if tc.trust == Trust2005 && tls {
					// 2005/07 HttpsToken requires the attribute.
					h := root.all(NSSecPolicy2005, "HttpsToken")
					if len(h) != 1 || h[0].attr("RequireClientCertificate") != "false" {
						t.Errorf("2005/07 HttpsToken must say RequireClientCertificate=\"false\"")
					}
				}
			})
		}
	}
}

func TestWSDLBindingsOptionSelectsThePorts(t *testing.T) {
	for _, c := range []struct {
		name     string
		bindings Bindings
		want     []string
	}{
		{"no choice describes both SOAP versions", 0, []string{"SecurityTokenServiceSoap11", "SecurityTokenServiceSoap12"}},
		{"SOAP12 describes only the SOAP 1.2 port", SOAP12, []string{"SecurityTokenServiceSoap12"}},
		{"SOAP11 describes only the SOAP 1.1 port", SOAP11, []string{"SecurityTokenServiceSoap11"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := parse(t, WSDL(WSDLOptions{EndpointURL: "https://sts.example.test/services/sts", Bindings: c.bindings}))
			var got []string
			for _, p := range root.all(NSWSDL, "port") {
				got = append(got, p.attr("name"))
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("ports %q, want %q", got, c.want)
			}
			if n := len(root.all(NSWSDL, "binding")); n != len(c.want) {
				t.Errorf("%d bindings, want %d", n, len(c.want))
			}
		})
	}
}

// zeepProbe2005 renders a WS-Trust 2005/02 Issue request from the 2005 WSDL,
// as the zeep interop test does against the server.
const zeepProbe2005 = `
import json, sys, zeep
from lxml import etree
client = zeep.Client(sys.argv[1])
svc = client.bind("SecurityTokenService", "SecurityTokenServiceSoap12")
msg = client.create_message(svc, "Issue",
    TokenType="urn:oasis:names:tc:SAML:2.0:assertion",
    RequestType="http://schemas.xmlsoap.org/ws/2005/02/trust/Issue",
    AppliesTo={"EndpointReference": {"Address": "urn:rp"}},
    KeyType="http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey")
json.dump({"request": etree.tostring(msg).decode()}, sys.stdout)
`

func TestZeepRendersA2005RequestFromThe2005WSDL(t *testing.T) {
	python := testutil.PythonModule(t, "zeep")
	file := filepath.Join(t.TempDir(), "sts2005.wsdl")
	if err := os.WriteFile(file, WSDL(WSDLOptions{EndpointURL: "https://sts.example.test/adfs/services/trust/2005/usernamemixed", Trust: Trust2005}), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(python, "-c", zeepProbe2005, file)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zeep could not use the 2005 WSDL: %v\n%s", err, stderr.String())
	}
	var got struct{ Request string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	req := parse(t, []byte(got.Request))
	for _, local := range []string{"RequestSecurityToken", "TokenType", "RequestType", "KeyType"} {
		if len(req.all(NSTrust2005, local)) != 1 {
			t.Errorf("zeep's request lacks {%s}%s:\n%s", NSTrust2005, local, got.Request)
		}
	}
	if len(req.all(NSTrust13, "RequestSecurityToken")) != 0 {
		t.Errorf("zeep's 2005 request uses the 1.3 namespace:\n%s", got.Request)
	}
	if a := req.all(NSAddressing, "Action"); len(a) != 1 || a[0].text.String() != NSTrust2005+"/RST/Issue" {
		t.Errorf("zeep's wsa:Action is not the 2005 Issue action:\n%s", got.Request)
	}
}
