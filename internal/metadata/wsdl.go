// Package metadata renders the documents that describe avouch's endpoints to
// clients: the WSDL of each WS-Trust endpoint (wsdl.go), the
// WS-MetadataExchange document and its WS-Transfer Get binding (mex.go), and
// the signed WS-Federation metadata (fedmeta.go).
//
// The WSDL documents are built from a small description of each protocol
// version (namespace, actions, response element) and of each endpoint
// (address, policy, SOAP bindings), so the per-endpoint WSDL and the MEX
// document share one template.
package metadata

import (
	"bytes"
	"encoding/xml"
	"net/url"
	"strconv"
	"strings"
	"text/template"
)

// Trust is a WS-Trust version an endpoint speaks.
type Trust int

const (
	// Trust13 is WS-Trust 1.3 (OASIS, namespace …/ws-sx/ws-trust/200512);
	// the zero value, so options that do not name a version mean 1.3.
	Trust13 Trust = iota
	// Trust2005 is WS-Trust 2005/02 (namespace …/ws/2005/02/trust).
	Trust2005
)

func (t Trust) String() string {
	if t == Trust2005 {
		return "2005/02"
	}
	return "1.3"
}

// Bindings selects the SOAP bindings (and ports) a WSDL describes.
type Bindings int

const (
	SOAP11 Bindings = 1 << iota
	SOAP12
	// BothSOAP is SOAP11|SOAP12, the default (zero value) of WSDLOptions.
	BothSOAP = SOAP11 | SOAP12
)

// WSDLOptions says which endpoint a WSDL describes.
type WSDLOptions struct {
	// EndpointURL is the absolute URL of the SOAP endpoint (both ports, SOAP
	// 1.1 and SOAP 1.2, are served on the same URL; the server tells them apart
	// by the envelope namespace). Its scheme decides the policy: only https
	// gets a TransportBinding.
	EndpointURL string
	// Trust is the WS-Trust version of the operations (default 1.3). It also
	// picks the WS-SecurityPolicy version: 1.2 for 1.3, 2005/07 for 2005/02.
	Trust Trust
	// Bindings are the SOAP bindings described (default both).
	Bindings Bindings
	// Scenario is the security scenario the endpoint enforces, as in the
	// security_scenario setting: methods usernametoken, x509, mutual-tls
	// joined by + (all required), alternatives separated by | or ,.
	// Empty means usernametoken.
	Scenario string
}

// alternative is one way to authenticate in a policy.
type alternative struct{ UT, X509, MTLS bool }

