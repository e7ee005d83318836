package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/avouch/avouch/internal/bench"
)

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avouch bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	var claims multiFlag
	fs.StringVar(&o.URL, "url", "https://localhost:9443/services/sts", "STS endpoint URL")
	fs.StringVar(&o.User, "user", "", "user name")
	fs.StringVar(&o.Password, "password", "", "password (or env AVOUCH_CLIENT_PASSWORD)")
	fs.StringVar(&o.Scenario, "scenario", bench.IssueSAML20, "one of "+strings.Join(bench.Scenarios, ", "))
	fs.StringVar(&o.AppliesTo, "applies-to", "urn:avouch:bench", "AppliesTo of the requests")
	fs.Var(&claims, "claim", "claim URI to request (repeatable)")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "requests in flight")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to run (unless --requests)")
	fs.IntVar(&o.Requests, "requests", 0, "stop after this many requests")
	fs.Float64Var(&o.Rate, "rate", 0, "offered load in requests per second (open loop; 0 = as fast as possible)")
	fs.BoolVar(&o.Digest, "digest", false, "PasswordDigest (needs a digest-enabled user; each request a fresh nonce)")
	insecure := fs.Bool("insecure", false, "do not verify the server's TLS certificate")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Claims = claims
	if o.Password == "" {
		o.Password = os.Getenv("AVOUCH_CLIENT_PASSWORD")
	}
	if o.User == "" || o.Password == "" {
		fmt.Fprintln(stderr, "avouch bench: --user and --password are required")
		return 2
	}
	o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure}, //nolint:gosec // explicit user choice
		MaxIdleConns:    o.Concurrency * 2, MaxIdleConnsPerHost: o.Concurrency * 2}}
	if !*asJSON {
		o.Progress = progressBar(stderr, o)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, o)
	if !*asJSON {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "avouch bench:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		fmt.Fprintf(stdout, "scenario     %s, concurrency %d\n", res.Scenario, res.Concurrency)
		fmt.Fprintf(stdout, "requests     %d in %.1fs, %d errors\n", res.Requests, res.Seconds, res.Errors)
		for k, n := range res.ErrorKinds {
			fmt.Fprintf(stdout, "  error      %dx %s\n", n, k)
		}
		fmt.Fprintf(stdout, "throughput   %.0f/s\n", res.Throughput)
		fmt.Fprintf(stdout, "latency      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", res.P50ms, res.P90ms, res.P99ms, res.Maxms)
		fmt.Fprintf(stdout, "raw sign     %.0f/s (%s, %d goroutine, this process; the higher of %.0f/s before and %.0f/s after the run)\n",
			res.SignRate, res.KeyAlgorithm, res.SignGoroutines, res.SignRateBefore, res.SignRateAfter)
		fmt.Fprintf(stdout, "ratio        %.3f (throughput / raw sign rate)\n", res.Ratio)
	}
	if res.Errors > 0 {
		return 1
	}
	return 0
}

// progressBar draws a one-line bar on stderr.
func progressBar(w io.Writer, o bench.Options) func(done, errs int64, elapsed time.Duration) {
	return func(done, errs int64, elapsed time.Duration) {
		var frac float64
		if o.Requests > 0 {
			frac = float64(done) / float64(o.Requests)
		} else {
			frac = elapsed.Seconds() / o.Duration.Seconds()
		}
		if frac > 1 {
			frac = 1
		}
		n := int(frac * 30)
		rate := float64(done) / elapsed.Seconds()
		fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %d requests  %d errors  %.0f/s ", strings.Repeat("#", n), strings.Repeat(".", 30-n), frac*100, done, errs, rate)
	}
}
