package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/metadata"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/testutil"
)

const (
	nsTrust13   = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	nsTrust2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust"
)

// trustRST builds an Issue RST of the given WS-Trust version: the sample
// client writes 1.3; a 2005/02 request is the same message in the 2005
// namespace (RequestType, KeyType …/Bearer and wsa:Action included).
func trustRST(t *testing.T, url, version string, o client.Options) ([]byte, string) {
	t.Helper()
	var edit func(string) string
	if version == "2005" {
		edit = func(s string) string { return strings.ReplaceAll(s, nsTrust13, nsTrust2005) }
	}
	return rst(t, url, o, edit)
}

func metadataServer(t *testing.T, mutate func(*config.Config)) *testServer {
	t.Helper()
	ts := newTestServer(t, mutate)
	ts.addUser(t, "ada", "Ada-pw-1", false, []string{"admin"}, nil)
	return ts
}

func TestADFSEndpointsTakeOnlyTheirOwnTrustVersion(t *testing.T) {
	ts := metadataServer(t, nil)
	for _, c := range []struct {
		name, path, version string
		wantFault           string // "" = a token
	}{
		{"the 13/usernamemixed endpoint issues for a WS-Trust 1.3 RST", adfsTrust13Path, "13", ""},
		{"the 13/usernamemixed endpoint refuses a WS-Trust 2005/02 RST with wst:InvalidRequest", adfsTrust13Path, "2005", "wst:InvalidRequest"},
		{"the 2005/usernamemixed endpoint issues for a WS-Trust 2005/02 RST", adfsTrust2005Path, "2005", ""},
		{"the 2005/usernamemixed endpoint refuses a WS-Trust 1.3 RST with wst:InvalidRequest", adfsTrust2005Path, "13", "wst:InvalidRequest"},
		{"our /services/sts still takes WS-Trust 1.3", "/services/sts", "13", ""},
		{"our /services/sts still takes WS-Trust 2005/02", "/services/sts", "2005", ""},
	} {
		for _, soapVersion := range []string{"1.1", "1.2"} {
			t.Run(c.name+" over SOAP "+soapVersion, func(t *testing.T) {
				env, ctype := trustRST(t, ts.URL+c.path, c.version, client.Options{User: "ada", Password: "Ada-pw-1", SOAP: soapVersion, AppliesTo: "urn:rp"})
				r := ts.post(t, c.path, ctype, env)
				switch {
				case c.wantFault == "" && r.Status != 200:
					t.Fatalf("HTTP %d, want a token:\n%s", r.Status, r.Body)
				case c.wantFault != "" && (r.Status == 200 || faultCode(r.Body) != c.wantFault):
					t.Fatalf("HTTP %d fault %q, want %s:\n%s", r.Status, faultCode(r.Body), c.wantFault, r.Body)
				case c.wantFault != "" && !strings.Contains(r.Body, "does not accept WS-Trust namespace"):
					t.Errorf("the fault does not say why:\n%s", r.Body)
				}
			})
		}
	}
}

// tokenVerifiers checks a token with xmlsec1 (pinned key) and OpenSAML's
// samlsign, the two verifiers relying parties use.
func tokenVerifiers(t *testing.T, ts *testServer, tok []byte, saml11 bool) {
	t.Helper()
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	samlsign := testutil.Tool(t, "samlsign")
	dir := t.TempDir()
	certPEM, err := keys.ActiveCertPEM(context.Background(), ts.Store, keys.PurposeSigning)
	if err != nil {
		t.Fatal(err)
	}
	certFile, tokFile := filepath.Join(dir, "sts.crt"), filepath.Join(dir, "token.xml")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, tok, 0o644); err != nil {
		t.Fatal(err)
	}
	idAttr, idNode := "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
	if saml11 {
		idAttr, idNode = "--id-attr:AssertionID", "urn:oasis:names:tc:SAML:1.0:assertion:Assertion"
	}
	if out, err := exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "empty,same-doc", "--enabled-key-data", "raw-x509-cert",
		"--pubkey-cert-pem", certFile, idAttr, idNode, tokFile).CombinedOutput(); err != nil {
		t.Errorf("xmlsec1 refuses the token: %v\n%s\n%s", err, out, tok)
	}
	if out, err := exec.Command(samlsign, "-c", certFile, "-f", tokFile).CombinedOutput(); err != nil {
		t.Errorf("samlsign refuses the token: %v\n%s\n%s", err, out, tok)
	}
}

