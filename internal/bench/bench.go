// Package bench is avouch's load generator: it drives a running STS with a
// scenario at a given concurrency, with a fresh Timestamp per request and
// keep-alive connections, and reports throughput and latency percentiles
// beside the raw signing rate of a key like the server's, measured in the
// same run, so results read as "fraction of the signature limit".
package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avouch/avouch/internal/client"
)

// Scenarios.
const (
	IssueSAML20 = "issue-saml2"
	IssueSAML11 = "issue-saml11"
	Validate    = "validate"
	Renew       = "renew"
)

// Scenarios lists the scenario names.
var Scenarios = []string{IssueSAML20, IssueSAML11, Validate, Renew}

// Options configure a run.
type Options struct {
	URL         string
	User        string
	Password    string
	Scenario    string
	AppliesTo   string
	Claims      []string
	Concurrency int
	Duration    time.Duration // used when Requests == 0
	Requests    int
	// Rate, when > 0, paces requests at this many per second in total (an
	// open loop: latency is measured at a fixed offered load).
	Rate       float64
	Digest     bool
	HTTPClient *http.Client
	// Progress, when set, is called about every 200 ms with requests done.
	Progress func(done, errors int64, elapsed time.Duration)
}

// Result is a run's summary.
type Result struct {
	Scenario       string         `json:"scenario"`
	Rate           float64        `json:"offered_rate_per_s,omitempty"`
	Concurrency    int            `json:"concurrency"`
	Requests       int64          `json:"requests"`
	Errors         int64          `json:"errors"`
	ErrorKinds     map[string]int `json:"error_kinds,omitempty"`
	Seconds        float64        `json:"seconds"`
	Throughput     float64        `json:"throughput_per_s"`
	P50ms          float64        `json:"p50_ms"`
	P90ms          float64        `json:"p90_ms"`
	P99ms          float64        `json:"p99_ms"`
	Maxms          float64        `json:"max_ms"`
	KeyAlgorithm   string         `json:"key_algorithm"`
	SignRate       float64        `json:"raw_sign_rate_per_s"` // the higher of before and after
	SignRateBefore float64        `json:"raw_sign_rate_before_per_s"`
	SignRateAfter  float64        `json:"raw_sign_rate_after_per_s"`
	SignGoroutines int            `json:"sign_goroutines"`
	Ratio          float64        `json:"ratio"`
}

