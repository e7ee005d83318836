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
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/avouch/avouch/internal/client"
)

// Scenarios.
const (
	IssueSAML20    = "issue-saml2"
	IssueSAML11    = "issue-saml11"
	IssueEncrypted = "issue-encrypted"
	Validate       = "validate"
	Renew          = "renew"
)

// Scenarios lists the scenario names.
var Scenarios = []string{IssueSAML20, IssueSAML11, IssueEncrypted, Validate, Renew}

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
	// ServerCPUs are the CPUs the server runs on, when known. The raw sign
	// rate is then measured on exactly those CPUs, one goroutine pinned to
	// each (Linux), while the load pauses and once those CPUs are quiet
	// (see settle): the ceiling is that of the server's own cores, not of
	// the load generator's. Empty: one goroutine wherever this process runs.
	ServerCPUs []int
	// SignEvery splits a timed run into segments of about this length with
	// a raw sign measurement between them, so that a machine whose speed
	// drifts is measured as it was during each segment. 0: measure only
	// before and after the run.
	SignEvery time.Duration
	// SignMeasure is the length of each raw sign measurement (default 1 s).
	SignMeasure time.Duration
	// SettleLimit bounds the wait for ServerCPUs to go quiet before each
	// raw sign measurement (default 2 s; negative: no wait).
	SettleLimit time.Duration
	// Progress, when set, is called about every 200 ms with requests done
	// and the time spent under load so far.
	Progress func(done, errors int64, elapsed time.Duration)
}

// Result is a run's summary.
type Result struct {
	Scenario     string         `json:"scenario"`
	Rate         float64        `json:"offered_rate_per_s,omitempty"`
	Concurrency  int            `json:"concurrency"`
	Requests     int64          `json:"requests"`
	Errors       int64          `json:"errors"`
	ErrorKinds   map[string]int `json:"error_kinds,omitempty"`
	Seconds      float64        `json:"seconds"` // under load, without the raw sign measurements
	Throughput   float64        `json:"throughput_per_s"`
	P50ms        float64        `json:"p50_ms"`
	P90ms        float64        `json:"p90_ms"`
	P99ms        float64        `json:"p99_ms"`
	Maxms        float64        `json:"max_ms"`
	KeyAlgorithm string         `json:"key_algorithm"`
	// SignRate is the raw sign rate the run is compared with: each load
	// segment's time weighted by the mean of the measurements just before
	// and just after it.
	SignRate float64 `json:"raw_sign_rate_per_s"`
	// SignRates are the measurements in order: before the run, between
	// segments, after the run.
	SignRates []float64 `json:"raw_sign_rates_per_s"`
	// SignSpread is (highest − lowest) / highest of SignRates: how much
	// the machine's speed moved during the run. Over UnsteadySpread the
	// figures, latency above all, say more about the machine than about
	// the server.
	SignSpread     float64 `json:"raw_sign_spread"`
	SignGoroutines int     `json:"sign_goroutines"`
	SignCPUs       []int   `json:"sign_cpus,omitempty"`
	Segments       int     `json:"segments"`
	// Ratio is successful requests / the signatures the raw loop makes in
	// the same time: throughput / SignRate.
	Ratio float64 `json:"ratio"`
}

