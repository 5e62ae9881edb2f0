package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// tally is what one worker saw: every latency, and how each request ended.
// Each worker keeps its own and they are merged at the end, so recording a
// request takes no lock while the load runs.
type tally struct {
	latencies []time.Duration
	// outcomes counts requests by HTTP status ("200") or by failure
	// ("transport error").
	outcomes map[string]int
}

func newTally() *tally { return &tally{outcomes: map[string]int{}} }

func (t *tally) add(d time.Duration, outcome string) {
	t.latencies = append(t.latencies, d)
	t.outcomes[outcome]++
}

func (t *tally) merge(o *tally) {
	t.latencies = append(t.latencies, o.latencies...)
	for k, v := range o.outcomes {
		t.outcomes[k] += v
	}
}

// count is the number of requests with the given outcome.
func (t *tally) count(outcome string) int { return t.outcomes[outcome] }

// failures counts every request whose outcome is not one of ok.
func (t *tally) failures(ok ...string) int {
	n := 0
	for k, v := range t.outcomes {
		if !slices.Contains(ok, k) {
			n += v
		}
	}
	return n
}

// outcomeList renders the outcomes in a stable order: "200×1234 403×2".
func (t *tally) outcomeList() string {
	keys := slices.Sorted(maps.Keys(t.outcomes))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, t.outcomes[k]))
	}
	return strings.Join(parts, " ")
}

// summary describes a set of latencies.
type summary struct {
	N              int
	P50, P99, Max  time.Duration
	Mean, P90, Min time.Duration
}

// summarize sorts a copy of ds and reads its percentiles.
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var total time.Duration
	for _, d := range s {
		total += d
	}
	return summary{
		N: len(s), Min: s[0], Max: s[len(s)-1], Mean: total / time.Duration(len(s)),
		P50: percentile(s, 50), P90: percentile(s, 90), P99: percentile(s, 99),
	}
}

// percentile is the nearest-rank percentile of sorted: the smallest value
// that at least p % of the values are at or below. It never interpolates,
// so every value it reports was really measured.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms formats a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "0"
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// mib formats a byte count in MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// table prints aligned columns; the first row is the header.
func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}
