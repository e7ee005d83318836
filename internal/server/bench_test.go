package server

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/bench"
	"github.com/avouch/avouch/internal/client"
	"github.com/avouch/avouch/internal/config"
)

// BenchmarkRSA2048Sign is the ceiling: one RSA-2048 PKCS#1 v1.5 signature,
// the only unavoidable cost of a signed token. Compare Issue against it in
// the same run (docs/PERFORMANCE.md).
func BenchmarkRSA2048Sign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	key.Precompute()
	digest := sha256.Sum256([]byte("avouch"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDSAP256Sign is the ceiling for ECDSA signing keys.
func BenchmarkECDSAP256Sign(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("avouch"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssue runs the whole in-process pipeline for a SAML 2.0 bearer
// token with 5 claims: HTTP handler → envelope parse → WS-Security
// (cached credential) → core → token build and RSA-SHA256 signature → token
// record in SQLite → RSTR.
func BenchmarkIssue(b *testing.B) {
	for _, v := range []struct{ name, saml, keyAlg string }{
		{"SAML20", "2.0", "rsa-2048"}, {"SAML11", "1.1", "rsa-2048"}, {"SAML20-ECDSA-P256", "2.0", "ecdsa-p256"},
	} {
		b.Run(v.name, func(b *testing.B) {
			ts := newTestServer(b, func(c *config.Config) { c.SigningKeyAlgorithm = v.keyAlg })
			claims := map[string]string{}
			var uris []string
			for _, c := range []string{"emailaddress", "givenname", "surname", "upn", "country"} {
				uri := "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/" + c
				claims[uri] = c + "-value"
				uris = append(uris, uri)
			}
			ts.addUser(b, "bench", "Bench#pw1", false, []string{"admin"}, claims)
			env, ctype, err := client.BuildIssue(&client.Options{URL: ts.URL + "/services/sts", User: "bench",
				Password: "Bench#pw1", SAML: v.saml, AppliesTo: "urn:bench:rp", Claims: uris})
			if err != nil {
				b.Fatal(err)
			}
			do := func() {
				req := httptest.NewRequest(http.MethodPost, "/services/sts", bytes.NewReader(env))
				req.Header.Set("Content-Type", ctype)
				w := httptest.NewRecorder()
				ts.Handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %.300s", w.Code, w.Body.String())
				}
			}
			do() // warm the credential cache: steady traffic is what we measure
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				do()
			}
		})
	}
}

// TestBenchCountsOnlyTheTimedRequests runs `avouch bench`'s engine against
// a real server: the figures cover exactly the requested number of
// exchanges (not the first token nor the one warm-up exchange per
// worker, though the server sees them all), and the ratio's denominator is
// the higher of the raw sign rates measured before and after the run.
func TestBenchCountsOnlyTheTimedRequests(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "bench", "Bench#pw1", false, []string{"admin"}, nil)
	const workers, timed = 3, 15
	res, err := bench.Run(t.Context(), bench.Options{URL: ts.URL + "/services/sts", User: "bench", Password: "Bench#pw1",
		Scenario: bench.IssueSAML20, AppliesTo: "urn:bench:rp", Concurrency: workers, Requests: timed})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != timed || res.Errors != 0 {
		t.Fatalf("bench counted %d requests, %d errors; want %d, 0", res.Requests, res.Errors, timed)
	}
	var issued int64
	ts.metrics.mu.RLock()
	for k, c := range ts.metrics.tokens {
		if strings.HasPrefix(k, "issue|") {
			issued += c.Load()
		}
	}
	ts.metrics.mu.RUnlock()
	if want := int64(1 + workers + timed); issued != want {
		t.Fatalf("server issued %d tokens, want %d (first + warm-up + timed)", issued, want)
	}
	if res.P50ms <= 0 || res.P99ms < res.P50ms || res.Maxms < res.P99ms {
		t.Fatalf("latencies out of order: p50 %v p99 %v max %v", res.P50ms, res.P99ms, res.Maxms)
	}
	hi := max(res.SignRateBefore, res.SignRateAfter)
	if res.SignRateBefore <= 0 || res.SignRateAfter <= 0 || math.Abs(res.SignRate-hi) > 0.5 {
		t.Fatalf("raw sign rate %v, want the higher of %v before and %v after", res.SignRate, res.SignRateBefore, res.SignRateAfter)
	}
	if want := math.Round(res.Throughput/res.SignRate*1000) / 1000; res.Ratio != want {
		t.Fatalf("ratio %v, want throughput/raw = %v", res.Ratio, want)
	}
}

// TestSOAPResponsesDeclareTheirLength: tokens and faults go out with a
// Content-Length, not chunked (one write fewer per response), and the
// pooled response buffer never mixes two responses.
func TestSOAPResponsesDeclareTheirLength(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "alice", "Alice#pw1", false, []string{"admin"}, nil)
	good, ctype, err := client.BuildIssue(&client.Options{URL: ts.URL + "/services/sts", User: "alice",
		Password: "Alice#pw1", SAML: "2.0", AppliesTo: "urn:rp:len"})
	if err != nil {
		t.Fatal(err)
	}
	bad, _, _ := client.BuildIssue(&client.Options{URL: ts.URL + "/services/sts", User: "alice",
		Password: "wrong", SAML: "2.0", AppliesTo: "urn:rp:len"})
	for i, env := range [][]byte{good, bad, good, bad, good} {
		resp, err := http.Post(ts.URL+"/services/sts", ctype, bytes.NewReader(env))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(body)) {
			t.Fatalf("response %d: Transfer-Encoding %v, Content-Length %d for %d bytes", i, resp.TransferEncoding, resp.ContentLength, len(body))
		}
		if n := strings.Count(string(body), "</s:Envelope>"); n != 1 || !strings.HasSuffix(string(body), "</s:Envelope>") {
			t.Fatalf("response %d is not one whole envelope: %.200s", i, body)
		}
		if wantOK := i%2 == 0; (resp.StatusCode == http.StatusOK) != wantOK {
			t.Fatalf("response %d: status %d", i, resp.StatusCode)
		}
	}
}
