package main

import (
	"strings"
	"testing"

	"github.com/avouch/avouch/internal/bench"
)

// TestSummaryWarnsWhenTheMachineWasUnsteady: the human summary says when
// the raw sign rate moved more than 5 % during the run, and only then.
func TestSummaryWarnsWhenTheMachineWasUnsteady(t *testing.T) {
	for _, tt := range []struct {
		spread float64
		warn   bool
	}{
		{0, false},
		{0.05, false},
		{0.051, true},
		{0.18, true},
	} {
		var b strings.Builder
		printSummary(&b, &bench.Result{Scenario: bench.IssueSAML20, Concurrency: 16, Requests: 100, Throughput: 1000,
			SignRate: 1180, SignRates: []float64{1180, 1180}, SignSpread: tt.spread, Ratio: 0.85})
		out := b.String()
		if got := strings.Contains(out, "warning      the raw sign rate moved"); got != tt.warn {
			t.Errorf("spread %v: warning %v, want %v:\n%s", tt.spread, got, tt.warn, out)
		}
		if !strings.Contains(out, "ratio        0.850") {
			t.Errorf("spread %v: no ratio line:\n%s", tt.spread, out)
		}
	}
}
