package metadata

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/testutil"
)

const (
	mex13   = "https://sts.example.test/adfs/services/trust/13/usernamemixed"
	mex2005 = "https://sts.example.test/adfs/services/trust/2005/usernamemixed"
)

var adfsPair = []Endpoint{{URL: mex13, Trust: Trust13, Name: "UsernameMixed13"}, {URL: mex2005, Trust: Trust2005, Name: "UsernameMixed2005"}}

func TestMEXOffersEachEndpointWithItsOwnSOAP12BindingAndPolicy(t *testing.T) {
	root := parse(t, MEX(MEXOptions{Endpoints: adfsPair}))
	if root.name.Space != NSWSDL || root.name.Local != "definitions" {
		t.Fatalf("root is %v, want wsdl:definitions (msal reads bindings and policies as its children)", root.name)
	}
	// msal dereferences soap12:binding in every wsdl:binding: a SOAP 1.1
	// binding anywhere in the document breaks it.
	if n := len(root.all(NSWSDLSOAP11, "binding")); n != 0 {
		t.Errorf("MEX has %d SOAP 1.1 bindings, want none", n)
	}
	policies := map[string]*node{}
	for _, p := range root.children {
		if p.name.Space == NSPolicy2004 && p.name.Local == "Policy" {
			policies["#"+p.attrNS(NSWSU, "Id")] = p
		}
	}
	bindings := map[string]*node{}
	for _, b := range root.children {
		if b.name.Space == NSWSDL && b.name.Local == "binding" {
			bindings[b.attr("name")] = b
		}
	}
	ports := root.all(NSWSDL, "port")
	if len(ports) != len(adfsPair) {
		t.Fatalf("%d ports, want %d", len(ports), len(adfsPair))
	}
	for i, ep := range adfsPair {
		t.Run("the "+ep.Trust.String()+" endpoint has a port, binding and policy of its own", func(t *testing.T) {
			port := ports[i]
			if port.attr("name") != ep.Name {
				t.Errorf("port %d is %q, want %q (endpoints keep the order they were offered in)", i, port.attr("name"), ep.Name)
			}
			addrs := port.all(NSAddressing, "Address")
			if len(addrs) != 1 || addrs[0].text.String() != ep.URL {
				t.Errorf("port %s wsa10:EndpointReference address, want %q", ep.Name, ep.URL)
			}
			if a := port.all(NSWSDLSOAP12, "address"); len(a) != 1 || a[0].attr("location") != ep.URL {
				t.Errorf("port %s soap12:address, want %q", ep.Name, ep.URL)
			}
			_, bname, _ := strings.Cut(port.attr("binding"), ":")
			b := bindings[bname]
			if b == nil {
				t.Fatalf("port %s names binding %q, which does not exist", ep.Name, bname)
			}
			ops := b.all(NSWSDLSOAP12, "operation")
			wantAction := profileOf(ep.Trust).NS + "/RST/Issue"
			if len(ops) == 0 || ops[0].attr("soapAction") != wantAction {
				t.Errorf("binding %s: first operation's soapAction must be %q (msal takes it as the endpoint's action)", bname, wantAction)
			}
			refs := b.all(NSPolicy2004, "PolicyReference")
			if len(refs) != 1 || policies[refs[0].attr("URI")] == nil {
				t.Fatalf("binding %s does not refer to a policy of the document", bname)
			}
			p := policies[refs[0].attr("URI")]
			sp := profileOf(ep.Trust).SP
			if len(p.all(sp.NS, "TransportBinding")) != 1 || len(p.all(sp.NS, sp.SignedTokens)) != 1 {
				t.Errorf("policy %s is not a %s usernamemixed policy over https", refs[0].attr("URI"), sp.NS)
			}
		})
	}
}

func TestMEXNamesNeverCollide(t *testing.T) {
	// Two endpoints of one version without names, and a name given twice.
	root := parse(t, MEX(MEXOptions{Endpoints: []Endpoint{
		{URL: "https://a.test/1"}, {URL: "https://a.test/2"}, {URL: "https://a.test/3", Name: "X"}, {URL: "https://a.test/4", Name: "X"},
	}}))
	seen := map[string]bool{}
	for _, local := range []string{"port", "binding"} {
		for _, n := range root.all(NSWSDL, local) {
			if key := local + ":" + n.attr("name"); seen[key] {
				t.Errorf("two %ss named %q", local, n.attr("name"))
			} else {
				seen[key] = true
			}
		}
	}
	for _, p := range root.all(NSPolicy2004, "Policy") {
		if id := p.attrNS(NSWSU, "Id"); id != "" {
			if seen["id:"+id] {
				t.Errorf("two policies with wsu:Id %q", id)
			}
			seen["id:"+id] = true
		}
	}
	if n := len(root.all(NSWSDL, "port")); n != 4 {
		t.Errorf("%d ports, want 4", n)
	}
}

