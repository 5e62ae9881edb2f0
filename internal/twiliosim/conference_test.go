package twiliosim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// customerWaits sets the number's voice URL to put callers in conference
// "room" with the seeds' attributes, places one call, and returns once
// that call is in the room.
func (h *harness) customerWaits(extraAttrs string) string {
	h.t.Helper()
	h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="`+h.app.url("/wait")+`" `+extraAttrs+`>room</Conference></Dial><Say>after the conference</Say></Response>`)
	h.app.twiml("/wait", `<Response><Say>Thank you for calling. Please wait.</Say><Play loop="0">https://example.com/music.mp3</Play></Response>`)
	sid, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		h.t.Fatal(err)
	}
	// In the room before anyone else is added: the first participant's
	// callback settings are the conference's, so who comes first matters.
	h.waitCall(sid, "the customer in the conference", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	return sid
}

// agentJoins rings client:identity through the REST API with TwiML that
// joins "room", accepts it, and returns the agent's CallSid.
func (h *harness) agentJoins(identity, attrs string) string {
	h.t.Helper()
	doc := `<Response><Dial><Conference ` + attrs + `>room</Conference></Dial><Say>agent after the conference</Say></Response>`
	params := (&api.CreateCallParams{}).SetTo("client:" + identity).SetFrom(testNumber).SetTwiml(doc)
	call, err := h.tw.Api.CreateCall(params)
	if err != nil {
		h.t.Fatal(err)
	}
	h.ringingClient(identity)
	if err := h.sim.Accept(*call.Sid); err != nil {
		h.t.Fatal(err)
	}
	h.waitCall(*call.Sid, identity+" in the conference", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	return *call.Sid
}

func TestWaitingCallerHearsWaitURLUntilModeratorJoins(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits("")
	c := h.waitCall(customer, "customer hearing music", func(c twiliosim.CallState) bool {
		return hearingContains(c, "play: https://example.com/music.mp3 (looping)")
	})
	if c.Status != twiliosim.StatusInProgress || c.Conference != "room" {
		t.Fatalf("waiting customer = %+v", c)
	}
	conf := h.waitConference("room", "conference init", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInit })
	if p, _ := conf.Participant(customer); p.StartConferenceOnEnter || !p.EndConferenceOnExit {
		t.Fatalf("customer participant flags = %+v", p)
	}
	wait := h.app.requests("/wait")
	if len(wait) != 1 || wait[0].Method != http.MethodPost || wait[0].Form.Get("CallSid") != customer {
		t.Fatalf("waitUrl requests = %+v", wait)
	}

	agent := h.agentJoins("alice", `startConferenceOnEnter="true" endConferenceOnExit="false"`)
	conf = h.waitConference("room", "conference started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	for _, sid := range []string{customer, agent} {
		p, ok := conf.Participant(sid)
		if !ok || p.Hearing != "conference room" {
			t.Fatalf("participant %s = %+v, want in the conference", sid, p)
		}
	}
}

