// Package metadata renders the documents that describe avouch's endpoints to
// clients: the WSDL of the WS-Trust Security Token Service (and, later, the
// WS-MetadataExchange and WS-Federation metadata documents).
//
// The documents are built from a small description of the protocol version
// (namespace, actions, response element) so that the WS-Trust 2005/02 variant
// and the MEX/FederationMetadata wrappers can be added next to the 1.3 one
// without copying the template.
package metadata

import (
	"bytes"
	"encoding/xml"
	"net/url"
	"strings"
	"text/template"
)

// WSDLOptions says where the described endpoint lives.
type WSDLOptions struct {
	// EndpointURL is the absolute URL of the SOAP endpoint (both ports, SOAP
	// 1.1 and SOAP 1.2, are served on the same URL; the server tells them apart
	// by the envelope namespace).
	EndpointURL string
}

// Namespaces used in the documents. They are exported because the tests of
// other packages (and the server's MEX endpoint, later) need the same names.
const (
	NSWSDL       = "http://schemas.xmlsoap.org/wsdl/"
	NSWSDLSOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
	NSWSDLSOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
	NSXSD        = "http://www.w3.org/2001/XMLSchema"
	NSTrust13    = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	// NSPolicy2004 is WS-Policy 2004/09. It is used both for the policy and
	// for AppliesTo: .NET/ADFS only accept AppliesTo in this namespace, and
	// msal's MEX reader looks for policies in it.
	NSPolicy2004 = "http://schemas.xmlsoap.org/ws/2004/09/policy"
	NSAddressing = "http://www.w3.org/2005/08/addressing"
	NSAddrMeta   = "http://www.w3.org/2007/05/addressing/metadata"
	NSSecPolicy  = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
	NSWSU        = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	NSIdentity   = "http://schemas.xmlsoap.org/ws/2005/05/identity"
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
	// messages the profile declares).
	OutputMessage string
}

// trustProfile describes one WS-Trust version for the templates. Only 1.3
// exists now; 2005/02 differs in namespace, actions, and in that Issue
// answers with a bare RSTR instead of an RSTRC.
type trustProfile struct {
	Name       string // used in WSDL names: "13"
	NS         string
	Operations []trustOperation
}

var trust13 = func() trustProfile {
	a := NSTrust13
	return trustProfile{
		Name: "13",
		NS:   a,
		// Issue first: msal's MEX reader takes the soapAction of a binding's
		// first operation as the binding's action.
		Operations: []trustOperation{
			{"Issue", a + "/RST/Issue", a + "/RSTRC/IssueFinal", "RequestSecurityTokenResponseCollectionMsg"},
			{"Renew", a + "/RST/Renew", a + "/RSTR/RenewFinal", "RequestSecurityTokenResponseMsg"},
			{"Validate", a + "/RST/Validate", a + "/RSTR/ValidateFinal", "RequestSecurityTokenResponseMsg"},
			{"Cancel", a + "/RST/Cancel", a + "/RSTR/CancelFinal", "RequestSecurityTokenResponseMsg"},
		},
	}
}()

// policyID is the wsu:Id of the endpoint policy the bindings refer to.
const policyID = "UsernameTokenPolicy"

type wsdlData struct {
	Endpoint string
	// TLS says whether the endpoint is served over HTTPS, which decides what
	// the security policy may truthfully claim.
	TLS      bool
	Trust    trustProfile
	PolicyID string
}

// WSDL returns the WSDL 1.1 document of the WS-Trust 1.3 endpoint at
// o.EndpointURL: one service with a SOAP 1.1 and a SOAP 1.2 port, operations
// Issue, Renew, Validate and Cancel, an embedded schema for the RST/RSTR/RSTRC
// messages, and a WS-SecurityPolicy 1.2 policy.
//
// The schema is written for clients that generate code or call by element
// name (zeep, svcutil): the RequestSecurityToken children a client sets are
// declared one by one, while the response content is open (xs:any, lax), so
// that a client never fails on an assertion, reference or extension it does
// not know.
func WSDL(o WSDLOptions) []byte {
	d := wsdlData{
		Endpoint: o.EndpointURL,
		TLS:      isHTTPS(o.EndpointURL),
		Trust:    trust13,
		PolicyID: policyID,
	}
	var b bytes.Buffer
	if err := wsdlTemplate.Execute(&b, d); err != nil {
		// The template and its data are fixed by this package: an error here
		// is a programming error, caught by the package's tests.
		panic("metadata: WSDL template: " + err.Error())
	}
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

var wsdlTemplate = template.Must(template.New("wsdl").Funcs(template.FuncMap{
	"x": xmlEscape,
}).Parse(wsdlText + policyText + schemaText))
