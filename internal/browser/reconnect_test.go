package browser_test

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// streamGate stands, in one page's network stack, where a proxy or a load
// balancer would: the page's next request for its event stream is held
// until the test releases it, then answered 503, as while the app
// restarts behind it; the ones after it are let through and recorded. A
// browser gives up on an EventSource answered with anything but 200, and
// htmx then opens a new one from the page's sse-connect URL: the path
// this gate makes the page take.
type streamGate struct {
	held    chan struct{} // closed when the first request is held
	release chan struct{} // closed by the test to answer it

	mu      sync.Mutex
	refused int
	passed  []*url.URL
	errs    []error
}

func (p *person) gateStream(env *apptest.Env) *streamGate {
	p.t.Helper()
	g := &streamGate{held: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(p.ctx)
	p.t.Cleanup(cancel)
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(p.ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: env.URL + "/events*", RequestStage: fetch.RequestStageRequest}},
	}); err != nil {
		p.t.Fatalf("%s: gating the event stream: %v", p.name, err)
	}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			u, _ := url.Parse(ev.Request.URL)
			g.mu.Lock()
			refuse := g.refused == 0
			if refuse {
				g.refused++
			} else {
				g.passed = append(g.passed, u)
			}
			g.mu.Unlock()
			if refuse {
				close(g.held)
				select {
				case <-g.release:
				case <-ctx.Done():
					return
				}
				_, err = chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
					RequestID: ev.RequestID, ResponseCode: 503,
					ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/plain"}},
					Body:            []byte("restarting"),
				})
			} else {
				_, err = chromedp.Call(p.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
			if err != nil && ctx.Err() == nil {
				g.mu.Lock()
				g.errs = append(g.errs, err)
				g.mu.Unlock()
			}
		}
	}()
	return g
}

// waitHeld waits for the page's first request for its stream since the
// gate was put up.
func (g *streamGate) waitHeld(p *person) {
	p.t.Helper()
	select {
	case <-g.held:
	case <-time.After(apptest.WaitLimit):
		p.t.Fatalf("%s: the page did not try to reconnect its stream within %s", p.name, apptest.WaitLimit)
	}
}

// reopened returns the stream requests let through after the refused one.
func (g *streamGate) reopened() (refused int, passed []*url.URL, errs []error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused, append([]*url.URL(nil), g.passed...), append([]error(nil), g.errs...)
}

// activityIDs are the event ids of the page's activity lines, newest first.
func (p *person) activityIDs() []int64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid="activity-item"]')].map((li) => li.dataset.eventId)`))
	if err != nil {
		p.t.Fatalf("%s: reading the activity: %v", p.name, err)
	}
	out := make([]int64, len(ids))
	for i, s := range ids {
		if out[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			p.t.Fatalf("%s: an activity line with event id %q", p.name, s)
		}
	}
	return out
}

// availableLines counts the activity lines saying Alice is available.
const availableLines = `[...document.querySelectorAll('[data-testid="activity-item"]')].filter((li) => li.textContent.includes("Alice Archer is now available")).length`

// count evaluates a count in the page.
func (p *person) count(js string) int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil {
		p.t.Fatalf("%s: counting: %v", p.name, err)
	}
	return n
}

// activityCount is the page's activity list holding n lines.
func activityCount(n int) string {
	return `document.querySelectorAll('[data-testid="activity-item"]').length === ` + strconv.Itoa(n)
}