func TestWaitURLVariants(t *testing.T) {
	tests := []struct {
		name    string
		attrs   string
		hearing string
	}{
		{"no waitUrl plays Twilio's default music", ``, "default wait music"},
		{"empty waitUrl is silence", `waitUrl=""`, "silence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" `+tt.attrs+`>room</Conference></Dial></Response>`)
			sid, err := h.sim.PlaceInbound("+15551230001", "", "")
			if err != nil {
				t.Fatal(err)
			}
			h.waitCall(sid, tt.hearing, func(c twiliosim.CallState) bool { return hearingContains(c, tt.hearing) })
			// Neither variant fetches anything from the application: in
			// particular an empty waitUrl must not be resolved against the
			// document's URL and fetch the voice URL again.
			if got := h.app.paths(); len(got) != 1 || got[0] != "/voice" {
				t.Fatalf("the application got requests %v, want only the voice webhook", got)
			}
		})
	}
}

// A wait document that ends is requested again, with the same parameters,
// for as long as the participant waits; once the conference starts it is
// no longer requested.
func TestWaitDocumentIsRequestedAgainUntilTheConferenceStarts(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" waitUrl="/wait" waitMethod="GET">room</Conference></Dial></Response>`)
	// 20 s at the harness's speed: a few requests a second.
	h.app.twiml("/wait", `<Response><Say>One moment.</Say><Pause length="20"/></Response>`)
	customer, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	got := h.app.waitRequests("/wait", func(r []hookRequest) bool { return len(r) >= 3 })
	for i, r := range got[:3] {
		if r.Method != http.MethodGet || r.Query.Get("CallSid") != customer {
			t.Fatalf("wait request %d = %s %v", i, r.Method, r.Query)
		}
	}
	if c, _ := h.sim.State().Call(customer); c.Conference != "room" {
		t.Fatalf("the waiting caller left the conference: %+v", c)
	}

	h.agentJoins("alice", `startConferenceOnEnter="true"`)
	h.waitCall(customer, "in the started conference", func(c twiliosim.CallState) bool { return c.Hearing == "conference room" })
	before := len(h.app.requests("/wait"))
	// Hanging up and waiting for the call to complete is a full round
	// through the simulator; a request already on its way may still land.
	if err := h.sim.Hangup(customer); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(customer, twiliosim.StatusCompleted)
	if after := len(h.app.requests("/wait")); after > before+1 {
		t.Fatalf("the wait document was requested %d more times after the conference started", after-before)
	}
}

// The guards against requesting a wait document in a tight loop.
func TestWaitDocumentThatPlaysNothingIsNotRequestedAgain(t *testing.T) {
	tests := []struct {
		name, wait   string
		notification int
	}{
		{"empty document", `<Response/>`, 0},
		{"only a verb not allowed in wait music", `<Response><Hangup/></Response>`, 13238},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" waitUrl="/wait">room</Conference></Dial></Response>`)
			h.app.twiml("/wait", tt.wait)
			sid, err := h.sim.PlaceInbound("+15551230001", "", "")
			if err != nil {
				t.Fatal(err)
			}
			c := h.waitCall(sid, "silence", func(c twiliosim.CallState) bool { return c.Hearing == "silence" })
			if c.Conference != "room" {
				t.Fatalf("the caller left the conference: %+v", c)
			}
			if n := len(h.app.requests("/wait")); n != 1 {
				t.Fatalf("a wait document that plays nothing was requested %d times", n)
			}
			if tt.notification != 0 && !hasNotification(h.sim.State(), sid, tt.notification) {
				t.Fatalf("no %d notification: %+v", tt.notification, h.sim.State().Notifications)
			}
		})
	}
}

// A wait document that fetched once and then fails is logged, and the
// caller stays in the conference in silence; a first fetch that fails
// still keeps the caller out of it (Twilio cannot establish the
// conference).
func TestWaitDocumentFailingLaterLeavesSilence(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" waitUrl="/wait">room</Conference></Dial></Response>`)
	var mu sync.Mutex
	served := 0
	h.app.handle("/wait", func(hookRequest) reply {
		mu.Lock()
		defer mu.Unlock()
		served++
		if served > 1 {
			return reply{status: http.StatusInternalServerError}
		}
		return reply{contentType: "text/xml", body: `<Response><Say>One moment.</Say></Response>`}
	})
	sid, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := h.waitCall(sid, "silence after the failed request", func(c twiliosim.CallState) bool { return c.Hearing == "silence" })
	if c.Conference != "room" || c.Status != twiliosim.StatusInProgress {
		t.Fatalf("caller after the wait document failed: %+v", c)
	}
	if n := len(h.app.requests("/wait")); n != 2 {
		t.Fatalf("wait document requested %d times, want 2 (no retry after the failure)", n)
	}
	if !hasNotification(h.sim.State(), sid, 11200) {
		t.Fatalf("no 11200 notification: %+v", h.sim.State().Notifications)
	}
}

func TestLoneModeratorDoesNotStartTheConference(t *testing.T) {
	h := newHarness(t)
	agent := h.agentJoins("alice", `startConferenceOnEnter="true"`)
	conf := h.waitConference("room", "lone moderator", func(c twiliosim.ConferenceState) bool { return len(c.Participants) == 1 })
	if conf.Status != twiliosim.ConfInit {
		t.Fatalf("conference with one moderator is %q, want init", conf.Status)
	}
	h.waitCall(agent, "moderator hears wait music", func(c twiliosim.CallState) bool { return hearingContains(c, "default wait music") })
}

