package hostile

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
	"github.com/avouch/avouch/internal/safexml"
	"github.com/avouch/avouch/internal/saml"
)

// The corpus: testdata/cases.tsv lists one hostile request per line,
//
//	name  request  soap  token  clock  status  expect  detail
//
//   - request: a template under testdata/requests/, or gen:NAME (built here,
//     for inputs too big or too regular to keep as files);
//   - soap: 1.1 or 1.2 (envelope namespace {{SOAPNS}} and content type);
//   - token: "-", or SOURCE[:TRANSFORM] filling {{TOKEN}}: a token issued at
//     setup (alice, alice11, prefix, suffix, prefix11) after an attack
//     (tokens_test.go);
//   - clock: the server's clock relative to the base time the template's
//     {{CREATED}} etc. are written at (0, +11m, -1h): fresh or stale on purpose;
//   - status: the HTTP status;
//   - expect: "token" (issued; detail = its subject), "valid" / "invalid"
//     (a Validate status; detail = the exact reason), or the fault QName
//     (detail = a substring of the answer).
//
// Templates may use:
//
//	{{>name}}          testdata/partials/name.xml
//	{{SOAPNS}}         the envelope namespace of the case's SOAP version
//	{{CREATED}}        the base time, {{EXPIRES}} five minutes later
//	{{CREATED_NOZONE}} / {{EXPIRES_NOZONE}}  the same without a zone
//	{{TIME:+1h}}       the base time plus an offset
//	{{NONCE}}          16 fresh random bytes, base64
//	{{DIGEST:pw}}      the PasswordDigest of pw over {{NONCE}} and {{CREATED}}
//	{{TOKEN}} {{TOKEN_ID}} {{WRAP_BEFORE}} {{WRAP_AFTER}}  see target
//	{{FILL:n}}         'A's making the whole body exactly n bytes long

const (
	ns11 = "http://schemas.xmlsoap.org/soap/envelope/"
	ns12 = "http://www.w3.org/2003/05/soap-envelope"

	// Users of the corpus server. The attackers own accounts whose names
	// extend alice's, for the split-value (comment injection) cases.
	alicePassword    = "Alice#pw1"
	attackerPassword = "Attacker#pw1"
	bobPassword      = "Bob#pw12"
	guestPassword    = "Guest#pw1"
)

// corpusCase is one line of cases.tsv.
type corpusCase struct {
	line                    int
	name, request, soap     string
	tokenSource, tokenXform string
	clock                   time.Duration
	status                  int
	expect, detail          string
}