// Run executes the scenario and measures the raw sign rate.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: o.Concurrency * 2, MaxIdleConnsPerHost: o.Concurrency * 2, IdleConnTimeout: time.Minute}}
	}
	saml := "2.0"
	if o.Scenario == IssueSAML11 {
		saml = "1.1"
	}
	base := client.Options{URL: o.URL, User: o.User, Password: o.Password, SAML: saml, AppliesTo: o.AppliesTo,
		Claims: o.Claims, Digest: o.Digest}
	// One token first: it proves the setup works, gives the target for
	// validate/renew, and tells which key the server signs with.
	_, _, token, err := client.Issue(ctx, o.HTTPClient, &base)
	if err != nil {
		return nil, fmt.Errorf("first request failed: %w", err)
	}
	// A step returns the latency of its exchange: from sending the request
	// to having read the whole response. Building the request (a fresh
	// Timestamp) and checking the response are the load generator's work,
	// not the server's, and stay out of the figure.
	var step func(ctx context.Context) (time.Duration, error)
	switch o.Scenario {
	case IssueSAML20, IssueSAML11, "":
		step = func(ctx context.Context) (time.Duration, error) {
			oo := base
			env, ctype, err := client.BuildIssue(&oo)
			if err != nil {
				return 0, err
			}
			t0 := time.Now()
			rstr, err := client.Post(ctx, o.HTTPClient, o.URL, env, ctype)
			d := time.Since(t0)
			if err == nil {
				_, err = client.ExtractToken(rstr)
			}
			return d, err
		}
	case Validate, Renew:
		rt := map[string]string{Validate: "Validate", Renew: "Renew"}[o.Scenario]
		step = func(ctx context.Context) (time.Duration, error) {
			oo := base
			env, ctype, err := client.BuildTarget(&oo, rt, token, true)
			if err != nil {
				return 0, err
			}
			t0 := time.Now()
			rstr, err := client.Post(ctx, o.HTTPClient, o.URL, env, ctype)
			d := time.Since(t0)
			if err == nil && rt == "Validate" {
				if ok, _, reason, serr := client.Status(rstr); serr != nil || !ok {
					err = fmt.Errorf("validate said invalid: %s %v", reason, serr)
				}
			}
			return d, err
		}
	default:
		return nil, fmt.Errorf("unknown scenario %q (one of %s)", o.Scenario, strings.Join(Scenarios, ", "))
	}

	// One key like the server's, measured before and after the run.
	alg, rawKey, err := keyLike(token)
	if err != nil {
		return nil, err
	}
	before := measureSign(rawKey, crypto.SHA256, signMeasure, 1)

	// Warm-up, not counted: one exchange per worker, so that connection
	// set-up and each new connection's first request on the server (a
	// fresh goroutine growing its stack) are not in the figures. The
	// figures are of the steady state.
	var warm sync.WaitGroup
	for range o.Concurrency {
		warm.Add(1)
		go func() {
			defer warm.Done()
			_, _ = step(ctx)
		}()
	}
	warm.Wait()

	res := &Result{Scenario: o.Scenario, Concurrency: o.Concurrency, Rate: o.Rate, ErrorKinds: map[string]int{}}
	lat := make([][]time.Duration, o.Concurrency)
	var done, errs atomic.Int64
	var kindsMu sync.Mutex
	runCtx := ctx
	var cancel context.CancelFunc
	if o.Requests == 0 {
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var issued atomic.Int64
	start := time.Now()
	stopProgress := make(chan struct{})
	if o.Progress != nil {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					o.Progress(done.Load(), errs.Load(), time.Since(start))
				}
			}
		}()
	}
	var pace <-chan time.Time
	if o.Rate > 0 {
		tk := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
		defer tk.Stop()
		pace = tk.C
	}
	var wg sync.WaitGroup
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for runCtx.Err() == nil {
				if o.Requests > 0 && issued.Add(1) > int64(o.Requests) {
					return
				}
				if pace != nil {
					select {
					case <-pace:
					case <-runCtx.Done():
						return
					}
				}
				d, err := step(runCtx)
				if err != nil && runCtx.Err() != nil && o.Requests == 0 {
					return // cut off by the end of the run: not an error
				}
				lat[w] = append(lat[w], d)
				done.Add(1)
				if err != nil {
					errs.Add(1)
					kindsMu.Lock()
					res.ErrorKinds[errorKind(err)]++
					kindsMu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	if o.Progress != nil {
		o.Progress(done.Load(), errs.Load(), elapsed)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Requests, res.Errors, res.Seconds = done.Load(), errs.Load(), elapsed.Seconds()
	res.Throughput = float64(res.Requests-res.Errors) / elapsed.Seconds()
	res.P50ms, res.P90ms, res.P99ms = pct(all, 0.50), pct(all, 0.90), pct(all, 0.99)
	if len(all) > 0 {
		res.Maxms = ms(all[len(all)-1])
	}
	if len(res.ErrorKinds) == 0 {
		res.ErrorKinds = nil
	}
	// The ceiling, measured in this process before and after the run: the
	// raw sign rate of a key like the server's, on one goroutine (one
	// core). The higher of the two is the denominator: on a machine whose
	// speed drifts, a measurement that caught a slow moment would flatter
	// the ratio.
	after := measureSign(rawKey, crypto.SHA256, signMeasure, 1)
	rate := max(before, after)
	res.KeyAlgorithm, res.SignRate, res.SignGoroutines = alg, rate, 1
	res.SignRateBefore, res.SignRateAfter = math.Round(before), math.Round(after)
	if rate > 0 {
		res.Ratio = math.Round(res.Throughput/rate*1000) / 1000
	}
	return res, nil
}

// signMeasure is how long the raw sign rate is measured, before and after.
const signMeasure = 2 * time.Second

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return ms(sorted[i])
}

func errorKind(err error) string {
	var fe *client.FaultError
	if errors.As(err, &fe) {
		return fe.Code
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

var certRE = regexp.MustCompile(`<(?:\w+:)?X509Certificate>([^<]+)<`)

// keyLike reads the signing certificate from a token's KeyInfo and makes a
// key of the same kind and size.
func keyLike(token []byte) (string, crypto.Signer, error) {
	m := certRE.FindSubmatch(token)
	if m == nil {
		return "", nil, errors.New("no signing certificate in the token")
	}
	der, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		return "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", nil, err
	}
	var key crypto.Signer
	var alg string
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		k, err := rsa.GenerateKey(rand.Reader, pub.N.BitLen())
		if err != nil {
			return "", nil, err
		}
		k.Precompute()
		key, alg = k, fmt.Sprintf("RSA-%d", pub.N.BitLen())
	case *ecdsa.PublicKey:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", nil, err
		}
		key, alg = k, "ECDSA-P256"
	default:
		return "", nil, fmt.Errorf("unsupported key type %T", pub)
	}
	return alg, key, nil
}

func measureSign(key crypto.Signer, h crypto.Hash, d time.Duration, goroutines int) float64 {
	digest := sha256.Sum256([]byte("avouch bench"))
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := key.Sign(rand.Reader, digest[:], h); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