func TestTwoParticipantsWithoutModeratorDoNotStart(t *testing.T) {
	h := newHarness(t)
	h.agentJoins("alice", `startConferenceOnEnter="false"`)
	h.agentJoins("bob", `startConferenceOnEnter="false"`)
	conf := h.waitConference("room", "two waiting", func(c twiliosim.ConferenceState) bool { return len(c.Participants) == 2 })
	if conf.Status != twiliosim.ConfInit {
		t.Fatalf("conference status %q, want init", conf.Status)
	}
	h.agentJoins("carol", `startConferenceOnEnter="true"`)
	h.waitConference("room", "moderator starts it", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
}

func TestEndConferenceOnExitEndsItForEveryone(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits("")
	agent := h.agentJoins("alice", `startConferenceOnEnter="true"`)
	h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	if err := h.sim.Hangup(customer); err != nil {
		t.Fatal(err)
	}
	conf := h.waitConference("room", "ended", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })
	if conf.ReasonConferenceEnded != "participant-with-end-conference-on-exit-left" || conf.CallSIDEndingConference != customer {
		t.Fatalf("conference ended %q by %q", conf.ReasonConferenceEnded, conf.CallSIDEndingConference)
	}
	// The agent's call goes on with the verb after <Dial>, then hangs up.
	c := h.waitStatus(agent, twiliosim.StatusCompleted)
	if !strings.Contains(webhookNotes(c), "hears say: agent after the conference") {
		t.Fatalf("agent did not continue after <Dial>: %s", webhookNotes(c))
	}
}

func webhookNotes(c twiliosim.CallState) string {
	var b strings.Builder
	for _, w := range c.Webhooks {
		b.WriteString(w.Note)
		b.WriteString("\n")
	}
	return b.String()
}

func TestLastParticipantLeavingEndsTheConference(t *testing.T) {
	h := newHarness(t)
	alice := h.agentJoins("alice", `startConferenceOnEnter="true"`)
	bob := h.agentJoins("bob", `startConferenceOnEnter="true"`)
	h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	if err := h.sim.Hangup(alice); err != nil {
		t.Fatal(err)
	}
	conf := h.waitConference("room", "alice left", func(c twiliosim.ConferenceState) bool { return len(c.Participants) == 1 })
	if conf.Status != twiliosim.ConfInProgress {
		t.Fatalf("conference with one participant left is %q, want in-progress", conf.Status)
	}
	if err := h.sim.Hangup(bob); err != nil {
		t.Fatal(err)
	}
	conf = h.waitConference("room", "ended", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })
	if conf.ReasonConferenceEnded != "last-participant-left" {
		t.Fatalf("reason = %q", conf.ReasonConferenceEnded)
	}
}

func TestNewConferenceWithTheSameNameGetsANewSid(t *testing.T) {
	h := newHarness(t)
	a := h.agentJoins("alice", `startConferenceOnEnter="true"`)
	first := h.waitConference("room", "first", func(c twiliosim.ConferenceState) bool { return len(c.Participants) == 1 })
	h.must(h.sim.Hangup(a))
	h.waitConference("room", "first ended", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })
	h.agentJoins("bob", `startConferenceOnEnter="true"`)
	second := h.waitConference("room", "second", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInit })
	if first.SID == second.SID {
		t.Fatal("a conference reused the SID of an ended one")
	}
}

func TestDialActionIsFetchedWhenTheConferenceEnds(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial action="/after" method="POST"><Conference startConferenceOnEnter="true" endConferenceOnExit="true">room</Conference></Dial><Say>never reached</Say></Response>`)
	h.app.twiml("/after", `<Response><Say>Goodbye from the action.</Say><Hangup/></Response>`)
	customer := h.placeInbound()
	h.waitCall(customer, "in conference", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	conf, _ := h.sim.State().Conference("room")
	if _, err := h.tw.Api.UpdateConference(conf.SID, (&api.UpdateConferenceParams{}).SetStatus("completed")); err != nil {
		t.Fatal(err)
	}
	got := h.app.waitRequests("/after", func(r []hookRequest) bool { return len(r) == 1 })
	if got[0].Form.Get("DialCallStatus") != "completed" || got[0].Form.Get("CallSid") != customer {
		t.Fatalf("action request = %+v", got[0].Form)
	}
	c := h.waitStatus(customer, twiliosim.StatusCompleted)
	if strings.Contains(webhookNotes(c), "never reached") {
		t.Fatal("verbs after a <Dial> with an action were executed")
	}
	conf = h.waitConference("room", "ended via API", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })
	if conf.ReasonConferenceEnded != "conference-ended-via-api" {
		t.Fatalf("reason = %q", conf.ReasonConferenceEnded)
	}
}

func TestHoldPlaysHoldURLWithGET(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits("")
	h.agentJoins("alice", `startConferenceOnEnter="true"`)
	conf := h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	h.app.twiml("/hold", `<Response><Play loop="0">https://example.com/hold.mp3</Play></Response>`)
	params := (&api.UpdateParticipantParams{}).SetHold(true).SetHoldUrl(h.app.url("/hold"))
	p, err := h.tw.Api.UpdateParticipant(conf.SID, customer, params)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hold == nil || !*p.Hold {
		t.Fatalf("participant after hold = %+v", p)
	}
	h.waitCall(customer, "hold music", func(c twiliosim.CallState) bool { return hearingContains(c, "play: https://example.com/hold.mp3") })
	if got := h.app.requests("/hold"); len(got) != 1 || got[0].Method != http.MethodGet {
		t.Fatalf("holdUrl requests = %+v", got)
	}
	if _, err := h.tw.Api.UpdateParticipant(conf.SID, customer, (&api.UpdateParticipantParams{}).SetHold(false)); err != nil {
		t.Fatal(err)
	}
	h.waitCall(customer, "back in the conference", func(c twiliosim.CallState) bool { return c.Hearing == "conference room" })
}

