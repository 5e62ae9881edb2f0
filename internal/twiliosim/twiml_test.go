package twiliosim_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// notesInOrder reports whether each of want appears in the call's history,
// in that order.
func notesInOrder(c twiliosim.CallState, want ...string) bool {
	notes := webhookNotes(c)
	for _, w := range want {
		i := strings.Index(notes, w)
		if i < 0 {
			return false
		}
		notes = notes[i+len(w):]
	}
	return true
}

func TestSayPlayPauseAndRedirect(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Say>Welcome</Say><Play loop="2">https://example.com/a.mp3</Play><Pause length="2"/>`+
		`<Redirect method="GET">menu/next?step=2</Redirect><Say>unreachable</Say></Response>`)
	h.app.twiml("/menu/next", `<Response><Play loop="0">https://example.com/loop.mp3</Play></Response>`)
	sid := h.placeInbound()
	c := h.waitCall(sid, "looping music", func(c twiliosim.CallState) bool {
		return c.Hearing == "play: https://example.com/loop.mp3 (looping)"
	})
	if c.Status != twiliosim.StatusInProgress {
		t.Fatalf("status = %q", c.Status)
	}
	if !notesInOrder(c, "hears say: Welcome", "hears play: https://example.com/a.mp3", "hears pause", "hears play: https://example.com/loop.mp3 (looping)") {
		t.Fatalf("call history: %s", webhookNotes(c))
	}
	if strings.Contains(webhookNotes(c), "unreachable") {
		t.Fatal("a verb after <Redirect> ran")
	}
	next := h.app.requests("/menu/next")
	if len(next) != 1 || next[0].Method != http.MethodGet || next[0].Query.Get("step") != "2" || next[0].Query.Get("CallSid") != sid {
		t.Fatalf("redirect requests = %+v", next)
	}
}

func TestHangupAndReject(t *testing.T) {
	tests := []struct {
		name, doc, status string
		answered          bool
	}{
		{"Hangup", `<Response><Say>Bye</Say><Hangup/><Say>unreachable</Say></Response>`, twiliosim.StatusCompleted, true},
		{"Reject busy", `<Response><Reject reason="busy"/></Response>`, twiliosim.StatusBusy, false},
		{"Reject", `<Response><Reject/></Response>`, twiliosim.StatusNoAnswer, false},
		{"end of document", `<Response><Say>Bye</Say></Response>`, twiliosim.StatusCompleted, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.app.twiml("/voice", tt.doc)
			sid := h.placeInbound()
			c := h.waitCall(sid, "ended", func(c twiliosim.CallState) bool { return c.EndTime != nil })
			if c.Status != tt.status || (c.StartTime != nil) != tt.answered {
				t.Fatalf("call = %s answered %v, want %s answered %v", c.Status, c.StartTime != nil, tt.status, tt.answered)
			}
			if strings.Contains(webhookNotes(c), "unreachable") {
				t.Fatal("a verb after <Hangup> ran")
			}
		})
	}
}

// dialFlow places an inbound call whose TwiML dials nouns with an action,
// and returns the caller's CallSid.
func (h *harness) dialFlow(dialAttrs, nouns string) string {
	h.t.Helper()
	h.app.twiml("/voice", `<Response><Dial action="/dial-done" `+dialAttrs+`>`+nouns+`</Dial><Say>unreachable</Say></Response>`)
	h.app.twiml("/dial-done", `<Response><Say>after the dial</Say></Response>`)
	sid, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		h.t.Fatal(err)
	}
	return sid
}

// dialOutcome waits for the Dial action request and returns its form.
func (h *harness) dialOutcome() url.Values {
	h.t.Helper()
	got := h.app.waitRequests("/dial-done", func(r []hookRequest) bool { return len(r) == 1 })
	return got[0].Form
}

func TestDialClientAnsweredIsBridgedUntilTheChildHangsUp(t *testing.T) {
	h := newHarness(t)
	parent := h.dialFlow("", `<Client>alice</Client>`)
	child := h.ringingClient("alice")
	if c, _ := h.sim.State().Call(parent); c.Hearing != "ringback" {
		t.Fatalf("caller hears %q while the phone rings", c.Hearing)
	}
	if err := h.sim.Accept(child); err != nil {
		t.Fatal(err)
	}
	h.waitCall(parent, "bridged", func(c twiliosim.CallState) bool { return c.Hearing == "connected to client:alice" })
	if c, _ := h.sim.State().Call(child); c.Status != twiliosim.StatusInProgress || c.ParentCallSID != parent {
		t.Fatalf("child = %+v", c)
	}
	if err := h.sim.Hangup(child); err != nil {
		t.Fatal(err)
	}
	f := h.dialOutcome()
	if f.Get("DialCallStatus") != "completed" || f.Get("DialCallSid") != child || f.Get("DialBridged") != "true" ||
		f.Get("DialCallDuration") == "" || f.Get("CallSid") != parent {
		t.Fatalf("Dial action = %v", f)
	}
	c := h.waitStatus(parent, twiliosim.StatusCompleted)
	if !strings.Contains(webhookNotes(c), "after the dial") || strings.Contains(webhookNotes(c), "unreachable") {
		t.Fatalf("caller after the Dial: %s", webhookNotes(c))
	}
}

