package server

import (
	"net/http"
	"strings"

	"github.com/avouch/avouch/internal/keys"
	"github.com/avouch/avouch/internal/metadata"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/sts"
	"github.com/avouch/avouch/internal/wstrust"
	"github.com/avouch/avouch/internal/xmlsec"
)

// Paths of the ADFS-compatible endpoints and of the metadata documents.
const (
	adfsTrust13Path        = "/adfs/services/trust/13/usernamemixed"
	adfsTrust2005Path      = "/adfs/services/trust/2005/usernamemixed"
	adfsMEXPath            = "/adfs/services/trust/mex"
	stsMEXPath             = "/services/sts/mex"
	federationMetadataPath = "/FederationMetadata/2007-06/FederationMetadata.xml"
)

// adfsEndpoints are the ADFS "usernamemixed" endpoints: each path fixes its
// WS-Trust version (and with it its WSDL and policy), as ADFS's do.
// The usernamemixed pair takes a UsernameToken, certificatemixed an
// X.509-signed request, certificatetransport a client certificate over TLS
// (the TLS listener asks for one only while security_scenario includes
// mutual-tls: docs/AUTHENTICATION.md). The MEX lists the usernamemixed pair,
// which is what MEX clients (msal) use.
var adfsEndpoints = []struct {
	path     string
	version  wstrust.Version
	trust    metadata.Trust
	name     string // port name in the MEX document
	scenario string // the fixed security scenario of the path
	inMEX    bool
}{
	{adfsTrust13Path, wstrust.V13, metadata.Trust13, "UsernameMixed13", "usernametoken", true},
	{adfsTrust2005Path, wstrust.V2005, metadata.Trust2005, "UsernameMixed2005", "usernametoken", true},
	{"/adfs/services/trust/13/certificatemixed", wstrust.V13, metadata.Trust13, "CertificateMixed13", "x509", false},
	{"/adfs/services/trust/2005/certificatemixed", wstrust.V2005, metadata.Trust2005, "CertificateMixed2005", "x509", false},
	{"/adfs/services/trust/13/certificatetransport", wstrust.V13, metadata.Trust13, "CertificateTransport13", "mutual-tls", false},
	{"/adfs/services/trust/2005/certificatetransport", wstrust.V2005, metadata.Trust2005, "CertificateTransport2005", "mutual-tls", false},
}

// mountMetadata adds the ADFS-compatible endpoints and the metadata documents
// (MEX, FederationMetadata). endpoint builds a WS-Trust endpoint restricted to
// the given versions.
func (s *Server) mountMetadata(mux *http.ServeMux, endpoint func(versions []wstrust.Version, defaultNS bool) *wstrust.Handler) error {
	cfg := s.Config
	for _, ep := range adfsEndpoints {
		h := endpoint([]wstrust.Version{ep.version}, cfg.ADFSDefaultNamespace)
		// Each path fixes its policy: a copy of the security processor
		// whose scenario is the path's, whatever the server-wide one.
		scenario := ep.scenario
		h.Security = h.Security.WithScenario(scenario)
		trust := ep.trust
		h.WSDL = func(endpointURL string) []byte {
			return metadata.WSDL(metadata.WSDLOptions{EndpointURL: s.publicEndpoint(endpointURL), Trust: trust, Scenario: scenario})
		}
		mux.Handle(ep.path, h)
	}

	limits := safexml.Limits{MaxBytes: cfg.MaxBodyBytes, MaxDepth: cfg.MaxXMLDepth}
	// Each MEX document describes the endpoints beside it: the ADFS one the
	// usernamemixed pair, ours /services/sts, which speaks both versions.
	mux.Handle(adfsMEXPath, &metadata.MEXHandler{Limits: limits, Options: func(r *http.Request) metadata.MEXOptions {
		base := s.baseURL(r)
		var o metadata.MEXOptions
		for _, ep := range adfsEndpoints {
			if ep.inMEX {
				o.Endpoints = append(o.Endpoints, metadata.Endpoint{URL: base + ep.path, Trust: ep.trust, Name: ep.name, Scenario: ep.scenario})
			}
		}
		return o
	}})
	mux.Handle(stsMEXPath, &metadata.MEXHandler{Limits: limits, Options: func(r *http.Request) metadata.MEXOptions {
		addr := s.baseURL(r) + stsPaths[0]
		scenario := s.scenario()
		return metadata.MEXOptions{Endpoints: []metadata.Endpoint{
			{URL: addr, Trust: metadata.Trust13, Name: "SecurityTokenService13", Scenario: scenario},
			{URL: addr, Trust: metadata.Trust2005, Name: "SecurityTokenService2005", Scenario: scenario},
		}}
	}})
	mux.HandleFunc(federationMetadataPath, s.serveFederationMetadata)
	return nil
}

// baseURL is the public base URL (public_url), or the one the request was
// made to: scheme from the connection, host from the Host header.
func (s *Server) baseURL(r *http.Request) string {
	if s.Config.PublicURL != "" {
		return strings.TrimRight(s.Config.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// publicEndpoint rebases an endpoint URL derived from the request onto
// public_url when one is configured.
func (s *Server) publicEndpoint(endpointURL string) string {
	if s.Config.PublicURL == "" {
		return endpointURL
	}
	return strings.TrimRight(s.Config.PublicURL, "/") + endpointPath(endpointURL)
}

// serveFederationMetadata renders and signs the WS-Federation metadata for
// each request: it lists the signing certificates in storage now (a key
// rotated in through another node shows up without a restart) and the
// addresses of the request's base URL when no public_url is set.
func (s *Server) serveFederationMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	certs, err := keys.SigningCerts(r.Context(), s.Store)
	if err != nil {
		s.Log.Warn("federation metadata: reading signing certificates failed", "err", err, "request_id", RequestID(r.Context()))
		http.Error(w, "signing certificates unavailable", http.StatusServiceUnavailable)
		return
	}
	kp := s.SigningKey()
	if kp == nil {
		kp = s.Signing
	}
	cc := s.Core.Config()
	base := s.baseURL(r)
	doc, err := metadata.FederationMetadata(metadata.FederationOptions{
		EntityID:     cc.Issuer,
		SigningCerts: certs,
		STSEndpoints: []metadata.STSEndpoint{
			{Address: base + adfsTrust13Path, MEX: base + adfsMEXPath},
			{Address: base + adfsTrust2005Path, MEX: base + adfsMEXPath},
			{Address: base + stsPaths[0], MEX: base + stsMEXPath},
		},
		PassiveRequestorEndpoint: base + "/passivests",
		ClaimTypes:               sts.KnownClaims(),
		Signer: xmlsec.Signer{Key: kp.Signer, Cert: kp.Cert,
			SignatureAlgorithm: cc.SignatureAlgorithm, DigestAlgorithm: cc.DigestAlgorithm},
	})
	if err != nil {
		s.Log.Error("federation metadata not rendered", "err", err, "request_id", RequestID(r.Context()))
		http.Error(w, "federation metadata unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(doc)
}
