package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/handlers"
)

// webhookPhase is one kind of webhook sent at full speed for a while.
type webhookPhase struct {
	name string
	// send is where requests go; signed is the URL their signature
	// covers (the app's public URL, or the baseline's own address).
	send, signed string
	// form builds the i-th request's parameters.
	form func(i int64) url.Values
	// ok is the status a correct answer has.
	ok int
}

// webhookResult is what one phase measured.
type webhookResult struct {
	name    string
	t       *tally
	elapsed time.Duration
	// cpu is this process's CPU time over the phase: with -self, the app's
	// and the client's together. Per request it depends far less on what
	// else the machine runs than the rate does.
	cpu time.Duration
}

func (r webhookResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(len(r.t.latencies)) / r.elapsed.Seconds()
}

func runWebhooks(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("webhooks", flag.ContinueOnError)
	var tf targetFlags
	tf.register(fs)
	tf.scenarioNeedsToken = true
	conc := fs.Int("c", 64, "requests in flight")
	duration := fs.Duration("duration", 10*time.Second, "how long each phase runs")
	requests := fs.Int64("requests", 0, "end each phase after this many requests instead of after -duration")
	rounds := fs.Int("rounds", 1, "run the baseline and /conference/wait this many times each, alternating, and merge the rounds (evens out a busy machine)")
	routes := fs.String("routes", "wait,connect", "phases after the baseline, in order: wait, connect, status")
	baseline := fs.Bool("baseline", true, "measure a bare Echo handler answering the same bytes as /conference/wait, with the same client")
	waitCallers := fs.Int("wait-callers", 100, "queued callers created before each /conference/wait phase; its requests use their CallSids, as Twilio's do")
	warmup := fs.Duration("warmup", time.Second, "unmeasured load before each phase, to open connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := tf.open(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	if _, err := raiseOpenFileLimit(uint64(4**conc + 1024)); err != nil {
		fmt.Fprintln(os.Stderr, "wtload:", err)
	}
	tr := newTransport(*conc)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if err := t.ready(ctx, client); err != nil {
		return err
	}

	if err := t.startProfile(); err != nil {
		return err
	}
	w := &webhookRun{t: t, client: client, conc: *conc, duration: *duration, requests: *requests, warmup: *warmup, waitCallers: *waitCallers}
	var results []webhookResult
	phases := strings.Split(*routes, ",")
	var bare *bareServer
	for i := 0; i < *rounds; i++ {
		for _, p := range phases {
			if strings.TrimSpace(p) != "wait" {
				continue
			}
			waitPhase, body, contentType, err := w.waitPhase(ctx)
			if err != nil {
				return err
			}
			if *baseline {
				if bare == nil {
					if bare, err = startBare(body, contentType); err != nil {
						return err
					}
					defer bare.Close()
				}
				results = append(results, w.run(ctx, bare.phase(waitPhase)))
			}
			results = append(results, w.run(ctx, waitPhase))
		}
	}
	for _, p := range phases {
		switch strings.TrimSpace(p) {
		case "wait":
		case "connect":
			results = append(results, w.run(ctx, w.connectPhase()))
		case "status":
			results = append(results, w.run(ctx, w.statusPhase()))
		default:
			return fmt.Errorf("unknown phase %q: use wait, connect, status", p)
		}
	}
	t.stopProfile()
	if err := ctx.Err(); err != nil {
		return err
	}
	merged := mergeResults(results)
	fmt.Printf("\nwebhooks: %d in flight, %s per phase × %d round(s), against %s (%s)\n\n", *conc, *duration, *rounds, t.URL, describeTarget(t))
	rows := [][]string{{"phase", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "CPU µs/req", "answers"}}
	for _, r := range merged {
		s := summarize(r.t.latencies)
		perReq := "-"
		if s.N > 0 {
			perReq = fmt.Sprintf("%.0f", float64(r.cpu.Microseconds())/float64(s.N))
		}
		rows = append(rows, []string{r.name, strconv.Itoa(s.N), fmt.Sprintf("%.0f", r.rate()), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), perReq, r.t.outcomeList()})
	}
	table(os.Stdout, rows)
	failed := 0
	for _, r := range merged {
		failed += r.t.failures("200", "204")
	}
	var bareRate, waitRate float64
	for _, r := range merged {
		switch r.name {
		case bareName:
			bareRate = r.rate()
		case "POST " + handlers.PathVoiceWait:
			waitRate = r.rate()
		}
	}
	if t.Self != nil {
		fmt.Println("(CPU µs/req is this process's CPU time per request: the app and the client together)")
	} else {
		fmt.Println("(CPU µs/req is the load tool's own CPU time per request, with the bare server in it)")
	}
	if bareRate > 0 && waitRate > 0 {
		ratio := waitRate / bareRate
		verdict := "met"
		if ratio < 0.5 {
			verdict = fmt.Sprintf("missed: %.1f× short of half the bare rate", 0.5/ratio)
		}
		fmt.Printf("\n/conference/wait runs at %.1f %% of the bare handler's rate (target: at least 50 %%): %s\n", 100*ratio, verdict)
	}
	if err := writeHeapProfile(tf.memProfile); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d requests did not get the expected answer", failed)
	}
	return nil
}

