package sts

// Claim dialects accepted in RST Claims.
const (
	DialectIdentity = "http://schemas.xmlsoap.org/ws/2005/05/identity"
	DialectWSO2     = "http://wso2.org/claims"
)

// Well-known claim URIs.
const (
	ClaimRoleMS   = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	ClaimRoleWSO2 = "http://wso2.org/claims/role"
	ClaimNameID   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
)

// equivalents links claims that mean the same thing in the identity
// (ADFS/WIF) dialect and WSO2's dialect, so a value stored under one URI
// answers a request in the other. Keep pairs symmetric: both directions are
// derived from this list.
var equivalentPairs = [][2]string{
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "http://wso2.org/claims/emailaddress"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "http://wso2.org/claims/givenname"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "http://wso2.org/claims/lastname"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "http://wso2.org/claims/fullname"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "http://wso2.org/claims/upn"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/streetaddress", "http://wso2.org/claims/streetaddress"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/country", "http://wso2.org/claims/country"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/mobilephone", "http://wso2.org/claims/mobile"},
	{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/dateofbirth", "http://wso2.org/claims/dob"},
	{ClaimRoleMS, ClaimRoleWSO2},
}

var equivalents = func() map[string]string {
	m := make(map[string]string, 2*len(equivalentPairs))
	for _, p := range equivalentPairs {
		m[p[0]] = p[1]
		m[p[1]] = p[0]
	}
	return m
}()

// KnownClaims lists the claim URIs the built-in dictionary knows (for
// metadata and documentation).
func KnownClaims() []string {
	out := make([]string, 0, 2*len(equivalentPairs))
	for _, p := range equivalentPairs {
		out = append(out, p[0], p[1])
	}
	return out
}

// claimValues resolves a requested claim URI for p: roles for the role
// claims, the user's name for nameidentifier, else the stored value under the
// URI or its equivalent in the other dialect.
func claimValues(p *Principal, uri string) []string {
	switch uri {
	case ClaimRoleMS, ClaimRoleWSO2:
		return append([]string(nil), p.Roles...)
	case ClaimNameID:
		return []string{p.Name}
	}
	if v, ok := p.Claims[uri]; ok {
		return []string{v}
	}
	if eq, ok := equivalents[uri]; ok {
		if v, ok := p.Claims[eq]; ok {
			return []string{v}
		}
	}
	return nil
}
