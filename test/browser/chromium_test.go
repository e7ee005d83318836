package browser

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/authn"
	"github.com/avouch/avouch/internal/registry"
	"github.com/avouch/avouch/internal/storage"
	"github.com/avouch/avouch/internal/testutil"
)

// flowResult is what js/browser_flow.js reports.
type flowResult struct {
	Error, ErrorURL, ErrorPage string
	Steps                      []string
	Console                    []string
	LoginPage                  struct {
		URL, Lang, Focused string
		Labels             [][2]any
	}
	RP1, RP2, RP1NoJS       string
	AvouchSession           string
	SignOutPage, SignOutURL string
	AfterSignOutPage        string
	CookiesAfterSignOut     []string
	RP2AfterSignOut         string
}

// TestChromiumSignInSSOAndSignOut: a real browser signs in to one relying
// party with a password, to a second by single sign-on, signs out of both
// through avouch, and signs in once more with JavaScript turned off.
func TestChromiumSignInSSOAndSignOut(t *testing.T) {
	chromium := testutil.Tool(t, "chromium")
	nodeModules(t)
	av := startAvouch(t)
	rp1 := newRelyingParty(t, av, "Test RP One", "rp1_session", false)
	rp2 := newRelyingParty(t, av, "Test RP Two", "rp2_session", true)
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out flowResult
	runNode(t, "browser_flow.js", map[string]string{"rp1": rp1.URL, "rp2": rp2.URL, "user": user, "password": password,
		"shots": artifactsDir, "chromium": chromium}, &out)
	t.Logf("screenshots in %s: %v", artifactsDir, out.Steps)
	if out.Error != "" {
		t.Fatalf("browser flow stopped: %s\nat %s\n%s\nevents: %v", out.Error, out.ErrorURL, out.ErrorPage, av.Events.list())
	}

	t.Run("the first relying party sends the browser to avouch's login page", func(t *testing.T) {
		if !strings.HasPrefix(out.LoginPage.URL, av.URL+"/passivests?") {
			t.Errorf("login page at %s", out.LoginPage.URL)
		}
	})
	t.Run("the login page has a language, labels for every field and focus in the user name", func(t *testing.T) {
		if out.LoginPage.Lang != "en" || out.LoginPage.Focused != "username" {
			t.Errorf("lang %q, focus on %q", out.LoginPage.Lang, out.LoginPage.Focused)
		}
		for _, l := range out.LoginPage.Labels {
			if l[1] != true {
				t.Errorf("field %v has no label", l[0])
			}
		}
	})
	t.Run("the first relying party verified a SAML 1.1 token and shows the claims", func(t *testing.T) {
		for _, want := range []string{"Signed in as alice with a SAML 1.1 token", "alice@example.test", "Alice"} {
			if !strings.Contains(out.RP1, want) {
				t.Errorf("RP One page lacks %q:\n%s", want, out.RP1)
			}
		}
	})
	t.Run("the second relying party signed in by single sign-on with a SAML 2.0 token", func(t *testing.T) {
		if !strings.Contains(out.RP2, "Signed in as alice with a SAML 2.0 token") || !strings.Contains(out.RP2, "alice@example.test") {
			t.Errorf("RP Two page:\n%s", out.RP2)
		}
		ev := av.Events.list()
		i := slices.Index(ev, "Test RP Two: signed in")
		if i < 0 || slices.Index(ev[:i], "avouch: password login") < 0 || slices.Contains(ev[slices.Index(ev, "Test RP One: signed in"):i], "avouch: password login") {
			t.Errorf("a password login between the two sign-ins: %v", ev)
		}
	})
	t.Run("avouch's signed-out page names both relying parties", func(t *testing.T) {
		if !strings.Contains(out.SignOutURL, "wa=wsignout1.0") || !strings.Contains(out.SignOutPage, "You have signed out") ||
			!strings.Contains(out.SignOutPage, "Test RP One") || !strings.Contains(out.SignOutPage, "Test RP Two") {
			t.Errorf("signed-out page at %s:\n%s", out.SignOutURL, out.SignOutPage)
		}
	})
	t.Run("each relying party got wsignoutcleanup1.0 and ended its session", func(t *testing.T) {
		for _, rp := range []*relyingParty{rp1, rp2} {
			// RP One's session had already ended at its own /logout, RP
			// Two's is ended by the cleanup call.
			cleanups, _, _ := rp.counts()
			if cleanups < 1 {
				t.Errorf("%s got no wsignoutcleanup1.0", rp.Name)
			}
		}
		if _, ended, _ := rp2.counts(); ended != 1 {
			t.Errorf("RP Two's cleanup ended %d sessions, want 1 (its cookie was not sent?)", ended)
		}
	})
	t.Run("sign-out continued to the first relying party's registered signed-out page", func(t *testing.T) {
		if !strings.Contains(out.AfterSignOutPage, "You have signed out of Test RP One") {
			t.Errorf("after sign-out:\n%s", out.AfterSignOutPage)
		}
	})
	t.Run("the avouch session is gone from storage and from the browser", func(t *testing.T) {
		if out.AvouchSession == "" {
			t.Fatal("the browser had no avouch session cookie")
		}
		if _, err := av.Store.GetSession(context.Background(), authn.StorageID(out.AvouchSession)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetSession after sign-out: %v, want ErrNotFound", err)
		}
		if slices.Contains(out.CookiesAfterSignOut, "avouch-session") {
			t.Errorf("cookies after sign-out: %v", out.CookiesAfterSignOut)
		}
		if out.RP2AfterSignOut != "login page" {
			t.Error("the second relying party did not ask for a password after sign-out")
		}
	})
	t.Run("without JavaScript the sign-in completes through the Continue button", func(t *testing.T) {
		if !strings.Contains(out.RP1NoJS, "Signed in as alice") {
			t.Errorf("no-JS RP One page:\n%s", out.RP1NoJS)
		}
	})
	t.Run("no page broke its own Content-Security-Policy", func(t *testing.T) {
		for _, m := range out.Console {
			if strings.Contains(m, "Content Security Policy") || strings.Contains(m, "Refused to") {
				t.Errorf("console: %s", m)
			}
		}
	})
	t.Run("a screenshot of every page was saved", func(t *testing.T) {
		for _, s := range out.Steps {
			if fi, err := os.Stat(filepath.Join(artifactsDir, s)); err != nil || fi.Size() == 0 {
				t.Errorf("%s: %v", s, err)
			}
		}
		if len(out.Steps) != 8 {
			t.Errorf("%d screenshots, want 8: %v", len(out.Steps), out.Steps)
		}
	})
}

// newRelyingPartyAt registers a passive relying party that runs nowhere
// (the library test posts to it only in memory).
func newRelyingPartyAt(t *testing.T, av *avouch, name, realm string) {
	t.Helper()
	sp := &registry.ServiceProvider{Name: name, Passive: &registry.Passive{Realm: realm, ReplyURLs: []string{"https://" + strings.ReplaceAll(name, " ", "-") + ".example/callback"}},
		Claims: registry.ClaimConfig{Always: []string{claimEmail, claimGivenName}}}
	if err := av.Registry.Put(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
}