func TestDialClientNotAnswered(t *testing.T) {
	tests := []struct {
		name, attrs string
		act         func(h *harness, child string) error
		status      string
	}{
		{"ring-out", ``, func(h *harness, child string) error { return h.sim.RingOut(child) }, "no-answer"},
		{"ring-out over the control API", ``, func(h *harness, child string) error {
			if resp := h.control("/sim/calls/"+child+"/ring-out", nil); resp.StatusCode != http.StatusOK {
				h.t.Fatalf("ring-out = %d", resp.StatusCode)
			}
			return nil
		}, "no-answer"},
		// The only test that waits for real time: the ring timer itself.
		{"Timeout of 1 s passes", `timeout="1"`, func(*harness, string) error { return nil }, "no-answer"},
		{"rejected", ``, func(h *harness, child string) error { return h.sim.Reject(child) }, "busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			parent := h.dialFlow(tt.attrs, `<Client>alice</Client>`)
			child := h.ringingClient("alice")
			if err := tt.act(h, child); err != nil {
				t.Fatal(err)
			}
			f := h.dialOutcome()
			if f.Get("DialCallStatus") != tt.status || f.Get("DialCallSid") != child || f.Get("DialBridged") != "false" {
				t.Fatalf("Dial action = %v", f)
			}
			if c, _ := h.sim.State().Call(child); c.Status != tt.status {
				t.Fatalf("child status %q, want %q", c.Status, tt.status)
			}
			h.waitStatus(parent, twiliosim.StatusCompleted)
		})
	}
}

