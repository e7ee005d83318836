package metadata

// wsdlText is the WSDL 1.1 skeleton. Names are built from the trust profile so
// that a WS-Trust 2005/02 profile renders distinct message/binding names.
const wsdlText = `<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="SecurityTokenService"
    targetNamespace="` + TargetNamespace + `"
    xmlns:tns="` + TargetNamespace + `"
    xmlns:wsdl="` + NSWSDL + `"
    xmlns:soap="` + NSWSDLSOAP11 + `"
    xmlns:soap12="` + NSWSDLSOAP12 + `"
    xmlns:xs="` + NSXSD + `"
    xmlns:wst="{{.Trust.NS}}"
    xmlns:wsp="` + NSPolicy2004 + `"
    xmlns:wsa="` + NSAddressing + `"
    xmlns:wsam="` + NSAddrMeta + `"
    xmlns:sp="` + NSSecPolicy + `"
    xmlns:wsu="` + NSWSU + `"
    xmlns:i="` + NSIdentity + `">
  <wsdl:documentation>avouch WS-Trust {{if eq .Trust.Name "13"}}1.3{{end}} Security Token Service. Requests are authenticated with a WS-Security UsernameToken (PasswordText, or PasswordDigest where the user allows it).</wsdl:documentation>
{{template "policy" .}}
  <wsdl:types>
{{template "schemas" .}}
  </wsdl:types>
  <wsdl:message name="RequestSecurityTokenMsg">
    <wsdl:part name="request" element="wst:RequestSecurityToken"/>
  </wsdl:message>
  <wsdl:message name="RequestSecurityTokenResponseMsg">
    <wsdl:part name="response" element="wst:RequestSecurityTokenResponse"/>
  </wsdl:message>
  <wsdl:message name="RequestSecurityTokenResponseCollectionMsg">
    <wsdl:part name="responseCollection" element="wst:RequestSecurityTokenResponseCollection"/>
  </wsdl:message>
  <wsdl:portType name="SecurityTokenService">
{{- range .Trust.Operations}}
    <wsdl:operation name="{{.Name}}">
      <wsdl:input message="tns:RequestSecurityTokenMsg" wsam:Action="{{.InputAction}}"/>
      <wsdl:output message="tns:{{.OutputMessage}}" wsam:Action="{{.OutputAction}}"/>
    </wsdl:operation>
{{- end}}
  </wsdl:portType>
  <wsdl:binding name="SecurityTokenServiceSoap11Binding" type="tns:SecurityTokenService">
    <wsp:PolicyReference URI="#{{.PolicyID}}"/>
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
{{- range .Trust.Operations}}
    <wsdl:operation name="{{.Name}}">
      <soap:operation soapAction="{{.InputAction}}" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
{{- end}}
  </wsdl:binding>
  <wsdl:binding name="SecurityTokenServiceSoap12Binding" type="tns:SecurityTokenService">
    <wsp:PolicyReference URI="#{{.PolicyID}}"/>
    <soap12:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
{{- range .Trust.Operations}}
    <wsdl:operation name="{{.Name}}">
      <soap12:operation soapAction="{{.InputAction}}" style="document"/>
      <wsdl:input><soap12:body use="literal"/></wsdl:input>
      <wsdl:output><soap12:body use="literal"/></wsdl:output>
    </wsdl:operation>
{{- end}}
  </wsdl:binding>
  <wsdl:service name="SecurityTokenService">
    <wsdl:port name="SecurityTokenServiceSoap11" binding="tns:SecurityTokenServiceSoap11Binding">
      <soap:address location="{{x .Endpoint}}"/>
      <wsa:EndpointReference><wsa:Address>{{x .Endpoint}}</wsa:Address></wsa:EndpointReference>
    </wsdl:port>
    <wsdl:port name="SecurityTokenServiceSoap12" binding="tns:SecurityTokenServiceSoap12Binding">
      <soap12:address location="{{x .Endpoint}}"/>
      <wsa:EndpointReference><wsa:Address>{{x .Endpoint}}</wsa:Address></wsa:EndpointReference>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
`

// policyText is the endpoint's WS-SecurityPolicy 1.2 policy. It says only
// what the server enforces:
//
//   - Over HTTPS, the ADFS "usernamemixed" shape: a TransportBinding (TLS,
//     no client certificate) carrying a UsernameToken as a signed and
//     encrypted supporting token (the transport signs and encrypts it).
//   - Over plain HTTP (tests, or behind a TLS-terminating proxy the server
//     cannot see) there is no transport binding and nothing signs or encrypts
//     the message, so the policy claims a plain supporting UsernameToken and
//     nothing more. Claiming SignedSupportingTokens there would promise a
//     message signature that does not exist.
//
// No IncludeTimestamp: the server checks a Timestamp when one is sent but
// does not require it.
const policyText = `{{define "policy"}}  <wsp:Policy wsu:Id="{{.PolicyID}}">
    <wsp:ExactlyOne>
      <wsp:All>
{{- if .TLS}}
        <sp:TransportBinding>
          <wsp:Policy>
            <sp:TransportToken>
              <wsp:Policy>
                <sp:HttpsToken/>
              </wsp:Policy>
            </sp:TransportToken>
            <sp:AlgorithmSuite>
              <wsp:Policy>
                <sp:Basic256/>
              </wsp:Policy>
            </sp:AlgorithmSuite>
            <sp:Layout>
              <wsp:Policy>
                <sp:Lax/>
              </wsp:Policy>
            </sp:Layout>
          </wsp:Policy>
        </sp:TransportBinding>
        <sp:SignedEncryptedSupportingTokens>
{{- else}}
        <sp:SupportingTokens>
{{- end}}
          <wsp:Policy>
            <sp:UsernameToken sp:IncludeToken="http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702/IncludeToken/AlwaysToRecipient">
              <wsp:Policy>
                <sp:WssUsernameToken10/>
              </wsp:Policy>
            </sp:UsernameToken>
          </wsp:Policy>
{{- if .TLS}}
        </sp:SignedEncryptedSupportingTokens>
{{- else}}
        </sp:SupportingTokens>
{{- end}}
      </wsp:All>
    </wsp:ExactlyOne>
  </wsp:Policy>{{end}}`

