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
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

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
// the mean of the raw sign rates measured before and after the run.
func TestBenchCountsOnlyTheTimedRequests(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.addUser(t, "bench", "Bench#pw1", false, []string{"admin"}, nil)
	const workers, timed = 3, 15
	res, err := bench.Run(t.Context(), bench.Options{URL: ts.URL + "/services/sts", User: "bench", Password: "Bench#pw1",
		Scenario: bench.IssueSAML20, AppliesTo: "urn:bench:rp", Concurrency: workers, Requests: timed,
		SignEvery: time.Millisecond, SignMeasure: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != timed || res.Errors != 0 {
		t.Fatalf("bench counted %d requests, %d errors; want %d, 0", res.Requests, res.Errors, timed)
	}
	if got := issuedTokens(ts); got != 1+workers+timed {
		t.Fatalf("server issued %d tokens, want %d (first + warm-up + timed)", got, 1+workers+timed)
	}
	if res.P50ms <= 0 || res.P99ms < res.P50ms || res.Maxms < res.P99ms {
		t.Fatalf("latencies out of order: p50 %v p99 %v max %v", res.P50ms, res.P99ms, res.Maxms)
	}
	// A run by request count is one segment (SignEvery applies to timed
	// runs): measured before and after.
	if res.Segments != 1 || len(res.SignRates) != 2 || res.SignRates[0] <= 0 || res.SignRates[1] <= 0 {
		t.Fatalf("segments %d, raw sign rates %v; want 1 segment measured before and after", res.Segments, res.SignRates)
	}
	checkRatio(t, res, []float64{res.Seconds})
}

// TestBenchMeasuresTheRawRateBetweenSegments: a timed run is cut into
// segments with a raw sign measurement between them, pinned to the
// server's CPU; each segment is compared with the measurements around it.
func TestBenchMeasuresTheRawRateBetweenSegments(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pinning the raw sign measurement to a CPU needs Linux")
	}
	ts := newTestServer(t, nil)
	ts.addUser(t, "bench", "Bench#pw1", false, []string{"admin"}, nil)
	res, err := bench.Run(t.Context(), bench.Options{URL: ts.URL + "/services/sts", User: "bench", Password: "Bench#pw1",
		Scenario: bench.IssueSAML20, AppliesTo: "urn:bench:rp", Concurrency: 2, Duration: 1200 * time.Millisecond,
		SignEvery: 400 * time.Millisecond, SignMeasure: 150 * time.Millisecond, SettleLimit: 200 * time.Millisecond, ServerCPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 || len(res.SignRates) != 4 || !slices.Equal(res.SignCPUs, []int{0}) || res.SignGoroutines != 1 {
		t.Fatalf("segments %d, raw sign rates %v on CPUs %v (%d goroutines); want 3 segments, 4 measurements on CPU 0",
			res.Segments, res.SignRates, res.SignCPUs, res.SignGoroutines)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Seconds < 1.2 || res.Seconds > 3 {
		t.Fatalf("%d requests, %d errors in %.2f s under load", res.Requests, res.Errors, res.Seconds)
	}
	if got := issuedTokens(ts); got != 1+2+res.Requests {
		t.Fatalf("server issued %d tokens, bench counted %d (+1 first, +2 warm-up): a segment end cut requests off", got, res.Requests)
	}
	lo, hi := slices.Min(res.SignRates), slices.Max(res.SignRates)
	if want := math.Round((hi-lo)/hi*1000) / 1000; res.SignSpread != want {
		t.Fatalf("raw sign spread %v, want %v from %v", res.SignSpread, want, res.SignRates)
	}
	// Segment lengths are not reported; equal lengths are what the run
	// aims at, and the ratio's check allows for the difference.
	third := res.Seconds / 3
	checkRatio(t, res, []float64{third, third, third})

	_, err = bench.Run(t.Context(), bench.Options{URL: ts.URL + "/services/sts", User: "bench", Password: "Bench#pw1",
		Scenario: bench.IssueSAML20, AppliesTo: "urn:bench:rp", Requests: 1, ServerCPUs: []int{1 << 20}})
	if err == nil || !strings.Contains(err.Error(), "CPU 1048576") {
		t.Fatalf("a CPU that does not exist: err = %v", err)
	}
}

// checkRatio: the raw rate is each segment's mean of the measurements
// around it, weighted by the segment's time, and the ratio is successful
// requests over it (within rounding and the given segment times).
func checkRatio(t *testing.T, res *bench.Result, segs []float64) {
	t.Helper()
	var weighted, total float64
	for i, d := range segs {
		weighted += d * (res.SignRates[i] + res.SignRates[i+1]) / 2
		total += d
	}
	if raw := weighted / total; math.Abs(res.SignRate-raw) > 0.02*raw+1 {
		t.Fatalf("raw sign rate %v, want ≈ %.1f from %v", res.SignRate, raw, res.SignRates)
	}
	want := float64(res.Requests-res.Errors) / (res.Seconds * res.SignRate)
	if math.Abs(res.Ratio-want) > 0.02*want+0.001 {
		t.Fatalf("ratio %v, want ≈ %.3f = %d tokens / (%.2f s × %v/s)", res.Ratio, want, res.Requests-res.Errors, res.Seconds, res.SignRate)
	}
	if tp := float64(res.Requests-res.Errors) / res.Seconds; math.Abs(res.Throughput-tp) > 0.001*tp {
		t.Fatalf("throughput %v, want %v", res.Throughput, tp)
	}
}

func issuedTokens(ts *testServer) int64 {
	var issued int64
	ts.metrics.mu.RLock()
	defer ts.metrics.mu.RUnlock()
	for k, c := range ts.metrics.tokens {
		if strings.HasPrefix(k, "issue|") {
			issued += c.Load()
		}
	}
	return issued
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