// msalPick runs msal's own MEX reader on doc and returns what it picked
// (address and action), or nil.
func msalPick(t *testing.T, doc []byte) map[string]string {
	t.Helper()
	python := testutil.PythonModule(t, "msal")
	file := filepath.Join(t.TempDir(), "mex.xml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `
import json, sys, msal.mex
json.dump(msal.mex.Mex(open(sys.argv[1], encoding="utf-8").read()).get_wstrust_username_password_endpoint(), sys.stdout)
`
	var stderr bytes.Buffer
	cmd := exec.Command(python, "-c", script, file)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("msal's MEX reader failed on our document: %v\n%s", err, stderr.String())
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return got
}

func TestMSALsMEXReaderPicksTheEndpointWeMeanIt(t *testing.T) {
	e13 := Endpoint{URL: mex13, Trust: Trust13}
	e2005 := Endpoint{URL: mex2005, Trust: Trust2005}
	for _, c := range []struct {
		name       string
		endpoints  []Endpoint
		wantAddr   string
		wantAction string
	}{
		{"msal offered both picks the WS-Trust 1.3 usernamemixed endpoint", []Endpoint{e13, e2005}, mex13, NSTrust13 + "/RST/Issue"},
		{"msal picks 1.3 even when the 2005 endpoint is listed first", []Endpoint{e2005, e13}, mex13, NSTrust13 + "/RST/Issue"},
		{"msal offered only the 2005 endpoint picks it", []Endpoint{e2005}, mex2005, NSTrust2005 + "/RST/Issue"},
		// Over plain http our policy has no TransportBinding (nothing
		// protects the password) and msal refuses http addresses anyway:
		// nothing must be picked rather than something insecure.
		{"msal offered only plain-http endpoints picks nothing",
			[]Endpoint{{URL: "http://127.0.0.1:1/adfs/services/trust/13/usernamemixed"}}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each run starts a Python interpreter
			got := msalPick(t, MEX(MEXOptions{Endpoints: c.endpoints}))
			if got["address"] != c.wantAddr || got["action"] != c.wantAction {
				t.Errorf("msal picked %v, want address %q action %q", got, c.wantAddr, c.wantAction)
			}
		})
	}
}

func serveMEX(t *testing.T) *httptest.Server {
	t.Helper()
	h := &MEXHandler{Limits: safexml.Limits{MaxBytes: 64 << 10}, Options: func(r *http.Request) MEXOptions {
		return MEXOptions{Endpoints: adfsPair}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func transferGet(soapNS, wsaNS, action, extraHeader, body string) string {
	return `<s:Envelope xmlns:s="` + soapNS + `" xmlns:a="` + wsaNS + `"><s:Header>` +
		`<a:Action s:mustUnderstand="1">` + action + `</a:Action>` +
		`<a:MessageID>urn:uuid:7d1e0c4a-0000-4000-8000-000000000001</a:MessageID>` +
		`<a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>` +
		`<a:To s:mustUnderstand="1">https://sts.example.test/adfs/services/trust/mex</a:To>` + extraHeader +
		`</s:Header><s:Body>` + body + `</s:Body></s:Envelope>`
}

const (
	soap12NS = "http://www.w3.org/2003/05/soap-envelope"
	soap11NS = "http://schemas.xmlsoap.org/soap/envelope/"
)

func TestMEXAnswersWSTransferGetWithTheSameDocument(t *testing.T) {
	srv := serveMEX(t)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantDefs := bytes.TrimSpace(bytes.TrimPrefix(plain, []byte(xmlDecl)))
	if !bytes.HasPrefix(wantDefs, []byte("<wsdl:definitions")) {
		t.Fatalf("GET does not return the wsdl:definitions:\n%.200s", plain)
	}

	for _, c := range []struct {
		name, soapNS, ctype, wsaNS, action, body, wantAction string
	}{
		{"WS-Transfer Get over SOAP 1.2 with WS-Addressing 1.0", soap12NS, "application/soap+xml; charset=utf-8",
			NSAddressing, ActionTransferGet, "", ActionTransferGetResponse},
		{"WS-Transfer Get over SOAP 1.1 with WS-Addressing 2004/08", soap11NS, "text/xml; charset=utf-8",
			NSAddressing2004, ActionTransferGet, "", ActionTransferGetResponse},
		{"WS-MetadataExchange GetMetadata for the WSDL dialect", soap12NS, "application/soap+xml; charset=utf-8",
			NSAddressing, ActionGetMetadata, `<wsx:GetMetadata xmlns:wsx="` + NSMEX + `"><wsx:Dialect>` + DialectWSDL + `</wsx:Dialect></wsx:GetMetadata>`, ActionGetMetadataResponse},
	} {
		t.Run(c.name+" returns the GET document in a MetadataSection", func(t *testing.T) {
			resp, err := http.Post(srv.URL, c.ctype, strings.NewReader(transferGet(c.soapNS, c.wsaNS, c.action, "", c.body)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("HTTP %d:\n%s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, strings.Split(c.ctype, ";")[0]) {
				t.Errorf("Content-Type %q, want the request's SOAP version (%s)", ct, c.ctype)
			}
			doc, err := safexml.Parse(body, safexml.DefaultLimits)
			if err != nil {
				t.Fatalf("response does not parse: %v", err)
			}
			env := doc.Root()
			if env.NamespaceURI() != c.soapNS || env.Tag != "Envelope" {
				t.Fatalf("response is not a %s envelope", c.soapNS)
			}
			action := env.FindElement("./Header/Action")
			if action == nil || action.NamespaceURI() != c.wsaNS || safexml.Text(action) != c.wantAction {
				t.Errorf("wsa:Action of the response, want %q in %s", c.wantAction, c.wsaNS)
			}
			if rel := env.FindElement("./Header/RelatesTo"); rel == nil || safexml.Text(rel) != "urn:uuid:7d1e0c4a-0000-4000-8000-000000000001" {
				t.Errorf("wsa:RelatesTo must carry the request's MessageID")
			}
			sec := env.FindElement("./Body/Metadata/MetadataSection")
			if sec == nil || sec.NamespaceURI() != NSMEX || sec.SelectAttrValue("Dialect", "") != DialectWSDL {
				t.Fatalf("no wsx:Metadata/wsx:MetadataSection of dialect WSDL:\n%s", body)
			}
			// The section holds exactly the bytes a GET returns.
			if !bytes.Contains(body, wantDefs) {
				t.Errorf("the MetadataSection does not hold the document GET returns")
			}
		})
	}
}

func TestMEXRefusesWhatIsNotAMetadataRequest(t *testing.T) {
	srv := serveMEX(t)
	const ctype = "application/soap+xml; charset=utf-8"
	for _, c := range []struct {
		name       string
		body       string
		wantStatus int
		wantInBody string
	}{
		{"an RST posted to the MEX address is an unsupported action",
			transferGet(soap12NS, NSAddressing, NSTrust13+"/RST/Issue", "", ""), 400, "ActionNotSupported"},
		{"a request without wsa:Action is refused naming the missing header",
			`<s:Envelope xmlns:s="` + soap12NS + `"><s:Body/></s:Envelope>`, 400, "MessageAddressingHeaderRequired"},
		{"an unknown mustUnderstand header is not understood",
			transferGet(soap12NS, NSAddressing, ActionTransferGet, `<x:Secret xmlns:x="urn:x" s:mustUnderstand="true"/>`, ""), 500, "NotUnderstood"},
		{"a DOCTYPE is refused before anything is read",
			`<!DOCTYPE x [<!ENTITY a "b">]>` + transferGet(soap12NS, NSAddressing, ActionTransferGet, "", ""), 400, "DTDs are not allowed"},
		{"a body over the size limit gets 413",
			transferGet(soap12NS, NSAddressing, ActionTransferGet, "", "<x>"+strings.Repeat("a", 70<<10)+"</x>"), 413, "too large"},
		{"an unknown envelope namespace is a version mismatch",
			`<s:Envelope xmlns:s="urn:not-soap"><s:Body/></s:Envelope>`, 500, "VersionMismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL, ctype, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.wantStatus || !strings.Contains(string(body), c.wantInBody) {
				t.Errorf("HTTP %d, want %d with %q:\n%s", resp.StatusCode, c.wantStatus, c.wantInBody, body)
			}
		})
	}
}
