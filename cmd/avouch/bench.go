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
	"strconv"
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
	cpus := fs.String("server-cpus", "", "CPUs the server runs on (e.g. 0 or 0-1, as given to taskset -c): the raw sign rate is measured there, one goroutine per CPU, while the load pauses, once those CPUs are quiet (at most 2 s wait; Linux)")
	fs.DurationVar(&o.SignEvery, "sign-every", 5*time.Second, "measure the raw sign rate between load segments of about this length (0: only before and after)")
	insecure := fs.Bool("insecure", false, "do not verify the server's TLS certificate")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Claims = claims
	var err error
	if o.ServerCPUs, err = parseCPUList(*cpus); err != nil {
		fmt.Fprintln(stderr, "avouch bench: --server-cpus:", err)
		return 2
	}
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
	var res *bench.Result
	res, err = bench.Run(ctx, o)
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
		printSummary(stdout, res)
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

// parseCPUList reads taskset's list form: "0", "0,2", "0-3".
func parseCPUList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b-a > 4096 {
			return nil, fmt.Errorf("%q is not a CPU list like 0 or 0-1 or 0,2", s)
		}
		for c := a; c <= b; c++ {
			if !seen[c] {
				seen[c] = true
				cpus = append(cpus, c)
			}
		}
	}
	return cpus, nil
}

// printSummary writes the human summary of a run.
func printSummary(w io.Writer, res *bench.Result) {
	fmt.Fprintf(w, "scenario     %s, concurrency %d\n", res.Scenario, res.Concurrency)
	fmt.Fprintf(w, "requests     %d in %.1fs, %d errors\n", res.Requests, res.Seconds, res.Errors)
	for k, n := range res.ErrorKinds {
		fmt.Fprintf(w, "  error      %dx %s\n", n, k)
	}
	fmt.Fprintf(w, "throughput   %.0f/s\n", res.Throughput)
	fmt.Fprintf(w, "latency      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", res.P50ms, res.P90ms, res.P99ms, res.Maxms)
	where := "unpinned"
	if len(res.SignCPUs) > 0 {
		where = fmt.Sprintf("on CPU %v", res.SignCPUs)
	}
	fmt.Fprintf(w, "raw sign     %.0f/s (%s, %d goroutine(s) %s in this process; measured %v/s around %d load segment(s))\n",
		res.SignRate, res.KeyAlgorithm, res.SignGoroutines, where, res.SignRates, res.Segments)
	fmt.Fprintf(w, "ratio        %.3f (throughput / raw sign rate)\n", res.Ratio)
	if res.SignSpread > bench.UnsteadySpread {
		fmt.Fprintf(w, "warning      the raw sign rate moved %.0f %% during the run: the machine was not steady, and these figures (latency above all) are noisy\n", res.SignSpread*100)
	}
}
