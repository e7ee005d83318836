package wstrust

import (
	"bytes"

	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wssec"
	"github.com/avouch/avouch/internal/xmltext"
)

// Actions.
func (v Version) action(kind, rt string) string { return string(v) + "/" + kind + "/" + rt }

// IssueResponseAction is the wsa:Action of a successful response.
func (v Version) responseAction(rt RequestType) string {
	if v == V13 {
		return v.action("RSTRC", string(rt)+"Final")
	}
	return v.action("RSTR", string(rt))
}

// bearerKeyType is the KeyType echoed for bearer tokens in v.
func (r *RST) bearerKeyType() string {
	if r.KeyTypeURI != "" {
		return r.KeyTypeURI
	}
	if r.Version == V13 {
		return NS13 + "/Bearer"
	}
	return KeyTypeNoProofKey
}

// renderIssue writes the RSTR (2005/02) or RSTRC (1.3) of an issued token.
// The assertion bytes are copied verbatim: clients cut the token out by text
// and verify its signature over exactly those bytes.
func renderIssue(r *RST, t *sts.Token) []byte {
	var b bytes.Buffer
	b.Grow(len(t.XML) + 1500)
	if r.Version == V13 {
		b.WriteString(`<wst:RequestSecurityTokenResponseCollection xmlns:wst="` + NS13 + `">`)
		b.WriteString(`<wst:RequestSecurityTokenResponse`)
	} else {
		b.WriteString(`<wst:RequestSecurityTokenResponse xmlns:wst="` + NS2005 + `"`)
	}
	if r.Context != "" {
		b.WriteString(` Context="` + xmltext.EscapeAttr(r.Context) + `"`)
	}
	b.WriteByte('>')
	tokenType := r.TokenTypeURI
	if tokenType == "" {
		tokenType = t.Type
	}
	b.WriteString(`<wst:TokenType>` + xmltext.EscapeText(tokenType) + `</wst:TokenType>`)
	b.WriteString(`<wst:RequestedSecurityToken>`)
	b.Write(t.XML)
	b.WriteString(`</wst:RequestedSecurityToken>`)
	ref := tokenReference(t)
	b.WriteString(`<wst:RequestedAttachedReference>` + ref + `</wst:RequestedAttachedReference>`)
	b.WriteString(`<wst:RequestedUnattachedReference>` + ref + `</wst:RequestedUnattachedReference>`)
	b.WriteString(`<wst:Lifetime><wsu:Created xmlns:wsu="` + wssec.NSWSU + `">`)
	b.WriteString(t.Created.UTC().Format(saml.TimeFormat))
	b.WriteString(`</wsu:Created><wsu:Expires xmlns:wsu="` + wssec.NSWSU + `">`)
	b.WriteString(t.Expires.UTC().Format(saml.TimeFormat))
	b.WriteString(`</wsu:Expires></wst:Lifetime>`)
	if t.AppliesTo != "" {
		// Always the 2004/09 policy namespace: .NET accepts no other.
		b.WriteString(`<wsp:AppliesTo xmlns:wsp="` + NSWSP2004 + `"><wsa:EndpointReference xmlns:wsa="` + NSWSA2005 + `"><wsa:Address>`)
		b.WriteString(xmltext.EscapeText(t.AppliesTo))
		b.WriteString(`</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`)
	}
	b.WriteString(`<wst:KeyType>` + xmltext.EscapeText(r.bearerKeyType()) + `</wst:KeyType>`)
	b.WriteString(`</wst:RequestSecurityTokenResponse>`)
	if r.Version == V13 {
		b.WriteString(`</wst:RequestSecurityTokenResponseCollection>`)
	}
	return b.Bytes()
}

// tokenReference is the SecurityTokenReference to a SAML token by its ID
// (SAML Token Profile 1.1 §3.4.2/3.4.3).
func tokenReference(t *sts.Token) string {
	profile, valueType := TokenProfileSAML20, "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"
	if t.Type == sts.TokenSAML11 {
		profile, valueType = TokenProfileSAML11, "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID"
	}
	return `<wsse:SecurityTokenReference xmlns:wsse="` + wssec.NSWSSE + `" xmlns:wsse11="` + NSWSSE11 +
		`" wsse11:TokenType="` + profile + `"><wsse:KeyIdentifier ValueType="` + valueType + `">` +
		t.ID + `</wsse:KeyIdentifier></wsse:SecurityTokenReference>`
}
