package twiliosim_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// checkTimestamp fails unless v is an RFC 2822 date, as Twilio sends them.
func checkTimestamp(t *testing.T, what, v string) {
	t.Helper()
	if _, err := time.Parse(time.RFC1123Z, v); err != nil {
		t.Errorf("%s: Timestamp %q is not RFC 2822: %v", what, v, err)
	}
}

// untilEvent waits for a callback whose parameter key has value want.
func untilEvent(key, want string) func([]hookRequest) bool {
	return func(reqs []hookRequest) bool {
		for _, r := range reqs {
			if r.Form.Get(key) == want {
				return true
			}
		}
		return false
	}
}

// matching returns the first request whose parameter key has value want;
// use it after waiting with untilEvent(key, want).
func matching(reqs []hookRequest, key, want string) url.Values {
	for _, r := range reqs {
		if r.Form.Get(key) == want {
			return r.Form
		}
	}
	return nil
}

func TestCallProgressCallbacksArriveInOrder(t *testing.T) {
	h := newHarness(t)
	created, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).
		SetTo("+15557770001").SetFrom(testNumber).SetTwiml(`<Response><Say>Hello there</Say></Response>`).
		SetStatusCallback(h.app.url("/status")).
		SetStatusCallbackEvent([]string{"initiated", "ringing", "answered", "completed"}))
	if err != nil {
		t.Fatal(err)
	}
	sid := *created.Sid
	got := h.app.waitRequests("/status", untilEvent("CallStatus", "completed"))

	want := []string{"initiated", "ringing", "in-progress", "completed"}
	if len(got) != len(want) {
		t.Fatalf("got %d callbacks, want %d: %+v", len(got), len(want), got)
	}
	for i, r := range got {
		f := r.Form
		what := "callback " + strconv.Itoa(i)
		if f.Get("CallStatus") != want[i] || f.Get("SequenceNumber") != strconv.Itoa(i) {
			t.Errorf("%s: CallStatus %q SequenceNumber %q, want %q %d", what, f.Get("CallStatus"), f.Get("SequenceNumber"), want[i], i)
		}
		if f.Get("CallSid") != sid || f.Get("AccountSid") != testAccount || f.Get("Direction") != "outbound-api" ||
			f.Get("ApiVersion") != "2010-04-01" || f.Get("CallbackSource") != "call-progress-events" || r.Method != "POST" {
			t.Errorf("%s: params %v", what, f)
		}
		checkTimestamp(t, what, f.Get("Timestamp"))
		_, hasDuration := f["CallDuration"]
		if hasDuration != (want[i] == "completed") {
			t.Errorf("%s (%s): CallDuration present = %v", what, want[i], hasDuration)
		}
	}
	if d, err := strconv.Atoi(got[3].Form.Get("CallDuration")); err != nil || d < 0 {
		t.Errorf("CallDuration = %q", got[3].Form.Get("CallDuration"))
	}
}

func TestOnlyCompletedIsSentWithoutStatusCallbackEvent(t *testing.T) {
	tests := []struct {
		name  string
		place func(h *harness) string
	}{
		{"REST call", func(h *harness) string {
			c, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).
				SetTwiml(`<Response><Say>Hi</Say></Response>`).SetStatusCallback(h.app.url("/status")))
			if err != nil {
				h.t.Fatal(err)
			}
			return *c.Sid
		}},
		{"inbound call to the number's status callback", func(h *harness) string {
			h.app.twiml("/voice", `<Response><Say>Hi</Say></Response>`)
			sid, err := h.sim.PlaceInbound("+15551230001", "", "")
			if err != nil {
				h.t.Fatal(err)
			}
			return sid
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *twiliosim.Config) {
				c.VoiceStatusCallback = c.VoiceURL[:len(c.VoiceURL)-len("/voice")] + "/status"
			})
			sid := tt.place(h)
			// Callbacks of one call are delivered in order, so once
			// "completed" is in, any earlier event would be too.
			got := h.app.waitRequests("/status", untilEvent("CallStatus", "completed"))
			if len(got) != 1 {
				t.Fatalf("got %d callbacks, want only completed: %+v", len(got), got)
			}
			f := got[0].Form
			if f.Get("CallSid") != sid || f.Get("SequenceNumber") != "0" || f.Get("CallDuration") == "" {
				t.Fatalf("completed callback = %v", f)
			}
			checkTimestamp(t, "completed", f.Get("Timestamp"))
		})
	}
}

