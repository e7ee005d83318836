package metadata

// The WSDL 1.1 templates. One document model serves both the per-endpoint
// WSDL (one WS-Trust version, SOAP 1.1 and 1.2 ports) and the MEX document
// (several endpoints, SOAP 1.2 ports only): a list of trust profiles (one
// schema, messages and portType each), policies, bindings and ports.
//
// Every name a document holds twice (one per trust version) carries the
// profile's Msg/PortType; the per-endpoint WSDL keeps the historic names
// (SecurityTokenService, RequestSecurityTokenMsg …) that generated clients
// already use.

const wsdlText = `{{define "wsdl"}}<wsdl:definitions name="SecurityTokenService"
    targetNamespace="` + TargetNamespace + `"
    xmlns:tns="` + TargetNamespace + `"
    xmlns:wsdl="` + NSWSDL + `"
    xmlns:soap="` + NSWSDLSOAP11 + `"
    xmlns:soap12="` + NSWSDLSOAP12 + `"
    xmlns:xs="` + NSXSD + `"
{{- range .Profiles}}
    xmlns:{{.Prefix}}="{{.NS}}"
{{- end}}
    xmlns:wsp="` + NSPolicy2004 + `"
    xmlns:wsa="` + NSAddressing + `"
    xmlns:wsam="` + NSAddrMeta + `"
{{- range .SecurityPolicies}}
    xmlns:{{.Prefix}}="{{.NS}}"
{{- end}}
    xmlns:wsu="` + NSWSU + `"
    xmlns:i="` + NSIdentity + `">
  <wsdl:documentation>{{x .Documentation}}</wsdl:documentation>
{{- range .Policies}}
{{template "policy" .}}
{{- end}}
  <wsdl:types>
{{- range .Profiles}}
{{template "trustSchema" .}}
{{- end}}
{{template "commonSchemas"}}
  </wsdl:types>
{{- range .Profiles}}
  <wsdl:message name="{{.Msg}}RequestSecurityTokenMsg">
    <wsdl:part name="request" element="{{.Prefix}}:RequestSecurityToken"/>
  </wsdl:message>
  <wsdl:message name="{{.Msg}}RequestSecurityTokenResponseMsg">
    <wsdl:part name="response" element="{{.Prefix}}:RequestSecurityTokenResponse"/>
  </wsdl:message>
  <wsdl:message name="{{.Msg}}RequestSecurityTokenResponseCollectionMsg">
    <wsdl:part name="responseCollection" element="{{.Prefix}}:RequestSecurityTokenResponseCollection"/>
  </wsdl:message>
{{- end}}
{{- range .Profiles}}
{{- $p := .}}
  <wsdl:portType name="{{.PortType}}">
{{- range .Operations}}
    <wsdl:operation name="{{.Name}}">
      <wsdl:input message="tns:{{$p.Msg}}RequestSecurityTokenMsg" wsam:Action="{{.InputAction}}"/>
      <wsdl:output message="tns:{{$p.Msg}}{{.OutputMessage}}" wsam:Action="{{.OutputAction}}"/>
    </wsdl:operation>
{{- end}}
  </wsdl:portType>
{{- end}}
{{- range .Bindings}}
{{- $soap := .SOAP}}
  <wsdl:binding name="{{.Name}}" type="tns:{{.Profile.PortType}}">
    <wsp:PolicyReference URI="#{{.PolicyID}}"/>
    <{{$soap}}:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
{{- range .Profile.Operations}}
    <wsdl:operation name="{{.Name}}">
      <{{$soap}}:operation soapAction="{{.InputAction}}" style="document"/>
      <wsdl:input><{{$soap}}:body use="literal"/></wsdl:input>
      <wsdl:output><{{$soap}}:body use="literal"/></wsdl:output>
    </wsdl:operation>
{{- end}}
  </wsdl:binding>
{{- end}}
  <wsdl:service name="SecurityTokenService">
{{- range .Ports}}
    <wsdl:port name="{{.Name}}" binding="tns:{{.Binding}}">
      <{{.SOAP}}:address location="{{x .Address}}"/>
      <wsa:EndpointReference><wsa:Address>{{x .Address}}</wsa:Address></wsa:EndpointReference>
    </wsdl:port>
{{- end}}
  </wsdl:service>
</wsdl:definitions>{{end}}`