func TestEndConferenceOnExitChangeIgnoredWhileHeld(t *testing.T) {
	h := newHarness(t)
	h.customerWaits("")
	agent := h.agentJoins("alice", `startConferenceOnEnter="true" endConferenceOnExit="false"`)
	conf := h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	if _, err := h.tw.Api.UpdateParticipant(conf.SID, agent, (&api.UpdateParticipantParams{}).SetHold(true)); err != nil {
		t.Fatal(err)
	}
	p, err := h.tw.Api.UpdateParticipant(conf.SID, agent, (&api.UpdateParticipantParams{}).SetEndConferenceOnExit(true))
	if err != nil {
		t.Fatal(err)
	}
	if *p.EndConferenceOnExit {
		t.Fatal("endConferenceOnExit changed on a held participant")
	}
	if _, err := h.tw.Api.UpdateParticipant(conf.SID, agent, (&api.UpdateParticipantParams{}).SetHold(false)); err != nil {
		t.Fatal(err)
	}
	p, err = h.tw.Api.UpdateParticipant(conf.SID, agent, (&api.UpdateParticipantParams{}).SetEndConferenceOnExit(true))
	if err != nil {
		t.Fatal(err)
	}
	if !*p.EndConferenceOnExit {
		t.Fatal("endConferenceOnExit not changed once off hold")
	}
}

func TestMaxParticipantsRefusesTheThird(t *testing.T) {
	h := newHarness(t)
	h.agentJoins("alice", `maxParticipants="2"`)
	h.agentJoins("bob", ``)
	doc := `<Response><Dial><Conference>room</Conference></Dial><Say>conference full</Say></Response>`
	call, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("client:carol").SetFrom(testNumber).SetTwiml(doc))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("carol")
	h.must(h.sim.Accept(*call.Sid))
	c := h.waitStatus(*call.Sid, twiliosim.StatusCompleted)
	if !strings.Contains(webhookNotes(c), "conference full") {
		t.Fatalf("refused participant did not go on after <Dial>: %s", webhookNotes(c))
	}
	st := h.sim.State()
	if !hasNotification(st, *call.Sid, 16020) {
		t.Fatalf("no 16020 notification: %+v", st.Notifications)
	}
	conf, _ := st.Conference("room")
	if len(conf.Participants) != 2 {
		t.Fatalf("conference has %d participants", len(conf.Participants))
	}
}

func hasNotification(st twiliosim.State, callSID string, code int) bool {
	for _, n := range st.Notifications {
		if n.CallSID == callSID && n.ErrorCode == code {
			return true
		}
	}
	return false
}

