package browser

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/saml"
	"github.com/avouch/avouch/internal/wsfed"
)

// relyingParty is a small WS-Federation relying party: it sends visitors
// without a session to avouch, accepts the POSTed wresult only when the
// assertion verifies against avouch's signing certificate (with avouch's
// own XML-DSig verifier), names its realm and is within its lifetime, and
// shows the claims. wa=wsignoutcleanup1.0 at its cleanup path ends its
// session, as avouch's signed-out page asks.
type relyingParty struct {
	Name, Realm, URL string
	cookie           string
	cleanupPath      string
	avouch           *avouch

	mu       sync.Mutex
	states   map[string]bool
	sessions map[string]rpSession
	cleanups int // cleanup calls
	ended    int // sessions those calls ended
}

type rpSession struct {
	Subject, TokenType string
	Attributes         []saml.Attribute
}

// newRelyingParty starts a relying party and registers it with avouch.
// With ownSignOut it has a separate front-channel sign-out URL and asks for
// SAML 2.0 tokens in its passive settings; its realm is then its own URL.
func newRelyingParty(t *testing.T, av *avouch, name, cookie string, ownSignOut bool) *relyingParty {
	t.Helper()
	rp := &relyingParty{Name: name, cookie: cookie, avouch: av, cleanupPath: "/callback",
		states: map[string]bool{}, sessions: map[string]rpSession{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", rp.home)
	mux.HandleFunc("POST /callback", rp.callback)
	mux.HandleFunc("GET /callback", rp.cleanup)
	mux.HandleFunc("GET /signout-cleanup", rp.cleanup)
	mux.HandleFunc("GET /logout", rp.logout)
	mux.HandleFunc("GET /release-cleanups", func(w http.ResponseWriter, r *http.Request) {
		av.CleanupGate.open()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, r *http.Request) {
		rp.page(w, "<h1>{{.Name}}</h1><p id=\"signed-out\">You have signed out of {{.Name}}.</p>", rp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rp.URL = srv.URL
	passive := &registry.Passive{ReplyURLs: []string{rp.URL + "/callback", rp.URL + "/signed-out"}}
	if ownSignOut {
		rp.Realm = rp.URL + "/"
		rp.cleanupPath = "/signout-cleanup"
		passive.SignOutURL = rp.URL + rp.cleanupPath
		passive.Token.TokenType = "saml2.0"
	} else {
		rp.Realm = "urn:avouch:test:" + cookie
	}
	passive.Realm = rp.Realm
	sp := &registry.ServiceProvider{Name: name, Passive: passive,
		Claims: registry.ClaimConfig{Always: []string{claimEmail, claimGivenName}}}
	if err := av.Registry.Put(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	return rp
}

func (rp *relyingParty) page(w http.ResponseWriter, body string, data any) {
	t := template.Must(template.New("").Parse(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>` + rp.Name +
		`</title></head><body><main>` + body + `</main></body></html>`))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = t.Execute(w, data)
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (rp *relyingParty) session(r *http.Request) (string, rpSession, bool) {
	c, err := r.Cookie(rp.cookie)
	if err != nil {
		return "", rpSession{}, false
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	s, ok := rp.sessions[c.Value]
	return c.Value, s, ok
}

func (rp *relyingParty) home(w http.ResponseWriter, r *http.Request) {
	if _, s, ok := rp.session(r); ok {
		rp.page(w, `<h1>{{.Name}}</h1><p id="user">Signed in as {{.S.Subject}} with a {{.S.TokenType}} token</p>`+
			`<dl id="claims">{{range .S.Attributes}}<dt>{{.Name}}</dt>{{range .Values}}<dd>{{.}}</dd>{{end}}{{end}}</dl>`+
			`<p><a id="logout" href="/logout">Sign out</a></p>`, struct {
			Name string
			S    rpSession
		}{rp.Name, s})
		return
	}
	state := randomHex()
	rp.mu.Lock()
	rp.states[state] = true
	rp.mu.Unlock()
	q := url.Values{"wa": {"wsignin1.0"}, "wtrealm": {rp.Realm}, "wreply": {rp.URL + "/callback"}, "wctx": {state}}
	http.Redirect(w, r, rp.avouch.URL+"/passivests?"+q.Encode(), http.StatusFound)
}

func (rp *relyingParty) callback(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("wa") != "wsignin1.0" {
		http.Error(w, "not a wsignin1.0 response", http.StatusBadRequest)
		return
	}
	rp.mu.Lock()
	known := rp.states[r.PostForm.Get("wctx")]
	delete(rp.states, r.PostForm.Get("wctx"))
	rp.mu.Unlock()
	if !known {
		http.Error(w, "unknown wctx", http.StatusBadRequest)
		return
	}
	s, err := rp.accept(r.PostForm.Get("wresult"))
	if err != nil {
		http.Error(w, "token refused: "+err.Error(), http.StatusForbidden)
		return
	}
	id := randomHex()
	rp.mu.Lock()
	rp.sessions[id] = s
	rp.mu.Unlock()
	rp.avouch.Events.add(rp.Name + ": signed in")
	http.SetCookie(w, &http.Cookie{Name: rp.cookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// accept checks a wresult the way a relying party must.
func (rp *relyingParty) accept(wresult string) (rpSession, error) {
	doc, err := safexml.Parse([]byte(wresult), safexml.Limits{})
	if err != nil {
		return rpSession{}, err
	}
	root := doc.Root()
	if root.Tag != "RequestSecurityTokenResponse" || root.NamespaceURI() != wsfed.NSTrust2005 {
		return rpSession{}, fmt.Errorf("not a WS-Trust 2005/02 RSTR")
	}
	var tok *etree.Element
	var tokenType, appliesTo string
	for _, c := range root.ChildElements() {
		switch c.Tag {
		case "RequestedSecurityToken":
			if len(c.Child) > 0 {
				tok, _ = c.Child[0].(*etree.Element)
			}
		case "TokenType":
			tokenType = c.Text()
		case "AppliesTo":
			if a := c.FindElement("EndpointReference/Address"); a != nil && c.NamespaceURI() == wsfed.NSPolicy2004 {
				appliesTo = a.Text()
			}
		}
	}
	if appliesTo != rp.Realm {
		return rpSession{}, fmt.Errorf("AppliesTo %q is not this realm", appliesTo)
	}
	a, err := saml.Verify(tok, saml.VerifyOptions{Certs: []*x509.Certificate{rp.avouch.cert()}})
	if err != nil {
		return rpSession{}, err
	}
	now := time.Now()
	if !slices.Contains(a.Audiences, rp.Realm) || now.Before(a.NotBefore.Add(-time.Minute)) || !now.Before(a.NotOnOrAfter) {
		return rpSession{}, fmt.Errorf("audience %v or lifetime %s..%s wrong", a.Audiences, a.NotBefore, a.NotOnOrAfter)
	}
	kind, wantType := "SAML 2.0", "urn:oasis:names:tc:SAML:2.0:assertion"
	if a.Version == saml.NS11 {
		kind, wantType = "SAML 1.1", "urn:oasis:names:tc:SAML:1.0:assertion"
	}
	if tokenType != wantType {
		return rpSession{}, fmt.Errorf("TokenType %q does not describe a %s assertion", tokenType, kind)
	}
	return rpSession{Subject: a.Subject, TokenType: kind, Attributes: a.Attributes}, nil
}

// cleanup ends the session the browser presents. It answers only once the
// browser script has photographed avouch's signed-out page (which moves on
// when these calls complete) and opened the gate at /release-cleanups.
func (rp *relyingParty) cleanup(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("wa") != "wsignoutcleanup1.0" {
		http.Error(w, "expected wa=wsignoutcleanup1.0", http.StatusBadRequest)
		return
	}
	id, _, ok := rp.session(r)
	rp.mu.Lock()
	rp.cleanups++
	if ok {
		delete(rp.sessions, id)
		rp.ended++
	}
	rp.mu.Unlock()
	rp.avouch.Events.add(rp.Name + ": cleanup")
	rp.avouch.CleanupGate.wait()
	http.SetCookie(w, &http.Cookie{Name: rp.cookie, Value: "", Path: "/", MaxAge: -1})
	w.Header().Set("Content-Type", "image/gif")
	_, _ = w.Write(pixel)
}

// pixel is a 1×1 transparent GIF, what WS-Federation cleanup answers with.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func (rp *relyingParty) logout(w http.ResponseWriter, r *http.Request) {
	if id, _, ok := rp.session(r); ok {
		rp.mu.Lock()
		delete(rp.sessions, id)
		rp.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: rp.cookie, Value: "", Path: "/", MaxAge: -1})
	q := url.Values{"wa": {"wsignout1.0"}, "wreply": {rp.URL + "/signed-out"}}
	http.Redirect(w, r, rp.avouch.URL+"/passivests?"+q.Encode(), http.StatusFound)
}

func (rp *relyingParty) counts() (cleanups, ended, sessions int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.cleanups, rp.ended, len(rp.sessions)
}
