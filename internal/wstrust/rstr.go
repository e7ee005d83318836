package wstrust

import (
	"bytes"
	"encoding/base64"
	"strconv"

	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wssec"
	"github.com/avouch/avouch/internal/xmltext"
)

func (v Version) action(kind, rt string) string { return string(v) + "/" + kind + "/" + rt }

// responseAction is the wsa:Action of a successful response: WS-Trust 1.3
// answers Issue with an RSTRC (…/RSTRC/IssueFinal) and the other bindings
// with an RSTR (…/RSTR/RenewFinal …); 2005/02 answers …/RSTR/<Binding>.
func (v Version) responseAction(rt RequestType, batch bool) string {
	switch {
	case batch && v == V13:
		return v.action("RSTRC", "Batch"+string(rt)+"Final")
	case batch:
		return v.action("RSTR", "Batch"+string(rt))
	case v == V13 && rt == Issue:
		return v.action("RSTRC", "IssueFinal")
	case v == V13:
		return v.action("RSTR", string(rt)+"Final")
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

// keyType echoes the KeyType of an issued token in the request's version.
func (r *RST) keyType(k sts.KeyType) string {
	if r.KeyTypeURI != "" {
		return r.KeyTypeURI
	}
	if k == sts.KeyBearer {
		return r.bearerKeyType()
	}
	return string(r.Version) + "/" + k.String()
}

// proof writes the holder-of-key answer: RequestedProofToken (ComputedKey
// P_SHA1 with our Entropy, or the key as BinarySecret) and KeySize.
func (w rstrWriter) proof(t *sts.Token) {
	if t.KeyType != sts.KeySymmetric {
		return
	}
	v := string(w.r.Version)
	if t.ComputedKey {
		w.b.WriteString(`<wst:RequestedProofToken><wst:ComputedKey>` + v + `/CK/PSHA1</wst:ComputedKey></wst:RequestedProofToken>`)
		w.b.WriteString(`<wst:Entropy><wst:BinarySecret Type="` + v + `/Nonce">` + base64.StdEncoding.EncodeToString(t.ServerEntropy) + `</wst:BinarySecret></wst:Entropy>`)
	} else {
		w.b.WriteString(`<wst:RequestedProofToken><wst:BinarySecret Type="` + v + `/SymmetricKey">` + base64.StdEncoding.EncodeToString(t.ProofKey) + `</wst:BinarySecret></wst:RequestedProofToken>`)
	}
	w.b.WriteString(`<wst:KeySize>` + strconv.Itoa(t.KeySize) + `</wst:KeySize>`)
}

// rstrWriter writes RSTR children with the wst prefix declared by the
// enclosing element.
type rstrWriter struct {
	b *bytes.Buffer
	r *RST
}

func (w rstrWriter) open() {
	w.b.WriteString(`<wst:RequestSecurityTokenResponse`)
	if w.r.Context != "" {
		w.b.WriteString(` Context="` + xmltext.EscapeAttr(w.r.Context) + `"`)
	}
	w.b.WriteByte('>')
}

func (w rstrWriter) close() { w.b.WriteString(`</wst:RequestSecurityTokenResponse>`) }

func (w rstrWriter) elem(name, text string) {
	w.b.WriteString(`<wst:` + name + `>` + xmltext.EscapeText(text) + `</wst:` + name + `>`)
}

// token writes the token and its references and lifetime. The assertion
// bytes are copied verbatim: clients cut the token out by text and verify
// its signature over exactly those bytes.
func (w rstrWriter) token(t *sts.Token, tokenTypeURI string) {
	if tokenTypeURI == "" {
		tokenTypeURI = t.Type
	}
	w.elem("TokenType", tokenTypeURI)
	w.b.WriteString(`<wst:RequestedSecurityToken>`)
	w.b.Write(t.XML)
	w.b.WriteString(`</wst:RequestedSecurityToken>`)
	ref := tokenReference(t)
	w.b.WriteString(`<wst:RequestedAttachedReference>` + ref + `</wst:RequestedAttachedReference>`)
	w.b.WriteString(`<wst:RequestedUnattachedReference>` + ref + `</wst:RequestedUnattachedReference>`)
	w.b.WriteString(`<wst:Lifetime><wsu:Created xmlns:wsu="` + wssec.NSWSU + `">`)
	w.b.WriteString(t.Created.UTC().Format(saml.TimeFormat))
	w.b.WriteString(`</wsu:Created><wsu:Expires xmlns:wsu="` + wssec.NSWSU + `">`)
	w.b.WriteString(t.Expires.UTC().Format(saml.TimeFormat))
	w.b.WriteString(`</wsu:Expires></wst:Lifetime>`)
	if t.AppliesTo != "" {
		// Always the 2004/09 policy namespace: .NET accepts no other.
		w.b.WriteString(`<wsp:AppliesTo xmlns:wsp="` + NSWSP2004 + `"><wsa:EndpointReference xmlns:wsa="` + NSWSA2005 + `"><wsa:Address>`)
		w.b.WriteString(xmltext.EscapeText(t.AppliesTo))
		w.b.WriteString(`</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`)
	}
}

// outcome is one RST's answer, rendered as an RSTR.
type outcome struct {
	rst        *RST
	token      *sts.Token      // Issue, Renew, Validate-transform
	validation *sts.Validation // Validate
	cancelled  bool            // Cancel
}

func (o *outcome) write(b *bytes.Buffer) {
	w := rstrWriter{b: b, r: o.rst}
	w.open()
	switch {
	case o.cancelled:
		b.WriteString(`<wst:RequestedTokenCancelled></wst:RequestedTokenCancelled>`)
	case o.validation != nil:
		v := o.validation
		if v.Token != nil {
			w.token(v.Token, o.rst.TokenTypeURI)
		} else {
			w.elem("TokenType", string(o.rst.Version)+"/RSTR/Status")
		}
		code := string(o.rst.Version) + "/status/valid"
		if !v.Valid {
			code = string(o.rst.Version) + "/status/invalid"
		}
		b.WriteString(`<wst:Status>`)
		w.elem("Code", code)
		if v.Reason != "" {
			w.elem("Reason", v.Reason)
		}
		b.WriteString(`</wst:Status>`)
	case o.token != nil:
		w.token(o.token, o.rst.TokenTypeURI)
		if o.rst.RequestType == Issue {
			w.proof(o.token)
			w.elem("KeyType", o.rst.keyType(o.token.KeyType))
		}
	}
	w.close()
}

// bodySize estimates the rendered size of outs, to size a buffer once.
func bodySize(outs []*outcome) int {
	size := 512
	for _, o := range outs {
		if o.token != nil {
			size += len(o.token.XML) + 3000
		}
	}
	return size
}

// render writes the response body for outcomes of one version: an RSTRC for
// WS-Trust 1.3 Issue and every batch, a bare RSTR otherwise.
func render(b *bytes.Buffer, v Version, outs []*outcome, collection bool) {
	if collection {
		b.WriteString(`<wst:RequestSecurityTokenResponseCollection xmlns:wst="` + string(v) + `">`)
		for _, o := range outs {
			o.write(b)
		}
		b.WriteString(`</wst:RequestSecurityTokenResponseCollection>`)
		return
	}
	// A bare RSTR declares wst itself.
	var inner bytes.Buffer
	inner.Grow(bodySize(outs))
	outs[0].write(&inner)
	const open = `<wst:RequestSecurityTokenResponse`
	b.WriteString(open + ` xmlns:wst="` + string(v) + `"`)
	b.Write(inner.Bytes()[len(open):])
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
		xmltext.EscapeText(t.ID) + `</wsse:KeyIdentifier></wsse:SecurityTokenReference>`
}