// Run executes the scenario and measures the raw sign rate.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.SettleLimit == 0 {
		o.SettleLimit = settleLimit
	}
	if o.SignMeasure <= 0 {
		o.SignMeasure = time.Second
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
	encrypted := o.Scenario == IssueEncrypted
	// checkIssued: an issue scenario's token must be what it asked for.
	checkIssued := func(rstr []byte) ([]byte, error) {
		tok, err := client.ExtractToken(rstr)
		if err == nil && encrypted != isEncrypted(tok) {
			if encrypted {
				err = fmt.Errorf("the token for %q is not encrypted: register it as a relying party with a certificate and encryption on", o.AppliesTo)
			} else {
				err = errors.New("the token is encrypted: use the issue-encrypted scenario for this relying party")
			}
		}
		return tok, err
	}
	// One token first: it proves the setup works, gives the target for
	// validate/renew, and (unless encrypted) tells which key the server
	// signs with.
	rst, ctype, err := client.BuildIssue(&base)
	if err != nil {
		return nil, err
	}
	rstr, err := client.Post(ctx, o.HTTPClient, o.URL, rst, ctype)
	if err != nil {
		return nil, fmt.Errorf("first request failed: %w", err)
	}
	token, err := checkIssued(rstr)
	if err != nil {
		return nil, fmt.Errorf("first request: %w", err)
	}
	// A step returns the latency of its exchange: from sending the request
	// to having read the whole response. Building the request (a fresh
	// Timestamp) and checking the response are the load generator's work,
	// not the server's, and stay out of the figure.
	var step func(ctx context.Context) (time.Duration, error)
	switch o.Scenario {
	case IssueSAML20, IssueSAML11, IssueEncrypted, "":
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
				_, err = checkIssued(rstr)
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

	// One key like the server's, measured before, between and after the
	// load segments.
	certSource := token
	if encrypted {
		// The token's KeyInfo names the relying party's key; the signing
		// certificate is in the STS's metadata.
		if certSource, err = fetchMetadata(ctx, o.HTTPClient, o.URL); err != nil {
			return nil, err
		}
	}
	alg, rawKey, err := keyLike(certSource)
	if err != nil {
		return nil, err
	}
	measure := func() (float64, error) {
		// On the server's own CPUs, first let the work the load left
		// behind finish (see settle).
		if o.SettleLimit > 0 {
			settle(o.ServerCPUs, o.SettleLimit)
		}
		return measureSign(rawKey, o.SignMeasure, o.ServerCPUs)
	}
	res := &Result{Scenario: o.Scenario, Concurrency: o.Concurrency, Rate: o.Rate, ErrorKinds: map[string]int{},
		KeyAlgorithm: alg, SignGoroutines: max(1, len(o.ServerCPUs)), SignCPUs: o.ServerCPUs}
	first, err := measure()
	if err != nil {
		return nil, err
	}
	res.SignRates = append(res.SignRates, math.Round(first))

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

	segments := 1
	if o.Requests == 0 && o.SignEvery > 0 {
		segments = max(1, int(math.Round(float64(o.Duration)/float64(o.SignEvery))))
	}
	l := &load{o: o, step: step, lat: make([][]time.Duration, o.Concurrency), kinds: res.ErrorKinds}
	if o.Rate > 0 {
		tk := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
		defer tk.Stop()
		l.pace = tk.C
	}
	stopProgress := l.progress()
	var weighted float64 // Σ segment seconds × raw rate during the segment
	var loadTime time.Duration
	prev := first
	for i := 0; i < segments; i++ {
		d := l.segment(ctx, o.Duration/time.Duration(segments))
		loadTime += d
		next, err := measure()
		if err != nil {
			close(stopProgress)
			return nil, err
		}
		res.SignRates = append(res.SignRates, math.Round(next))
		weighted += d.Seconds() * (prev + next) / 2
		prev = next
		res.Segments++
		if ctx.Err() != nil {
			break
		}
	}
	close(stopProgress)
	if o.Progress != nil {
		o.Progress(l.done.Load(), l.errs.Load(), loadTime)
	}
	var all []time.Duration
	for _, x := range l.lat {
		all = append(all, x...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Requests, res.Errors, res.Seconds = l.done.Load(), l.errs.Load(), loadTime.Seconds()
	if loadTime > 0 {
		res.Throughput = float64(res.Requests-res.Errors) / loadTime.Seconds()
		res.SignRate = math.Round(weighted / loadTime.Seconds())
	}
	res.P50ms, res.P90ms, res.P99ms = pct(all, 0.50), pct(all, 0.90), pct(all, 0.99)
	if len(all) > 0 {
		res.Maxms = ms(all[len(all)-1])
	}
	if len(res.ErrorKinds) == 0 {
		res.ErrorKinds = nil
	}
	if lo, hi := slices.Min(res.SignRates), slices.Max(res.SignRates); hi > 0 {
		res.SignSpread = math.Round((hi-lo)/hi*1000) / 1000
	}
	if weighted > 0 {
		res.Ratio = math.Round(float64(res.Requests-res.Errors)/weighted*1000) / 1000
	}
	return res, nil
}

// load is the state of a run's workers across its segments.
type load struct {
	o      Options
	step   func(context.Context) (time.Duration, error)
	pace   <-chan time.Time
	lat    [][]time.Duration
	kinds  map[string]int
	kindMu sync.Mutex
	done   atomic.Int64
	errs   atomic.Int64
	issued atomic.Int64
	// finished is the load time of the segments done, segStart the start
	// of the one running (zero between segments): the progress bar's
	// time under load.
	mu       sync.Mutex
	finished time.Duration
	segStart time.Time
}

// segment runs the workers until d has passed (or, with Requests, until
// that many were started) and returns how long the load lasted. Requests
// in flight at the deadline are finished and counted, not cancelled: a
// cancelled HTTP/1.1 request closes its connection, and the next segment
// would pay for new ones.
func (l *load) segment(ctx context.Context, d time.Duration) time.Duration {
	start := time.Now()
	l.mu.Lock()
	l.segStart = start
	l.mu.Unlock()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range l.o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if l.o.Requests > 0 {
					if l.issued.Add(1) > int64(l.o.Requests) {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				if l.pace != nil {
					select {
					case <-l.pace:
					case <-ctx.Done():
						return
					}
				}
				lat, err := l.step(ctx)
				if err != nil && ctx.Err() != nil {
					return // interrupted: not an error of the server
				}
				l.lat[w] = append(l.lat[w], lat)
				l.done.Add(1)
				if err != nil {
					l.errs.Add(1)
					l.kindMu.Lock()
					l.kinds[errorKind(err)]++
					l.kindMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	l.mu.Lock()
	l.finished += took
	l.segStart = time.Time{}
	l.mu.Unlock()
	return took
}

// progress calls Options.Progress about every 200 ms until the returned
// channel is closed.
func (l *load) progress() chan struct{} {
	stop := make(chan struct{})
	if l.o.Progress == nil {
		return stop
	}
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				l.mu.Lock()
				under := l.finished
				if !l.segStart.IsZero() {
					under += time.Since(l.segStart)
				}
				l.mu.Unlock()
				l.o.Progress(l.done.Load(), l.errs.Load(), under)
			}
		}
	}()
	return stop
}

// isEncrypted: the token is an XML-Enc EncryptedData (for SAML 2.0 inside
// an EncryptedAssertion).
func isEncrypted(token []byte) bool {
	return encryptedRE.Match(token)
}

var encryptedRE = regexp.MustCompile(`^<(?:[A-Za-z_][\w.-]*:)?(?:EncryptedAssertion|EncryptedData)[\s>]`)

// fetchMetadata reads the STS's WS-Federation metadata, which carries its
// signing certificate.
func fetchMetadata(ctx context.Context, hc *http.Client, stsURL string) ([]byte, error) {
	u, err := url.Parse(stsURL)
	if err != nil {
		return nil, err
	}
	u.Path, u.RawQuery = "/FederationMetadata/2007-06/FederationMetadata.xml", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metadata (for the signing certificate): %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", u, err)
	}
	return body, nil
}

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

// UnsteadySpread is the SignSpread over which a run's figures are noise.
const UnsteadySpread = 0.05

// settleLimit is the default SettleLimit: a server that never idles is
// measured anyway.
const settleLimit = 2 * time.Second

// measureSign returns the raw sign rate of key over about d: one goroutine
// per CPU in cpus, each pinned to its CPU, or one unpinned goroutine when
// cpus is empty.
func measureSign(key crypto.Signer, d time.Duration, cpus []int) (float64, error) {
	digest := sha256.Sum256([]byte("avouch bench"))
	workers := max(1, len(cpus))
	// The signing goroutines must run at once: with fewer Ps than CPUs
	// (GOMAXPROCS=1 under taskset) they would take turns.
	if p := runtime.GOMAXPROCS(0); p < workers {
		runtime.GOMAXPROCS(workers)
		defer runtime.GOMAXPROCS(p)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	ready := make(chan struct{})
	var start, deadline time.Time // set before ready is closed
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop := func() {
				<-ready
				for time.Now().Before(deadline) {
					if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
						n.Add(1)
					}
				}
			}
			if len(cpus) == 0 {
				loop()
				return
			}
			errs[w] = onCPU(cpus[w], loop)
		}()
	}
	start = time.Now()
	deadline = start.Add(d)
	close(ready) // the pinned goroutines start from here
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
