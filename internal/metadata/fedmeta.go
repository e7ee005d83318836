package metadata

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/xmlsec"
)

// WS-Federation metadata namespaces and the token types offered.
const (
	NSSAMLMetadata = "urn:oasis:names:tc:SAML:2.0:metadata"
	NSFederation   = "http://docs.oasis-open.org/wsfed/federation/200706"
	NSAuthz        = "http://docs.oasis-open.org/wsfed/authorization/200706"
	NSXSI          = "http://www.w3.org/2001/XMLSchema-instance"

	TokenTypeSAML20 = "urn:oasis:names:tc:SAML:2.0:assertion"
	TokenTypeSAML11 = "urn:oasis:names:tc:SAML:1.0:assertion"
)

// STSEndpoint is one WS-Trust endpoint advertised in FederationMetadata.
type STSEndpoint struct {
	Address string
	// MEX, if set, is the address of the endpoint's WS-MetadataExchange
	// document, referenced from the endpoint reference's wsa:Metadata (as
	// ADFS does) so that a WIF/WCF client can learn the endpoint's policy.
	MEX string
}

// FederationOptions describes the Security Token Service for
// FederationMetadata.
type FederationOptions struct {
	// EntityID is the issuer name (the Issuer of the tokens).
	EntityID string
	// ID is the EntityDescriptor's ID, which the signature references;
	// random when empty.
	ID string
	// SigningCerts are every certificate tokens may be signed with. During a
	// key rotation there are two (the new key and the one still in its
	// overlap period); relying parties must learn both. Signer.Cert is
	// published first whether or not it is in the list; duplicates are
	// dropped.
	SigningCerts []*x509.Certificate
	// STSEndpoints are the WS-Trust endpoints (at least one).
	STSEndpoints []STSEndpoint
	// PassiveRequestorEndpoint is the WS-Federation passive (browser)
	// endpoint; empty (the default) leaves it out, as a server without a
	// passive STS must not advertise one.
	PassiveRequestorEndpoint string
	// TokenTypes offered; default SAML 2.0 and SAML 1.1.
	TokenTypes []string
	// ClaimTypes offered (claim URIs).
	ClaimTypes []string
	// Signer signs the document (enveloped, exclusive c14n, Reference "#ID").
	Signer xmlsec.Signer
}

// FederationMetadata returns the signed WS-Federation 1.2 metadata document:
// an md:EntityDescriptor (ID, entityID) whose first child is the ds:Signature
// (as the SAML metadata schema places it), holding one RoleDescriptor of
// xsi:type fed:SecurityTokenServiceType with a signing KeyDescriptor per
// certificate, fed:TokenTypesOffered, fed:ClaimTypesOffered,
// fed:SecurityTokenServiceEndpoint per endpoint and, when configured,
// fed:PassiveRequestorEndpoint — in the order the WS-Federation schema
// requires.
func FederationMetadata(o FederationOptions) ([]byte, error) {
	if o.EntityID == "" {
		return nil, errors.New("metadata: FederationMetadata needs an entity ID")
	}
	if len(o.STSEndpoints) == 0 {
		return nil, errors.New("metadata: FederationMetadata needs at least one STS endpoint")
	}
	if o.Signer.Key == nil {
		return nil, errors.New("metadata: FederationMetadata must be signed: no signing key")
	}
	id := o.ID
	if id == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id = "_" + hex.EncodeToString(b[:])
	}
	certs := publishedCerts(o.Signer.Cert, o.SigningCerts)
	if len(certs) == 0 {
		return nil, errors.New("metadata: FederationMetadata needs a signing certificate to publish")
	}
	tokenTypes := o.TokenTypes
	if len(tokenTypes) == 0 {
		tokenTypes = []string{TokenTypeSAML20, TokenTypeSAML11}
	}

	doc := etree.NewDocument()
	// Written with canonical escaping so that what is parsed back is what
	// was signed (see package xmlsec).
	doc.WriteSettings.CanonicalText = true
	doc.WriteSettings.CanonicalAttrVal = true
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", NSSAMLMetadata)
	ed.CreateAttr("ID", id)
	ed.CreateAttr("entityID", o.EntityID)

	rd := ed.CreateElement("md:RoleDescriptor")
	rd.CreateAttr("xmlns:xsi", NSXSI)
	rd.CreateAttr("xmlns:fed", NSFederation)
	rd.CreateAttr("xsi:type", "fed:SecurityTokenServiceType")
	rd.CreateAttr("protocolSupportEnumeration", NSFederation)
	for _, c := range certs {
		kd := rd.CreateElement("md:KeyDescriptor")
		kd.CreateAttr("use", "signing")
		ki := kd.CreateElement("ds:KeyInfo")
		ki.CreateAttr("xmlns:ds", xmlsec.NamespaceDSig)
		ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(c.Raw))
	}
	tto := rd.CreateElement("fed:TokenTypesOffered")
	for _, tt := range tokenTypes {
		tto.CreateElement("fed:TokenType").CreateAttr("Uri", tt)
	}
	if len(o.ClaimTypes) > 0 {
		cto := rd.CreateElement("fed:ClaimTypesOffered")
		cto.CreateAttr("xmlns:auth", NSAuthz)
		for _, ct := range o.ClaimTypes {
			c := cto.CreateElement("auth:ClaimType")
			c.CreateAttr("Uri", ct)
			c.CreateAttr("Optional", "true")
		}
	}
	for _, ep := range o.STSEndpoints {
		epr := endpointReference(rd.CreateElement("fed:SecurityTokenServiceEndpoint"), ep.Address)
		if ep.MEX != "" {
			md := epr.CreateElement("wsa:Metadata").CreateElement("wsx:Metadata")
			md.CreateAttr("xmlns:wsx", NSMEX)
			ref := md.CreateElement("wsx:MetadataSection").CreateElement("wsx:MetadataReference")
			ref.CreateElement("wsa:Address").SetText(ep.MEX)
		}
	}
	if o.PassiveRequestorEndpoint != "" {
		endpointReference(rd.CreateElement("fed:PassiveRequestorEndpoint"), o.PassiveRequestorEndpoint)
	}

	s := o.Signer
	// xsi:type names fed:SecurityTokenServiceType, a QName in content that
	// exclusive c14n does not see as a use of the fed prefix: list it as an
	// inclusive prefix so the signature covers what the prefix means.
	s.InclusivePrefixes = append(append([]string(nil), s.InclusivePrefixes...), "fed")
	if err := s.SignEnveloped(ed, "ID", 0); err != nil {
		return nil, fmt.Errorf("metadata: signing FederationMetadata: %w", err)
	}
	var b bytes.Buffer
	if _, err := doc.WriteTo(&b); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func endpointReference(parent *etree.Element, address string) *etree.Element {
	epr := parent.CreateElement("wsa:EndpointReference")
	epr.CreateAttr("xmlns:wsa", NSAddressing)
	epr.CreateElement("wsa:Address").SetText(address)
	return epr
}

// publishedCerts puts first first and drops duplicates and nils.
func publishedCerts(first *x509.Certificate, rest []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range append([]*x509.Certificate{first}, rest...) {
		if c == nil {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || bytes.Equal(o.Raw, c.Raw)
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}