// confEvent is what a conference status callback must say; empty fields
// are not checked.
type confEvent struct {
	event, callSID string
	params         map[string]string
}

func TestConferenceEventsFollowASeedsFlowInOrder(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl=""
		statusCallback="/conf-events" statusCallbackEvent="start end join leave mute hold modify">room</Conference></Dial></Response>`)
	customer, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	h.waitCall(customer, "customer waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	// A later participant's callback settings are ignored: the first one's win.
	alice := h.agentJoins("alice", `startConferenceOnEnter="true" statusCallback="`+h.app.url("/ignored")+`" statusCallbackEvent="join leave"`)
	conf := h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	cf := conf.SID

	update := func(sid string, p *api.UpdateParticipantParams) {
		t.Helper()
		if _, err := h.tw.Api.UpdateParticipant(cf, sid, p); err != nil {
			t.Fatal(err)
		}
	}
	update(customer, (&api.UpdateParticipantParams{}).SetHold(true))
	p, err := h.tw.Api.CreateParticipant(cf, (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob").
		SetLabel("bob").SetConferenceStatusCallback(h.app.url("/ignored")).SetConferenceStatusCallbackEvent([]string{"join"}))
	if err != nil {
		t.Fatal(err)
	}
	bob := *p.CallSid
	h.ringingClient("bob")
	if err := h.sim.Accept(bob); err != nil {
		t.Fatal(err)
	}
	h.waitConference("room", "bob joined", func(c twiliosim.ConferenceState) bool {
		p, ok := c.Participant(bob)
		return ok && p.Status == "connected"
	})
	update(bob, (&api.UpdateParticipantParams{}).SetMuted(true))
	update(customer, (&api.UpdateParticipantParams{}).SetHold(false))
	update(bob, (&api.UpdateParticipantParams{}).SetEndConferenceOnExit(true))
	if err := h.sim.Hangup(alice); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.Hangup(customer); err != nil {
		t.Fatal(err)
	}

	want := []confEvent{
		{"participant-join", customer, map[string]string{"Hold": "false", "StartConferenceOnEnter": "false", "EndConferenceOnExit": "true"}},
		{"participant-join", alice, map[string]string{"StartConferenceOnEnter": "true", "EndConferenceOnExit": "false"}},
		{"conference-start", "", nil},
		{"participant-hold", customer, map[string]string{"Hold": "true"}},
		{"participant-join", bob, map[string]string{"ParticipantLabel": "bob", "Muted": "false"}},
		{"participant-mute", bob, map[string]string{"Muted": "true"}},
		{"participant-unhold", customer, map[string]string{"Hold": "false"}},
		{"participant-modify", bob, map[string]string{"EndConferenceOnExit": "true", "Muted": "true"}},
		{"participant-leave", alice, map[string]string{"ReasonParticipantLeft": "participant_hung_up", "ParticipantCallStatus": "completed"}},
		{"participant-leave", customer, map[string]string{"ReasonParticipantLeft": "participant_hung_up", "ParticipantCallStatus": "completed"}},
		{"participant-leave", bob, map[string]string{"ReasonParticipantLeft": "moderator_ended_conference", "ParticipantCallStatus": "in-progress"}},
		{"conference-end", "", map[string]string{"ReasonConferenceEnded": "participant-with-end-conference-on-exit-left", "CallSidEndingConference": customer}},
	}
	got := h.app.waitRequests("/conf-events", untilEvent("StatusCallbackEvent", "conference-end"))
	checkConferenceEvents(t, got, want, cf)
	if n := len(h.app.requests("/ignored")); n != 0 {
		t.Fatalf("a later participant's statusCallback got %d requests", n)
	}
}

func checkConferenceEvents(t *testing.T, got []hookRequest, want []confEvent, cf string) {
	t.Helper()
	if len(got) != len(want) {
		var names []string
		for _, r := range got {
			names = append(names, r.Form.Get("StatusCallbackEvent"))
		}
		t.Fatalf("got %d conference events %v, want %d", len(got), names, len(want))
	}
	for i, w := range want {
		f := got[i].Form
		what := strconv.Itoa(i+1) + " " + w.event
		if f.Get("StatusCallbackEvent") != w.event {
			t.Errorf("event %d is %q, want %q", i+1, f.Get("StatusCallbackEvent"), w.event)
			continue
		}
		if f.Get("SequenceNumber") != strconv.Itoa(i+1) {
			t.Errorf("%s: SequenceNumber %q, want %d", what, f.Get("SequenceNumber"), i+1)
		}
		if f.Get("ConferenceSid") != cf || f.Get("FriendlyName") != "room" || f.Get("AccountSid") != testAccount {
			t.Errorf("%s: params %v", what, f)
		}
		if f.Get("CallSid") != w.callSID {
			t.Errorf("%s: CallSid %q, want %q", what, f.Get("CallSid"), w.callSID)
		}
		checkTimestamp(t, what, f.Get("Timestamp"))
		for k, v := range w.params {
			if f.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", what, k, f.Get(k), v)
			}
		}
	}
}

func TestParticipantsAPIDefaultConferenceEventsAreStartAndEnd(t *testing.T) {
	h := newHarness(t)
	alice, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:alice").
		SetConferenceStatusCallback(h.app.url("/conf-events")))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("alice")
	h.must(h.sim.Accept(*alice.CallSid))
	bob, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob"))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("bob")
	h.must(h.sim.Accept(*bob.CallSid))
	h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	h.must(h.sim.Hangup(*alice.CallSid))
	h.must(h.sim.Hangup(*bob.CallSid))
	got := h.app.waitRequests("/conf-events", untilEvent("StatusCallbackEvent", "conference-end"))
	checkConferenceEvents(t, got, []confEvent{
		{"conference-start", "", nil},
		{"conference-end", "", map[string]string{"ReasonConferenceEnded": "last-participant-left", "CallSidEndingConference": *bob.CallSid}},
	}, *alice.ConferenceSid)
}

// TwiML's statusCallbackEvent has no default: Twilio sends a <Conference>
// statusCallback only the events listed, so a statusCallback alone gets
// nothing (unlike the Participants API, whose default is "start end").
func TestTwiMLConferenceStatusCallbackWithoutEventsGetsNothing(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl=""
		statusCallback="/conf-events">room</Conference></Dial></Response>`)
	customer, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	h.waitCall(customer, "customer waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	h.agentJoins("alice", `startConferenceOnEnter="true"`)
	h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	if err := h.sim.Hangup(customer); err != nil {
		t.Fatal(err)
	}
	h.waitConference("room", "ended", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })

	// Absence needs a barrier: a second conference, with the Participants
	// API's default events, ends after the first. Its conference-end is
	// queued after anything the first conference could have sent, so once
	// it has arrived the first conference's events would have too.
	p, err := h.tw.Api.CreateParticipant("barrier", (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob").
		SetConferenceStatusCallback(h.app.url("/barrier")))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("bob")
	if err := h.sim.Accept(*p.CallSid); err != nil {
		t.Fatal(err)
	}
	h.waitConference("barrier", "bob in", func(c twiliosim.ConferenceState) bool {
		return len(c.Participants) == 1 && c.Participants[0].Status == "connected"
	})
	if err := h.sim.Hangup(*p.CallSid); err != nil {
		t.Fatal(err)
	}
	h.app.waitRequests("/barrier", untilEvent("StatusCallbackEvent", "conference-end"))
	if got := h.app.requests("/conf-events"); len(got) != 0 {
		t.Fatalf("a statusCallback without statusCallbackEvent got %d events, first %v", len(got), got[0].Form)
	}
}

