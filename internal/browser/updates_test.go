package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
)

// How long a live update took is measured from the action that caused it
// (a call placed, a button clicked, a customer hanging up) to the moment
// the page first showed it. Both ends read the same clock: the browser
// runs on this machine, and Date.now() and time.Now() are both its wall
// clock. The test records these times and reports them; it does not fail
// on them (these machines are shared, and a commit waiting on the disk
// delays every update behind it). BenchmarkBrowserUpdates is where the
// numbers are meant to be read.

// update is one page showing the result of one step.
type update struct {
	Step      string  `json:"step"`
	Person    string  `json:"person"`
	Saw       string  `json:"saw"`
	LatencyMS float64 `json:"latency_ms"`
}

// updates collects every update of a test or benchmark run.
type updates struct {
	t    testing.TB
	list []update
	n    int // watchers started, each with its own slot in the page
	// prefix goes before each step's name (the iteration, in a benchmark).
	prefix string
}

func newUpdates(t testing.TB) *updates { return &updates{t: t} }

// expectation is a condition a person's page must come to meet after a
// step's cause.
type expectation struct {
	p        *person
	what, js string
}

// sees names what p must see after a step; js is a JavaScript expression
// over the page.
func (p *person) sees(what, js string) expectation { return expectation{p: p, what: what, js: js} }

// after runs one step: it starts a watcher in each page for its condition
// (which must not hold yet, or the page would prove nothing about a live
// update), runs cause, which returns the moment the step happened, then
// waits for every page to meet its condition and records how long after
// the cause each did.
func (u *updates) after(step string, cause func() time.Time, want ...expectation) {
	u.t.Helper()
	ids := make([]string, len(want))
	for i, w := range want {
		u.n++
		ids[i] = strconv.Itoa(u.n)
		w.p.watch(ids[i], step, w.what, w.js)
	}
	at := cause()
	for i, w := range want {
		saw := w.p.waitWatch(ids[i], step, w.what)
		u.list = append(u.list, update{
			Step: u.prefix + step, Person: w.p.name, Saw: w.what,
			LatencyMS: float64(saw.Sub(at).Microseconds()) / 1000,
		})
	}
}

// watch starts a watcher in p's page that records the moment js first
// holds. A MutationObserver sees every change a swap or a script makes, in
// the same task; the interval catches what changes without touching the
// DOM (none of the conditions do today).
func (p *person) watch(id, step, what, js string) {
	p.t.Helper()
	src := `(() => {
		const slots = (window.__wtWatch = window.__wtWatch || {});
		const holds = () => { try { return !!(` + js + `); } catch (e) { return false; } };
		if (holds()) return false;
		let done = false, resolve;
		slots[` + jsString(id) + `] = new Promise((r) => { resolve = r; });
		const check = () => {
			if (done || !holds()) return;
			done = true;
			const at = Date.now();
			observer.disconnect();
			clearInterval(timer);
			resolve(at);
		};
		const observer = new MutationObserver(check);
		observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
		const timer = setInterval(check, 20);
		return true;
	})()`
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	started, err := chromedp.Run(ctx, chromedp.Evaluate[bool](src))
	if err != nil {
		p.t.Fatalf("%s: watching for %s: %v", p.name, what, err)
	}
	if !started {
		p.shot.take(p, "already-"+what)
		p.t.Fatalf("%s already saw %s before %q: the check cannot show a live update", p.name, what, step)
	}
}

// waitWatch waits for the watcher id and returns when its condition first
// held.
func (p *person) waitWatch(id, step, what string) time.Time {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.__wtWatch[`+jsString(id)+`]`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.shot.take(p, "missing-"+what)
		p.t.Fatalf("%s did not see %s after %q within %s: %v", p.name, what, step, apptest.WaitLimit, err)
	}
	return time.UnixMicro(int64(ms * 1000))
}

// now is a Go-side cause: the moment just before it happens.
func now(do func()) func() time.Time {
	return func() time.Time {
		at := time.Now()
		do()
		return at
	}
}

// latencies returns every recorded latency in milliseconds, sorted.
func (u *updates) latencies() []float64 {
	ms := make([]float64, len(u.list))
	for i, x := range u.list {
		ms[i] = x.LatencyMS
	}
	slices.Sort(ms)
	return ms
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// report writes the updates to latencies.json and latencies.txt in dir and
// logs the summary, and the whole table when table is set.
func (u *updates) report(dir string, table bool) {
	u.t.Helper()
	if len(u.list) == 0 {
		return
	}
	var txt strings.Builder
	tw := tabwriter.NewWriter(&txt, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "latency ms\tperson\tstep: saw")
	slowest := u.list[0]
	for _, x := range u.list {
		fmt.Fprintf(tw, "%10.1f\t%s\t%s: %s\n", x.LatencyMS, x.Person, x.Step, x.Saw)
		if x.LatencyMS > slowest.LatencyMS {
			slowest = x
		}
	}
	tw.Flush()
	ms := u.latencies()
	summary := fmt.Sprintf("%d updates: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%s: %s: %s)",
		len(ms), percentile(ms, 50), percentile(ms, 99), slowest.LatencyMS, slowest.Person, slowest.Step, slowest.Saw)
	fmt.Fprintf(&txt, "\n%s\n", summary)
	js, _ := json.MarshalIndent(u.list, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "latencies.json"), append(js, '\n'), 0o644); err != nil {
		u.t.Errorf("writing latencies.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latencies.txt"), []byte(txt.String()), 0o644); err != nil {
		u.t.Errorf("writing latencies.txt: %v", err)
	}
	if table {
		u.t.Logf("how long each update took to show, from its cause (also in %s):\n%s", filepath.Join(dir, "latencies.txt"), txt.String())
	} else {
		u.t.Logf("%s; each in %s", summary, filepath.Join(dir, "latencies.txt"))
	}
}
