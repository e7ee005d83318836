package wstrust

import (
	"testing"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/sts"
)

func TestActAsAndOnBehalfOfParse(t *testing.T) {
	const assertion = `<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"></saml2:Assertion>`
	const ut = `<wsse:UsernameToken xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">` +
		`<wsse:Username>alice</wsse:Username><wsse:Password>pw</wsse:Password></wsse:UsernameToken>`
	const str = `<wsse:SecurityTokenReference xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">` +
		`<wsse:KeyIdentifier>_id</wsse:KeyIdentifier></wsse:SecurityTokenReference>`
	actAs := func(inner string) string {
		return `<wst14:ActAs xmlns:wst14="` + NS14 + `">` + inner + `</wst14:ActAs>`
	}
	obo := func(inner string) string { return `<wst:OnBehalfOf>` + inner + `</wst:OnBehalfOf>` }
	cases := []struct {
		name    string
		extra   string
		kind    sts.DelegationKind
		what    string // assertion, id, ut, none
		errCode sts.Code
	}{
		{"a SAML assertion in WS-Trust 1.4 ActAs", actAs(assertion), sts.ActAs, "assertion", ""},
		{"a SAML assertion in OnBehalfOf", obo(assertion), sts.OnBehalfOf, "assertion", ""},
		{"a token reference in OnBehalfOf", obo(str), sts.OnBehalfOf, "id", ""},
		{"a UsernameToken in OnBehalfOf", obo(ut), sts.OnBehalfOf, "ut", ""},
		{"ActAs in the 1.3 namespace is not WS-Trust 1.4 ActAs and is ignored", `<wst:ActAs>` + assertion + `</wst:ActAs>`, "", "none", ""},
		{"ActAs and OnBehalfOf together are refused", actAs(assertion) + obo(assertion), "", "", sts.CodeInvalidRequest},
		{"an empty OnBehalfOf is refused", obo(""), "", "", sts.CodeInvalidRequest},
		{"an encrypted assertion is refused", obo(`<saml2:EncryptedAssertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion"></saml2:EncryptedAssertion>`), "", "", sts.CodeInvalidRequest},
		{"a UsernameToken without password is refused as unauthenticated", obo(`<wsse:UsernameToken xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:Username>alice</wsse:Username></wsse:UsernameToken>`), "", "", sts.CodeRequestFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := safexml.Parse([]byte(`<wst:RequestSecurityToken xmlns:wst="`+NS13+`"><wst:RequestType>`+NS13+`/Issue</wst:RequestType>`+
				c.extra+`</wst:RequestSecurityToken>`), safexml.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			rst, err := ParseRST(doc.Root())
			if c.errCode != "" {
				if !sts.IsCode(err, c.errCode) {
					t.Fatalf("err = %v, want %s", err, c.errCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := rst.Delegation
			if c.what == "none" {
				if d != nil {
					t.Fatalf("parsed %+v", d)
				}
				return
			}
			if d == nil || d.Kind != c.kind {
				t.Fatalf("delegation %+v", d)
			}
			got := map[bool]string{true: "assertion"}[d.Assertion != nil] + map[bool]string{true: "id"}[d.TokenID != ""] +
				map[bool]string{true: "ut"}[d.UsernameToken != nil]
			if got != c.what {
				t.Fatalf("parsed %q, want %q", got, c.what)
			}
		})
	}
}
