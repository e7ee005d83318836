package server

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/testutil"
)

// fixtureDir holds requests captured from real clients (zeep, msal); their
// timestamps are stale on purpose.
const fixtureDir = "../../../shared/fixtures/wstrust-requests"

type fixture struct {
	name        string
	body        []byte
	contentType string
	created     time.Time
	appliesTo   string
}

func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.xml"))
	if len(files) == 0 {
		testutil.Missing(t, "captured client fixtures at "+fixtureDir+" (../shared beside the checkout)")
	}
	var out []fixture
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		head, err := os.ReadFile(strings.TrimSuffix(f, ".xml") + ".http")
		if err != nil {
			t.Fatal(err)
		}
		fx := fixture{name: strings.TrimSuffix(filepath.Base(f), ".xml"), body: body}
		for _, line := range strings.Split(string(head), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Type") {
				fx.contentType = strings.TrimSpace(v)
			}
		}
		// The Timestamp's Created tells when the request was made.
		if m := addressRE.FindSubmatch(body); m != nil {
			fx.appliesTo = string(m[1])
		}
		// Some (zeep PasswordText) carry no time at all.
		if m := createdRE.FindSubmatch(body); m != nil {
			created, err := time.Parse(time.RFC3339Nano, string(m[1]))
			if err != nil {
				t.Fatalf("%s: %v", fx.name, err)
			}
			fx.created = created
		}
		out = append(out, fx)
	}
	return out
}

var addressRE = regexp.MustCompile(`AppliesTo[\s\S]*?<(?:\w+:)?Address>([^<]+)<`)

var createdRE = regexp.MustCompile(`<(?:\w+:)?Created(?:\s[^>]*)?>([^<]+)<`)

func fixtureServer(t *testing.T) *testServer {
	ts := newTestServer(t, nil)
	email := map[string]string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": "alice@example.test"}
	ts.addUser(t, "alice", "Secret#123", true, []string{"admin"}, email)
	ts.addUser(t, "alice@example.test", "Secret#123", true, []string{"admin"}, email)
	return ts
}

func TestCapturedClientRequestsAreIssuedWithAnInjectedClock(t *testing.T) {
	fxs := loadFixtures(t)
	ts := fixtureServer(t)
	for _, fx := range fxs {
		t.Run(fx.name+" gets a token", func(t *testing.T) {
			if !fx.created.IsZero() {
				ts.Clock.Set(fx.created.Add(30 * time.Second))
			}
			r := ts.post(t, "/services/sts", fx.contentType, fx.body)
			if r.Status != 200 {
				t.Fatalf("status %d: %.500s", r.Status, r.Body)
			}
			tok, err := client.ExtractToken([]byte(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			checkToken(t, ts, tok, tokenExpectations{subjectOneOf: []string{"alice", "alice@example.test"},
				audience: fx.appliesTo, lifetime: 5 * time.Minute})
		})
	}
}

func TestCapturedClientRequestsAreRefusedAsStaleWithTheRealClock(t *testing.T) {
	fxs := loadFixtures(t)
	ts := fixtureServer(t)
	timed := 0
	for _, fx := range fxs {
		if fx.created.IsZero() {
			continue // no time in it to be stale: see the require_timestamp test
		}
		timed++
		t.Run(fx.name+" is stale", func(t *testing.T) {
			r := ts.post(t, "/services/sts", fx.contentType, fx.body)
			if got := faultCode(r.Body); got != "wsse:MessageExpired" {
				t.Fatalf("fault %q (status %d), want wsse:MessageExpired: %s", got, r.Status, r.Body)
			}
		})
	}
	if timed < 6 {
		t.Fatalf("only %d fixtures carry a time; expected the 4 digest and 2 msal ones", timed)
	}
}

// zeep's PasswordText requests carry no Timestamp: nothing in them can be
// stale. With require_timestamp on (for deployments that want every request
// to prove freshness) they are refused.
func TestRequestsWithoutTimestampAreRefusedWhenTimestampsAreRequired(t *testing.T) {
	fxs := loadFixtures(t)
	ts := newTestServer(t, func(c *config.Config) { c.RequireTimestamp = true })
	ts.addUser(t, "alice", "Secret#123", true, []string{"admin"}, nil)
	untimed := 0
	for _, fx := range fxs {
		if !fx.created.IsZero() {
			continue
		}
		untimed++
		t.Run(fx.name+" is refused", func(t *testing.T) {
			r := ts.post(t, "/services/sts", fx.contentType, fx.body)
			if got := faultCode(r.Body); got != "wsse:InvalidSecurity" || !strings.Contains(r.Body, "Timestamp") {
				t.Fatalf("fault %q (status %d): %s", got, r.Status, r.Body)
			}
		})
	}
	if untimed == 0 {
		t.Fatal("expected fixtures without a Timestamp")
	}
}

func TestReplayedDigestNonceIsRefused(t *testing.T) {
	fxs := loadFixtures(t)
	ts := fixtureServer(t)
	n := 0
	for _, fx := range fxs {
		if !strings.Contains(fx.name, "Digest") {
			continue
		}
		n++
		t.Run(fx.name+" replayed", func(t *testing.T) {
			ts.Clock.Set(fx.created.Add(10 * time.Second))
			if r := ts.post(t, "/services/sts", fx.contentType, fx.body); r.Status != 200 {
				t.Fatalf("first use refused: %d %.500s", r.Status, r.Body)
			}
			r := ts.post(t, "/services/sts", fx.contentType, fx.body)
			if got := faultCode(r.Body); got != "wsse:InvalidSecurity" || !strings.Contains(r.Body, "replay") {
				t.Fatalf("replay got %q (status %d): %.300s", got, r.Status, r.Body)
			}
		})
	}
	if n == 0 {
		t.Fatal("no PasswordDigest fixture found")
	}
}
