package metadata

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/testutil"
)

// node is a minimal namespace-resolved DOM, enough to check the WSDL's shape
// without trusting the template's own text.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     strings.Builder
}

func (n *node) attr(local string) string {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// all returns the descendants (not n itself) named {space}local, in document order.
func (n *node) all(space, local string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.name.Space == space && c.name.Local == local {
			out = append(out, c)
		}
		out = append(out, c.all(space, local)...)
	}
	return out
}

func parse(t *testing.T, doc []byte) *node {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("WSDL is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			// encoding/xml leaves an undeclared prefix in Name.Space instead
			// of failing; a declared namespace here is always a URI.
			if tok.Name.Space == "" || !strings.Contains(tok.Name.Space, ":") {
				t.Fatalf("element <%s> has no namespace or an undeclared prefix %q", tok.Name.Local, tok.Name.Space)
			}
			for _, a := range tok.Attr {
				if a.Name.Space != "" && a.Name.Space != "xmlns" && !strings.Contains(a.Name.Space, ":") {
					t.Fatalf("attribute %s:%s uses an undeclared prefix", a.Name.Space, a.Name.Local)
				}
			}
			n := &node{name: tok.Name, attrs: tok.Attr}
			if len(stack) == 0 {
				if root != nil {
					t.Fatal("WSDL has more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(tok)
			}
		case xml.Directive:
			t.Fatalf("WSDL contains a directive (DOCTYPE?): %s", tok)
		}
	}
	if root == nil {
		t.Fatal("WSDL has no root element")
	}
	return root
}

var endpoints = []struct {
	name, url string
	tls       bool
}{
	{"a plain HTTP test endpoint", "http://127.0.0.1:9443/services/sts", false},
	{"an HTTPS endpoint", "https://sts.example.test/services/sts", true},
	{"an endpoint whose URL needs escaping", "http://127.0.0.1:1/services/sts?a=1&b=<2>", false},
}

func TestWSDLDescribesBothSOAPVersionsAndAllFourOperations(t *testing.T) {
	for _, ep := range endpoints {
		t.Run("for "+ep.name, func(t *testing.T) {
			root := parse(t, WSDL(WSDLOptions{EndpointURL: ep.url}))
			if root.name != (xml.Name{Space: NSWSDL, Local: "definitions"}) {
				t.Fatalf("root is %v, want wsdl:definitions", root.name)
			}

			ports := root.all(NSWSDL, "port")
			if len(ports) != 2 {
				t.Fatalf("got %d ports, want 2 (SOAP 1.1 and SOAP 1.2)", len(ports))
			}
			for _, ns := range []string{NSWSDLSOAP11, NSWSDLSOAP12} {
				addrs := root.all(ns, "address")
				if len(addrs) != 1 || addrs[0].attr("location") != ep.url {
					t.Errorf("%s address: want exactly one with location %q", ns, ep.url)
				}
			}
			for _, a := range root.all(NSAddressing, "Address") {
				if got := a.text.String(); got != ep.url {
					t.Errorf("port EndpointReference Address = %q, want %q", got, ep.url)
				}
			}

			wantOps := []string{"Issue", "Renew", "Validate", "Cancel"}
			for _, b := range root.all(NSWSDL, "binding") {
				var soapNS string
				switch {
				case len(b.all(NSWSDLSOAP11, "binding")) == 1:
					soapNS = NSWSDLSOAP11
				case len(b.all(NSWSDLSOAP12, "binding")) == 1:
					soapNS = NSWSDLSOAP12
				default:
					t.Fatalf("binding %q has no SOAP 1.1 or 1.2 binding element", b.attr("name"))
				}
				ops := b.all(NSWSDL, "operation")
				if len(ops) != len(wantOps) {
					t.Fatalf("binding %q has %d operations, want %d", b.attr("name"), len(ops), len(wantOps))
				}
				for i, op := range ops {
					if op.attr("name") != wantOps[i] {
						t.Errorf("binding %q operation %d is %q, want %q", b.attr("name"), i, op.attr("name"), wantOps[i])
					}
					want := NSTrust13 + "/RST/" + wantOps[i]
					so := op.all(soapNS, "operation")
					if len(so) != 1 || so[0].attr("soapAction") != want {
						t.Errorf("binding %q operation %s: soapAction, want %q", b.attr("name"), wantOps[i], want)
					}
				}
				if refs := b.all(NSPolicy2004, "PolicyReference"); len(refs) != 1 || refs[0].attr("URI") != "#"+policyID {
					t.Errorf("binding %q does not refer to the endpoint policy", b.attr("name"))
				}
			}

			// The schema must declare what a client sets on the RST.
			declared := map[string]bool{}
			for _, s := range root.all(NSXSD, "schema") {
				for _, e := range s.children {
					if e.name == (xml.Name{Space: NSXSD, Local: "element"}) {
						declared["{"+s.attr("targetNamespace")+"}"+e.attr("name")] = true
					}
				}
			}
			for _, want := range []string{
				"{" + NSTrust13 + "}RequestSecurityToken",
				"{" + NSTrust13 + "}RequestSecurityTokenResponse",
				"{" + NSTrust13 + "}RequestSecurityTokenResponseCollection",
				"{" + NSTrust13 + "}TokenType",
				"{" + NSTrust13 + "}RequestType",
				"{" + NSTrust13 + "}KeyType",
				"{" + NSTrust13 + "}Claims",
				"{" + NSTrust13 + "}Lifetime",
				"{" + NSPolicy2004 + "}AppliesTo",
				"{" + NSAddressing + "}EndpointReference",
				"{" + NSIdentity + "}ClaimType",
			} {
				if !declared[want] {
					t.Errorf("schema does not declare global element %s", want)
				}
			}
		})
	}
}

func TestWSDLPolicyClaimsOnlyWhatTheTransportProvides(t *testing.T) {
	for _, ep := range endpoints {
		t.Run("for "+ep.name, func(t *testing.T) {
			root := parse(t, WSDL(WSDLOptions{EndpointURL: ep.url}))
			policies := root.all(NSPolicy2004, "Policy")
			if len(policies) == 0 || policies[0].attrNS(NSWSU, "Id") != policyID {
				t.Fatalf("first wsp:Policy must carry wsu:Id=%q", policyID)
			}
			if got := len(root.all(NSSecPolicy, "WssUsernameToken10")); got != 1 {
				t.Errorf("policy has %d WssUsernameToken10 assertions, want 1", got)
			}
			transport := len(root.all(NSSecPolicy, "TransportBinding")) > 0
			signedEncrypted := len(root.all(NSSecPolicy, "SignedEncryptedSupportingTokens")) > 0
			plain := len(root.all(NSSecPolicy, "SupportingTokens")) > 0
			signed := len(root.all(NSSecPolicy, "SignedSupportingTokens")) > 0
			if ep.tls && !(transport && signedEncrypted && !plain) {
				t.Errorf("HTTPS endpoint: want TransportBinding + SignedEncryptedSupportingTokens, got transport=%v signedEncrypted=%v plain=%v", transport, signedEncrypted, plain)
			}
			if !ep.tls && (transport || signedEncrypted || signed || !plain) {
				t.Errorf("plain HTTP endpoint: want only SupportingTokens (nothing signs or encrypts), got transport=%v signedEncrypted=%v signed=%v plain=%v", transport, signedEncrypted, signed, plain)
			}
		})
	}
}

func (n *node) attrNS(space, local string) string {
	for _, a := range n.attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// zeepProbe loads a WSDL file with zeep, lists what zeep understood, and
// renders an Issue request on the SOAP 1.2 port with every RST child the
// interop tests use, so that a schema zeep cannot map to keyword arguments
// fails here rather than against a live server.
const zeepProbe = `
import json, sys, zeep
from lxml import etree
client = zeep.Client(sys.argv[1])
out = {"ports": {}, "operations": {}}
for service in client.wsdl.services.values():
    for name, port in service.ports.items():
        out["ports"][name] = port.binding.__class__.__name__
        out["operations"][name] = sorted(port.binding._operations)
svc = client.bind("SecurityTokenService", "SecurityTokenServiceSoap12")
msg = client.create_message(svc, "Issue",
    TokenType="urn:oasis:names:tc:SAML:2.0:assertion",
    RequestType="http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue",
    AppliesTo={"EndpointReference": {"Address": "urn:rp"}},
    Claims={"Dialect": "http://schemas.xmlsoap.org/ws/2005/05/identity",
            "ClaimType": [{"Uri": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "Optional": True}]},
    Lifetime={"Created": "2026-01-01T00:00:00Z", "Expires": "2026-01-01T00:05:00Z"},
    KeyType="http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer")
out["request"] = etree.tostring(msg).decode()
json.dump(out, sys.stdout)
`

func TestZeepBuildsAClientFromTheWSDL(t *testing.T) {
	python := testutil.PythonModule(t, "zeep")
	for _, ep := range endpoints[:2] {
		t.Run("for "+ep.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "sts.wsdl")
			if err := os.WriteFile(file, WSDL(WSDLOptions{EndpointURL: ep.url}), 0o644); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(python, "-c", zeepProbe, file)
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			if err != nil {
				t.Fatalf("zeep could not use the WSDL: %v\n%s", err, stderr.String())
			}
			var got struct {
				Ports      map[string]string
				Operations map[string][]string
				Request    string
			}
			if err := json.Unmarshal(stdout, &got); err != nil {
				t.Fatalf("probe output: %v\n%s", err, stdout)
			}
			wantPorts := map[string]string{
				"SecurityTokenServiceSoap11": "Soap11Binding",
				"SecurityTokenServiceSoap12": "Soap12Binding",
			}
			for port, binding := range wantPorts {
				if got.Ports[port] != binding {
					t.Errorf("zeep sees port %s as %q, want %q", port, got.Ports[port], binding)
				}
				if ops := strings.Join(got.Operations[port], ","); ops != "Cancel,Issue,Renew,Validate" {
					t.Errorf("zeep sees operations %q on %s", ops, port)
				}
			}
			// The request zeep renders must carry each RST child in the
			// namespaces the STS (and .NET) expect.
			req := parse(t, []byte(got.Request))
			for _, want := range []xml.Name{
				{Space: "http://www.w3.org/2003/05/soap-envelope", Local: "Body"},
				{Space: NSAddressing, Local: "Action"},
				{Space: NSTrust13, Local: "RequestSecurityToken"},
				{Space: NSTrust13, Local: "TokenType"},
				{Space: NSTrust13, Local: "RequestType"},
				{Space: NSPolicy2004, Local: "AppliesTo"},
				{Space: NSAddressing, Local: "EndpointReference"},
				{Space: NSAddressing, Local: "Address"},
				{Space: NSTrust13, Local: "Claims"},
				{Space: NSIdentity, Local: "ClaimType"},
				{Space: NSTrust13, Local: "Lifetime"},
				{Space: NSWSU, Local: "Created"},
				{Space: NSWSU, Local: "Expires"},
				{Space: NSTrust13, Local: "KeyType"},
			} {
				if len(req.all(want.Space, want.Local)) != 1 {
					t.Errorf("zeep's Issue request lacks {%s}%s:\n%s", want.Space, want.Local, got.Request)
				}
			}
			if a := req.all(NSAddressing, "Action"); len(a) == 1 && a[0].text.String() != NSTrust13+"/RST/Issue" {
				t.Errorf("zeep sends wsa:Action %q", a[0].text.String())
			}
		})
	}
}