// describeTarget says where the app runs, for the report.
func describeTarget(t *target) string {
	if t.Self != nil {
		return "in this process, simulator mode, " + t.Self.DB.Dialect().Name().String()
	}
	return "a separate process"
}

// mergeResults folds the rounds of each phase into one row, in first-seen
// order.
func mergeResults(rs []webhookResult) []webhookResult {
	var out []webhookResult
	index := map[string]int{}
	for _, r := range rs {
		i, seen := index[r.name]
		if !seen {
			index[r.name] = len(out)
			out = append(out, webhookResult{name: r.name, t: newTally()})
			i = len(out) - 1
		}
		out[i].t.merge(r.t)
		out[i].elapsed += r.elapsed
		out[i].cpu += r.cpu
	}
	return out
}

type webhookRun struct {
	t           *target
	client      *http.Client
	conc        int
	duration    time.Duration
	requests    int64
	warmup      time.Duration
	waitCallers int
	// callers numbers the callers queued for the wait phases.
	callers atomic.Int64
}

// waitPhase creates the queued callers whose wait music is requested, and
// fetches one answer, which the bare baseline then serves byte for byte.
func (w *webhookRun) waitPhase(ctx context.Context) (webhookPhase, []byte, string, error) {
	sids := make([]string, w.waitCallers)
	froms := make([]string, w.waitCallers)
	incoming := w.connectPhase()
	for i := range sids {
		form := incoming.form(w.callers.Add(1))
		sids[i], froms[i] = form.Get("CallSid"), form.Get("From")
		status, _, _, err := w.once(ctx, incoming, form)
		if err != nil || status != http.StatusOK {
			return webhookPhase{}, nil, "", fmt.Errorf("queueing a caller for the wait phase: %d %v", status, err)
		}
	}
	p := webhookPhase{
		name: "POST " + handlers.PathVoiceWait,
		send: w.t.URL + handlers.PathVoiceWait, signed: w.t.PublicURL + handlers.PathVoiceWait,
		form: func(i int64) url.Values {
			n := int(i % int64(len(sids)))
			return voiceForm(sids[n], "in-progress", froms[n])
		},
		ok: http.StatusOK,
	}
	status, body, contentType, err := w.once(ctx, p, p.form(0))
	if err != nil || status != http.StatusOK {
		return p, nil, "", fmt.Errorf("POST %s: %d %v", handlers.PathVoiceWait, status, err)
	}
	return p, body, contentType, nil
}

