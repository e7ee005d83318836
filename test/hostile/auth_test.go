package hostile

import (
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
)

const passwordFailure = "the security token could not be authenticated"

// issueRequest builds a PasswordText Issue request on the server's clock.
func (h *harness) issueRequest(t testing.TB, user, password string) ([]byte, string) {
	t.Helper()
	env, ctype, err := client.BuildIssue(&client.Options{URL: h.URL + "/services/sts", User: user, Password: password, Now: h.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return env, ctype
}

// TestAuthenticationTimingDoesNotTellUnknownUsersFromWrongPasswords: an
// unknown user costs an argon2id (of a dummy hash) just as a wrong password
// does, so response times do not enumerate accounts. Without the dummy hash
// an unknown user answers in about a millisecond against tens for a wrong
// password: far outside the factor of 3 allowed here for a loaded machine.
//
// Not parallel: it runs before the parallel tests of this package start.
func TestAuthenticationTimingDoesNotTellUnknownUsersFromWrongPasswords(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.LockoutThreshold = 0   // every attempt takes the password path, never the lockout path
		c.CredentialCacheTTL = 0 // no cache hit can shortcut anything
	})
	h.addUser(t, "carol", "Carol#pw1", false, "admin")
	const rounds = 9
	var unknown, wrong []time.Duration
	measure := func(user string) time.Duration {
		env, ctype := h.issueRequest(t, user, "not-the-password")
		start := time.Now()
		r := h.post(t, "/services/sts", ctype, env, false)
		d := time.Since(start)
		if faultCode(r.Body) != "wsse:FailedAuthentication" {
			t.Fatalf("%s: %d %.300s", user, r.Status, r.Body)
		}
		return d
	}
	measure("carol") // warm up connections and the database
	for i := 0; i < rounds; i++ {
		// Interleaved, so load on the machine hits both alike.
		unknown = append(unknown, measure("nobody-"+string(rune('a'+i))))
		wrong = append(wrong, measure("carol"))
	}
	mu, mw := median(unknown), median(wrong)
	t.Logf("median unknown user %v, wrong password %v", mu, mw)
	if ratio := float64(max(mu, mw)) / float64(min(mu, mw)); ratio > 3 {
		t.Fatalf("unknown user %v vs wrong password %v: a factor of %.1f tells them apart", mu, mw, ratio)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestPasswordBruteForceIsLockedOut: five failures in fifteen minutes lock
// the account; while locked even the right password fails, with the same
// text as an unknown user or a wrong password.
func TestPasswordBruteForceIsLockedOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil) // defaults: lockout_threshold 5, lockout_window 15m
	h.addUser(t, "carol", "Carol#pw1", false, "admin")
	h.addUser(t, "dave", "Dave#pw1", false, "admin")
	start := time.Now().UTC()
	h.Clock.Set(start)
	attempt := func(user, password string) reply {
		t.Helper()
		env, ctype := h.issueRequest(t, user, password)
		return h.post(t, "/services/sts", ctype, env, false)
	}
	refused := func(t *testing.T, r reply) {
		t.Helper()
		if r.Status != 500 || faultCode(r.Body) != "wsse:FailedAuthentication" || !strings.Contains(r.Body, passwordFailure) {
			t.Fatalf("want FailedAuthentication %q, got %d %.300s", passwordFailure, r.Status, r.Body)
		}
	}
	var wrongBody string
	t.Run("five wrong passwords in a row are each refused", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			h.Clock.Set(start.Add(time.Duration(i) * time.Minute))
			r := attempt("carol", "guess-"+string(rune('0'+i)))
			refused(t, r)
			wrongBody = faultOf(r.Body)
		}
	})
	t.Run("then even the right password is refused", func(t *testing.T) {
		h.Clock.Set(start.Add(5 * time.Minute))
		refused(t, attempt("carol", "Carol#pw1"))
	})
	t.Run("a locked account, a wrong password and an unknown user get byte-identical answers", func(t *testing.T) {
		// The Fault element only: the envelope echoes each request's own MessageID.
		locked := faultOf(attempt("carol", "Carol#pw1").Body)
		unknown := faultOf(attempt("nobody", "Carol#pw1").Body)
		if wrongBody == "" || locked != wrongBody || unknown != wrongBody {
			t.Fatalf("answers differ:\nwrong:   %s\nlocked:  %s\nunknown: %s", wrongBody, locked, unknown)
		}
	})
	t.Run("another account is not locked by carol's failures", func(t *testing.T) {
		if r := attempt("dave", "Dave#pw1"); r.Status != 200 {
			t.Fatalf("%d %.300s", r.Status, r.Body)
		}
	})
	t.Run("once the failures are older than the window the right password works again", func(t *testing.T) {
		h.Clock.Set(start.Add(4*time.Minute + 15*time.Minute + time.Second))
		if r := attempt("carol", "Carol#pw1"); r.Status != 200 {
			t.Fatalf("%d %.300s", r.Status, r.Body)
		}
	})
	t.Run("four failures and a fifth after the window do not lock", func(t *testing.T) {
		t0 := start.Add(time.Hour)
		for i := 0; i < 4; i++ {
			h.Clock.Set(t0)
			refused(t, attempt("dave", "guess"))
		}
		h.Clock.Set(t0.Add(16 * time.Minute))
		refused(t, attempt("dave", "guess"))
		if r := attempt("dave", "Dave#pw1"); r.Status != 200 {
			t.Fatalf("locked after failures spread over more than the window: %d %.300s", r.Status, r.Body)
		}
	})
}

