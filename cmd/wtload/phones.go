package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// phone is an agent's simulated browser phone: it follows the simulator's
// phone events, as the page's phone adapter does, and answers what the
// tool expects the agent to get, declining (and reporting) anything else.
func (r *callsRun) phone(ctx context.Context, a *simAgent) {
	var once sync.Once
	up := func() { once.Do(r.phonesUp.Done) }
	defer up()
	client := &http.Client{Transport: phoneTransport}
	resp, err := openStream(ctx, client, r.t.SimURL+"/sim/phones/"+a.s.Identity+"/events", "", 0)
	if err != nil {
		if ctx.Err() == nil {
			r.fail("phone could not connect", "%s: %v", a.s.Identity, err)
		}
		return
	}
	defer resp.Body.Close()
	// The simulator has subscribed the phone before it answers: from here
	// no call ringing it is missed.
	r.phonesOK.Add(1)
	up()
	_ = readStream(resp.Body, true, func(m sseMessage) bool {
		var ev twiliosim.PhoneEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return true
		}
		switch ev.Type {
		case "incoming":
			r.incoming(ctx, a, ev)
		case "canceled", "disconnected":
			r.hungUp(a, ev)
		}
		return true
	})
	if ctx.Err() == nil {
		r.fail("phone disconnected", "%s: the simulator ended the phone's event stream", a.s.Identity)
	}
}

// phoneTransport carries every phone's stream: one long-lived connection
// each, spread over loopback source addresses.
var phoneTransport = &http.Transport{DialContext: newDialer().DialContext, DisableCompression: true}

// incoming decides whether the agent answers a ringing call: the first
// offer of a waiting caller, or the transfer the tool asked for.
func (r *callsRun) incoming(ctx context.Context, a *simAgent, ev twiliosim.PhoneEvent) {
	r.mu.Lock()
	c := r.byFrom[ev.From]
	answer := false
	switch {
	case c == nil:
		r.failLocked("offer of an unknown call", "%s rung by %s (%s)", a.s.Identity, ev.From, ev.CallSID)
	case a.call != nil && a.call != c:
		r.failLocked("agent offered a second call", "%s, on %s's call, was offered %s's", a.s.Identity, a.call.from, c.from)
	case c.hungUp:
		// The caller is gone; the offer should stop on its own.
	case c.pending == a:
		answer = true
	case c.owner == nil && a.call == nil:
		// The app chose this agent for a waiting caller.
		c.owner = a
		answer = true
	case c.owner == a:
		// Offered again, e.g. after a failed offer.
		answer = true
	default:
		owner := "nobody"
		if c.owner != nil {
			owner = c.owner.s.Identity
		}
		r.failLocked("call offered to the wrong agent", "%s's call rang %s, expected with %s", c.from, a.s.Identity, owner)
	}
	if answer {
		a.call, a.legSID, a.leaving = c, ev.CallSID, false
	}
	r.mu.Unlock()
	action := "reject"
	if answer {
		action = "accept"
		r.accepts.Add(1)
	}
	if c != nil && c.hungUp && !answer {
		return
	}
	status, err := r.simPost(ctx, "/sim/calls/"+ev.CallSID+"/"+action, nil, nil)
	if (err != nil || status != http.StatusOK) && ctx.Err() == nil && answer {
		r.fail("phone could not answer", "%s answering %s: %d %v", a.s.Identity, ev.CallSID, status, err)
	}
}

// hungUp is the agent's phone call ending. Unless the agent was expected
// to leave (a hand-over, the caller hanging up), the call lost its agent.
func (r *callsRun) hungUp(a *simAgent, ev twiliosim.PhoneEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.legSID != ev.CallSID {
		return
	}
	if c := a.call; c != nil && !a.leaving && !c.hungUp {
		r.failLocked("agent dropped from a call", "%s's phone hung up (%s) on %s's call", a.s.Identity, ev.Type, c.from)
	}
	a.call, a.legSID, a.leaving = nil, "", false
}