// schemaText is the embedded XML Schema: one xs:schema per namespace, since an
// xs:schema has a single target namespace. Only what a client sends or reads
// by name is declared; everything a server may add (assertions, key
// references, extensions) is xs:any with lax processing.
const schemaText = `{{define "schemas"}}    <xs:schema targetNamespace="{{.Trust.NS}}" elementFormDefault="qualified" attributeFormDefault="unqualified">
      <xs:import namespace="` + NSPolicy2004 + `"/>
      <xs:import namespace="` + NSWSU + `"/>
      <xs:import namespace="` + NSIdentity + `"/>

      <xs:element name="RequestSecurityToken" type="wst:RequestSecurityTokenType"/>
      <xs:complexType name="RequestSecurityTokenType">
        <xs:annotation><xs:documentation>The children a client sets. The server accepts them in any order and ignores ones it does not know; this order is the one clients generated from this WSDL send.</xs:documentation></xs:annotation>
        <xs:sequence>
          <xs:element ref="wst:TokenType" minOccurs="0"/>
          <xs:element ref="wst:RequestType"/>
          <xs:element ref="wsp:AppliesTo" minOccurs="0"/>
          <xs:element ref="wst:Claims" minOccurs="0"/>
          <xs:element ref="wst:Lifetime" minOccurs="0"/>
          <xs:element ref="wst:KeyType" minOccurs="0"/>
          <xs:element ref="wst:KeySize" minOccurs="0"/>
          <xs:element ref="wst:RenewTarget" minOccurs="0"/>
          <xs:element ref="wst:ValidateTarget" minOccurs="0"/>
          <xs:element ref="wst:CancelTarget" minOccurs="0"/>
        </xs:sequence>
        <xs:attribute name="Context" type="xs:anyURI" use="optional"/>
      </xs:complexType>

      <xs:element name="TokenType" type="xs:anyURI"/>
      <xs:element name="RequestType" type="xs:anyURI"/>
      <xs:element name="KeyType" type="xs:anyURI"/>
      <xs:element name="KeySize" type="xs:unsignedInt"/>

      <xs:element name="Claims" type="wst:ClaimsType"/>
      <xs:complexType name="ClaimsType">
        <xs:sequence>
          <xs:element ref="i:ClaimType" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:attribute name="Dialect" type="xs:anyURI" use="optional"/>
      </xs:complexType>

      <xs:element name="Lifetime" type="wst:LifetimeType"/>
      <xs:complexType name="LifetimeType">
        <xs:sequence>
          <xs:element ref="wsu:Created" minOccurs="0"/>
          <xs:element ref="wsu:Expires" minOccurs="0"/>
        </xs:sequence>
      </xs:complexType>

      <xs:element name="RenewTarget" type="wst:TokenTargetType"/>
      <xs:element name="ValidateTarget" type="wst:TokenTargetType"/>
      <xs:element name="CancelTarget" type="wst:TokenTargetType"/>
      <xs:complexType name="TokenTargetType">
        <xs:sequence>
          <xs:any namespace="##other" processContents="lax"/>
        </xs:sequence>
      </xs:complexType>

      <xs:element name="RequestSecurityTokenResponse" type="wst:RequestSecurityTokenResponseType"/>
      <xs:complexType name="RequestSecurityTokenResponseType">
        <xs:annotation><xs:documentation>Open content, as in the WS-Trust schema: TokenType, RequestedSecurityToken, references, Lifetime, AppliesTo, Status ... in the order the server writes them.</xs:documentation></xs:annotation>
        <xs:sequence>
          <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:attribute name="Context" type="xs:anyURI" use="optional"/>
        <xs:anyAttribute namespace="##other" processContents="lax"/>
      </xs:complexType>

      <xs:element name="RequestSecurityTokenResponseCollection" type="wst:RequestSecurityTokenResponseCollectionType"/>
      <xs:complexType name="RequestSecurityTokenResponseCollectionType">
        <xs:sequence>
          <xs:element ref="wst:RequestSecurityTokenResponse" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:anyAttribute namespace="##other" processContents="lax"/>
      </xs:complexType>

      <xs:element name="RequestedSecurityToken" type="wst:OpenContentType"/>
      <xs:element name="RequestedAttachedReference" type="wst:OpenContentType"/>
      <xs:element name="RequestedUnattachedReference" type="wst:OpenContentType"/>
      <xs:element name="RequestedProofToken" type="wst:OpenContentType"/>
      <xs:complexType name="OpenContentType">
        <xs:sequence>
          <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence>
        <xs:anyAttribute namespace="##any" processContents="lax"/>
      </xs:complexType>

      <xs:element name="Status" type="wst:StatusType"/>
      <xs:complexType name="StatusType">
        <xs:sequence>
          <xs:element name="Code" type="xs:anyURI"/>
          <xs:element name="Reason" type="xs:string" minOccurs="0"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="RequestedTokenCancelled" type="wst:OpenContentType"/>
    </xs:schema>
    <xs:schema targetNamespace="` + NSPolicy2004 + `" elementFormDefault="qualified">
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