func loadCases(t *testing.T) []corpusCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "cases.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusCase
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			t.Fatalf("cases.tsv:%d: %d fields, want 8", n, len(f))
		}
		c := corpusCase{line: n, name: f[0], request: f[1], soap: f[2], expect: f[6], detail: f[7]}
		if seen[c.name] {
			t.Fatalf("cases.tsv:%d: duplicate name %q", n, c.name)
		}
		seen[c.name] = true
		if c.detail == "-" {
			c.detail = ""
		}
		if f[3] != "-" {
			c.tokenSource, c.tokenXform, _ = strings.Cut(f[3], ":")
		}
		if f[4] != "0" {
			if c.clock, err = time.ParseDuration(f[4]); err != nil {
				t.Fatalf("cases.tsv:%d: clock %q: %v", n, f[4], err)
			}
		}
		if c.status, err = strconv.Atoi(f[5]); err != nil {
			t.Fatalf("cases.tsv:%d: status %q", n, f[5])
		}
		if c.soap != "1.1" && c.soap != "1.2" {
			t.Fatalf("cases.tsv:%d: soap %q", n, c.soap)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// renderCtx holds what one rendering of a template needs.
type renderCtx struct {
	soapNS string
	base   time.Time
	nonce  []byte
	target target
}

var placeholderRE = regexp.MustCompile(`\{\{([A-Z_]+)(?::([^}]*))?\}\}`)
var includeRE = regexp.MustCompile(`\{\{>([a-z0-9-]+)\}\}`)

const timeLayout = "2006-01-02T15:04:05.000Z"

// render expands a template. FILL goes last: it needs the final length.
func render(t testing.TB, tmpl string, rc *renderCtx) []byte {
	t.Helper()
	for depth := 0; includeRE.MatchString(tmpl); depth++ {
		if depth > 8 {
			t.Fatal("test bug: partials include each other")
		}
		tmpl = includeRE.ReplaceAllStringFunc(tmpl, func(m string) string {
			name := includeRE.FindStringSubmatch(m)[1]
			b, err := os.ReadFile(filepath.Join("testdata", "partials", name+".xml"))
			if err != nil {
				t.Fatalf("test bug: partial %s: %v", name, err)
			}
			return strings.TrimSuffix(string(b), "\n")
		})
	}
	created := rc.base.UTC().Format(timeLayout)
	fill := -1
	out := placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		sub := placeholderRE.FindStringSubmatch(m)
		switch sub[1] {
		case "SOAPNS":
			return rc.soapNS
		case "CREATED":
			return created
		case "EXPIRES":
			return rc.base.Add(5 * time.Minute).UTC().Format(timeLayout)
		case "CREATED_NOZONE":
			return rc.base.UTC().Format("2006-01-02T15:04:05.000")
		case "EXPIRES_NOZONE":
			return rc.base.Add(5 * time.Minute).UTC().Format("2006-01-02T15:04:05.000")
		case "TIME":
			d, err := time.ParseDuration(sub[2])
			if err != nil {
				t.Fatalf("test bug: %s", m)
			}
			return rc.base.Add(d).UTC().Format(timeLayout)
		case "NONCE":
			return base64.StdEncoding.EncodeToString(rc.nonce)
		case "DIGEST":
			h := sha1.New()
			h.Write(rc.nonce)
			h.Write([]byte(created))
			h.Write([]byte(sub[2]))
			return base64.StdEncoding.EncodeToString(h.Sum(nil))
		case "TOKEN":
			return rc.target.token
		case "TOKEN_ID":
			return rc.target.id
		case "WRAP_BEFORE":
			return rc.target.before
		case "WRAP_AFTER":
			return rc.target.after
		case "FILL":
			n, err := strconv.Atoi(sub[2])
			if err != nil {
				t.Fatalf("test bug: %s", m)
			}
			fill = n
			return "\x00FILL\x00"
		}
		t.Fatalf("test bug: unknown placeholder %s", m)
		return ""
	})
	if fill >= 0 {
		pad := fill - (len(out) - len("\x00FILL\x00"))
		if pad < 0 {
			t.Fatalf("test bug: FILL:%d is shorter than the template", fill)
		}
		out = strings.Replace(out, "\x00FILL\x00", strings.Repeat("A", pad), 1)
	}
	return []byte(out)
}

// generators build bodies that are better computed than stored.
var generators = map[string]func(t testing.TB, rc *renderCtx) []byte{
	// 20,000 nested elements: a recursive parser would exhaust its stack.
	"deep-20000": func(t testing.TB, rc *renderCtx) []byte {
		return render(t, `{{>open}}<s:Header>{{>security}}</s:Header><s:Body>`+
			strings.Repeat("<a>", 20000)+strings.Repeat("</a>", 20000)+`</s:Body></s:Envelope>`, rc)
	},
	// A real Issue request whose deepest element is at exactly
	// max_xml_depth (64): Envelope 1, Body 2, RST 3, the chain from 4 on.
	"depth-64": func(t testing.TB, rc *renderCtx) []byte { return nestedIssue(t, rc, 64) },
	"depth-65": func(t testing.TB, rc *renderCtx) []byte { return nestedIssue(t, rc, 65) },
	// 10 MB: ten times max_body_bytes.
	"10mb": func(t testing.TB, rc *renderCtx) []byte {
		head := render(t, `{{>open}}<s:Header>{{>security}}</s:Header><s:Body><wst:RequestSecurityToken>{{>issue-children}}<x:Pad xmlns:x="urn:x">`, rc)
		return append(head, bytes.Repeat([]byte("A"), 10<<20)...)
	},
	// 300 attributes on one element (the parser allows 256).
	"attributes-300": func(t testing.TB, rc *renderCtx) []byte {
		var b strings.Builder
		for i := 0; i < 300; i++ {
			fmt.Fprintf(&b, ` a%d="%d"`, i, i)
		}
		return render(t, `{{>open}}<s:Header>{{>security}}</s:Header><s:Body><wst:RequestSecurityToken>{{>issue-children}}<x:Pad xmlns:x="urn:x"`+
			b.String()+`/></wst:RequestSecurityToken></s:Body></s:Envelope>`, rc)
	},
}

