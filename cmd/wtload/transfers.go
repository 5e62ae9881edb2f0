package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// transferPaths are the console's buttons for each kind of transfer.
var transferPaths = map[string]string{
	"blind":   "blind",    // one step: the agent is off the call at once
	"warm":    "transfer", // ring the colleague in, then Leave call
	"consult": "consult",  // caller on hold, then Complete
}

// handOverPaths finish a two-step transfer once the colleague is in.
var handOverPaths = map[string]string{"warm": "leave", "consult": "complete"}

// transferLimit bounds one transfer, from the request to the colleague
// alone with the caller.
const transferLimit = 30 * time.Second

// transferLoop starts transfers at the rate for the duration, each on a
// random settled call to a random free agent, kinds in turn.
func (r *callsRun) transferLoop(ctx context.Context, perMinute float64, d time.Duration, kinds []string) {
	if perMinute <= 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Minute) / perMinute))
	defer tick.Stop()
	end := time.After(d)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
		c, from, to := r.pickTransfer(ctx)
		if c == nil {
			r.mu.Lock()
			r.outcomes["skipped: no settled call or free colleague"]++
			r.mu.Unlock()
			continue
		}
		r.transfers.Add(1)
		go func(kind string) {
			defer r.transfers.Done()
			r.transfer(ctx, c, from, to, kind)
		}(kinds[n%len(kinds)])
	}
}

// pickTransfer chooses a settled call and a free colleague (free in the
// tool's view and available in the app's, since a colleague's last call
// may be a status callback away from freeing them) and reserves both.
func (r *callsRun) pickTransfer(ctx context.Context) (*customer, *simAgent, *simAgent) {
	r.mu.Lock()
	var calls []*customer
	for _, c := range r.customers {
		if c.settled && !c.transferring && !c.hungUp && c.callID != 0 {
			calls = append(calls, c)
		}
	}
	var free []*simAgent
	for _, a := range r.agents {
		if a.call == nil && !a.reserved && a.s.csrf != "" {
			free = append(free, a)
		}
	}
	c := pick(calls)
	r.mu.Unlock()
	if c == nil {
		return nil, nil, nil
	}
	for range 5 {
		to := pick(free)
		if to == nil {
			return nil, nil, nil
		}
		a, err := models.AgentByID(ctx, r.t.DB, to.s.AgentID)
		if err != nil || a.Presence != models.PresenceAvailable {
			continue
		}
		r.mu.Lock()
		if c.settled && !c.transferring && to.call == nil && !to.reserved {
			c.transferring, c.settled, c.pending, to.reserved = true, false, to, true
			from := c.owner
			r.mu.Unlock()
			return c, from, to
		}
		r.mu.Unlock()
	}
	return nil, nil, nil
}

