package server

import (
	"strings"
	"testing"
	"time"
)

// The ADFS certificatemixed paths fix their policy to X.509-signed requests,
// whatever the server-wide scenario (here the default, usernametoken); the
// usernamemixed paths keep UsernameToken. Each path's WSDL states its policy.
func TestADFSCertificateEndpointsFixTheirPolicy(t *testing.T) {
	ts := x509Server(t, "usernametoken")
	clientKey := corpusKey(t, "client", "")
	ts.registerUserCert(t, "carol", clientKey.cert)
	now := time.Now().UTC().Truncate(time.Second)
	const cm13 = "/adfs/services/trust/13/certificatemixed"
	t.Run("an X.509-signed request to certificatemixed gets the certificate user's token", func(t *testing.T) {
		req := signRequest(t, rstEnvelope(envOpts{created: now, appliesTo: "urn:rp:cm"}), sigSpec{key: clientKey.key, cert: clientKey.cert})
		r := ts.post(t, cm13, "text/xml; charset=utf-8", []byte(req))
		if r.Status != 200 || !strings.Contains(r.Body, ">carol<") {
			t.Fatalf("HTTP %d %s: %.300s", r.Status, faultCode(r.Body), r.Body)
		}
	})
	t.Run("a UsernameToken request to certificatemixed is refused", func(t *testing.T) {
		r := ts.post(t, cm13, "text/xml; charset=utf-8", []byte(rstEnvelope(envOpts{created: now.Add(time.Second), ut: "carol:" + carolPassword})))
		if got := faultCode(r.Body); got != "wsse:InvalidSecurity" {
			t.Fatalf("got %s (HTTP %d)", got, r.Status)
		}
	})
	t.Run("the same signed request to usernamemixed is refused", func(t *testing.T) {
		req := signRequest(t, rstEnvelope(envOpts{created: now.Add(2 * time.Second), appliesTo: "urn:rp:cm"}), sigSpec{key: clientKey.key, cert: clientKey.cert})
		r := ts.post(t, "/adfs/services/trust/13/usernamemixed", "text/xml; charset=utf-8", []byte(req))
		if got := faultCode(r.Body); got != "wsse:InvalidSecurity" {
			t.Fatalf("got %s (HTTP %d)", got, r.Status)
		}
	})
	wsdl := func(path string) string {
		st, body := httpGet(t, ts.URL+path+"?wsdl")
		if st != 200 {
			t.Fatalf("%s?wsdl: %d", path, st)
		}
		return body
	}
	for _, c := range []struct {
		path, has, hasNot string
	}{
		{cm13, "X509Token", "UsernameToken"},
		{"/adfs/services/trust/2005/certificatemixed", "X509Token", "UsernameToken"},
		{"/adfs/services/trust/13/certificatetransport", "RequireClientCertificate", "UsernameToken"},
		{"/adfs/services/trust/13/usernamemixed", "UsernameToken", "X509Token"},
	} {
		t.Run("the WSDL of "+c.path+" states its policy", func(t *testing.T) {
			body := wsdl(c.path)
			// Policy assertions, not words in the documentation.
			if !strings.Contains(body, ":"+c.has) || strings.Contains(body, ":"+c.hasNot+" ") {
				t.Fatalf("want %s and no %s", c.has, c.hasNot)
			}
		})
	}
	t.Run("the WSDL of /services/sts follows the server-wide scenario", func(t *testing.T) {
		if body := wsdl("/services/sts"); !strings.Contains(body, ":UsernameToken ") || strings.Contains(body, ":X509Token ") {
			t.Fatal("usernametoken scenario not stated")
		}
		ts.setScenario(t, "usernametoken|x509")
		body := wsdl("/services/sts")
		if !strings.Contains(body, ":UsernameToken ") || !strings.Contains(body, ":X509Token ") || strings.Count(body, "<wsp:All>") < 2 {
			t.Fatal("the two alternatives are not stated")
		}
	})
}
