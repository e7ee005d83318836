package authn

import (
	"net/http"
	"strconv"
)

// party is one relying party on the signed-out page.
type party struct {
	Name string
	URL  string
}

// SignOut ends the request's session and renders the signed-out page. The
// page loads each participant's front-channel sign-out URL as an image (so
// every relying party the session signed in to ends its own session) and,
// once those have loaded, moves on to the URL next returns, if any.
//
// next receives the session (nil when the browser has none; it may be past
// its timeout: its relying parties are still called) and must return a URL
// it has validated against what the session or the registry allows, or ""
// to stay on the signed-out page.
func (s *Service) SignOut(w http.ResponseWriter, r *http.Request, next func(se *Session) string) {
	se, err := s.lookup(r, true)
	if err != nil {
		s.opt.Log.Error("sign-out: session not read", "err", err)
		s.ErrorPage(w, r, http.StatusServiceUnavailable, "Sign-out failed", "Your session could not be read. Please try again.")
		return
	}
	cont := next(se)
	var parties []party
	if se != nil {
		for _, p := range se.Participants {
			proto := s.protocol(p.Protocol)
			if proto == nil {
				continue
			}
			if name, u, ok := proto.FrontChannelLogout(p); ok {
				parties = append(parties, party{Name: name, URL: u})
			}
		}
	}
	if err := s.end(r.Context(), w, r, se); err != nil {
		s.opt.Log.Error("sign-out: session not deleted", "err", err)
		s.ErrorPage(w, r, http.StatusServiceUnavailable, "Sign-out failed", "Your session could not be ended. Please try again.")
		return
	}
	if se != nil {
		s.audit(r.Context(), se.User(), "session.logout", "relying_parties="+strconv.Itoa(len(parties)))
	}
	var urls []string
	for _, p := range parties {
		urls = append(urls, p.URL)
	}
	csp := Policy()
	if o := origins(urls); o != "" {
		csp += "; img-src " + o
	}
	s.render(w, "signedout", http.StatusOK, csp, struct {
		page
		Parties  []party
		Continue string
	}{s.page(), parties, cont})
}
