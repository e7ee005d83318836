package wsfed

import (
	"bytes"

	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/xmltext"
)

// WResult writes the wresult of a sign-in response: a WS-Trust 2005/02
// RequestSecurityTokenResponse (the version WS-Federation passive relying
// parties — WIF, ADFS, passport-wsfed-saml2 — read) with, in ADFS's order,
// the Lifetime, the AppliesTo (in the WS-Policy 2004/09 namespace, the only
// one .NET accepts, holding the realm), the token, its TokenType, the
// RequestType and the bearer KeyType.
//
// The token's bytes are copied verbatim, with no whitespace around them:
// relying parties take RequestedSecurityToken's first child as the token and
// verify its signature over exactly those bytes. tokenTypeURI is echoed as
// the request spelled it ("" means the token's canonical type).
func WResult(tok *sts.Token, tokenTypeURI, realm string) []byte {
	if tokenTypeURI == "" {
		tokenTypeURI = tok.Type
	}
	var b bytes.Buffer
	b.Grow(len(tok.XML) + 1200)
	b.WriteString(`<t:RequestSecurityTokenResponse xmlns:t="` + NSTrust2005 + `">`)
	b.WriteString(`<t:Lifetime><wsu:Created xmlns:wsu="` + NSWSU + `">`)
	b.WriteString(tok.Created.UTC().Format(saml.TimeFormat))
	b.WriteString(`</wsu:Created><wsu:Expires xmlns:wsu="` + NSWSU + `">`)
	b.WriteString(tok.Expires.UTC().Format(saml.TimeFormat))
	b.WriteString(`</wsu:Expires></t:Lifetime>`)
	b.WriteString(`<wsp:AppliesTo xmlns:wsp="` + NSPolicy2004 + `"><wsa:EndpointReference xmlns:wsa="` + NSWSA2005 + `"><wsa:Address>`)
	b.WriteString(xmltext.EscapeText(realm))
	b.WriteString(`</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`)
	b.WriteString(`<t:RequestedSecurityToken>`)
	b.Write(tok.XML)
	b.WriteString(`</t:RequestedSecurityToken>`)
	b.WriteString(`<t:TokenType>` + xmltext.EscapeText(tokenTypeURI) + `</t:TokenType>`)
	b.WriteString(`<t:RequestType>` + NSTrust2005 + `/Issue</t:RequestType>`)
	b.WriteString(`<t:KeyType>` + KeyTypeNoProofKey + `</t:KeyType>`)
	b.WriteString(`</t:RequestSecurityTokenResponse>`)
	return b.Bytes()
}
