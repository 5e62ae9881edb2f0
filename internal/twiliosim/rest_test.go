package twiliosim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/telephony"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

func assertTwilioError(t *testing.T, err error, status, code int) {
	t.Helper()
	var te *twclient.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v (%T), want a Twilio REST error %d/%d", err, err, status, code)
	}
	if te.Status != status || te.Code != code || te.MoreInfo == "" || te.Message == "" {
		t.Fatalf("Twilio error = %+v, want status %d code %d", te, status, code)
	}
}

func TestRESTCallsWithTwilioGo(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/outbound", `<Response><Say>Hello</Say><Play loop="0">https://example.com/a.mp3</Play></Response>`)

	created, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).
		SetTo("+15557770001").SetFrom(testNumber).SetUrl(h.app.url("/outbound")).
		SetStatusCallback(h.app.url("/status")).SetStatusCallbackEvent([]string{"initiated", "ringing", "answered", "completed"}))
	if err != nil {
		t.Fatal(err)
	}
	if *created.Status != "queued" || *created.Direction != "outbound-api" || *created.To != "+15557770001" ||
		*created.AccountSid != testAccount || *created.ApiVersion != "2010-04-01" || !strings.HasSuffix(*created.Uri, *created.Sid+".json") {
		t.Fatalf("created call = %+v", created)
	}
	if _, err := time.Parse(time.RFC1123Z, *created.DateCreated); err != nil {
		t.Fatalf("date_created %q is not RFC 2822: %v", *created.DateCreated, err)
	}
	sid := *created.Sid
	h.waitCall(sid, "playing", func(c twiliosim.CallState) bool { return hearingContains(c, "a.mp3") })

	fetched, err := h.tw.Api.FetchCall(sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *fetched.Status != "in-progress" || fetched.StartTime == nil {
		t.Fatalf("fetched = %+v", fetched)
	}

	list, err := h.tw.Api.ListCall((&api.ListCallParams{}).SetTo("+15557770001"))
	if err != nil || len(list) != 1 || *list[0].Sid != sid {
		t.Fatalf("list = %v, %v", list, err)
	}

	// Redirect with a URL, then with inline TwiML.
	h.app.twiml("/redirected", `<Response><Play loop="0">https://example.com/b.mp3</Play></Response>`)
	if _, err := h.tw.Api.UpdateCall(sid, (&api.UpdateCallParams{}).SetUrl(h.app.url("/redirected"))); err != nil {
		t.Fatal(err)
	}
	h.waitCall(sid, "redirected", func(c twiliosim.CallState) bool { return hearingContains(c, "b.mp3") })
	if _, err := h.tw.Api.UpdateCall(sid, (&api.UpdateCallParams{}).SetTwiml(`<Response><Play loop="0">https://example.com/c.mp3</Play></Response>`)); err != nil {
		t.Fatal(err)
	}
	h.waitCall(sid, "inline twiml", func(c twiliosim.CallState) bool { return hearingContains(c, "c.mp3") })

	// Canceling an in-progress call changes nothing; completing hangs up.
	if c, err := h.tw.Api.UpdateCall(sid, (&api.UpdateCallParams{}).SetStatus("canceled")); err != nil || *c.Status != "in-progress" {
		t.Fatalf("cancel in-progress = %v, %v", c, err)
	}
	if c, err := h.tw.Api.UpdateCall(sid, (&api.UpdateCallParams{}).SetStatus("completed")); err != nil || *c.Status != "completed" || c.Duration == nil {
		t.Fatalf("complete = %+v, %v", c, err)
	}
	_, err = h.tw.Api.UpdateCall(sid, (&api.UpdateCallParams{}).SetUrl(h.app.url("/redirected")))
	assertTwilioError(t, err, 400, 21220)

	if err := h.tw.Api.DeleteCall(sid, nil); err != nil {
		t.Fatal(err)
	}
	_, err = h.tw.Api.FetchCall(sid, nil)
	assertTwilioError(t, err, 404, 20404)
}

func TestRESTCancelRingingCall(t *testing.T) {
	h := newHarness(t)
	c, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("client:alice").SetFrom(testNumber).SetTwiml("<Response><Hangup/></Response>"))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("alice")
	if _, err := h.tw.Api.UpdateCall(*c.Sid, (&api.UpdateCallParams{}).SetStatus("canceled")); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(*c.Sid, twiliosim.StatusCanceled)
}

