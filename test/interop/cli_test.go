package interop

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCLIClientGetsVerifiableTokens checks `avouch client issue`, the
// project's own client, against the same verifiers as the third-party ones.
// The admin case also proves AVOUCH_ADMIN_PASSWORD set the first-start admin.
func TestCLIClientGetsVerifiableTokens(t *testing.T) {
	srv := sharedServer(t)
	admin := user{Name: "admin", Password: adminPassword}
	for _, c := range []struct {
		name   string
		user   user
		saml   string
		soap   string
		digest bool
		claims []string
	}{
		{"the admin from AVOUCH_ADMIN_PASSWORD gets a SAML 1.1 token over SOAP 1.1", admin, "1.1", "1.1", false, nil},
		{"a digest user gets a SAML 2.0 token with a claim over SOAP 1.2", digestUser, "2.0", "1.2", true, []string{claimEmail}},
	} {
		t.Run("avouch client issue: "+c.name, func(t *testing.T) {
			t.Parallel()
			const audience = "urn:interop:cli"
			args := []string{"client", "issue", "--url", srv.STS, "--user", c.user.Name, "--password", c.user.Password,
				"--saml", c.saml, "--applies-to", audience, "--soap", c.soap}
			if c.digest {
				args = append(args, "--digest")
			}
			want := expect{SAML: c.saml, User: c.user.Name, Audience: audience, Lifetime: defaultLifetime, Claims: map[string]string{}}
			for _, cl := range c.claims {
				args = append(args, "--claim", cl)
				want.Claims[cl] = c.user.Claims[cl]
			}
			out, err := srv.avouch(context.Background(), args...)
			if err != nil {
				t.Fatal(err)
			}
			tokenType := tokenSAML20
			if c.saml == "1.1" {
				tokenType = tokenSAML11
			}
			verifyToken(t, srv, []byte(strings.TrimSpace(string(out))), tokenType, want)
		})
	}
}

// TestServerPublishesItsWSDL: GET ?wsdl must describe the endpoint at the URL
// it was fetched from, on both the canonical path and the WSO2 alias.
func TestServerPublishesItsWSDL(t *testing.T) {
	srv := sharedServer(t)
	for _, path := range []string{"/services/sts", "/services/wso2carbon-sts"} {
		t.Run("GET "+path+"?wsdl names "+path+" as the SOAP 1.1 and 1.2 address", func(t *testing.T) {
			resp, err := httpClient.Get(srv.URL + path + "?wsdl")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("HTTP %d %v\n%.1000s", resp.StatusCode, err, body)
			}
			root, err := parseStandalone(body)
			if err != nil {
				t.Fatalf("WSDL: %v", err)
			}
			if root.Name != (xml.Name{Space: "http://schemas.xmlsoap.org/wsdl/", Local: "definitions"}) {
				t.Fatalf("root is %v", root.Name)
			}
			for _, ns := range []string{"http://schemas.xmlsoap.org/wsdl/soap/", "http://schemas.xmlsoap.org/wsdl/soap12/"} {
				addrs := root.find(ns, "address")
				if len(addrs) != 1 || addrs[0].attr("location") != srv.URL+path {
					t.Errorf("%s address: want one with location %s", ns, srv.URL+path)
				}
			}
		})
	}
	t.Run("the WSO2 alias endpoint issues tokens too", func(t *testing.T) {
		r := rst{SOAP12: true, User: textUser.Name, Password: textUser.Password}
		status, resp, err := post(srv.URL+"/services/wso2carbon-sts", r.envelope(), r.contentType())
		if err != nil || status != http.StatusOK {
			t.Fatalf("HTTP %d %v\n%.2000s", status, err, resp)
		}
		if _, _, err := extractToken(resp); err != nil {
			t.Fatal(err)
		}
	})
}