// An API participant whose phone rings out leaves with its call's own
// status (no-answer), not "canceled".
func TestParticipantThatRingsOutLeavesWithNoAnswer(t *testing.T) {
	tests := []struct {
		name   string
		act    func(*twiliosim.Sim, string) error
		status string
	}{
		{"ring out", (*twiliosim.Sim).RingOut, "no-answer"},
		{"rejected", (*twiliosim.Sim).Reject, "busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.customerWaits(`statusCallback="/conf-events" statusCallbackEvent="leave"`)
			h.waitConference("room", "customer waiting", func(c twiliosim.ConferenceState) bool { return len(c.Participants) == 1 })
			p, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:alice"))
			if err != nil {
				t.Fatal(err)
			}
			h.ringingClient("alice")
			if err := tt.act(h.sim, *p.CallSid); err != nil {
				t.Fatal(err)
			}
			f := matching(h.app.waitRequests("/conf-events", untilEvent("CallSid", *p.CallSid)), "CallSid", *p.CallSid)
			if f.Get("StatusCallbackEvent") != "participant-leave" || f.Get("ReasonParticipantLeft") != "participant_add_failed" ||
				f.Get("ParticipantCallStatus") != tt.status {
				t.Fatalf("leave event = %v", f)
			}
		})
	}
}
