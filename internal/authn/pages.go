package authn

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

// styleSheet is the pages' only style, inline so the pages need nothing
// else from the server; the Content-Security-Policy allows exactly these
// bytes by hash.
const styleSheet = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24;line-height:1.5}` +
	`main{max-width:26rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #c9ced6;border-radius:8px}` +
	`h1{font-size:1.5rem;margin:0 0 1rem}` +
	`label{display:block;font-weight:600;margin:1rem 0 .25rem}` +
	`input[type=text],input[type=password],select{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #5f6672;border-radius:4px}` +
	`.check{display:flex;align-items:center;gap:.5rem;margin:1rem 0}` +
	`.check label{display:inline;margin:0;font-weight:400}` +
	`button,.button{display:inline-block;margin-top:.5rem;padding:.6rem 1.2rem;font-size:1rem;background:#1d4ed8;color:#fff;border:0;border-radius:4px;cursor:pointer;text-decoration:none}` +
	`:focus-visible{outline:3px solid #b45309;outline-offset:2px}` +
	`.error{border-left:4px solid #b91c1c;background:#fef2f2;padding:.75rem;margin:0 0 1rem}` +
	`.muted{color:#4b5563;font-size:.9rem}` +
	`.rps img{vertical-align:middle}`

// StyleSheet is the sign-in pages' style, for a front-end's own pages (an
// auto-POST form) to look the same; Policy allows it.
func StyleSheet() template.CSS { return template.CSS(styleSheet) }

// StyleHash is the CSP source expression of the inline style sheet.
var StyleHash = CSPHash(styleSheet)

// CSPHash returns the 'sha256-…' source expression for an inline script or
// style whose text is exactly s.
func CSPHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}

var pages = func() map[string]*template.Template {
	base := template.Must(template.New("").ParseFS(templateFS, "templates/base.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "error", "signedin", "signedout"} {
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
		out[name] = t
	}
	return out
}()

// page is what every template gets besides its own fields.
type page struct {
	Product string
	CSS     template.CSS
}

// Policy builds a Content-Security-Policy for a page: nothing is allowed
// but what the page lists, and no site may frame it.
func Policy(directives ...string) string {
	base := []string{"default-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "style-src " + StyleHash}
	return strings.Join(append(base, directives...), "; ")
}

// SetPageHeaders sets the headers every sign-in page carries: no framing
// (X-Frame-Options for old browsers, frame-ancestors for new ones), no
// caching, no referrer, and the page's CSP.
func SetPageHeaders(w http.ResponseWriter, csp string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *Service) render(w http.ResponseWriter, name string, status int, csp string, data any) {
	var b bytes.Buffer
	if err := pages[name].ExecuteTemplate(&b, "base", data); err != nil {
		s.opt.Log.Error("sign-in page not rendered", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	SetPageHeaders(w, csp)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Service) page() page { return page{Product: s.opt.Product, CSS: template.CSS(styleSheet)} }

// ErrorPage renders a plain error page with status. title and msg are shown
// to the user: never put a cause (database error, stack) in them.
func (s *Service) ErrorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	var id string
	if s.opt.RequestID != nil {
		id = s.opt.RequestID(r.Context())
	}
	s.render(w, "error", status, Policy(), struct {
		page
		Title, Message, RequestID string
	}{s.page(), title, msg, id})
}

// origins returns the distinct scheme://host[:port] of urls, sorted, for a
// CSP source list.
func origins(urls []string) string {
	seen := map[string]bool{}
	var out []string
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			continue
		}
		o := p.Scheme + "://" + p.Host
		if strings.Trim(p.Host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != "" {
			continue // not a plain host[:port]: it would not be one CSP source
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