// connectPhase is customers calling the number: each request a new CallSid,
// so each is a new call the app stores and queues (and offers, when an
// agent is available).
func (w *webhookRun) connectPhase() webhookPhase {
	return webhookPhase{
		name: "POST " + handlers.PathVoiceIncoming,
		send: w.t.URL + handlers.PathVoiceIncoming, signed: w.t.PublicURL + handlers.PathVoiceIncoming,
		form: func(i int64) url.Values {
			return voiceForm(newCallSID(), "ringing", customerNumber(int(i)))
		},
		ok: http.StatusOK,
	}
}

// statusPhase is call progress callbacks for calls the app never saw (as
// when the number's status callback reports a caller who hung up before
// the voice URL answered): a lookup and an empty transaction each.
func (w *webhookRun) statusPhase() webhookPhase {
	return webhookPhase{
		name: "POST " + handlers.PathVoiceStatus,
		send: w.t.URL + handlers.PathVoiceStatus, signed: w.t.PublicURL + handlers.PathVoiceStatus,
		form: func(i int64) url.Values {
			f := voiceForm(newCallSID(), "completed", customerNumber(int(i)))
			f.Set("CallDuration", "42")
			f.Set("SequenceNumber", "0")
			return f
		},
		ok: http.StatusNoContent,
	}
}

// once sends one request of a phase with the given form.
func (w *webhookRun) once(ctx context.Context, p webhookPhase, form url.Values) (int, []byte, string, error) {
	req := signedRequest(w.t.AuthToken, p.send, p.signed, form).WithContext(ctx)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header.Get("Content-Type"), err
}

// run sends a phase's requests from w.conc workers, first for the warm-up,
// unmeasured, then for the duration (or request count), measured.
func (w *webhookRun) run(ctx context.Context, p webhookPhase) webhookResult {
	fmt.Fprintf(os.Stderr, "wtload: %s …\n", p.name)
	if w.warmup > 0 {
		w.load(ctx, p, w.warmup, 0)
	}
	start, cpu0 := time.Now(), processCPU()
	t := w.load(ctx, p, w.duration, w.requests)
	return webhookResult{name: p.name, t: t, elapsed: time.Since(start), cpu: processCPU() - cpu0}
}

func (w *webhookRun) load(ctx context.Context, p webhookPhase, d time.Duration, limit int64) *tally {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if limit <= 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, d)
		defer stop()
	}
	var sent atomic.Int64
	tallies := make([]*tally, w.conc)
	var wg sync.WaitGroup
	for i := range tallies {
		tallies[i] = newTally()
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			for ctx.Err() == nil {
				n := sent.Add(1)
				if limit > 0 && n > limit {
					return
				}
				// The form and its signature are built for every
				// request, for the baseline too: the client's work is
				// the same whatever it loads.
				req := signedRequest(w.t.AuthToken, p.send, p.signed, p.form(n))
				t0 := time.Now()
				resp, err := w.client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() != nil {
						return // the phase ended mid-request: not a failure
					}
					t.add(time.Since(t0), "transport error")
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				t.add(time.Since(t0), strconv.Itoa(resp.StatusCode))
			}
		}(tallies[i])
	}
	wg.Wait()
	all := newTally()
	for _, t := range tallies {
		all.merge(t)
	}
	return all
}

const bareName = "bare Echo handler (same bytes)"

// bareServer is the baseline: an Echo server with one route that answers
// the bytes /conference/wait answered, with nothing else (no middleware,
// no signature check, no database), on its own loopback port in this
// process. Against it the client measures what it alone can do.
type bareServer struct {
	url string
	srv *http.Server
}

func startBare(body []byte, contentType string) (*bareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST(handlers.PathVoiceWait, func(c echo.Context) error {
		return c.Blob(http.StatusOK, contentType, body)
	})
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "wtload: bare server:", err)
		}
	}()
	return &bareServer{url: "http://" + ln.Addr().String(), srv: srv}, nil
}

// phase is the wait phase aimed at the bare server.
func (b *bareServer) phase(wait webhookPhase) webhookPhase {
	p := wait
	p.name = bareName
	p.send = b.url + handlers.PathVoiceWait
	p.signed = p.send
	return p
}

func (b *bareServer) Close() { _ = b.srv.Close() }