// alternatives parses a scenario; unknown methods are left out (the server
// refuses such a scenario anyway).
func alternatives(scenario string) []alternative {
	if strings.TrimSpace(scenario) == "" {
		scenario = "usernametoken"
	}
	var out []alternative
	for _, alt := range strings.FieldsFunc(scenario, func(r rune) bool { return r == '|' || r == ',' }) {
		var a alternative
		for _, m := range strings.Split(alt, "+") {
			switch strings.TrimSpace(m) {
			case "usernametoken":
				a.UT = true
			case "x509":
				a.X509 = true
			case "mutual-tls":
				a.MTLS = true
			}
		}
		if a.UT || a.X509 || a.MTLS {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []alternative{{UT: true}}
	}
	return out
}

// Namespaces used in the documents. They are exported because the tests of
// other packages (and the server's MEX endpoint) need the same names.
const (
	NSWSDL       = "http://schemas.xmlsoap.org/wsdl/"
	NSWSDLSOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
	NSWSDLSOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
	NSXSD        = "http://www.w3.org/2001/XMLSchema"
	NSTrust13    = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	NSTrust2005  = "http://schemas.xmlsoap.org/ws/2005/02/trust"
	// NSPolicy2004 is WS-Policy 2004/09. It is used both for the policy and
	// for AppliesTo: .NET/ADFS only accept AppliesTo in this namespace, and
	// msal's MEX reader looks for policies in it.
	NSPolicy2004 = "http://schemas.xmlsoap.org/ws/2004/09/policy"
	NSAddressing = "http://www.w3.org/2005/08/addressing"
	NSAddrMeta   = "http://www.w3.org/2007/05/addressing/metadata"
	// NSSecPolicy is WS-SecurityPolicy 1.2 (OASIS), used with WS-Trust 1.3.
	NSSecPolicy = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
	// NSSecPolicy2005 is the 2005/07 WS-SecurityPolicy submission, used with
	// WS-Trust 2005/02 (ADFS's …/trust/2005/… endpoints).
	NSSecPolicy2005 = "http://schemas.xmlsoap.org/ws/2005/07/securitypolicy"
	NSWSU           = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	NSIdentity      = "http://schemas.xmlsoap.org/ws/2005/05/identity"
	// TargetNamespace is the namespace of the WSDL's own definitions (message,
	// portType, binding and service names).
	TargetNamespace = "urn:avouch:wsdl:ws-trust"
)

// trustOperation is one WS-Trust binding operation.
type trustOperation struct {
	Name         string // WSDL operation name: Issue, Renew, Validate, Cancel
	InputAction  string // wsa:Action and soapAction of the request
	OutputAction string // wsa:Action of the final response
	// OutputMessage names the WSDL message of the response (one of the
	// messages the profile declares, without the profile's Msg prefix).
	OutputMessage string
}

// trustProfile describes one WS-Trust version for the templates.
type trustProfile struct {
	Name       string // used in WSDL names: "13", "2005"
	NS         string
	Prefix     string // namespace prefix in the documents
	Operations []trustOperation
	SP         securityPolicy
}

// securityPolicy is the WS-SecurityPolicy version that goes with a trust
// version.
type securityPolicy struct {
	NS, Prefix string
	// SignedTokens is the supporting-token assertion used over TLS.
	// WS-SP 1.2 has SignedEncryptedSupportingTokens; the 2005/07 draft has no
	// such assertion and ADFS writes SignedSupportingTokens (the transport
	// encrypts).
	SignedTokens string
	// ClientCertAttr: the 2005/07 HttpsToken requires the
	// RequireClientCertificate attribute; 1.2 expresses it as a nested
	// assertion, absent meaning not required.
	ClientCertAttr bool
}

var (
	sp12   = securityPolicy{NS: NSSecPolicy, Prefix: "sp", SignedTokens: "SignedEncryptedSupportingTokens"}
	sp2005 = securityPolicy{NS: NSSecPolicy2005, Prefix: "sp2005", SignedTokens: "SignedSupportingTokens", ClientCertAttr: true}
)

const (
	msgRSTR  = "RequestSecurityTokenResponseMsg"
	msgRSTRC = "RequestSecurityTokenResponseCollectionMsg"
)

// Issue comes first in both profiles: msal's MEX reader takes the soapAction
// of a binding's first operation as the binding's action.
var (
	trust13 = func() trustProfile {
		a := NSTrust13
		return trustProfile{
			Name: "13", NS: a, Prefix: "wst", SP: sp12,
			// WS-Trust 1.3 answers Issue with a collection (RSTRC).
			Operations: []trustOperation{
				{"Issue", a + "/RST/Issue", a + "/RSTRC/IssueFinal", msgRSTRC},
				{"Renew", a + "/RST/Renew", a + "/RSTR/RenewFinal", msgRSTR},
				{"Validate", a + "/RST/Validate", a + "/RSTR/ValidateFinal", msgRSTR},
				{"Cancel", a + "/RST/Cancel", a + "/RSTR/CancelFinal", msgRSTR},
			},
		}
	}()
	trust2005 = func() trustProfile {
		a := NSTrust2005
		return trustProfile{
			Name: "2005", NS: a, Prefix: "t", SP: sp2005,
			// 2005/02 answers every binding with a bare RSTR, action …/RSTR/<binding>.
			Operations: []trustOperation{
				{"Issue", a + "/RST/Issue", a + "/RSTR/Issue", msgRSTR},
				{"Renew", a + "/RST/Renew", a + "/RSTR/Renew", msgRSTR},
				{"Validate", a + "/RST/Validate", a + "/RSTR/Validate", msgRSTR},
				{"Cancel", a + "/RST/Cancel", a + "/RSTR/Cancel", msgRSTR},
			},
		}
	}()
)

func profileOf(t Trust) trustProfile {
	if t == Trust2005 {
		return trust2005
	}
	return trust13
}

// policyID is the wsu:Id of the policy of the per-endpoint WSDL.
const policyID = "UsernameTokenPolicy"

// Template data.
type (
	docData struct {
		Documentation    string
		Profiles         []*profileData
		SecurityPolicies []securityPolicy // distinct, for the namespace declarations
		Policies         []policyData
		Bindings         []bindingData
		Ports            []portData
	}
	profileData struct {
		trustProfile
		PortType string
		Msg      string // prefix of the profile's message names
	}
	policyData struct {
		ID           string
		TLS          bool
		SP           securityPolicy
		Alternatives []alternative
	}
	bindingData struct {
		Name     string
		Profile  *profileData
		PolicyID string
		SOAP     string // "soap" or "soap12": the WSDL binding extension prefix
	}
	portData struct {
		Name, Binding, SOAP, Address string
	}
)

// WSDL returns the WSDL 1.1 document of the WS-Trust endpoint at
// o.EndpointURL: one service with a SOAP 1.1 and a SOAP 1.2 port (or those
// o.Bindings selects), operations Issue, Renew, Validate and Cancel of the
// endpoint's trust version, an embedded schema for the RST/RSTR/RSTRC
// messages, and a WS-SecurityPolicy policy.
//
// The schema is written for clients that generate code or call by element
// name (zeep, svcutil): the RequestSecurityToken children a client sets are
// declared one by one, while the response content is open (xs:any, lax), so
// that a client never fails on an assertion, reference or extension it does
// not know.
func WSDL(o WSDLOptions) []byte {
	prof := &profileData{trustProfile: profileOf(o.Trust), PortType: "SecurityTokenService"}
	d := docData{
		Documentation: "avouch WS-Trust " + o.Trust.String() + " Security Token Service. " + authDocFor(alternatives(o.Scenario)),
		Profiles:      []*profileData{prof},
		Policies:      []policyData{{ID: policyID, TLS: isHTTPS(o.EndpointURL), SP: prof.SP, Alternatives: alternatives(o.Scenario)}},
	}
	d.SecurityPolicies = []securityPolicy{prof.SP}
	bindings := o.Bindings
	if bindings == 0 {
		bindings = BothSOAP
	}
	for _, b := range []struct {
		bit  Bindings
		soap string
		name string
	}{{SOAP11, "soap", "Soap11"}, {SOAP12, "soap12", "Soap12"}} {
		if bindings&b.bit == 0 {
			continue
		}
		name := "SecurityTokenService" + b.name
		d.Bindings = append(d.Bindings, bindingData{Name: name + "Binding", Profile: prof, PolicyID: policyID, SOAP: b.soap})
		d.Ports = append(d.Ports, portData{Name: name, Binding: name + "Binding", SOAP: b.soap, Address: o.EndpointURL})
	}
	return append([]byte(xmlDecl), render(d)...)
}

const xmlDecl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// authDocFor says in words how callers authenticate.
func authDocFor(alts []alternative) string {
	var parts []string
	for _, a := range alts {
		var m []string
		if a.UT {
			m = append(m, "a WS-Security UsernameToken (PasswordText, or PasswordDigest where the user allows it)")
		}
		if a.X509 {
			m = append(m, "an X.509 signature over the Body and Timestamp")
		}
		if a.MTLS {
			m = append(m, "a TLS client certificate")
		}
		parts = append(parts, strings.Join(m, " and "))
	}
	return "Requests are authenticated with " + strings.Join(parts, ", or with ") + "."
}

// render executes the WSDL template; the result has no XML declaration, so
// that it can also be embedded in a MEX MetadataSection.
func render(d docData) []byte {
	var b bytes.Buffer
	if err := wsdlTemplate.ExecuteTemplate(&b, "wsdl", d); err != nil {
		// The template and its data are fixed by this package: an error here
		// is a programming error, caught by the package's tests.
		panic("metadata: WSDL template: " + err.Error())
	}
	b.WriteByte('\n')
	return b.Bytes()
}

func isHTTPS(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder never fail
	return b.String()
}

// uniqueName returns name, or name with a counter when it is taken.
func uniqueName(taken map[string]bool, name string) string {
	n := name
	for i := 2; taken[n]; i++ {
		n = name + "_" + strconv.Itoa(i)
	}
	taken[n] = true
	return n
}

var wsdlTemplate = template.Must(template.New("wsdl").Funcs(template.FuncMap{
	"x": xmlEscape,
}).Parse(wsdlText + policyText + trustSchemaText + commonSchemaText))
