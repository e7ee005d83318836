package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/metadata"
	"github.com/avouch/avouch/internal/testutil"
)

// ADFS-compatible paths, as clients know them.
const (
	pathADFS13   = "/adfs/services/trust/13/usernamemixed"
	pathADFS2005 = "/adfs/services/trust/2005/usernamemixed"
	pathADFSMEX  = "/adfs/services/trust/mex"
	pathSTSMEX   = "/services/sts/mex"
	pathFedMeta  = "/FederationMetadata/2007-06/FederationMetadata.xml"
)

// httpsServer is `avouch serve` over HTTPS with its generated TLS
// certificate and --public-url set to its own https address: the shape a
// production ADFS replacement has. It must be HTTPS: msal's MEX reader only
// takes https endpoint addresses, and our policy claims a TransportBinding
// (the usernamemixed policy msal looks for) only for https endpoints.
type httpsServer struct {
	*server
	CAFile string // the server's TLS certificate, trusted by the clients
	HTTP   *http.Client
}

// startHTTPSServer starts the binary as startServer does, but over TLS.
func startHTTPSServer(t *testing.T) *httpsServer {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	s := &server{dataDir: filepath.Join(dir, "data")}
	// Users are added before the first start: the CLI creates the data dir.
	for _, u := range []user{fixtureUsers[1], textUser} {
		if err := s.addUser(u); err != nil {
			t.Fatal(err)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = s.startHTTPS(addr); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("https server log:\n%s", tail(s.logs(), 60))
		}
	})
	cert, err := s.avouch(context.Background(), "keys", "cert", "--data-dir", s.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	s.CertFile = filepath.Join(dir, "sts.crt")
	if err := os.WriteFile(s.CertFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}

	// Pin the TLS certificate the server presents (self-signed, for
	// 127.0.0.1): the clients trust exactly it.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	h := &httpsServer{server: s, CAFile: filepath.Join(dir, "tls.crt")}
	if err := os.WriteFile(h.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	h.HTTP = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return h
}

func (s *server) startHTTPS(addr string) error {
	s.exited = make(chan struct{})
	s.log.Reset()
	public := "https://" + addr
	s.cmd = exec.Command(avouchBin, "serve", "--data-dir", s.dataDir, "--listen", addr, "--public-url", public)
	s.cmd.Env = append(os.Environ(), "AVOUCH_ADMIN_PASSWORD="+adminPassword)
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start avouch serve: %w", err)
	}
	ready := make(chan struct{})
	want := "listening on " + public
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			s.logMu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
			if !seen && strings.Contains(sc.Text(), want) {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = s.cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	select {
	case <-ready:
		s.URL, s.STS = public, public+"/services/sts"
		return nil
	case <-s.exited:
		return fmt.Errorf("avouch serve exited before listening (%v):\n%s", s.cmd.ProcessState, s.logs())
	case <-time.After(30 * time.Second):
		_ = s.stop()
		return fmt.Errorf("avouch serve printed no %q within 30s:\n%s", want, s.logs())
	}
}

// msalMEXResult is what clients/msal_mex.py prints.
type msalMEXResult struct {
	OK       bool              `json:"ok"`
	Endpoint map[string]string `json:"endpoint"`
	Posted   []string          `json:"posted"`
	Token    string            `json:"token"`
	Type     string            `json:"type"`
	Error    string            `json:"error"`
}

func runMSALMEX(t *testing.T, srv *httpsServer, source string, u user, audience string) msalMEXResult {
	t.Helper()
	python := testutil.PythonModule(t, "msal")
	args := []string{"clients/msal_mex.py", "--ca", srv.CAFile, "--user", u.Name, "--password", u.Password, "--audience", audience}
	if strings.HasPrefix(source, "https://") {
		args = append(args, "--mex", source)
	} else {
		args = append(args, "--mex-file", source)
	}
	cmd := exec.Command(python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("msal client crashed: %v\n%s", err, stderr.String())
	}
	var r msalMEXResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("msal client output: %v\n%s", err, out)
	}
	return r
}

