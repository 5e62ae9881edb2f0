package twiliosim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// Each REST parameter below is sent by twilio-go with a valid value, and
// the test checks what it does.

func TestCreateCallStatusCallbackMethodGET(t *testing.T) {
	h := newHarness(t)
	created, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).
		SetTwiml(`<Response><Say>Hello</Say></Response>`).
		SetStatusCallback(h.app.url("/status?tenant=a")).SetStatusCallbackMethod("GET").
		SetStatusCallbackEvent([]string{"initiated", "ringing", "answered", "completed"}))
	if err != nil {
		t.Fatal(err)
	}
	got := h.app.waitRequests("/status", untilEvent("CallStatus", "completed"))
	if len(got) != 4 {
		t.Fatalf("got %d callbacks, want 4", len(got))
	}
	for _, r := range got {
		// For GET the parameters travel in the query, next to the URL's own.
		if r.Method != http.MethodGet || r.Query.Get("CallSid") != *created.Sid || r.Query.Get("tenant") != "a" {
			t.Fatalf("callback %s %v, want a GET carrying the call's parameters", r.Method, r.Query)
		}
	}
}

// The only test here that waits for real time: the ring Timeout itself,
// at its documented minimum-sized value of one second.
func TestCreateCallTimeoutEndsAnUnansweredCallWithNoAnswer(t *testing.T) {
	h := newHarness(t)
	start := time.Now()
	created, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("client:alice").SetFrom(testNumber).
		SetTwiml(keepTalking).SetTimeout(1).SetStatusCallback(h.app.url("/status")))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("alice")
	c := h.waitStatus(*created.Sid, twiliosim.StatusNoAnswer)
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("the call stopped ringing after %v, before its Timeout of 1 s", waited)
	}
	if c.StartTime != nil {
		t.Fatalf("an unanswered call has a start time: %+v", c)
	}
	got := h.app.waitRequests("/status", func(r []hookRequest) bool { return len(r) == 1 })
	if got[0].Form.Get("CallStatus") != twiliosim.StatusNoAnswer {
		t.Fatalf("completed callback = %v", got[0].Form)
	}
}

// apiParticipantAnswers adds a participant to "room" with params, lets its
// phone (client:identity) answer, and returns its CallSid once it is
// connected.
func (h *harness) apiParticipantAnswers(identity string, params *api.CreateParticipantParams) (string, *api.ApiV2010Participant) {
	h.t.Helper()
	p, err := h.tw.Api.CreateParticipant("room", params.SetFrom(testNumber).SetTo("client:"+identity))
	if err != nil {
		h.t.Fatal(err)
	}
	h.ringingClient(identity)
	if err := h.sim.Accept(*p.CallSid); err != nil {
		h.t.Fatal(err)
	}
	h.waitConference("room", identity+" connected", func(c twiliosim.ConferenceState) bool {
		q, ok := c.Participant(*p.CallSid)
		return ok && q.Status == "connected"
	})
	return *p.CallSid, p
}

func TestCreateParticipantMuted(t *testing.T) {
	h := newHarness(t)
	p, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:alice").
		SetMuted(true).SetConferenceStatusCallback(h.app.url("/conf-events")).SetConferenceStatusCallbackEvent([]string{"join"}))
	if err != nil {
		t.Fatal(err)
	}
	if !*p.Muted {
		t.Fatalf("created participant = %+v, want muted", p)
	}
	h.ringingClient("alice")
	if err := h.sim.Accept(*p.CallSid); err != nil {
		t.Fatal(err)
	}
	join := matching(h.app.waitRequests("/conf-events", untilEvent("StatusCallbackEvent", "participant-join")), "StatusCallbackEvent", "participant-join")
	if join.Get("CallSid") != *p.CallSid || join.Get("Muted") != "true" {
		t.Fatalf("join callback = %v", join)
	}
	conf, _ := h.sim.State().Conference("room")
	if q, _ := conf.Participant(*p.CallSid); !q.Muted || q.Heard {
		t.Fatalf("participant in the state = %+v", q)
	}
}