// TestConcurrentNonceReplayHasExactlyOneWinner: identical PasswordDigest
// requests sent at once (a captured request replayed in parallel) get one
// token between them; the nonce is claimed atomically before the password
// check, so no race lets two through.
func TestConcurrentNonceReplayHasExactlyOneWinner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addUser(t, "alice", alicePassword, true, "admin")
	base := time.Now().UTC().Truncate(time.Millisecond)
	h.Clock.Set(base)
	rc := &renderCtx{soapNS: ns11, base: base, nonce: make([]byte, 16)}
	_, _ = rand.Read(rc.nonce)
	body := requestFile(t, "wssec/digest-ok.xml", rc)
	const n = 12
	var wg sync.WaitGroup
	start := make(chan struct{})
	replies := make([]reply, n)
	errs := make([]error, n)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i], errs[i] = h.tryPost("/services/sts", "text/xml; charset=utf-8", body, false)
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i, r := range replies {
		switch {
		case errs[i] != nil:
			t.Errorf("request %d: %v", i, errs[i])
		case r.Status == http.StatusOK:
			won++
		case faultCode(r.Body) == "wsse:InvalidSecurity" && strings.Contains(r.Body, "replay"):
		default:
			t.Errorf("neither a token nor a replay fault: %d %.300s", r.Status, r.Body)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d identical requests got a token, want exactly 1", won, n)
	}
	t.Run("the same nonce with another Created and a matching digest is still a replay", func(t *testing.T) {
		rc2 := *rc
		rc2.base = base.Add(time.Second)
		r := h.post(t, "/services/sts", "text/xml; charset=utf-8", requestFile(t, "wssec/digest-ok.xml", &rc2), false)
		if faultCode(r.Body) != "wsse:InvalidSecurity" || !strings.Contains(r.Body, "replay") {
			t.Fatalf("%d %.300s", r.Status, r.Body)
		}
	})
}

// faultOf returns the s:Fault element of a response, "" if none.
func faultOf(body string) string {
	i, j := strings.Index(body, "<s:Fault"), strings.Index(body, "</s:Fault>")
	if i < 0 || j < i {
		return ""
	}
	return body[i : j+len("</s:Fault>")]
}
