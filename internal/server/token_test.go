package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"crypto/x509"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/xmlsec"
)

type tokenExpectations struct {
	saml11       bool
	subjectOneOf []string
	audience     string        // "" = must have none
	lifetime     time.Duration // 0 = don't check
	claims       map[string]string
}

// checkToken verifies the token's signature with our verifier against the
// server's signing certificate and checks what it says. It uses only the
// element the verifier returns.
func checkToken(t *testing.T, ts *testServer, tok []byte, want tokenExpectations) *etree.Element {
	t.Helper()
	doc, err := safexml.Parse(tok, safexml.DefaultLimits)
	if err != nil {
		t.Fatalf("token does not parse: %v", err)
	}
	pemCert, err := keys.ActiveCertPEM(context.Background(), ts.Store, keys.PurposeSigning)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keys.ParseCertPEM(pemCert)
	if err != nil {
		t.Fatal(err)
	}
	idAttr := "ID"
	if doc.Root().Tag == "Assertion" && doc.Root().NamespaceURI() == "urn:oasis:names:tc:SAML:1.0:assertion" {
		idAttr = "AssertionID"
	}
	a, _, err := xmlsec.VerifyEnveloped(doc.Root(), xmlsec.VerifyOptions{Certs: []*x509.Certificate{cert}, IDAttribute: idAttr})
	if err != nil {
		t.Fatalf("token signature does not verify: %v\n%s", err, tok)
	}
	if want.saml11 != (idAttr == "AssertionID") {
		t.Fatalf("token version: got AssertionID=%v, want SAML 1.1=%v", idAttr == "AssertionID", want.saml11)
	}
	subjectPath, audPath := "./Subject/NameID", "./Conditions/AudienceRestriction/Audience"
	if want.saml11 {
		subjectPath, audPath = "./AuthenticationStatement/Subject/NameIdentifier", "./Conditions/AudienceRestrictionCondition/Audience"
	}
	if len(want.subjectOneOf) > 0 {
		got := textOf(a, subjectPath)
		ok := false
		for _, s := range want.subjectOneOf {
			ok = ok || got == s
		}
		if !ok {
			t.Errorf("subject %q, want one of %q", got, want.subjectOneOf)
		}
	}
	if got := textOf(a, audPath); got != want.audience {
		t.Errorf("audience %q, want %q", got, want.audience)
	}
	if want.lifetime > 0 {
		c := a.FindElement("./Conditions")
		nb, err1 := time.Parse(time.RFC3339Nano, c.SelectAttrValue("NotBefore", ""))
		na, err2 := time.Parse(time.RFC3339Nano, c.SelectAttrValue("NotOnOrAfter", ""))
		if err1 != nil || err2 != nil {
			t.Fatalf("conditions times: %v %v", err1, err2)
		}
		if d := na.Sub(nb); d < want.lifetime-2*time.Second || d > want.lifetime+2*time.Second {
			t.Errorf("lifetime %s, want %s", d, want.lifetime)
		}
	}
	for uri, val := range want.claims {
		if got := attributeValue(a, uri, want.saml11); got != val {
			t.Errorf("claim %s = %q, want %q", uri, got, val)
		}
	}
	return a
}

func textOf(el *etree.Element, path string) string {
	if e := el.FindElement(path); e != nil {
		return strings.TrimSpace(e.Text())
	}
	return ""
}

func attributeValue(a *etree.Element, uri string, saml11 bool) string {
	for _, at := range a.FindElements("./AttributeStatement/Attribute") {
		name := at.SelectAttrValue("Name", "")
		if saml11 {
			name = at.SelectAttrValue("AttributeNamespace", "") + "/" + at.SelectAttrValue("AttributeName", "")
		}
		if name == uri {
			var vals []string
			for _, v := range at.SelectElements("AttributeValue") {
				vals = append(vals, v.Text())
			}
			return strings.Join(vals, ",")
		}
	}
	return ""
}