func TestRESTCallErrors(t *testing.T) {
	h := newHarness(t)
	good := func() *api.CreateCallParams {
		return (&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).SetUrl(h.app.url("/x"))
	}
	tests := []struct {
		name   string
		params *api.CreateCallParams
		status int
		code   int
	}{
		{"missing To", (&api.CreateCallParams{}).SetFrom(testNumber).SetUrl(h.app.url("/x")), 400, 21201},
		{"invalid To", good().SetTo("not-a-number"), 400, 21211},
		{"missing From", (&api.CreateCallParams{}).SetTo("+15557770001").SetUrl(h.app.url("/x")), 400, 21213},
		{"invalid From", good().SetFrom("12"), 400, 21212},
		{"no Url or Twiml", (&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber), 400, 21205},
		{"invalid Url", good().SetUrl("ftp://example.com/x"), 400, 21205},
		{"malformed Twiml", (&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).SetTwiml("<Response><Say>"), 400, 12100},
		{"Timeout out of range", good().SetTimeout(601), 400, 20001},
		{"unknown StatusCallbackEvent", good().SetStatusCallbackEvent([]string{"exploded"}), 400, 20001},
		{"bad Method", good().SetMethod("PUT"), 400, 20001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.tw.Api.CreateCall(tt.params)
			assertTwilioError(t, err, tt.status, tt.code)
		})
	}
	if n := len(h.sim.State().Calls); n != 0 {
		t.Fatalf("rejected requests created %d calls", n)
	}

	// A call that is still ringing, which cannot be deleted yet.
	live, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("client:zed").SetFrom(testNumber).SetTwiml(keepTalking))
	if err != nil {
		t.Fatal(err)
	}
	h.ringingClient("zed")
	wrong, _ := telephony.NewRestClient(h.api.URL, testAccount, testAccount, "ffffffffffffffffffffffffffffffff", time.Second)
	const unknown = "CA00000000000000000000000000000000"
	others := []struct {
		name   string
		call   func() error
		status int
		code   int
	}{
		{"fetch unknown call", func() error { _, err := h.tw.Api.FetchCall(unknown, nil); return err }, 404, 20404},
		{"complete unknown call", func() error {
			_, err := h.tw.Api.UpdateCall(unknown, (&api.UpdateCallParams{}).SetStatus("completed"))
			return err
		}, 404, 20404},
		{"update unknown call with a bad Status", func() error {
			_, err := h.tw.Api.UpdateCall(unknown, (&api.UpdateCallParams{}).SetStatus("busy"))
			return err
		}, 404, 20404},
		{"delete unknown call", func() error { return h.tw.Api.DeleteCall(unknown, nil) }, 404, 20404},
		{"delete a live call", func() error { return h.tw.Api.DeleteCall(*live.Sid, nil) }, 400, 21220},
		{"wrong auth token", func() error { _, err := wrong.Api.ListCall(nil); return err }, 401, 20003},
	}
	for _, tt := range others {
		t.Run(tt.name, func(t *testing.T) { assertTwilioError(t, tt.call(), tt.status, tt.code) })
	}
	if c, ok := h.sim.State().Call(*live.Sid); !ok || c.Status != twiliosim.StatusRinging {
		t.Fatalf("refusing to delete the live call changed it: %+v", c)
	}
}

func TestRESTListPaging(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 5; i++ {
		if _, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).SetTwiml("<Response><Hangup/></Response>")); err != nil {
			t.Fatal(err)
		}
	}
	all, err := h.tw.Api.ListCall((&api.ListCallParams{}).SetPageSize(2))
	if err != nil || len(all) != 5 {
		t.Fatalf("paged list = %d calls, %v", len(all), err)
	}
	two, err := h.tw.Api.ListCall((&api.ListCallParams{}).SetPageSize(2).SetLimit(2))
	if err != nil || len(two) != 2 {
		t.Fatalf("limited list = %d calls, %v", len(two), err)
	}
}