// transfer hands c from one agent to another the way kind says, as the
// agents would from their consoles, and waits until the app shows the
// colleague alone with the caller.
func (r *callsRun) transfer(ctx context.Context, c *customer, from, to *simAgent, kind string) {
	start := time.Now()
	release := func(outcome string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.outcomes[outcome]++
		to.reserved = false
		c.transferring = false
		if c.pending == to {
			c.pending = nil
		}
	}
	path := fmt.Sprintf("/calls/%d/%s", c.callID, transferPaths[kind])
	r.mu.Lock()
	// A blind transfer takes the agent off the call within the request:
	// their phone may hang up before the answer arrives.
	from.leaving = kind == "blind"
	r.mu.Unlock()
	status, body, err := from.s.post(ctx, r.ctl, r.t.URL, path, url.Values{"to": {to.s.Identity}})
	if err != nil || status != http.StatusOK {
		r.mu.Lock()
		from.leaving = false
		r.mu.Unlock()
		if status == http.StatusConflict && strings.Contains(body, callflow.ErrAgentUnavailable.Error()) {
			// The app saw the colleague busy a moment longer than the
			// tool did; nothing changed.
			release("refused: colleague not available yet")
			r.mu.Lock()
			c.settled = true
			r.mu.Unlock()
			return
		}
		release("failed")
		r.fail("transfer refused", "%s %s → %s: %d %s %v%s", kind, from.s.Identity, to.s.Identity, status, firstLine(body), err, r.diagnose(ctx, c, status))
		return
	}
	r.mu.Lock()
	to.reserved = false
	r.mu.Unlock()
	if hand := handOverPaths[kind]; hand != "" {
		// The colleague's phone answers by itself; the agents talk for a
		// moment, then the agent hands over. Leave and Complete are
		// refused (409) until the app has the colleague joined, and are
		// retried.
		deadline := time.Now().Add(transferLimit)
		for !r.answered(to, c) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				release("failed")
				r.fail("colleague never rang", "%s %s → %s: the colleague's phone did not ring within %s", kind, from.s.Identity, to.s.Identity, transferLimit)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(r.talk)
		for {
			r.mu.Lock()
			from.leaving = true
			r.mu.Unlock()
			status, body, err = from.s.post(ctx, r.ctl, r.t.URL, fmt.Sprintf("/calls/%d/%s", c.callID, hand), nil)
			if err == nil && status == http.StatusOK {
				break
			}
			r.mu.Lock()
			from.leaving = false
			r.mu.Unlock()
			if status != http.StatusConflict || time.Now().After(deadline) || ctx.Err() != nil {
				release("failed")
				r.fail("hand-over refused", "%s %s → %s, %s: %d %s %v%s", kind, from.s.Identity, to.s.Identity, hand, status, firstLine(body), err, r.diagnose(ctx, c, status))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ok := r.waitCall(ctx, c, transferLimit, func(call *models.Call) bool {
		return call.AgentID == to.s.AgentID && call.State == models.CallWithAgent && !call.CustomerOnHold
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	c.transferring = false
	c.pending = nil
	if !ok {
		r.outcomes["failed"]++
		r.failLocked("transfer did not complete", "%s %s → %s on %s's call: the app did not show %s alone with the caller within %s",
			kind, from.s.Identity, to.s.Identity, c.from, to.s.Identity, transferLimit)
		return
	}
	c.owner, c.settled = to, true
	c.transfers++
	r.outcomes["completed"]++
	took := time.Since(start)
	if handOverPaths[kind] != "" {
		took -= r.talk // the agents' conversation is not the app's time
	}
	r.transferLt[kind] = append(r.transferLt[kind], took)
}

// answered reports whether the agent's phone has answered c.
func (r *callsRun) answered(a *simAgent, c *customer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return a.call == c && a.legSID != ""
}

// waitCall polls the app's database until its row for c satisfies cond.
func (r *callsRun) waitCall(ctx context.Context, c *customer, limit time.Duration, cond func(*models.Call) bool) bool {
	deadline := time.Now().Add(limit)
	for {
		call, err := models.CallByID(ctx, r.t.DB, c.callID)
		if err == nil && cond(call) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// diagnose describes, after the app failed (5xx) on a call, how the app's
// legs and the simulator's conference stood a moment later: enough to tell
// a stale leg from a missing participant.
func (r *callsRun) diagnose(ctx context.Context, c *customer, status int) string {
	if status < 500 {
		return ""
	}
	var b strings.Builder
	call, err := models.CallByID(ctx, r.t.DB, c.callID)
	if err != nil {
		return ""
	}
	legs, _ := models.LegsForCall(ctx, r.t.DB, c.callID)
	fmt.Fprintf(&b, "\n        app: call %d %s agent %d conference %s; legs:", call.ID, call.State, call.AgentID, call.ConferenceSID)
	for _, l := range legs {
		fmt.Fprintf(&b, " [agent %d %s %s %s end=%v hold=%v]", l.AgentID, l.CallSID, l.Role, l.State, l.EndConferenceOnExit, l.Hold)
	}
	if st, err := r.simState(ctx); err == nil {
		if conf, ok := st.Conference(call.ConferenceName); ok {
			fmt.Fprintf(&b, "\n        simulator: conference %s %s:", conf.SID, conf.Status)
			for _, p := range conf.Participants {
				leg, _ := st.Call(p.CallSID)
				fmt.Fprintf(&b, " [%s %s %s end=%v hold=%v]", p.CallSID, leg.To, p.Status, p.EndConferenceOnExit, p.Hold)
			}
		}
	}
	return b.String()
}