// TestReopenedStreamRepeatsNoActivity: the app restarts on the same
// database while a manager's board and an agent's console are open. Each
// page's first attempt to reconnect is held while a customer calls, then
// refused (503), so htmx opens a new stream from the page's sse-connect
// URL. On the board, that URL must resume after the newest event the page
// has, not the one it was rendered with. The console's URL is set back to
// its first event, as if it had not followed, so its stream replays lines
// it shows, which it must not add again. No activity line shows twice,
// the call made while the board was cut off shows, and new events still
// arrive.
func TestReopenedStreamRepeatsNoActivity(t *testing.T) {
	srv := startApp(t)
	env := srv.Env
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	ctx := browser(t)
	shots := newScreenshots(t)
	u := newUpdates(t)
	defer u.report(shots.dir, true)
	alice := newPerson(t, ctx, "alice", shots)
	maria := newPerson(t, ctx, "maria", shots)
	const number = "+15551230888"

	// Both pages are rendered after some events, so their stream URLs
	// carry ?last=, and then show more events live.
	alice.signInAgent(env, "alice")
	alice.click("Away", `[data-testid="presence-away"]`)
	alice.see("herself away", myPresence("away"))
	maria.signInManager(env, "maria")
	for _, p := range []string{"available", "away"} {
		n := len(maria.activityIDs())
		u.after("Alice sets herself "+p, alice.pressing(p, `[data-testid="presence-`+p+`"]`),
			alice.sees("herself "+p, myPresence(p)),
			maria.sees("a line in the activity", and(activityCount(n+1), activityLine("Alice Archer is now "+p))),
		)
	}
	boardBefore, consoleBefore := maria.activityIDs(), alice.activityIDs()
	if len(boardBefore) < 2 || len(consoleBefore) < 2 {
		t.Fatalf("the board shows %d lines of activity and the console %d, want at least 2 each", len(boardBefore), len(consoleBefore))
	}
	shots.all("before the restart", alice, maria)

	boardGate, consoleGate := maria.gateStream(env), alice.gateStream(env)
	for _, p := range []*person{maria, alice} {
		p.do("count the streams opened from now on", chromedp.Evaluate[chromedp.Void](
			`window.__wtOpened = 0; document.addEventListener("htmx:sseOpen", () => { window.__wtOpened++; })`))
	}
	alice.do("set the stream back to the first event", chromedp.Evaluate[chromedp.Void](
		`document.querySelector("[sse-connect]").setAttribute("sse-connect", "/events?last=1")`))
	srv.restart()
	env = srv.Env
	boardGate.waitHeld(maria)
	consoleGate.waitHeld(alice)
	// Nobody is available: the caller waits, which the board must show
	// in its activity when it is back.
	sid := env.PlaceCall(number)
	env.WaitDB("the call waiting", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, sid)
		return err == nil && c.State == models.CallQueued, err
	})
	close(boardGate.release)
	close(consoleGate.release)
	for _, w := range []struct {
		p *person
		g *streamGate
	}{{maria, boardGate}, {alice, consoleGate}} {
		w.p.see("the stream refused, then open again", and(live, `window.__wtOpened > 0`))
		refused, passed, errs := w.g.reopened()
		if len(errs) != 0 {
			t.Fatalf("%s: gating the stream: %v", w.p.name, errs)
		}
		if refused != 1 || len(passed) == 0 {
			t.Fatalf("%s: %d stream requests refused and %d let through, want 1 and some", w.p.name, refused, len(passed))
		}
	}
	maria.see("the call made while the board was cut off, in the activity", activityLine(number+" called and is waiting"))
	shots.all("after the restart", alice, maria)

	n := maria.count(availableLines)
	u.after("Alice sets herself available after the restart", alice.pressing("available", `[data-testid="presence-available"]`),
		maria.sees("a new line in the activity", availableLines+` === `+strconv.Itoa(n+1)),
		alice.sees("the waiting call offered to her", offerFor(number)),
	)
	shots.all("a new event after the restart", alice, maria)

	for _, w := range []struct {
		p       *person
		g       *streamGate
		before  []int64
		resumes bool // the stream URL followed the events
	}{{maria, boardGate, boardBefore, true}, {alice, consoleGate, consoleBefore, false}} {
		after := w.p.activityIDs()
		seen := map[int64]int{}
		for _, id := range after {
			seen[id]++
		}
		for id, times := range seen {
			if times > 1 {
				t.Errorf("%s: the activity line of event %d shows %d times (lines %v)", w.p.name, id, times, after)
			}
		}
		for _, id := range w.before {
			if seen[id] == 0 {
				t.Errorf("%s: the activity line of event %d went away (lines %v)", w.p.name, id, after)
			}
		}
		// The reopened stream asked to resume after the newest event the
		// page had, not after the one it was rendered with (or after the
		// one it was set back to).
		_, passed, _ := w.g.reopened()
		last, _ := strconv.ParseInt(passed[0].Query().Get("last"), 10, 64)
		if !w.resumes && last != 1 {
			t.Errorf("%s: the reopened stream %s, want it set back to event 1", w.p.name, passed[0])
		}
		if w.resumes && last < w.before[0] {
			t.Errorf("%s: the reopened stream %s resumes after event %d, before the newest line the page had (%d)", w.p.name, passed[0], last, w.before[0])
		}
	}
}
