package server

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics is a small Prometheus text-format registry of our own: request
// counts and latency histograms by endpoint and status, faults by code,
// tokens by operation and type. No dependency, no allocation per request
// beyond a map lookup under a read lock.
type metrics struct {
	mu       sync.RWMutex
	requests map[string]*atomic.Int64 // path|status
	latency  map[string]*histogram    // path
	faults   map[string]*atomic.Int64 // code
	tokens   map[string]*atomic.Int64 // op|type
	limited  atomic.Int64
	// auditDropped reads the auditor's count of events dropped because its
	// queue was full.
	auditDropped func() int64
	start        time.Time
}

var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

type histogram struct {
	counts []atomic.Int64 // per bucket, plus +Inf
	sumUS  atomic.Int64
	n      atomic.Int64
}

func newMetrics() *metrics {
	return &metrics{requests: map[string]*atomic.Int64{}, latency: map[string]*histogram{},
		faults: map[string]*atomic.Int64{}, tokens: map[string]*atomic.Int64{}, start: time.Now()}
}

func counter(mu *sync.RWMutex, m map[string]*atomic.Int64, key string) *atomic.Int64 {
	mu.RLock()
	c := m[key]
	mu.RUnlock()
	if c != nil {
		return c
	}
	mu.Lock()
	defer mu.Unlock()
	if c = m[key]; c == nil {
		c = &atomic.Int64{}
		m[key] = c
	}
	return c
}

// endpointLabel keeps label cardinality bounded: known prefixes only.
func endpointLabel(path string) string {
	for _, p := range []string{"/services/sts", "/services/wso2carbon-sts", "/adfs/services/trust", "/passivests", "/adfs/ls",
		"/FederationMetadata", "/api", "/console", "/healthz", "/readyz", "/metrics"} {
		if strings.HasPrefix(path, p) {
			return p
		}
	}
	return "other"
}

func (m *metrics) observe(path string, status int, d time.Duration) {
	ep := endpointLabel(path)
	counter(&m.mu, m.requests, fmt.Sprintf("%s|%d", ep, status)).Add(1)
	m.mu.RLock()
	h := m.latency[ep]
	m.mu.RUnlock()
	if h == nil {
		m.mu.Lock()
		if h = m.latency[ep]; h == nil {
			h = &histogram{counts: make([]atomic.Int64, len(latencyBuckets)+1)}
			m.latency[ep] = h
		}
		m.mu.Unlock()
	}
	s := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets, s)
	h.counts[i].Add(1)
	h.sumUS.Add(d.Microseconds())
	h.n.Add(1)
}

func (m *metrics) fault(code string) { counter(&m.mu, m.faults, code).Add(1) }

func (m *metrics) token(op, tokenType string) {
	counter(&m.mu, m.tokens, op+"|"+tokenType).Add(1)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m *metrics) write(w io.Writer) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fmt.Fprintln(w, "# HELP avouch_http_requests_total HTTP requests by endpoint and status.")
	fmt.Fprintln(w, "# TYPE avouch_http_requests_total counter")
	for _, k := range sortedKeys(m.requests) {
		ep, st, _ := strings.Cut(k, "|")
		fmt.Fprintf(w, "avouch_http_requests_total{endpoint=%q,status=%q} %d\n", ep, st, m.requests[k].Load())
	}
	fmt.Fprintln(w, "# HELP avouch_http_request_duration_seconds Request latency by endpoint.")
	fmt.Fprintln(w, "# TYPE avouch_http_request_duration_seconds histogram")
	for _, ep := range sortedKeys(m.latency) {
		h := m.latency[ep]
		var cum int64
		for i, b := range latencyBuckets {
			cum += h.counts[i].Load()
			fmt.Fprintf(w, "avouch_http_request_duration_seconds_bucket{endpoint=%q,le=\"%g\"} %d\n", ep, b, cum)
		}
		cum += h.counts[len(latencyBuckets)].Load()
		fmt.Fprintf(w, "avouch_http_request_duration_seconds_bucket{endpoint=%q,le=\"+Inf\"} %d\n", ep, cum)
		fmt.Fprintf(w, "avouch_http_request_duration_seconds_sum{endpoint=%q} %g\n", ep, float64(h.sumUS.Load())/1e6)
		fmt.Fprintf(w, "avouch_http_request_duration_seconds_count{endpoint=%q} %d\n", ep, h.n.Load())
	}
	fmt.Fprintln(w, "# HELP avouch_faults_total SOAP faults by fault code.")
	fmt.Fprintln(w, "# TYPE avouch_faults_total counter")
	for _, k := range sortedKeys(m.faults) {
		fmt.Fprintf(w, "avouch_faults_total{code=%q} %d\n", k, m.faults[k].Load())
	}
	fmt.Fprintln(w, "# HELP avouch_tokens_total Tokens issued and renewed by operation and token type.")
	fmt.Fprintln(w, "# TYPE avouch_tokens_total counter")
	for _, k := range sortedKeys(m.tokens) {
		op, tt, _ := strings.Cut(k, "|")
		fmt.Fprintf(w, "avouch_tokens_total{op=%q,type=%q} %d\n", op, tt, m.tokens[k].Load())
	}
	fmt.Fprintln(w, "# HELP avouch_rate_limited_total Requests refused by rate limits.")
	fmt.Fprintln(w, "# TYPE avouch_rate_limited_total counter")
	fmt.Fprintf(w, "avouch_rate_limited_total %d\n", m.limited.Load())
	if m.auditDropped != nil {
		fmt.Fprintln(w, "# HELP avouch_audit_events_dropped_total Issuance audit events dropped because the audit queue was full.")
		fmt.Fprintln(w, "# TYPE avouch_audit_events_dropped_total counter")
		fmt.Fprintf(w, "avouch_audit_events_dropped_total %d\n", m.auditDropped())
	}
	fmt.Fprintln(w, "# HELP avouch_uptime_seconds Seconds since the process started.")
	fmt.Fprintln(w, "# TYPE avouch_uptime_seconds gauge")
	fmt.Fprintf(w, "avouch_uptime_seconds %g\n", time.Since(m.start).Seconds())
}

func (m *metrics) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.write(w)
	})
}
