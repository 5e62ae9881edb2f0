//go:build pgrestart

// This test stops and starts the PostgreSQL server that WT_TEST_POSTGRES
// names, which breaks every other test using it at the time; it is built
// only with -tags pgrestart, and CI runs it in a step of its own.

package faults_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// restartEnv confirms that the local PostgreSQL server may be stopped: the
// build tag says the test is wanted, this says the server is the test's to
// take down.
const restartEnv = "WT_TEST_PG_RESTART"

// pgCluster runs pg_ctlcluster on the local cluster that serves
// WT_TEST_POSTGRES (found by its port), so the test stops the server the
// tests use and no other.
func pgCluster(t *testing.T, action string) {
	t.Helper()
	server, err := url.Parse(testdb.PostgresServer(t))
	if err != nil {
		t.Fatal(err)
	}
	port := server.Port()
	if port == "" {
		port = "5432"
	}
	out, err := exec.Command("pg_lsclusters", "--no-header").Output()
	if err != nil {
		t.Fatalf("pg_lsclusters: %v", err)
	}
	var version, cluster string
	for line := range strings.Lines(string(out)) {
		// version, cluster, port, status, owner, data directory, log
		if f := strings.Fields(line); len(f) >= 3 && f[2] == port {
			version, cluster = f[0], f[1]
		}
	}
	if cluster == "" {
		t.Fatalf("no local PostgreSQL cluster listens on port %s:\n%s", port, out)
	}
	args := []string{"--skip-systemctl-redirect", version, cluster, action}
	if action == "stop" {
		args = append(args, "-m", "fast") // connections are cut, as in a crash or a failover
	}
	if out, err := exec.Command("pg_ctlcluster", args...).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctlcluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestPostgresRestartsUnderTraffic stops PostgreSQL under an app that is
// in a call, with a manager's board open, agents' pages and readiness
// probes polling, and starts it again once the app has met the outage.
//
// While the server is down, Twilio brings a new caller, sends that call's
// status callback and retries conference callbacks: every webhook is
// answered 503 (Twilio's cue to retry, or to give the caller its apology),
// never another 5xx, and nothing panics; pages and probes answer 503 too,
// or a redirect, never a dropped connection. The outage is held until the
// app has answered 503, so the test cannot pass without meeting it.
//
// After the server is back, the app is ready again by itself within
// seconds, and the board stream that stayed open across the outage shows
// the first call's end and a new call, live: with PostgreSQL every update
// reaches a board through the instance's LISTEN connection, so this proves
// that connection came back. The new call is answered and ends correctly.
func TestPostgresRestartsUnderTraffic(t *testing.T) {
	if os.Getenv(restartEnv) == "" {
		t.Fatalf("this test stops the PostgreSQL server; set %s=1 to confirm it may (and run it alone)", restartEnv)
	}
	dbURL := testdb.Postgres(t)
	addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"}, [3]string{"maria", "Maria Manager", "manager"})
	tw := newTwilio(t)
	app := newInstance(t, "app", dbURL, tw)
	// Twilio's webhooks pass through a balancer (of one instance) that
	// records every answer.
	lb := newBalancer(t, app)
	app.start()
	db := openDB(t, dbURL)
	tw.sim.SetVoiceURL(lb.URL + handlers.PathVoiceIncoming)
	tw.sim.SetVoiceStatusCallback(lb.URL + handlers.PathVoiceStatus)
	t.Cleanup(func() {
		if t.Failed() {
			logState(t, tw, lb, nil)
		}
	})
	alice := signIn(t, app.URL, "alice")
	maria := signIn(t, app.URL, "maria")
	board := maria.stream(0)

	first, err := tw.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	aliceLeg := tw.ringing(t, "alice")
	if err := tw.sim.Accept(aliceLeg); err != nil {
		t.Fatal(err)
	}
	waitDB(t, "the first call with Alice", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, db, first)
		return err == nil && c.State == models.CallWithAgent, err
	})
	board.until(t, "the board showing Alice on the first call", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && strings.Contains(ev.Data, "Alice Archer") && strings.Contains(ev.Data, "+15551230001")
	})

	// People's pages and readiness probes keep coming throughout.
	traffic := startTraffic(app.URL, alice)

	pgCluster(t, "stop")
	stopped := time.Now()
	down := true
	t.Cleanup(func() {
		// Never leave the shared server down, whatever failed.
		if down {
			pgCluster(t, "start")
		}
	})

	// Twilio brings a caller while the database is down: the voice webhook
	// is refused with 503, so Twilio plays its apology and hangs up, and
	// the call's status callback is refused too.
	outage, err := tw.sim.PlaceInbound("+15551230002", "", "")
	if err != nil {
		t.Fatal(err)
	}
	tw.waitState(t, "Twilio ending the caller it could not connect", func(st twiliosim.State) bool {
		c, _ := st.Call(outage)
		return c.Status == twiliosim.StatusCompleted || c.Status == twiliosim.StatusFailed
	})
	waitFor(t, "the outage caller's voice webhook and status callback answered", func() bool {
		paths := map[string]bool{}
		for _, s := range lb.requests() {
			if s.CallSID == outage {
				paths[s.Path] = true
			}
		}
		return paths[handlers.PathVoiceIncoming] && paths[handlers.PathVoiceStatus]
	})
	// Twilio retrying the conference callbacks it sent when the caller and
	// Alice joined: the app cannot tell a retry from news without the
	// database, so it refuses them too.
	var retries []url.Values
	for _, sid := range []string{first, aliceLeg} {
		form, ok := twilioSent(tw.sim.State(), sid, handlers.PathVoiceConf, "participant-join")
		if !ok {
			t.Fatalf("Twilio sent no participant-join about %s", sid)
		}
		retries = append(retries, form)
		status, err := postSigned(lb.URL+handlers.PathVoiceConf, lb.URL+handlers.PathVoiceConf, form)
		if err != nil || status != http.StatusServiceUnavailable {
			t.Errorf("a conference callback retried while the database is down: %d, %v; want 503", status, err)
		}
	}
	for _, s := range lb.requests() {
		if s.CallSID == outage && s.Status != http.StatusServiceUnavailable {
			t.Errorf("%s about the caller who rang during the outage answered %d, want 503", s.Path, s.Status)
		}
	}
	// The probes have met the outage too.
	waitFor(t, "a readiness probe answered 503", func() bool { return traffic.saw("/readyz", http.StatusServiceUnavailable) })

	pgCluster(t, "start")
	down = false
	restarted := time.Now()
	t.Logf("PostgreSQL was down for %s", restarted.Sub(stopped).Round(time.Millisecond))

	// The app is ready again by itself within seconds.
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(app.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the app was not ready 15 s after PostgreSQL started again")
		}
		poll := time.NewTimer(100 * time.Millisecond) // polling with a deadline
		<-poll.C
	}
	t.Logf("ready again %s after PostgreSQL started", time.Since(restarted).Round(time.Millisecond))
	statuses, failures := traffic.stop()
	for _, f := range failures {
		t.Errorf("a request failed without an answer: %s", f)
	}
	for status := range statuses {
		if status != http.StatusOK && status != http.StatusServiceUnavailable && status != http.StatusSeeOther {
			t.Errorf("a page or probe answered %d (answers: %v)", status, statuses)
		}
	}
	t.Logf("pages and probes answered: %v", statuses)

	// Twilio retries once the database is back: accepted, and applied
	// once (they were already), so the call goes on with Alice alone.
	for _, form := range retries {
		status, err := postSigned(lb.URL+handlers.PathVoiceConf, lb.URL+handlers.PathVoiceConf, form)
		if err != nil || status < 200 || status > 299 {
			t.Errorf("a conference callback retried after the outage: %d, %v; want 2xx", status, err)
		}
	}
	if c, err := models.CallBySID(context.Background(), db, first); err != nil || c.State != models.CallWithAgent {
		t.Fatalf("the first call after the retries: %+v, %v; want it with Alice", c, err)
	}

	// The board opened before the outage is live again: the first caller
	// hangs up and it shows, then a new call comes and is answered.
	if err := tw.sim.Hangup(first); err != nil {
		t.Fatalf("hanging up the first caller: %v", err)
	}
	waitDB(t, "the first call ended by its caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, db, first)
		return err == nil && c.State == models.CallEnded && c.EndedBy == "customer", err
	})
	board.until(t, "the open board showing the first call ended", func(ev sseEvent) bool {
		return ev.Event == "board-ended" && strings.Contains(ev.Data, "+15551230001")
	})
	second, err := tw.sim.PlaceInbound("+15551230003", "", "")
	if err != nil {
		t.Fatal(err)
	}
	board.until(t, "the open board showing the new caller", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && strings.Contains(ev.Data, "+15551230003")
	})
	if err := tw.sim.Accept(tw.ringing(t, "alice")); err != nil {
		t.Fatal(err)
	}
	board.until(t, "the open board showing Alice talking with the new caller", func(ev sseEvent) bool {
		if ev.Event != "board-calls" {
			return false
		}
		row := html(t, ev.Data).Find(`tr[data-testid^="call-row-"][data-state="with_agent"]`).FilterFunction(func(_ int, row *goquery.Selection) bool {
			return strings.Contains(row.Text(), "+15551230003")
		})
		return strings.TrimSpace(row.Find(`[data-testid="call-agents"]`).Text()) == "Alice Archer"
	})
	if err := tw.sim.Hangup(second); err != nil {
		t.Fatalf("hanging up the new caller: %v", err)
	}
	waitDB(t, "the new call ended by its caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, db, second)
		return err == nil && c.State == models.CallEnded && c.EndedBy == "customer", err
	})
	board.until(t, "the open board showing the new call ended", func(ev sseEvent) bool {
		return ev.Event == "board-ended" && strings.Contains(ev.Data, "+15551230003")
	})
	board.showing(t, "the open board showing Alice available", "board-agents", func(data string) bool {
		return presences(html(t, data))["alice"] == string(models.PresenceAvailable)
	})
	board.showing(t, "the open board with no active call", "board-calls", func(data string) bool {
		return !strings.Contains(data, "call-row-")
	})

	// The caller refused during the outage left nothing behind: no call
	// still open, no agent rung for it.
	open, err := db.NewSelect().Model((*models.Call)(nil)).Where("state != ?", models.CallEnded).Count(context.Background())
	if err != nil || open != 0 {
		t.Errorf("%d calls still open at the end (%v)", open, err)
	}
	if got := rings(tw.sim.State()); len(got) != 1 || got["alice"] != 2 {
		t.Errorf("agents were rung %v times; want Alice twice, for the calls before and after the outage", got)
	}
	// Every webhook was answered 2xx or 503, nothing else.
	for _, s := range lb.requests() {
		if !s.Gone && (s.Status < 200 || s.Status > 299) && s.Status != http.StatusServiceUnavailable {
			t.Errorf("%s (call %s) answered %d", s.Path, s.CallSID, s.Status)
		}
	}
	select {
	case <-app.exited:
		t.Fatal("the app exited")
	default:
	}
	if logs := app.logs.String(); strings.Contains(logs, "panic") {
		t.Errorf("the app panicked:\n%s", logs)
	}
}