// policyText is an endpoint's WS-SecurityPolicy policy, in the policy
// version that goes with its WS-Trust version (1.2 for WS-Trust 1.3, the
// 2005/07 submission for WS-Trust 2005/02, as ADFS pairs them). It says only
// what the server enforces:
//
//   - Over HTTPS, the ADFS "usernamemixed" shape: a TransportBinding (TLS,
//     no client certificate) carrying a UsernameToken as a signed (1.2:
//     signed and encrypted) supporting token; the transport signs and
//     encrypts it. These are also the shapes msal's MEX reader looks for.
//   - Over plain HTTP (tests, or behind a TLS-terminating proxy the server
//     cannot see and no https public_url was configured) there is no
//     transport binding and nothing signs or encrypts the message, so the
//     policy claims a plain supporting UsernameToken and nothing more.
//     Claiming signed supporting tokens there would promise protection that
//     does not exist (and msal rightly ignores such an endpoint).
//
// One wsp:All per alternative of the security scenario in force
// (security_scenario): a UsernameToken as above; an X.509 token that
// endorses (signs) the message; mutual TLS as an HttpsToken that requires a
// client certificate.
//
// No IncludeTimestamp: the server checks a Timestamp when one is sent but
// does not require it (unless require_timestamp is set, which a client
// learns from the fault).
const policyText = `{{define "policy"}}{{$sp := .SP.Prefix}}{{$p := .}}  <wsp:Policy wsu:Id="{{.ID}}">
    <wsp:ExactlyOne>
{{- range .Alternatives}}
      <wsp:All>
{{- if or $p.TLS .MTLS}}
        <{{$sp}}:TransportBinding>
          <wsp:Policy>
            <{{$sp}}:TransportToken>
              <wsp:Policy>
{{- if $p.SP.ClientCertAttr}}
                <{{$sp}}:HttpsToken RequireClientCertificate="{{.MTLS}}"/>
{{- else if .MTLS}}
                <{{$sp}}:HttpsToken>
                  <wsp:Policy>
                    <{{$sp}}:RequireClientCertificate/>
                  </wsp:Policy>
                </{{$sp}}:HttpsToken>
{{- else}}
                <{{$sp}}:HttpsToken/>
{{- end}}
              </wsp:Policy>
            </{{$sp}}:TransportToken>
            <{{$sp}}:AlgorithmSuite>
              <wsp:Policy>
                <{{$sp}}:Basic256/>
              </wsp:Policy>
            </{{$sp}}:AlgorithmSuite>
            <{{$sp}}:Layout>
              <wsp:Policy>
                <{{$sp}}:Lax/>
              </wsp:Policy>
            </{{$sp}}:Layout>
          </wsp:Policy>
        </{{$sp}}:TransportBinding>
{{- end}}
{{- if .UT}}
{{- if $p.TLS}}
        <{{$sp}}:{{$p.SP.SignedTokens}}>
{{- else}}
        <{{$sp}}:SupportingTokens>
{{- end}}
          <wsp:Policy>
            <{{$sp}}:UsernameToken {{$sp}}:IncludeToken="{{$p.SP.NS}}/IncludeToken/AlwaysToRecipient">
              <wsp:Policy>
                <{{$sp}}:WssUsernameToken10/>
              </wsp:Policy>
            </{{$sp}}:UsernameToken>
          </wsp:Policy>
{{- if $p.TLS}}
        </{{$sp}}:{{$p.SP.SignedTokens}}>
{{- else}}
        </{{$sp}}:SupportingTokens>
{{- end}}
{{- end}}
{{- if .X509}}
        <{{$sp}}:EndorsingSupportingTokens>
          <wsp:Policy>
            <{{$sp}}:X509Token {{$sp}}:IncludeToken="{{$p.SP.NS}}/IncludeToken/AlwaysToRecipient">
              <wsp:Policy>
                <{{$sp}}:WssX509V3Token10/>
              </wsp:Policy>
            </{{$sp}}:X509Token>
          </wsp:Policy>
        </{{$sp}}:EndorsingSupportingTokens>
{{- end}}
      </wsp:All>
{{- end}}
    </wsp:ExactlyOne>
  </wsp:Policy>{{end}}`