func TestDialNumberBehaviours(t *testing.T) {
	const number = "+15557770002"
	tests := []struct {
		behavior string
		finish   func(h *harness, child string)
		status   string
	}{
		{"answer", func(h *harness, child string) {
			h.waitStatus(child, twiliosim.StatusInProgress)
			h.must(h.sim.Hangup(child))
		}, "completed"},
		{"busy", func(*harness, string) {}, "busy"},
		{"no-answer", func(h *harness, child string) {
			h.waitStatus(child, twiliosim.StatusRinging)
			h.must(h.sim.RingOut(child))
		}, "no-answer"},
		{"failed", func(*harness, string) {}, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.behavior, func(t *testing.T) {
			h := newHarness(t)
			resp := h.control("/sim/numbers", url.Values{"Number": {number}, "Behavior": {tt.behavior}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /sim/numbers = %d", resp.StatusCode)
			}
			parent := h.dialFlow("", `<Number>`+number+`</Number>`)
			var child string
			h.waitState("the number dialed", func(st twiliosim.State) bool {
				for _, c := range st.Calls {
					if c.ParentCallSID == parent {
						child = c.SID
						return true
					}
				}
				return false
			})
			tt.finish(h, child)
			f := h.dialOutcome()
			if f.Get("DialCallStatus") != tt.status || f.Get("DialCallSid") != child {
				t.Fatalf("Dial action = %v", f)
			}
		})
	}
}

func TestFirstClientToAnswerWins(t *testing.T) {
	h := newHarness(t)
	aliceEvents, stop := h.sim.Subscribe("alice")
	defer stop()
	parent := h.dialFlow("", `<Client>alice</Client><Client>bob</Client>`)
	alice := h.ringingClient("alice")
	bob := h.ringingClient("bob")
	if err := h.sim.Accept(bob); err != nil {
		t.Fatal(err)
	}
	h.waitCall(parent, "bridged to bob", func(c twiliosim.CallState) bool { return c.Hearing == "connected to client:bob" })
	if c, _ := h.sim.State().Call(alice); c.Status != twiliosim.StatusCanceled {
		t.Fatalf("the other client is %q, want canceled", c.Status)
	}
	if err := h.sim.Accept(alice); err == nil {
		t.Fatal("a canceled call could still be accepted")
	}
	for _, want := range []string{"incoming", "canceled"} {
		if ev := nextPhoneEvent(t, aliceEvents); ev.Type != want || ev.CallSID != alice {
			t.Fatalf("alice's phone saw %+v, want %s", ev, want)
		}
	}
}

func TestCallerHangingUpCancelsTheRingingChild(t *testing.T) {
	h := newHarness(t, func(c *twiliosim.Config) {
		c.VoiceStatusCallback = strings.TrimSuffix(c.VoiceURL, "/voice") + "/status"
	})
	parent := h.dialFlow("", `<Client>alice</Client>`)
	child := h.ringingClient("alice")
	if err := h.sim.Hangup(parent); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(child, twiliosim.StatusCanceled)
	h.waitStatus(parent, twiliosim.StatusCompleted)
	// The parent's completed callback has been delivered, and closing the
	// simulator waits for every call's TwiML runner to end: a Dial action
	// requested after the hangup would have arrived by now.
	h.app.waitRequests("/status", untilEvent("CallStatus", "completed"))
	h.sim.Close()
	if n := len(h.app.requests("/dial-done")); n != 0 {
		t.Fatalf("the Dial action was requested %d times after the caller hung up", n)
	}
}

func TestAnswerOnBridgeKeepsTheCallerRinging(t *testing.T) {
	tests := []struct {
		attrs      string
		whileRings string
	}{
		{`answerOnBridge="true"`, twiliosim.StatusRinging},
		{``, twiliosim.StatusInProgress},
	}
	for _, tt := range tests {
		t.Run("attrs "+tt.attrs, func(t *testing.T) {
			h := newHarness(t)
			parent := h.dialFlow(tt.attrs, `<Client>alice</Client>`)
			child := h.ringingClient("alice")
			if c, _ := h.sim.State().Call(parent); c.Status != tt.whileRings {
				t.Fatalf("caller is %q while the phone rings, want %q", c.Status, tt.whileRings)
			}
			h.must(h.sim.Accept(child))
			c := h.waitStatus(parent, twiliosim.StatusInProgress)
			if c.StartTime == nil {
				t.Fatal("caller answered without a start time")
			}
		})
	}
}

// Twilio documents that a <Pause> first in a document delays the pickup:
// the caller goes on ringing for its length, and only then is the call
// answered. An inbound call reports no "answered" progress event (the
// number's status callback gets only "completed"), so the requests made
// before and after the pause tell when it was answered.
func TestLeadingPauseDelaysThePickup(t *testing.T) {
	h := newHarness(t)
	// 1000 s at the harness's speed is one real second: long enough to
	// look at the call while it rings.
	h.app.twiml("/voice", `<Response><Pause length="1000"/><Redirect>/answered</Redirect></Response>`)
	h.app.twiml("/answered", keepTalking)
	sid, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := h.waitCall(sid, "ringing through the leading pause", func(c twiliosim.CallState) bool {
		return strings.HasPrefix(c.Hearing, "ringing")
	})
	pauseSeen := time.Now()
	if c.Status != twiliosim.StatusRinging || c.StartTime != nil {
		t.Fatalf("during a leading pause the call is %s (start %v), want ringing and unanswered", c.Status, c.StartTime)
	}
	fetched, err := h.tw.Api.FetchCall(sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *fetched.Status != twiliosim.StatusRinging || fetched.StartTime != nil {
		t.Fatalf("REST during the pause: status %s, start_time %v", *fetched.Status, fetched.StartTime)
	}

	after := h.app.waitRequests("/answered", func(r []hookRequest) bool { return len(r) == 1 })
	if got := h.app.requests("/voice")[0].Form.Get("CallStatus"); got != twiliosim.StatusRinging {
		t.Errorf("voice webhook CallStatus = %q, want ringing", got)
	}
	if got := after[0].Form.Get("CallStatus"); got != twiliosim.StatusInProgress {
		t.Errorf("first request after the pause has CallStatus %q, want in-progress", got)
	}
	c = h.waitStatus(sid, twiliosim.StatusInProgress)
	if c.StartTime == nil || c.StartTime.Before(pauseSeen) {
		t.Fatalf("answered at %v, before the pause was seen at %v", c.StartTime, pauseSeen)
	}
}

// A <Pause> after something audible is an ordinary silence on an answered
// call.
func TestPauseAfterSayKeepsTheCallAnswered(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Say>Hello</Say><Pause length="1000"/></Response>`)
	sid, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := h.waitCall(sid, "pausing", func(c twiliosim.CallState) bool { return c.Hearing == "pause" })
	if c.Status != twiliosim.StatusInProgress || c.StartTime == nil {
		t.Fatalf("pausing after <Say>: %s, start %v", c.Status, c.StartTime)
	}
}

func TestDialActionWithMethodGET(t *testing.T) {
	h := newHarness(t)
	parent := h.dialFlow(`method="GET"`, `<Client>alice</Client>`)
	child := h.ringingClient("alice")
	h.must(h.sim.Reject(child))
	got := h.app.waitRequests("/dial-done", func(r []hookRequest) bool { return len(r) == 1 })
	if got[0].Method != http.MethodGet || got[0].Query.Get("DialCallStatus") != twiliosim.StatusBusy ||
		got[0].Query.Get("CallSid") != parent || got[0].Query.Get("DialCallSid") != child {
		t.Fatalf("Dial action = %s %v, want a GET with the outcome in the query", got[0].Method, got[0].Query)
	}
}