func nestedIssue(t testing.TB, rc *renderCtx, depth int) []byte {
	chain := depth - 3
	return render(t, `{{>open}}<s:Header>{{>security}}</s:Header><s:Body><wst:RequestSecurityToken>{{>issue-children}}<x:n xmlns:x="urn:x">`+
		strings.Repeat("<x:n>", chain-1)+strings.Repeat("</x:n>", chain)+`</wst:RequestSecurityToken></s:Body></s:Envelope>`, rc)
}

// corpusServer is the server every corpus case runs against. Lockout is
// off: the corpus sends wrong passwords for alice on purpose, and the lockout
// has its own test (TestPasswordBruteForceIsLockedOut).
func corpusServer(t *testing.T, base time.Time) (*harness, map[string][]byte) {
	h := newHarness(t, func(c *config.Config) {
		c.AllowedRoles = []string{"admin", "sts-user"}
		c.LockoutThreshold = 0
	})
	h.Clock.Set(base)
	h.addUser(t, "alice", alicePassword, true, "admin")
	h.addUser(t, "alice.attacker", attackerPassword, false, "sts-user")
	h.addUser(t, "attacker.alice", attackerPassword, false, "sts-user")
	h.addUser(t, "bob", bobPassword, false, "sts-user")
	h.addUser(t, "guest", guestPassword, false, "guest")
	tokens := map[string][]byte{
		"alice":    h.issue(t, "alice", alicePassword, "2.0"),
		"alice11":  h.issue(t, "alice", alicePassword, "1.1"),
		"prefix":   h.issue(t, "alice.attacker", attackerPassword, "2.0"),
		"prefix11": h.issue(t, "alice.attacker", attackerPassword, "1.1"),
		"suffix":   h.issue(t, "attacker.alice", attackerPassword, "2.0"),
	}
	return h, tokens
}

// TestHostileCorpus runs every case of testdata/cases.tsv, then checks that
// the server still serves and that no secret reached its log.
func TestHostileCorpus(t *testing.T) {
	t.Parallel()
	cases := loadCases(t)
	if len(cases) < 60 {
		t.Fatalf("the corpus has %d cases; issue 11 asks for at least 60", len(cases))
	}
	base := time.Now().UTC().Truncate(time.Millisecond)
	// Tokens are issued at the base time the templates are written at.
	h, tokens := corpusServer(t, base)
	var nonces []string // every nonce sent, to look for in the log
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.Clock.Set(base.Add(c.clock))
			defer h.Clock.Set(base)
			rc := &renderCtx{soapNS: ns11, base: base, nonce: make([]byte, 16)}
			_, _ = rand.Read(rc.nonce)
			nonces = append(nonces, base64.StdEncoding.EncodeToString(rc.nonce))
			ctype := "text/xml; charset=utf-8"
			if c.soap == "1.2" {
				rc.soapNS, ctype = ns12, "application/soap+xml; charset=utf-8"
			}
			if c.tokenSource != "" {
				tok, ok := tokens[c.tokenSource]
				if !ok {
					t.Fatalf("cases.tsv:%d: unknown token source %q", c.line, c.tokenSource)
				}
				rc.target = transform(t, h, c.tokenXform, string(tok))
			}
			body, chunked := requestBody(t, c, rc)
			r := h.post(t, "/services/sts", ctype, body, chunked)
			checkOutcome(t, h, c, r)
			if t.Failed() {
				t.Logf("cases.tsv:%d (%s)", c.line, c.request)
			}
			// Whatever the case did, the server keeps serving.
			if _, _, tok, err := client.Issue(context.Background(), http.DefaultClient, &client.Options{
				URL: h.URL + "/services/sts", User: "alice", Password: alicePassword, Now: h.Clock.Now}); err != nil || len(tok) == 0 {
				t.Fatalf("a good request after this case failed: %v", err)
			}
		})
	}
	t.Run("no password or nonce reached the server log", func(t *testing.T) {
		logs := h.Logs.String()
		if len(logs) == 0 {
			t.Fatal("the server logged nothing at debug level: the check would prove nothing")
		}
		for _, secret := range []string{alicePassword, attackerPassword, bobPassword, guestPassword, "Alice#pw2"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log contains the password %q", secret)
			}
		}
		for _, n := range nonces {
			if strings.Contains(logs, n) {
				t.Fatalf("the log contains the nonce %s", n)
			}
		}
		if strings.Contains(logs, "UsernameToken>") {
			t.Error("the log contains a UsernameToken")
		}
	})
}