func TestADFSEndpointsWriteAssertionsInTheDefaultNamespace(t *testing.T) {
	for _, c := range []struct {
		name      string
		defaultNS bool
		path      string
		version   string
		saml      string
		wantStart string // how the assertion must begin
	}{
		{"by default the 1.3 endpoint writes a SAML 2.0 assertion ADFS-style", true, adfsTrust13Path, "13", "2.0",
			`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"`},
		{"by default the 2005 endpoint writes a SAML 1.1 assertion ADFS-style", true, adfsTrust2005Path, "2005", "1.1",
			`<Assertion xmlns="urn:oasis:names:tc:SAML:1.0:assertion"`},
		{"with adfs_default_namespace off the 1.3 endpoint writes a prefixed assertion", false, adfsTrust13Path, "13", "2.0",
			`<saml`},
		{"our /services/sts always writes a prefixed assertion", true, "/services/sts", "13", "2.0", `<saml`},
	} {
		t.Run(c.name+" that verifies", func(t *testing.T) {
			ts := metadataServer(t, func(cfg *config.Config) { cfg.ADFSDefaultNamespace = c.defaultNS })
			env, ctype := trustRST(t, ts.URL+c.path, c.version, client.Options{User: "ada", Password: "Ada-pw-1", SAML: c.saml, SOAP: "1.2", AppliesTo: "urn:rp:adfs"})
			r := ts.post(t, c.path, ctype, env)
			if r.Status != 200 {
				t.Fatalf("HTTP %d:\n%s", r.Status, r.Body)
			}
			tok, err := client.ExtractToken([]byte(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(tok, []byte(c.wantStart)) {
				t.Errorf("token starts %.80q, want %q", tok, c.wantStart)
			}
			checkToken(t, ts, tok, tokenExpectations{saml11: c.saml == "1.1", subjectOneOf: []string{"ada"}, audience: "urn:rp:adfs"})
			tokenVerifiers(t, ts, tok, c.saml == "1.1")
		})
	}
}

func get(t *testing.T, ts *testServer, path, host string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: HTTP %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}

// addresses returns every address a metadata document advertises:
// soap:address and soap12:address locations and wsa:Address texts.
func addresses(t *testing.T, doc string) []string {
	t.Helper()
	d, err := safexml.Parse([]byte(doc), safexml.DefaultLimits)
	if err != nil {
		t.Fatalf("document does not parse: %v\n%.300s", err, doc)
	}
	var out []string
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		switch ns := el.NamespaceURI(); {
		case el.Tag == "address" && (ns == metadata.NSWSDLSOAP11 || ns == metadata.NSWSDLSOAP12):
			out = append(out, el.SelectAttrValue("location", ""))
		case el.Tag == "Address" && ns == metadata.NSAddressing:
			out = append(out, strings.TrimSpace(safexml.Text(el)))
		}
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(d.Root())
	return out
}

// metadataDocs fetches every document that advertises addresses.
func metadataDocs(t *testing.T, ts *testServer, host string) map[string]string {
	t.Helper()
	docs := map[string]string{}
	for _, p := range []string{adfsTrust13Path + "?wsdl", adfsTrust2005Path + "?wsdl", "/services/sts?wsdl",
		adfsMEXPath, stsMEXPath, federationMetadataPath} {
		docs["GET "+p] = get(t, ts, p, host)
	}
	// The MEX document as a WS-Transfer GetResponse, too.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+adfsMEXPath, strings.NewReader(transferGet(ts.URL+adfsMEXPath)))
	req.Header.Set("Content-Type", "application/soap+xml; charset=utf-8")
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	docs["WS-Transfer Get "+adfsMEXPath] = string(b)
	return docs
}

func transferGet(to string) string {
	return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>` +
		`<a:Action s:mustUnderstand="1">` + metadata.ActionTransferGet + `</a:Action><a:MessageID>urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427</a:MessageID>` +
		`<a:To s:mustUnderstand="1">` + to + `</a:To></s:Header><s:Body/></s:Envelope>`
}

func TestEveryAdvertisedAddressUsesThePublicURL(t *testing.T) {
	dir := t.TempDir()
	const oldBase, newBase = "https://old-sts.example.com", "https://sts.example.com"
	// An operator changes --public-url and restarts: same data, new base.
	before := newTestServer(t, func(c *config.Config) { c.DataDir, c.PublicURL = dir, oldBase+"/" })
	after := newTestServer(t, func(c *config.Config) { c.DataDir, c.PublicURL = dir, newBase })
	for _, c := range []struct {
		name string
		ts   *testServer
		host string // Host header sent
		base string // every address must start with it
		gone string // and none may contain it
	}{
		{"with public_url set, every address uses it, whatever Host the request names", before, "attacker.example:80", oldBase, "attacker.example"},
		{"after public_url changes, no address with the old base remains", after, "", newBase, oldBase},
		{"without public_url, addresses follow the request's scheme and Host header", newTestServer(t, nil), "sts.internal.test:8443",
			"http://sts.internal.test:8443", "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for name, doc := range metadataDocs(t, c.ts, c.host) {
				addrs := addresses(t, doc)
				if len(addrs) == 0 {
					t.Errorf("%s advertises no address", name)
				}
				for _, a := range addrs {
					if !strings.HasPrefix(a, c.base+"/") {
						t.Errorf("%s advertises %q, want it under %s", name, a, c.base)
					}
				}
				if strings.Contains(doc, c.gone) {
					t.Errorf("%s still mentions %q", name, c.gone)
				}
			}
		})
	}
}

func TestEachEndpointsWSDLAndTheMEXDescribeWhatTheEndpointTakes(t *testing.T) {
	ts := metadataServer(t, func(c *config.Config) { c.PublicURL = "https://sts.example.com" })
	for _, c := range []struct {
		name, path, trustNS string
	}{
		{"the 13/usernamemixed WSDL offers only WS-Trust 1.3 operations", adfsTrust13Path, nsTrust13},
		{"the 2005/usernamemixed WSDL offers only WS-Trust 2005/02 operations", adfsTrust2005Path, nsTrust2005},
		{"the /services/sts WSDL keeps offering WS-Trust 1.3 operations", "/services/sts", nsTrust13},
	} {
		t.Run(c.name+", at the endpoint's own public address", func(t *testing.T) {
			doc := get(t, ts, c.path+"?wsdl", "")
			if n := strings.Count(doc, `soapAction="`+c.trustNS+`/RST/`); n != 8 {
				t.Errorf("%d soapActions in %s, want 8 (4 operations × SOAP 1.1 and 1.2)", n, c.trustNS)
			}
			for _, a := range addresses(t, doc) {
				if a != "https://sts.example.com"+c.path {
					t.Errorf("address %q, want the endpoint's own", a)
				}
			}
		})
	}
	t.Run("the ADFS MEX offers exactly the two usernamemixed endpoints, over GET and WS-Transfer alike", func(t *testing.T) {
		docs := metadataDocs(t, ts, "")
		plain := docs["GET "+adfsMEXPath]
		defs := strings.TrimSpace(plain[strings.Index(plain, "<wsdl:definitions"):])
		if !strings.Contains(docs["WS-Transfer Get "+adfsMEXPath], defs) {
			t.Errorf("the GetResponse does not carry the document GET returns")
		}
		want := map[string]bool{"https://sts.example.com" + adfsTrust13Path: true, "https://sts.example.com" + adfsTrust2005Path: true}
		for _, a := range addresses(t, plain) {
			if !want[a] {
				t.Errorf("MEX advertises %q", a)
			}
		}
	})
}