// twilioSent returns the parameters of a callback Twilio sent about a call
// to path, for the conference event named (any, when event is empty).
func twilioSent(st twiliosim.State, callSID, path, event string) (url.Values, bool) {
	c, ok := st.Call(callSID)
	if !ok {
		return nil, false
	}
	for _, w := range c.Webhooks {
		u, err := url.Parse(w.URL)
		if err != nil || u.Path != path || (event != "" && w.Params["StatusCallbackEvent"] != event) {
			continue
		}
		form := url.Values{}
		for k, v := range w.Params {
			form.Set(k, v)
		}
		return form, true
	}
	return nil, false
}

// traffic is people's pages and readiness probes polled at once, with every
// answer counted.
type traffic struct {
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	statuses map[int]int
	byPath   map[string]map[int]int
	failures []string
}

func startTraffic(base string, person *browser) *traffic {
	tr := &traffic{done: make(chan struct{}), statuses: map[int]int{}, byPath: map[string]map[int]int{}}
	session := &http.Client{Jar: person.http.Jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/readyz", "/agent", "/"} {
		tr.byPath[path] = map[int]int{}
		tr.wg.Go(func() {
			pace := time.NewTicker(20 * time.Millisecond) // a steady trickle, not a flood
			defer pace.Stop()
			for {
				resp, err := session.Get(base + path)
				tr.mu.Lock()
				if err != nil {
					tr.failures = append(tr.failures, path+": "+err.Error())
				} else {
					tr.statuses[resp.StatusCode]++
					tr.byPath[path][resp.StatusCode]++
					resp.Body.Close()
				}
				tr.mu.Unlock()
				select {
				case <-tr.done:
					return
				case <-pace.C:
				}
			}
		})
	}
	return tr
}

// saw reports whether path has answered status.
func (tr *traffic) saw(path string, status int) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.byPath[path][status] > 0
}

// stop ends the traffic and returns the answers and the requests that got
// none.
func (tr *traffic) stop() (map[int]int, []string) {
	close(tr.done)
	tr.wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.statuses, tr.failures
}

// waitFor polls cond with a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		poll := time.NewTimer(10 * time.Millisecond) // polling with a deadline
		<-poll.C
	}
}