func requestBody(t *testing.T, c corpusCase, rc *renderCtx) ([]byte, bool) {
	name, chunked := c.request, false
	if g, ok := strings.CutPrefix(name, "gen:"); ok {
		g, chunked = strings.CutSuffix(g, "+chunked")
		gen, ok := generators[g]
		if !ok {
			t.Fatalf("cases.tsv:%d: unknown generator %q", c.line, g)
		}
		return gen(t, rc), chunked
	}
	return requestFile(t, name, rc), false
}

// requestFile renders a template of testdata/requests.
func requestFile(t testing.TB, name string, rc *renderCtx) []byte {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join("testdata", "requests", name))
	if err != nil {
		t.Fatal(err)
	}
	return render(t, strings.TrimSuffix(string(tmpl), "\n"), rc)
}

// leaks are what no answer may contain, whatever the request: stack traces,
// source positions, the file an external entity names, any password.
var leaks = []string{"goroutine ", ".go:", "root:x:0:0", alicePassword, attackerPassword, bobPassword, guestPassword}

func checkOutcome(t *testing.T, h *harness, c corpusCase, r reply) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(r.Body, l) {
			t.Errorf("the answer leaks %q", l)
		}
	}
	if r.Status != c.status {
		t.Errorf("HTTP status %d, want %d", r.Status, c.status)
	}
	switch c.expect {
	case "token":
		tok, err := client.ExtractToken([]byte(r.Body))
		if err != nil {
			t.Fatalf("no token issued (%v): %.600s", err, r.Body)
		}
		doc, err := parseToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		p, err := saml.Verify(doc, saml.VerifyOptions{Certs: h.certs()})
		if err != nil {
			t.Fatalf("the issued token does not verify: %v", err)
		}
		if p.Subject != c.detail {
			t.Errorf("token subject %q, want %q", p.Subject, c.detail)
		}
	case "valid", "invalid":
		valid, _, reason, err := client.Status([]byte(r.Body))
		if err != nil {
			t.Fatalf("%v: %.600s", err, r.Body)
		}
		if valid != (c.expect == "valid") || reason != c.detail {
			t.Errorf("validate status valid=%v reason=%q, want %s %q", valid, reason, c.expect, c.detail)
		}
	default:
		if tok, err := client.ExtractToken([]byte(r.Body)); err == nil {
			subject := "?"
			if el, err := parseToken(tok); err == nil {
				if p, err := saml.Verify(el, saml.VerifyOptions{Certs: h.certs()}); err == nil {
					subject = p.Subject
				}
			}
			t.Fatalf("a token was issued for %q; want fault %s %q", subject, c.expect, c.detail)
		}
		if got := faultCode(r.Body); got != c.expect {
			t.Errorf("fault %q, want %q: %.600s", got, c.expect, r.Body)
		} else if !strings.Contains(r.Body, c.detail) {
			t.Errorf("the answer does not mention %q: %.600s", c.detail, r.Body)
		}
	}
}

func parseToken(tok []byte) (*etree.Element, error) {
	doc, err := safexml.Parse(tok, safexml.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("the issued token does not parse: %w", err)
	}
	return doc.Root(), nil
}