func TestRESTConferencesAndParticipantsWithTwilioGo(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits(`statusCallback="/conf-events" statusCallbackEvent="start end join leave hold mute modify announcement"`)
	h.waitCall(customer, "waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })

	confs, err := h.tw.Api.ListConference((&api.ListConferenceParams{}).SetFriendlyName("room").SetStatus("init"))
	if err != nil || len(confs) != 1 {
		t.Fatalf("list conferences = %v, %v", confs, err)
	}
	cf := *confs[0].Sid
	if fetched, err := h.tw.Api.FetchConference(cf, nil); err != nil || *fetched.FriendlyName != "room" || *fetched.Status != "init" {
		t.Fatalf("fetch conference = %+v, %v", fetched, err)
	}

	// Add an agent through the Participants API, by the conference's name.
	p, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).
		SetFrom(testNumber).SetTo("client:alice").SetLabel("agent").
		SetStartConferenceOnEnter(true).SetEndConferenceOnExit(false).SetTimeout(30))
	if err != nil {
		t.Fatal(err)
	}
	if *p.ConferenceSid != cf || *p.Label != "agent" || *p.Status != "queued" {
		t.Fatalf("created participant = %+v", p)
	}
	agent := *p.CallSid
	h.ringingClient("alice")
	if err := h.sim.Accept(agent); err != nil {
		t.Fatal(err)
	}
	h.waitConference("room", "started", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfInProgress })

	parts, err := h.tw.Api.ListParticipant(cf, nil)
	if err != nil || len(parts) != 2 {
		t.Fatalf("participants = %v, %v", parts, err)
	}
	byLabel, err := h.tw.Api.FetchParticipant(cf, "agent", nil)
	if err != nil || *byLabel.CallSid != agent || *byLabel.Status != "connected" {
		t.Fatalf("fetch by label = %+v, %v", byLabel, err)
	}
	held, err := h.tw.Api.ListParticipant(cf, (&api.ListParticipantParams{}).SetHold(true))
	if err != nil || len(held) != 0 {
		t.Fatalf("held participants = %v, %v", held, err)
	}

	up, err := h.tw.Api.UpdateParticipant(cf, customer, (&api.UpdateParticipantParams{}).SetMuted(true).SetEndConferenceOnExit(false))
	if err != nil || !*up.Muted || *up.EndConferenceOnExit {
		t.Fatalf("update = %+v, %v", up, err)
	}
	h.app.twiml("/announce", `<Response><Say>This call is being transferred.</Say></Response>`)
	if _, err := h.tw.Api.UpdateParticipant(cf, customer, (&api.UpdateParticipantParams{}).SetAnnounceUrl(h.app.url("/announce"))); err != nil {
		t.Fatal(err)
	}
	coach, err := h.tw.Api.UpdateParticipant(cf, agent, (&api.UpdateParticipantParams{}).SetCoaching(true).SetCallSidToCoach(customer))
	if err != nil || !*coach.Coaching || *coach.CallSidToCoach != customer {
		t.Fatalf("coaching = %+v, %v", coach, err)
	}

	if _, err := h.tw.Api.UpdateConference(cf, (&api.UpdateConferenceParams{}).SetAnnounceUrl(h.app.url("/announce"))); err != nil {
		t.Fatal(err)
	}
	// One announcement to the customer, then one to each of the two
	// participants from the conference-wide announcement.
	h.app.waitRequests("/conf-events", func(r []hookRequest) bool { return countEvents(r, "announcement-end") == 3 })

	// Kicking the agent: an API participant has nothing to return to.
	if err := h.tw.Api.DeleteParticipant(cf, agent, nil); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(agent, twiliosim.StatusCompleted)
	conf := h.waitConference("room", "agent kicked", func(c twiliosim.ConferenceState) bool { return len(c.Participants) == 1 })
	if conf.Status != twiliosim.ConfInProgress {
		t.Fatalf("conference with the customer still in is %q", conf.Status)
	}
	leaves := h.app.waitRequests("/conf-events", func(r []hookRequest) bool { return countEvents(r, "participant-leave") == 1 })
	for _, r := range leaves {
		if r.Form.Get("StatusCallbackEvent") == "participant-leave" &&
			(r.Form.Get("CallSid") != agent || r.Form.Get("ReasonParticipantLeft") != "participant_updated_via_api") {
			t.Fatalf("participant-leave = %+v", r.Form)
		}
	}
}

func countEvents(reqs []hookRequest, event string) int {
	n := 0
	for _, r := range reqs {
		if r.Form.Get("StatusCallbackEvent") == event {
			n++
		}
	}
	return n
}