func TestDuplicateLabelIsRefused(t *testing.T) {
	h := newHarness(t)
	h.agentJoins("alice", `participantLabel="agent"`)
	doc := `<Response><Dial><Conference participantLabel="agent">room</Conference></Dial><Say>label taken</Say></Response>`
	call, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("client:bob").SetFrom(testNumber).SetTwiml(doc))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("bob")
	h.must(h.sim.Accept(*call.Sid))
	h.waitStatus(*call.Sid, twiliosim.StatusCompleted)
	if !hasNotification(h.sim.State(), *call.Sid, 16025) {
		t.Fatal("no 16025 notification for a duplicate label")
	}
	conf, _ := h.sim.State().Conference("room")
	_, err = h.tw.Api.CreateParticipant(conf.SID, (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:carol").SetLabel("agent"))
	assertTwilioError(t, err, 400, 16025)
}

func TestStateJSONOverHTTP(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits(`participantLabel="customer" muted="true"`)
	h.waitCall(customer, "waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	// A call whose webhook fails, for a notification.
	h.app.handle("/broken", func(hookRequest) reply { return reply{status: http.StatusInternalServerError} })
	broken, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).SetUrl(h.app.url("/broken")))
	if err != nil {
		t.Fatal(err)
	}
	h.waitState("the failure noted", func(st twiliosim.State) bool { return hasNotification(st, *broken.Sid, 11200) })

	resp, err := http.Get(h.api.URL + "/sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/sim/state = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Decoded into a struct of its own, so the JSON field names are checked.
	var st struct {
		Calls []struct {
			SID, From, To, Direction, Status, Conference string
		} `json:"calls"`
		Conferences []struct {
			SID          string `json:"sid"`
			FriendlyName string `json:"friendly_name"`
			Status       string `json:"status"`
			Participants []struct {
				CallSID                string `json:"call_sid"`
				Label                  string `json:"label"`
				Hold                   bool   `json:"hold"`
				Muted                  bool   `json:"muted"`
				Heard                  *bool  `json:"heard"`
				StartConferenceOnEnter bool   `json:"start_conference_on_enter"`
				EndConferenceOnExit    bool   `json:"end_conference_on_exit"`
			} `json:"participants"`
		} `json:"conferences"`
		Notifications []struct {
			CallSID   string `json:"call_sid"`
			ErrorCode int    `json:"error_code"`
			Message   string `json:"message"`
			URL       string `json:"url"`
		} `json:"notifications"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Calls) != 2 || st.Calls[0].SID != customer || st.Calls[0].Direction != "inbound" || st.Calls[0].Conference != "room" ||
		st.Calls[0].From != "+15551230001" || st.Calls[0].To != testNumber {
		t.Fatalf("calls = %+v", st.Calls)
	}
	if len(st.Conferences) != 1 || st.Conferences[0].FriendlyName != "room" || st.Conferences[0].Status != "init" ||
		len(st.Conferences[0].Participants) != 1 {
		t.Fatalf("conferences = %+v", st.Conferences)
	}
	p := st.Conferences[0].Participants[0]
	if p.CallSID != customer || p.Label != "customer" || !p.Muted || p.Heard == nil || *p.Heard ||
		p.StartConferenceOnEnter || !p.EndConferenceOnExit || p.Hold {
		t.Fatalf("participant = %+v", p)
	}
	if len(st.Notifications) != 1 {
		t.Fatalf("notifications = %+v", st.Notifications)
	}
	if n := st.Notifications[0]; n.CallSID != *broken.Sid || n.ErrorCode != 11200 || n.URL != h.app.url("/broken") ||
		!strings.Contains(n.Message, "500") {
		t.Fatalf("notification = %+v", n)
	}

	// The page shows the same state to a person.
	page := h.controlRequest(http.MethodGet, "/sim", nil, "")
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("/sim = %d %s", page.status, page.header.Get("Content-Type"))
	}
	for _, want := range []string{
		st.Conferences[0].SID, "<td>room</td>", "<code>" + customer + "</code> customer connected muted",
		*broken.Sid, "<td>11200</td>", h.app.url("/broken"),
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the /sim page does not show %q", want)
		}
	}
}

// Twilio: a participant with startConferenceOnEnter=false who joins a
// conference that has not started is muted and hears wait music. The
// state's "heard" shows it; the participant's own Muted setting, which the
// REST resource and the callbacks report, stays what it was set to.
func TestWaitingParticipantIsNotHeard(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits(`statusCallback="/conf-events" statusCallbackEvent="join"`)
	conf := h.waitConference("room", "customer hearing the wait music", func(c twiliosim.ConferenceState) bool {
		p, ok := c.Participant(customer)
		return ok && strings.Contains(p.Hearing, "music.mp3")
	})
	if p, _ := conf.Participant(customer); p.Heard || p.Muted || p.Status != "connected" {
		t.Fatalf("waiting participant = %+v, want connected and not heard, with its Muted setting false", p)
	}
	rest, err := h.tw.Api.FetchParticipant(conf.SID, customer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *rest.Muted {
		t.Fatal("REST reports the waiting participant's muted setting as true")
	}
	join := matching(h.app.waitRequests("/conf-events", untilEvent("CallSid", customer)), "CallSid", customer)
	if join.Get("StatusCallbackEvent") != "participant-join" || join.Get("Muted") != "false" {
		t.Fatalf("join callback = %v", join)
	}

	agent := h.agentJoins("alice", `startConferenceOnEnter="true"`)
	conf = h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	for _, sid := range []string{customer, agent} {
		if p, _ := conf.Participant(sid); !p.Heard {
			t.Fatalf("participant %s in the started conference is not heard: %+v", sid, p)
		}
	}

	if _, err := h.tw.Api.UpdateParticipant(conf.SID, agent, (&api.UpdateParticipantParams{}).SetMuted(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.tw.Api.UpdateParticipant(conf.SID, customer, (&api.UpdateParticipantParams{}).SetHold(true)); err != nil {
		t.Fatal(err)
	}
	conf, _ = h.sim.State().Conference("room")
	for _, sid := range []string{customer, agent} {
		if p, _ := conf.Participant(sid); p.Heard {
			t.Fatalf("muted or held participant %s is heard: %+v", sid, p)
		}
	}
}

// A moderator alone waits; a participant without startConferenceOnEnter
// who joins then starts the conference, since a moderator is present with
// another participant.
func TestModeratorFirstThenAParticipantStartsTheConference(t *testing.T) {
	h := newHarness(t)
	agent := h.agentJoins("alice", `startConferenceOnEnter="true"`)
	h.waitCall(agent, "moderator waiting", func(c twiliosim.CallState) bool { return hearingContains(c, "default wait music") })
	customer := h.customerWaits("")
	conf := h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	for _, sid := range []string{agent, customer} {
		if p, ok := conf.Participant(sid); !ok || p.Hearing != "conference room" || !p.Heard {
			t.Fatalf("participant %s = %+v, want in the started conference", sid, p)
		}
	}
	if n := len(h.app.requests("/wait")); n != 0 {
		t.Fatalf("the customer's waitUrl was fetched %d times although the conference started as they joined", n)
	}
}

// Removing (kicking) a participant with endConferenceOnExit through the
// REST API ends the conference, with Twilio's reason for a kick; the
// kicked caller goes on with the TwiML after its <Dial>.
func TestKickingAnEndConferenceOnExitParticipantEndsTheConference(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits(`statusCallback="/conf-events" statusCallbackEvent="end leave"`)
	agent := h.agentJoins("alice", `startConferenceOnEnter="true"`)
	conf := h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })
	if err := h.tw.Api.DeleteParticipant(conf.SID, customer, nil); err != nil {
		t.Fatal(err)
	}
	conf = h.waitConference("room", "ended", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })
	if conf.ReasonConferenceEnded != "participant-with-end-conference-on-exit-kicked" || conf.CallSIDEndingConference != customer {
		t.Fatalf("conference ended %q by %q", conf.ReasonConferenceEnded, conf.CallSIDEndingConference)
	}
	got := h.app.waitRequests("/conf-events", untilEvent("StatusCallbackEvent", "conference-end"))
	end := matching(got, "StatusCallbackEvent", "conference-end")
	if end.Get("ReasonConferenceEnded") != "participant-with-end-conference-on-exit-kicked" || end.Get("CallSidEndingConference") != customer {
		t.Fatalf("conference-end = %v", end)
	}
	if leave := matching(got, "CallSid", customer); leave.Get("ReasonParticipantLeft") != "participant_updated_via_api" {
		t.Fatalf("kicked participant's leave = %v", leave)
	}
	for sid, after := range map[string]string{customer: "after the conference", agent: "agent after the conference"} {
		c := h.waitStatus(sid, twiliosim.StatusCompleted)
		if !strings.Contains(webhookNotes(c), "hears say: "+after) {
			t.Fatalf("%s did not go on after <Dial>: %s", sid, webhookNotes(c))
		}
	}
}

// maxParticipants counts participants added through the REST API too:
// Twilio's 16020, "Conference is full", and nobody is called.
func TestMaxParticipantsRefusesARESTParticipant(t *testing.T) {
	h := newHarness(t)
	h.agentJoins("alice", `maxParticipants="2"`)
	h.agentJoins("bob", ``)
	conf := h.waitConference("room", "two in", func(c twiliosim.ConferenceState) bool { return len(c.Participants) == 2 })
	_, err := h.tw.Api.CreateParticipant(conf.SID, (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:carol"))
	assertTwilioError(t, err, 400, 16020)
	st := h.sim.State()
	for _, c := range st.Calls {
		if c.To == "client:carol" {
			t.Fatalf("a participant refused for a full conference was called: %+v", c)
		}
	}
	if c, _ := st.Conference("room"); len(c.Participants) != 2 {
		t.Fatalf("conference has %d participants", len(c.Participants))
	}
}