func TestCreateParticipantWaitURLIsFetched(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/participant-wait", `<Response><Play loop="0">https://example.com/participant-wait.mp3</Play></Response>`)
	sid, _ := h.apiParticipantAnswers("alice", (&api.CreateParticipantParams{}).
		SetStartConferenceOnEnter(false).SetWaitUrl(h.app.url("/participant-wait")).SetWaitMethod("GET"))
	got := h.app.waitRequests("/participant-wait", func(r []hookRequest) bool { return len(r) == 1 })
	if got[0].Method != http.MethodGet || got[0].Query.Get("CallSid") != sid {
		t.Fatalf("waitUrl request = %s %v", got[0].Method, got[0].Query)
	}
	h.waitCall(sid, "the participant's wait music", func(c twiliosim.CallState) bool {
		return hearingContains(c, "participant-wait.mp3")
	})
}

func TestCreateParticipantStatusCallbackGetsCallProgress(t *testing.T) {
	h := newHarness(t)
	sid, _ := h.apiParticipantAnswers("alice", (&api.CreateParticipantParams{}).
		SetStatusCallback(h.app.url("/participant-status")).
		SetStatusCallbackEvent([]string{"initiated", "ringing", "answered", "completed"}))
	if err := h.sim.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	got := h.app.waitRequests("/participant-status", untilEvent("CallStatus", "completed"))
	var statuses []string
	for _, r := range got {
		if r.Form.Get("CallSid") != sid || r.Form.Get("Direction") != "outbound-api" {
			t.Fatalf("participant call callback = %v", r.Form)
		}
		statuses = append(statuses, r.Form.Get("CallStatus"))
	}
	if strings.Join(statuses, " ") != "initiated ringing in-progress completed" {
		t.Fatalf("participant call progress = %v", statuses)
	}
}

func TestCreateParticipantCoaching(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits(`statusCallback="/conf-events" statusCallbackEvent="join"`)
	h.waitCall(customer, "waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	agent, _ := h.apiParticipantAnswers("alice", (&api.CreateParticipantParams{}).SetStartConferenceOnEnter(true))
	coach, created := h.apiParticipantAnswers("sam", (&api.CreateParticipantParams{}).
		SetCoaching(true).SetCallSidToCoach(agent))
	if !*created.Coaching || *created.CallSidToCoach != agent {
		t.Fatalf("created coach = %+v", created)
	}
	join := matching(h.app.waitRequests("/conf-events", untilEvent("CallSid", coach)), "CallSid", coach)
	if join.Get("Coaching") != "true" || join.Get("CallSidToCoach") != agent {
		t.Fatalf("coach's join callback = %v", join)
	}
	conf, _ := h.sim.State().Conference("room")
	if p, _ := conf.Participant(coach); !p.Coaching || p.CallSIDToCoach != agent {
		t.Fatalf("coach in the state = %+v", p)
	}
}

func TestCreateParticipantEndConferenceOnExit(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="false" waitUrl="">room</Conference></Dial><Say>after the conference</Say></Response>`)
	customer, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	h.waitCall(customer, "waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	agent, created := h.apiParticipantAnswers("alice", (&api.CreateParticipantParams{}).
		SetStartConferenceOnEnter(true).SetEndConferenceOnExit(true))
	if !*created.EndConferenceOnExit {
		t.Fatalf("created participant = %+v", created)
	}
	h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	if err := h.sim.Hangup(agent); err != nil {
		t.Fatal(err)
	}
	conf := h.waitConference("room", "ended", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })
	if conf.ReasonConferenceEnded != "participant-with-end-conference-on-exit-left" || conf.CallSIDEndingConference != agent {
		t.Fatalf("conference ended %q by %q", conf.ReasonConferenceEnded, conf.CallSIDEndingConference)
	}
	c := h.waitStatus(customer, twiliosim.StatusCompleted)
	if !strings.Contains(webhookNotes(c), "hears say: after the conference") {
		t.Fatalf("the customer did not go on after <Dial>: %s", webhookNotes(c))
	}
}

func TestUpdateParticipantHoldMethodPOST(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits("")
	h.agentJoins("alice", `startConferenceOnEnter="true"`)
	conf := h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	h.app.twiml("/hold", `<Response><Play loop="0">https://example.com/hold.mp3</Play></Response>`)
	if _, err := h.tw.Api.UpdateParticipant(conf.SID, customer, (&api.UpdateParticipantParams{}).
		SetHold(true).SetHoldUrl(h.app.url("/hold")).SetHoldMethod("POST")); err != nil {
		t.Fatal(err)
	}
	got := h.app.waitRequests("/hold", func(r []hookRequest) bool { return len(r) == 1 })
	if got[0].Method != http.MethodPost || got[0].Form.Get("CallSid") != customer {
		t.Fatalf("holdUrl request = %s %v, want a POST about the customer", got[0].Method, got[0].Form)
	}
}
