package wsfed

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"

	"github.com/avouch/avouch/internal/authn"
)

//go:embed templates/autopost.html
var templateFS embed.FS

var autoPost = template.Must(template.ParseFS(templateFS, "templates/autopost.html"))

// submitScript is the auto-POST page's only script. The page's CSP allows
// exactly these bytes (by hash), so nothing injected could run; without
// script the form shows a Continue button.
const submitScript = `document.getElementById("wsfed").submit();`

var submitScriptHash = authn.CSPHash(submitScript)

// AutoPostPolicy is the auto-POST page's Content-Security-Policy. It has no
// form-action: the relying party may redirect the POST onwards, and
// browsers check form-action against redirects too. The reply URL itself was
// checked against the registry before the page was written.
var AutoPostPolicy = authn.Policy("script-src " + submitScriptHash)

// Response is a sign-in response to post to a relying party.
type Response struct {
	Reply   string // the validated reply URL
	Result  []byte // wresult
	Context string // wctx, echoed untouched ("" = not sent)
	For     string // the relying party's name, for the status line
}

// WriteAutoPost renders the page that posts wa, wresult and wctx to the
// reply URL.
func WriteAutoPost(w http.ResponseWriter, resp *Response, product string) error {
	var b bytes.Buffer
	err := autoPost.Execute(&b, struct {
		Product, Reply, Result, Context, For string
		Script                               template.JS
		CSS                                  template.CSS
	}{product, resp.Reply, string(resp.Result), resp.Context, resp.For, template.JS(submitScript), authn.StyleSheet()})
	if err != nil {
		return err
	}
	authn.SetPageHeaders(w, AutoPostPolicy)
	_, err = w.Write(b.Bytes())
	return err
}