func TestFederationMetadataIsSignedAndPublishesEveryStoredSigningKey(t *testing.T) {
	ts := metadataServer(t, func(c *config.Config) { c.PublicURL = "https://sts.example.com"; c.Issuer = "urn:avouch:test-issuer" })
	xmlsec1 := testutil.Tool(t, "xmlsec1")
	ctx := context.Background()
	first := ts.SigningKey()
	certFile := filepath.Join(t.TempDir(), "sts.crt")
	if err := os.WriteFile(certFile, first.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T, doc string) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "FederationMetadata.xml")
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "empty,same-doc", "--enabled-key-data", "raw-x509-cert",
			"--pubkey-cert-pem", certFile, "--id-attr:ID", metadata.NSSAMLMetadata+":EntityDescriptor", file).CombinedOutput(); err != nil {
			t.Errorf("xmlsec1 refuses the FederationMetadata: %v\n%s", err, out)
		}
	}
	published := func(t *testing.T, doc string) []string {
		t.Helper()
		d, err := safexml.Parse([]byte(doc), safexml.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Root().SelectAttrValue("entityID", ""); got != "urn:avouch:test-issuer" {
			t.Errorf("entityID %q, want the issuer name", got)
		}
		var out []string
		for _, kd := range d.Root().FindElements("./RoleDescriptor/KeyDescriptor") {
			if c := kd.FindElement(".//X509Certificate"); c != nil && kd.SelectAttrValue("use", "") == "signing" {
				out = append(out, strings.TrimSpace(c.Text()))
			}
		}
		return out
	}
	b64 := func(kp *keys.KeyPair) string { return base64.StdEncoding.EncodeToString(kp.Cert.Raw) }

	t.Run("it verifies with xmlsec1 and lists the current signing certificate", func(t *testing.T) {
		doc := get(t, ts, federationMetadataPath, "")
		verify(t, doc)
		if got := published(t, doc); len(got) != 1 || got[0] != b64(first) {
			t.Errorf("published %d certificates, want exactly the signing one", len(got))
		}
	})
	t.Run("during a rotation overlap both stored signing certificates are published", func(t *testing.T) {
		km := &keys.Manager{Store: ts.Store, Box: ts.Box}
		next, err := km.Generate(ctx, keys.PurposeSigning, keys.RSA2048, "avouch token signing (next)")
		if err != nil {
			t.Fatal(err)
		}
		// Keep signing with the first key: the second is pre-published.
		if err := ts.Store.ActivateKey(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		doc := get(t, ts, federationMetadataPath, "")
		verify(t, doc)
		got := published(t, doc)
		if len(got) != 2 || got[0] != b64(first) || got[1] != b64(next) {
			t.Errorf("published %d certificates, want the signing one and then the next one", len(got))
		}
	})
}