// trustSchemaText is the embedded XML Schema of one WS-Trust namespace
// (rendered once per trust profile, with its prefix); commonSchemaText holds
// the namespaces both versions share and is rendered once per document, since
// an xs:schema has a single target namespace and two schemas may not declare
// the same global element. Only what a client sends or reads by name is
// declared; everything a server may add (assertions, key references,
// extensions) is xs:any with lax processing.
const trustSchemaText = `{{define "trustSchema"}}    <xs:schema targetNamespace="{{.NS}}" elementFormDefault="qualified" attributeFormDefault="unqualified">
      <xs:import namespace="` + NSPolicy2004 + `"/>
      <xs:import namespace="` + NSWSU + `"/>
      <xs:import namespace="` + NSIdentity + `"/>

      <xs:element name="RequestSecurityToken" type="{{.Prefix}}:RequestSecurityTokenType"/>
      <xs:complexType name="RequestSecurityTokenType">
        <xs:annotation><xs:documentation>The children a client sets. The server accepts them in any order and ignores ones it does not know; this order is the one clients generated from this WSDL send.</xs:documentation></xs:annotation>
        <xs:sequence>
          <xs:element ref="{{.Prefix}}:TokenType" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:RequestType"/>
          <xs:element ref="wsp:AppliesTo" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:Claims" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:Lifetime" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:KeyType" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:KeySize" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:RenewTarget" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:ValidateTarget" minOccurs="0"/>
          <xs:element ref="{{.Prefix}}:CancelTarget" minOccurs="0"/>
        </xs:sequence>
        <xs:attribute name="Context" type="xs:anyURI" use="optional"/>
      </xs:complexType>

      <xs:element name="TokenType" type="xs:anyURI"/>
      <xs:element name="RequestType" type="xs:anyURI"/>
      <xs:element name="KeyType" type="xs:anyURI"/>
      <xs:element name="KeySize" type="xs:unsignedInt"/>

      <xs:element name="Claims" type="{{.Prefix}}:ClaimsType"/>
      <xs:complexType name="ClaimsType">
        <xs:sequence>
          <xs:element ref="i:ClaimType" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:attribute name="Dialect" type="xs:anyURI" use="optional"/>
      </xs:complexType>

      <xs:element name="Lifetime" type="{{.Prefix}}:LifetimeType"/>
      <xs:complexType name="LifetimeType">
        <xs:sequence>
          <xs:element ref="wsu:Created" minOccurs="0"/>
          <xs:element ref="wsu:Expires" minOccurs="0"/>
        </xs:sequence>
      </xs:complexType>

      <xs:element name="RenewTarget" type="{{.Prefix}}:TokenTargetType"/>
      <xs:element name="ValidateTarget" type="{{.Prefix}}:TokenTargetType"/>
      <xs:element name="CancelTarget" type="{{.Prefix}}:TokenTargetType"/>
      <xs:complexType name="TokenTargetType">
        <xs:sequence>
          <xs:any namespace="##other" processContents="lax"/>
        </xs:sequence>
      </xs:complexType>

      <xs:element name="RequestSecurityTokenResponse" type="{{.Prefix}}:RequestSecurityTokenResponseType"/>
      <xs:complexType name="RequestSecurityTokenResponseType">
        <xs:annotation><xs:documentation>Open content, as in the WS-Trust schema: TokenType, RequestedSecurityToken, references, Lifetime, AppliesTo, Status ... in the order the server writes them.</xs:documentation></xs:annotation>
        <xs:sequence>
          <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:attribute name="Context" type="xs:anyURI" use="optional"/>
        <xs:anyAttribute namespace="##other" processContents="lax"/>
      </xs:complexType>

      <xs:element name="RequestSecurityTokenResponseCollection" type="{{.Prefix}}:RequestSecurityTokenResponseCollectionType"/>
      <xs:complexType name="RequestSecurityTokenResponseCollectionType">
        <xs:sequence>
          <xs:element ref="{{.Prefix}}:RequestSecurityTokenResponse" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:anyAttribute namespace="##other" processContents="lax"/>
      </xs:complexType>

      <xs:element name="RequestedSecurityToken" type="{{.Prefix}}:OpenContentType"/>
      <xs:element name="RequestedAttachedReference" type="{{.Prefix}}:OpenContentType"/>
      <xs:element name="RequestedUnattachedReference" type="{{.Prefix}}:OpenContentType"/>
      <xs:element name="RequestedProofToken" type="{{.Prefix}}:OpenContentType"/>
      <xs:complexType name="OpenContentType">
        <xs:sequence>
          <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:anyAttribute namespace="##any" processContents="lax"/>
      </xs:complexType>

      <xs:element name="Status" type="{{.Prefix}}:StatusType"/>
      <xs:complexType name="StatusType">
        <xs:sequence>
          <xs:element name="Code" type="xs:anyURI"/>
          <xs:element name="Reason" type="xs:string" minOccurs="0"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="RequestedTokenCancelled" type="{{.Prefix}}:OpenContentType"/>
    </xs:schema>{{end}}`

const commonSchemaText = `{{define "commonSchemas"}}    <xs:schema targetNamespace="` + NSPolicy2004 + `" elementFormDefault="qualified">
      <xs:import namespace="` + NSAddressing + `"/>
      <xs:element name="AppliesTo">
        <xs:complexType>
          <xs:sequence>
            <xs:element ref="wsa:EndpointReference"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
    </xs:schema>
    <xs:schema targetNamespace="` + NSAddressing + `" elementFormDefault="qualified">
      <xs:element name="EndpointReference" type="wsa:EndpointReferenceType"/>
      <xs:complexType name="EndpointReferenceType">
        <xs:sequence>
          <xs:element name="Address" type="xs:anyURI"/>
          <xs:element name="ReferenceParameters" type="wsa:OpenContentType" minOccurs="0"/>
          <xs:element name="Metadata" type="wsa:OpenContentType" minOccurs="0"/>
        </xs:sequence>
      </xs:complexType>
      <xs:complexType name="OpenContentType">
        <xs:sequence>
          <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
      </xs:complexType>
    </xs:schema>
    <xs:schema targetNamespace="` + NSWSU + `" elementFormDefault="qualified">
      <xs:element name="Created" type="xs:string"/>
      <xs:element name="Expires" type="xs:string"/>
    </xs:schema>
    <xs:schema targetNamespace="` + NSIdentity + `" elementFormDefault="qualified">
      <xs:element name="ClaimType">
        <xs:complexType>
          <xs:attribute name="Uri" type="xs:anyURI" use="required"/>
          <xs:attribute name="Optional" type="xs:boolean" use="optional"/>
        </xs:complexType>
      </xs:element>
    </xs:schema>{{end}}`