// TestADFSClientsDiscoverAndUseOurEndpointsOverHTTPS runs the real binary the
// way ADFS is run — HTTPS, public URL set — and lets third-party clients
// discover it from its metadata and get tokens from what they discovered.
func TestADFSClientsDiscoverAndUseOurEndpointsOverHTTPS(t *testing.T) {
	srv := startHTTPSServer(t)
	alice := fixtureUsers[1]
	const audience = "urn:federation:MicrosoftOnline"

	only2005 := filepath.Join(t.TempDir(), "mex-2005-only.xml")
	if err := os.WriteFile(only2005, metadata.MEX(metadata.MEXOptions{Endpoints: []metadata.Endpoint{
		{URL: srv.URL + pathADFS2005, Trust: metadata.Trust2005}}}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		source     string // MEX URL or file
		wantAddr   string
		wantAction string
		defaultNS  bool // ADFS-style assertion expected
	}{
		{"msal reads /adfs/services/trust/mex, picks the 1.3 usernamemixed endpoint and gets a token from it",
			srv.URL + pathADFSMEX, srv.URL + pathADFS13, nsWST + "/RST/Issue", true},
		{"msal offered only the 2005 usernamemixed endpoint picks it and gets a token from it",
			only2005, srv.URL + pathADFS2005, nsWST2005 + "/RST/Issue", true},
		{"msal reads /services/sts/mex, picks /services/sts with the 1.3 action and gets a token from it",
			srv.URL + pathSTSMEX, srv.STS, nsWST + "/RST/Issue", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := runMSALMEX(t, srv, c.source, alice, audience)
			if r.Endpoint["address"] != c.wantAddr || r.Endpoint["action"] != c.wantAction {
				t.Fatalf("msal picked %v, want address %s action %s", r.Endpoint, c.wantAddr, c.wantAction)
			}
			if !r.OK {
				t.Fatalf("msal got no token: %s", r.Error)
			}
			if len(r.Posted) != 1 || r.Posted[0] != c.wantAddr {
				t.Errorf("msal posted to %q, want exactly the endpoint it picked", r.Posted)
			}
			if got := strings.HasPrefix(r.Token, `<Assertion xmlns="`); got != c.defaultNS {
				t.Errorf("assertion in the default namespace: %v, want %v:\n%.120s", got, c.defaultNS, r.Token)
			}
			verifyToken(t, srv.server, []byte(r.Token), r.Type, expect{SAML: "2.0", User: alice.Name, Audience: audience, Lifetime: defaultLifetime})
		})
	}

	for _, c := range []struct {
		path, trust, soap, tokenType, saml string
	}{
		{pathADFS13, "13", "1.2", tokenSAML20, "2.0"},
		{pathADFS13, "13", "1.1", tokenSAML11, "1.1"},
		{pathADFS2005, "2005", "1.2", nsSAML2, "2.0"},
		{pathADFS2005, "2005", "1.1", nsSAML1, "1.1"},
	} {
		t.Run(fmt.Sprintf("zeep builds a client from %s?wsdl and gets a SAML %s token over SOAP %s", c.path, c.saml, c.soap), func(t *testing.T) {
			t.Parallel()
			python := testutil.PythonModule(t, "zeep")
			url := srv.URL + c.path
			appliesTo := "urn:interop:zeep:adfs:" + c.trust
			cmd := exec.Command(python, "clients/zeep_endpoint.py", "--url", url, "--trust", c.trust, "--soap", c.soap, "--ca", srv.CAFile,
				"--user", textUser.Name, "--password", textUser.Password, "--token-type", c.tokenType, "--applies-to", appliesTo)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("zeep client crashed: %v\n%s", err, stderr.String())
			}
			var r struct {
				OK              bool              `json:"ok"`
				Status          int               `json:"status"`
				Posted          string            `json:"posted"`
				Response        string            `json:"response"`
				ParsedAssertion *string           `json:"parsed_assertion"`
				Fault           map[string]string `json:"fault"`
				Error           string            `json:"error"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("zeep client output: %v\n%s", err, out)
			}
			if !r.OK || r.Status != 200 {
				t.Fatalf("zeep got no token: status %d fault %v error %q\n%s", r.Status, r.Fault, r.Error, r.Response)
			}
			if r.Posted != url {
				t.Errorf("zeep posted to %q, the address in the WSDL must be the endpoint's own %q", r.Posted, url)
			}
			wantTag := "{" + nsSAML2 + "}Assertion"
			if c.saml == "1.1" {
				wantTag = "{" + nsSAML1 + "}Assertion"
			}
			if r.ParsedAssertion == nil || *r.ParsedAssertion != wantTag {
				t.Errorf("zeep's parsed response holds %v, want %s", r.ParsedAssertion, wantTag)
			}
			assertion, tokenType, err := extractToken([]byte(r.Response))
			if err != nil {
				t.Fatalf("%v\n%s", err, r.Response)
			}
			verifyToken(t, srv.server, assertion, tokenType, expect{SAML: c.saml, User: textUser.Name, Audience: appliesTo, Lifetime: defaultLifetime})
		})
	}

	t.Run("WS-Transfer Get over SOAP 1.2 returns a GetResponse carrying the same WSDL as GET", func(t *testing.T) {
		t.Parallel()
		resp, err := srv.HTTP.Get(srv.URL + pathADFSMEX)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		start := bytes.Index(plain, []byte("<wsdl:definitions"))
		if resp.StatusCode != 200 || start < 0 {
			t.Fatalf("GET %s: HTTP %d\n%.300s", pathADFSMEX, resp.StatusCode, plain)
		}
		defs := bytes.TrimSpace(plain[start:])
		msgID := newID()
		env := `<s:Envelope xmlns:s="` + nsSOAP12 + `" xmlns:a="` + nsWSA + `"><s:Header>` +
			`<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>` +
			`<a:MessageID>` + msgID + `</a:MessageID><a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>` +
			`<a:To s:mustUnderstand="1">` + srv.URL + pathADFSMEX + `</a:To></s:Header><s:Body/></s:Envelope>`
		resp, err = srv.HTTP.Post(srv.URL+pathADFSMEX, "application/soap+xml; charset=utf-8", strings.NewReader(env))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/soap+xml") {
			t.Fatalf("HTTP %d %s:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		root, err := parseStandalone(body)
		if err != nil {
			t.Fatal(err)
		}
		actions := root.find(nsWSA, "Action")
		if len(actions) != 1 || actions[0].Text != "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse" {
			t.Errorf("response wsa:Action, want the WS-Transfer GetResponse action")
		}
		if rel := root.find(nsWSA, "RelatesTo"); len(rel) != 1 || rel[0].Text != msgID {
			t.Errorf("response wsa:RelatesTo, want the request's MessageID %s", msgID)
		}
		secs := root.find("http://schemas.xmlsoap.org/ws/2004/09/mex", "MetadataSection")
		if len(secs) != 1 || secs[0].attr("Dialect") != "http://schemas.xmlsoap.org/wsdl/" {
			t.Fatalf("want one wsx:MetadataSection of dialect WSDL:\n%s", body)
		}
		if !bytes.Contains(body, defs) {
			t.Errorf("the MetadataSection does not carry the document GET returns")
		}
	})

	t.Run("FederationMetadata verifies with xmlsec1 against the signing certificate and advertises only the public URL", func(t *testing.T) {
		t.Parallel()
		xmlsec1 := testutil.Tool(t, "xmlsec1")
		resp, err := srv.HTTP.Get(srv.URL + pathFedMeta)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("HTTP %d\n%s", resp.StatusCode, doc)
		}
		file := filepath.Join(t.TempDir(), "FederationMetadata.xml")
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(xmlsec1, "--verify", "--enabled-reference-uris", "empty,same-doc", "--enabled-key-data", "raw-x509-cert",
			"--pubkey-cert-pem", srv.CertFile, "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", file).CombinedOutput(); err != nil {
			t.Errorf("xmlsec1 refuses the FederationMetadata: %v\n%s", err, out)
		}
		root, err := parseStandalone(doc)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, _ := os.ReadFile(srv.CertFile)
		block, _ := pem.Decode(certPEM)
		listed := false
		for _, kd := range root.find("urn:oasis:names:tc:SAML:2.0:metadata", "KeyDescriptor") {
			for _, c := range kd.find("http://www.w3.org/2000/09/xmldsig#", "X509Certificate") {
				der, _ := decodeCertText(c.Text)
				listed = listed || bytes.Equal(der, block.Bytes)
			}
		}
		if !listed {
			t.Errorf("the signing certificate `avouch keys cert` prints is not among the KeyDescriptors")
		}
		addrs := root.find(nsWSA, "Address")
		if len(addrs) == 0 {
			t.Fatal("no endpoint addresses")
		}
		for _, a := range addrs {
			if !strings.HasPrefix(a.Text, srv.URL+"/") {
				t.Errorf("advertised address %q is not under the public URL %s", a.Text, srv.URL)
			}
		}
	})
}

func decodeCertText(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}