func TestRESTParticipantErrors(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits("")
	h.waitCall(customer, "waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	conf, _ := h.sim.State().Conference("room")
	cf := conf.SID
	tests := []struct {
		name   string
		call   func() error
		status int
		code   int
	}{
		{"unknown conference", func() error {
			_, err := h.tw.Api.ListParticipant("CF00000000000000000000000000000000", nil)
			return err
		}, 404, 20404},
		{"unknown participant", func() error {
			_, err := h.tw.Api.FetchParticipant(cf, "CA00000000000000000000000000000000", nil)
			return err
		}, 404, 20404},
		{"missing To", func() error {
			_, err := h.tw.Api.CreateParticipant(cf, (&api.CreateParticipantParams{}).SetFrom(testNumber))
			return err
		}, 400, 21201},
		{"missing From", func() error {
			_, err := h.tw.Api.CreateParticipant(cf, (&api.CreateParticipantParams{}).SetTo("client:bob"))
			return err
		}, 400, 21213},
		{"coaching without a call to coach", func() error {
			_, err := h.tw.Api.CreateParticipant(cf, (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob").SetCoaching(true))
			return err
		}, 400, 20001},
		{"coaching a stranger", func() error {
			_, err := h.tw.Api.CreateParticipant(cf, (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob").SetCallSidToCoach("CA00000000000000000000000000000000"))
			return err
		}, 400, 13240},
		{"bad MaxParticipants", func() error {
			_, err := h.tw.Api.CreateParticipant(cf, (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob").SetMaxParticipants(1))
			return err
		}, 400, 20001},
		{"update unknown conference", func() error {
			_, err := h.tw.Api.UpdateConference("CF00000000000000000000000000000000", (&api.UpdateConferenceParams{}).SetStatus("completed"))
			return err
		}, 404, 20404},
		{"conference status other than completed", func() error {
			_, err := h.tw.Api.UpdateConference(cf, (&api.UpdateConferenceParams{}).SetStatus("in-progress"))
			return err
		}, 400, 20001},
		{"delete unknown participant", func() error {
			return h.tw.Api.DeleteParticipant(cf, "nobody", nil)
		}, 404, 20404},
		{"list conferences with a bad Status", func() error {
			_, err := h.tw.Api.ListConference((&api.ListConferenceParams{}).SetStatus("ringing"))
			return err
		}, 400, 20001},
		{"list conferences with PageSize 0", func() error {
			_, err := h.tw.Api.ListConference((&api.ListConferenceParams{}).SetPageSize(0))
			return err
		}, 400, 20001},
		{"fetch unknown conference", func() error {
			_, err := h.tw.Api.FetchConference("CF00000000000000000000000000000000", nil)
			return err
		}, 404, 20404},
		{"update unknown participant", func() error {
			_, err := h.tw.Api.UpdateParticipant(cf, "CA00000000000000000000000000000000", (&api.UpdateParticipantParams{}).SetHold(true))
			return err
		}, 404, 20404},
		{"update participant with a bad HoldMethod", func() error {
			_, err := h.tw.Api.UpdateParticipant(cf, customer, (&api.UpdateParticipantParams{}).SetHold(true).SetHoldMethod("PUT"))
			return err
		}, 400, 20001},
		{"update participant with a relative HoldUrl", func() error {
			_, err := h.tw.Api.UpdateParticipant(cf, customer, (&api.UpdateParticipantParams{}).SetHold(true).SetHoldUrl("/hold"))
			return err
		}, 400, 21205},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertTwilioError(t, tt.call(), tt.status, tt.code) })
	}
	st := h.sim.State()
	c, _ := st.Conference("room")
	if len(c.Participants) != 1 || len(st.Calls) != 1 {
		t.Fatalf("rejected requests changed the state: %+v", st)
	}
}

// A completed conference has no participants to add to: Twilio answers
// with its not-found error, and the status and code agree (404, 20404).
// Its friendly name, though, names a new conference.
func TestAddingAParticipantToACompletedConference(t *testing.T) {
	h := newHarness(t)
	customer := h.customerWaits("")
	h.waitCall(customer, "waiting", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	conf, _ := h.sim.State().Conference("room")
	if _, err := h.tw.Api.UpdateConference(conf.SID, (&api.UpdateConferenceParams{}).SetStatus("completed")); err != nil {
		t.Fatal(err)
	}
	h.waitConference("room", "ended", func(c twiliosim.ConferenceState) bool { return c.Status == twiliosim.ConfCompleted })

	_, err := h.tw.Api.CreateParticipant(conf.SID, (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob"))
	assertTwilioError(t, err, 404, 20404)
	for _, c := range h.sim.State().Calls {
		if c.To == "client:bob" {
			t.Fatalf("a refused participant was called: %+v", c)
		}
	}

	p, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).SetFrom(testNumber).SetTo("client:bob"))
	if err != nil {
		t.Fatal(err)
	}
	if *p.ConferenceSid == conf.SID {
		t.Fatal("a participant added by name joined the completed conference")
	}
}

// Twilio documents a participant's Timeout as 5 to 600 seconds, both ends
// included.
func TestParticipantTimeoutBounds(t *testing.T) {
	h := newHarness(t)
	for _, timeout := range []int{5, 600} {
		if _, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).SetFrom(testNumber).
			SetTo("client:bob").SetTimeout(timeout)); err != nil {
			t.Fatalf("Timeout %d: %v", timeout, err)
		}
	}
	for _, timeout := range []int{4, 601} {
		_, err := h.tw.Api.CreateParticipant("room", (&api.CreateParticipantParams{}).SetFrom(testNumber).
			SetTo("client:carol").SetTimeout(timeout))
		assertTwilioError(t, err, 400, 20001)
	}
}
