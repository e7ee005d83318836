package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsCountRequestsFaultsAndTokens(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin"}, nil)
	o := &client.Options{URL: ts.URL + "/services/sts", User: "alice", Password: "Alice#pw1"}
	for i := 0; i < 3; i++ {
		if _, _, _, err := client.Issue(context.Background(), http.DefaultClient, o); err != nil {
			t.Fatal(err)
		}
	}
	o.SAML = "1.1"
	_, _, _, _ = client.Issue(context.Background(), http.DefaultClient, o)
	o.Password = "wrong"
	_, _, _, _ = client.Issue(context.Background(), http.DefaultClient, o)
	st, body := httpGet(t, ts.URL+"/metrics")
	if st != 200 {
		t.Fatal(st)
	}
	for _, want := range []string{
		`avouch_tokens_total{op="issue",type="urn:oasis:names:tc:SAML:2.0:assertion"} 3`,
		`avouch_tokens_total{op="issue",type="urn:oasis:names:tc:SAML:1.0:assertion"} 1`,
		`avouch_faults_total{code="wsse:FailedAuthentication"} 1`,
		`avouch_http_requests_total{endpoint="/services/sts",status="200"} 4`,
		`avouch_http_requests_total{endpoint="/services/sts",status="500"} 1`,
		`avouch_http_request_duration_seconds_count{endpoint="/services/sts"} 5`,
		`avouch_audit_events_dropped_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "Alice#pw1") || strings.Contains(body, "wrong") {
		t.Fatal("a secret reached the metrics")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ts := newTestServer(t, nil)
	if st, body := httpGet(t, ts.URL+"/healthz"); st != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", st, body)
	}
	if st, body := httpGet(t, ts.URL+"/readyz"); st != 200 || body != "ready\n" {
		t.Fatalf("readyz %d %q", st, body)
	}
	ts.Store.Close() // the database goes away
	if st, _ := httpGet(t, ts.URL+"/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database closed: %d", st)
	}
	if st, _ := httpGet(t, ts.URL+"/healthz"); st != 200 {
		t.Fatal("liveness must not depend on the database")
	}
}

func TestRateLimitsPerAddressAndPerUser(t *testing.T) {
	t.Run("one address beyond its rate gets 429 with Retry-After", func(t *testing.T) {
		ts := newTestServer(t, func(c *config.Config) { c.RateLimitPerIP, c.RateLimitBurst = 1, 3 })
		ts.Clock.Set(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)) // frozen: no refill
		codes := map[int]int{}
		for i := 0; i < 6; i++ {
			resp, err := http.Get(ts.URL + "/services/sts?wsdl")
			if err != nil {
				t.Fatal(err)
			}
			codes[resp.StatusCode]++
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			resp.Body.Close()
		}
		if codes[200] != 3 || codes[429] != 3 {
			t.Fatalf("codes %v, want 3×200 then 3×429", codes)
		}
		if st, _ := httpGet(t, ts.URL+"/healthz"); st != 200 {
			t.Fatal("health checks must not be rate limited")
		}
	})
	t.Run("one user beyond their rate gets a RequestFailed fault, others are unaffected", func(t *testing.T) {
		ts := newTestServer(t, func(c *config.Config) { c.RateLimitPerUser, c.RateLimitBurst = 1, 2 })
		ts.Clock.Set(time.Now()) // frozen: no refill within the test
		ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin"}, nil)
		ts.addUser(t, "bob", "Bob#pw123", false, []string{"admin"}, nil)
		issue := func(u, pw string) error {
			_, _, _, err := client.Issue(context.Background(), http.DefaultClient, &client.Options{URL: ts.URL + "/services/sts",
				User: u, Password: pw, Now: ts.Clock.Now})
			return err
		}
		for i := 0; i < 2; i++ {
			if err := issue("alice", "Alice#pw1"); err != nil {
				t.Fatal(err)
			}
		}
		err := issue("alice", "Alice#pw1")
		if fe, ok := err.(*client.FaultError); !ok || fe.Code != "wst:RequestFailed" || !strings.Contains(fe.Reason, "too many requests") {
			t.Fatalf("third request: %v", err)
		}
		if err := issue("bob", "Bob#pw123"); err != nil {
			t.Fatalf("another user was limited: %v", err)
		}
	})
}
