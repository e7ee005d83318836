package wsfed

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/sts"
)

// TokenRequest is what a wreq asks for.
type TokenRequest struct {
	// TokenTypeURI is the TokenType as sent ("" when absent); TokenType its
	// canonical form for the core.
	TokenTypeURI string
	TokenType    string
	// AppliesTo, when present, must name the same realm as wtrealm.
	AppliesTo     string
	ClaimsDialect string
	Claims        []sts.ClaimRequest
}

var wreqLimits = safexml.Limits{MaxBytes: maxWreq, MaxDepth: 16}

// CanonicalTokenType maps the token type spellings clients send to the
// core's URIs; anything else passes through for the core to refuse by name.
func CanonicalTokenType(uri string) string {
	switch uri {
	case sts.TokenSAML20, TokenProfileSAML20:
		return sts.TokenSAML20
	case sts.TokenSAML11, TokenProfileSAML11:
		return sts.TokenSAML11
	}
	return uri
}

func isTrustNS(ns string) bool  { return ns == NSTrust2005 || ns == NSTrust13 || ns == NSTrust14 }
func isPolicyNS(ns string) bool { return ns == NSPolicy2004 || ns == NSPolicy2006 || ns == NSPolicyW3C }
func isWSANS(ns string) bool    { return ns == NSWSA2005 || ns == NSWSA2004 }

// ParseWreq reads a wreq: a wst:RequestSecurityToken of WS-Trust 2005/02,
// 1.3 or 1.4. It is parsed with safexml (no DOCTYPE, size and depth limits).
// TokenType, AppliesTo and Claims are read; RequestType and everything else
// are ignored (a passive request is always an Issue).
func ParseWreq(s string) (*TokenRequest, error) {
	doc, err := safexml.Parse([]byte(s), wreqLimits)
	if err != nil {
		// safexml's messages never quote the input, so they may be shown.
		return nil, refuse("wreq is not acceptable XML: %v", err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "RequestSecurityToken" || !isTrustNS(root.NamespaceURI()) {
		return nil, refuse("wreq must be a WS-Trust RequestSecurityToken")
	}
	ns := root.NamespaceURI()
	tr := &TokenRequest{}
	seen := map[string]bool{}
	for _, c := range root.ChildElements() {
		key := c.NamespaceURI() + " " + c.Tag
		switch {
		case c.NamespaceURI() == ns && c.Tag == "TokenType":
			tr.TokenTypeURI = strings.TrimSpace(safexml.Text(c))
			tr.TokenType = CanonicalTokenType(tr.TokenTypeURI)
		case isPolicyNS(c.NamespaceURI()) && c.Tag == "AppliesTo":
			key = "AppliesTo"
			addr := appliesToAddress(c)
			if addr == "" {
				return nil, refuse("wreq AppliesTo has no EndpointReference Address")
			}
			tr.AppliesTo = addr
		case c.NamespaceURI() == ns && c.Tag == "Claims":
			tr.ClaimsDialect = strings.TrimSpace(c.SelectAttrValue("Dialect", ""))
			if tr.ClaimsDialect == "" {
				return nil, refuse("wreq Claims has no Dialect")
			}
			for _, ct := range c.ChildElements() {
				if ct.Tag != "ClaimType" {
					continue
				}
				opt := strings.TrimSpace(ct.SelectAttrValue("Optional", "false"))
				tr.Claims = append(tr.Claims, sts.ClaimRequest{URI: strings.TrimSpace(ct.SelectAttrValue("Uri", "")),
					Optional: opt == "true" || opt == "1"})
			}
		default:
			continue
		}
		if seen[key] {
			return nil, refuse("wreq has more than one %s element", c.Tag)
		}
		seen[key] = true
	}
	return tr, nil
}

// appliesToAddress reads wsp:AppliesTo/wsa:EndpointReference/wsa:Address.
func appliesToAddress(at *etree.Element) string {
	for _, epr := range at.ChildElements() {
		if epr.Tag != "EndpointReference" || !isWSANS(epr.NamespaceURI()) {
			continue
		}
		for _, a := range epr.ChildElements() {
			if a.Tag == "Address" && a.NamespaceURI() == epr.NamespaceURI() {
				return strings.TrimSpace(safexml.Text(a))
			}
		}
	}
	return ""
}
