package views

import (
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

var simPhone = PhoneConfig{Mode: PhoneModeSimulator, Identity: "alice", SimEventsURL: "/sim/phones/alice/events", SimCallURL: "/sim/calls/{sid}"}

var twilioPhone = PhoneConfig{Mode: PhoneModeTwilio, Identity: "alice", TokenURL: "/token"}

func TestAgentPage(t *testing.T) {
	tests := []struct {
		name       string
		simulator  bool
		phone      PhoneConfig
		wantTwilio bool
	}{
		{name: "simulator mode", simulator: true, phone: simPhone, wantTwilio: false},
		{name: "twilio mode", simulator: false, phone: twilioPhone, wantTwilio: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := callflow.AgentView{Me: alice, Call: answeredCall(), Colleagues: colleagues()}
			doc := renderDoc(t, requestCtx(&alice, tt.simulator), AgentPage(v, tt.phone))
			html, _ := doc.Html()
			assertSlots(t, html, EventAgentStatus, EventOffer, EventCall, EventRoster)

			console := one(t, doc, "console")
			if got := attr(t, console, "hx-ext"); got != "sse" {
				t.Errorf("console hx-ext = %q, want sse", got)
			}
			if got := attr(t, console, "sse-connect"); got != "/events?last=0" {
				t.Errorf("console sse-connect = %q, want /events?last=0 (the page reflects no event yet)", got)
			}
			for _, id := range []string{"agent-status", "phone", "phone-state", "offer", "call", "roster"} {
				if n := console.Find("#" + id).Length(); n != 1 {
					t.Errorf("#%s inside the SSE wrapper: found %d, want 1", id, n)
				}
			}

			phone := doc.Find("#phone")
			wantData := map[string]string{
				"data-mode": tt.phone.Mode, "data-identity": tt.phone.Identity, "data-token-url": tt.phone.TokenURL,
				"data-sim-events-url": tt.phone.SimEventsURL, "data-sim-call-url": tt.phone.SimCallURL,
			}
			for name, want := range wantData {
				if got := attr(t, phone, name); got != want {
					t.Errorf("#phone %s = %q, want %q", name, got, want)
				}
			}
			if got := text(doc.Find("#phone-state")); got != "connecting" {
				t.Errorf("#phone-state = %q, want connecting", got)
			}

			scripts := scriptSources(doc)
			want := []string{"/static/vendor/htmx-2.0.11.min.js", "/static/vendor/htmx-ext-sse-2.2.4.min.js", "/static/js/app.js"}
			if tt.wantTwilio {
				want = append(want, "/static/vendor/twilio-voice-2.18.5.min.js")
			}
			want = append(want, "/static/js/phone.js")
			if strings.Join(scripts, " ") != strings.Join(want, " ") {
				t.Errorf("scripts = %v, want %v", scripts, want)
			}
		})
	}
}

func TestAgentFragmentsAreSwappable(t *testing.T) {
	views := []struct {
		name string
		v    callflow.AgentView
	}{
		{name: "idle", v: callflow.AgentView{Me: bob, Colleagues: colleagues()}},
		{name: "offered a call", v: callflow.AgentView{Me: alice, Offer: ringingCall()}},
		{name: "on a call", v: callflow.AgentView{Me: alice, Call: answeredCall(), Colleagues: colleagues()}},
	}
	wantIDs := map[string]string{EventAgentStatus: "agent-status", EventOffer: "offer", EventCall: "call", EventRoster: "roster"}
	for _, tv := range views {
		t.Run(tv.name, func(t *testing.T) {
			frags := AgentFragments(tv.v)
			if len(frags) != len(wantIDs) {
				t.Fatalf("AgentFragments: %d fragments, want %d", len(frags), len(wantIDs))
			}
			for _, f := range frags {
				assertSwappable(t, render(t, fragmentCtx(), f.Component), wantIDs[f.Event], f.Event)
			}
		})
	}
}

// assertSwappable checks a fragment is one element with the given id, made
// to be pushed as the content of the page's slot for the named SSE event.
func assertSwappable(t *testing.T, html, id, event string) {
	t.Helper()
	doc := parse(t, html)
	roots := doc.Find("body").Children()
	if roots.Length() != 1 {
		t.Fatalf("fragment %q: %d root elements, want 1", event, roots.Length())
	}
	if got := attr(t, roots, "id"); got != id {
		t.Errorf("fragment %q: id = %q, want %q", event, got, id)
	}
	if got := attr(t, roots, "data-live"); got != event {
		t.Errorf("fragment %q: data-live = %q", event, got)
	}
	// The fragment itself must not listen: the slot around it does.
	if _, has := roots.Attr("sse-swap"); has {
		t.Errorf("fragment %q listens for SSE itself; its slot must", event)
	}
}

// assertSlots checks a page wraps each live fragment in a slot that swaps
// its content (never itself) when the fragment's event arrives.
func assertSlots(t *testing.T, html string, events ...string) {
	t.Helper()
	doc := parse(t, html)
	for _, event := range events {
		slot := doc.Find(`[sse-swap="` + event + `"]`)
		if slot.Length() != 1 {
			t.Fatalf("%d slots listen for %q, want 1", slot.Length(), event)
		}
		if got := attr(t, slot, "hx-swap"); got != "innerHTML" {
			t.Errorf("slot %q: hx-swap = %q, want innerHTML", event, got)
		}
		if got := slot.Children().First().AttrOr("data-live", ""); got != event {
			t.Errorf("slot %q holds %q", event, got)
		}
	}
}

func TestAgentStatus(t *testing.T) {
	tests := []struct {
		name        string
		presence    models.Presence
		wantBadge   string
		wantToggle  bool
		wantPressed string // testid of the pressed button
	}{
		{name: "available", presence: models.PresenceAvailable, wantBadge: "available", wantToggle: true, wantPressed: "presence-available"},
		{name: "away", presence: models.PresenceAway, wantBadge: "away", wantToggle: true, wantPressed: "presence-away"},
		{name: "offline", presence: models.PresenceOffline, wantBadge: "offline", wantToggle: true},
		{name: "busy", presence: models.PresenceBusy, wantBadge: "busy", wantToggle: false},
		{name: "wrap-up", presence: models.PresenceWrapUp, wantBadge: "wrap-up", wantToggle: true}, // Available ends it early
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			me := alice
			me.Presence = tt.presence
			doc := renderDoc(t, fragmentCtx(), AgentStatus(callflow.AgentView{Me: me}))
			badge := one(t, doc, "presence-badge")
			if got := text(badge); got != tt.wantBadge {
				t.Errorf("badge = %q, want %q", got, tt.wantBadge)
			}
			if got := text(one(t, doc, "presence-since")); got != "3:00" {
				t.Errorf("time in presence = %q, want 3:00", got)
			}
			buttons := doc.Find("button[hx-post]")
			if !tt.wantToggle {
				if buttons.Length() != 0 {
					t.Errorf("%s: %d presence buttons, want none", tt.presence, buttons.Length())
				}
				one(t, doc, "presence-locked")
				return
			}
			for _, p := range []string{"available", "away"} {
				b := one(t, doc, "presence-"+p)
				if got := attr(t, b, "hx-post"); got != "/presence" {
					t.Errorf("presence %s hx-post = %q, want /presence", p, got)
				}
				if attr(t, b, "name") != "presence" || attr(t, b, "value") != p {
					t.Errorf("presence %s button sends %s=%s", p, attr(t, b, "name"), attr(t, b, "value"))
				}
				wantPressed := "false"
				if "presence-"+p == tt.wantPressed {
					wantPressed = "true"
				}
				if got := attr(t, b, "aria-pressed"); got != wantPressed {
					t.Errorf("presence %s aria-pressed = %q, want %q", p, got, wantPressed)
				}
			}
		})
	}
}

func TestOfferCard(t *testing.T) {
	unknown := ringingCall()
	unknown.CallerName = ""
	transfer := transferringCall(models.TransferRinging, models.LegRinging)

	tests := []struct {
		name       string
		v          callflow.AgentView
		wantCaller string
		wantNumber string
		wantFrom   string // "" when not a transfer
		wantWait   string
	}{
		{name: "new caller", v: callflow.AgentView{Me: alice, Offer: ringingCall()}, wantCaller: "Jane Doe", wantNumber: "+15551230001", wantWait: "1:30"},
		{name: "caller without a name", v: callflow.AgentView{Me: alice, Offer: unknown}, wantCaller: "Unknown caller", wantNumber: "+15551230001", wantWait: "1:30"},
		{name: "transfer from a colleague", v: callflow.AgentView{Me: bob, Offer: transfer, OfferIsTransfer: true}, wantCaller: "Jane Doe", wantNumber: "+15551230001", wantFrom: "transfer from Alice Adams", wantWait: "1:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := renderDoc(t, fragmentCtx(), OfferCard(tt.v))
			if got := text(one(t, doc, "offer-caller")); got != tt.wantCaller {
				t.Errorf("caller = %q, want %q", got, tt.wantCaller)
			}
			if got := text(one(t, doc, "offer-number")); got != tt.wantNumber {
				t.Errorf("number = %q, want %q", got, tt.wantNumber)
			}
			from := byTestID(doc, "offer-transfer-from")
			if tt.wantFrom == "" && from.Length() != 0 {
				t.Errorf("a new call shows %q", text(from))
			}
			if tt.wantFrom != "" && text(from) != tt.wantFrom {
				t.Errorf("transfer from = %q, want %q", text(from), tt.wantFrom)
			}
			wait := one(t, doc, "offer-wait")
			if goquery := goqueryNodeName(wait); goquery != "time" {
				t.Errorf("wait is a <%s>, want <time>", goquery)
			}
			if got := attr(t, wait, "data-since"); got != timestamp(tt.v.Offer.CreatedAt) {
				t.Errorf("wait data-since = %q", got)
			}
			if got := text(wait.Parent()); got != "Waiting "+tt.wantWait {
				t.Errorf("wait = %q, want %q", got, "Waiting "+tt.wantWait)
			}
			if got := attr(t, one(t, doc, "offer-accept"), "data-phone-action"); got != "accept" {
				t.Errorf("accept button data-phone-action = %q", got)
			}
			if got := attr(t, one(t, doc, "offer-decline"), "data-phone-action"); got != "reject" {
				t.Errorf("decline button data-phone-action = %q", got)
			}
		})
	}

	t.Run("no offer", func(t *testing.T) {
		html := render(t, fragmentCtx(), OfferCard(callflow.AgentView{Me: alice}))
		assertSwappable(t, html, "offer", EventOffer)
		doc := parse(t, html)
		if doc.Find("button").Length() != 0 {
			t.Error("an empty offer has buttons")
		}
		if _, hidden := doc.Find("#offer").Attr("hidden"); !hidden {
			t.Error("an empty offer is not hidden")
		}
	})
}

func TestCallPanel(t *testing.T) {
	v := callflow.AgentView{Me: alice, Call: answeredCall(), Colleagues: colleagues()}
	doc := renderDoc(t, fragmentCtx(), CallPanel(v))

	if got := text(one(t, doc, "call-caller")); got != "Jane Doe" {
		t.Errorf("caller = %q", got)
	}
	if got := text(one(t, doc, "call-number")); got != "+15551230001" {
		t.Errorf("number = %q", got)
	}
	talk := one(t, doc, "talk-time")
	if got := attr(t, talk, "data-since"); got != timestamp(v.Call.AnsweredAt) {
		t.Errorf("talk time data-since = %q, want the answer time", got)
	}
	if got := text(talk); got != "1:00" {
		t.Errorf("talk time = %q, want 1:00", got)
	}
	if got := text(one(t, doc, "participant-customer")); !strings.Contains(got, "Jane Doe") || !strings.Contains(got, "connected") {
		t.Errorf("customer = %q", got)
	}
	if got := text(one(t, doc, "participant-alice")); !strings.Contains(got, "(you)") || !strings.Contains(got, "on the call") {
		t.Errorf("alice = %q", got)
	}

	form := one(t, doc, "transfer-form")
	if got := attr(t, form, "hx-post"); got != "/calls/7/transfer" {
		t.Errorf("transfer hx-post = %q", got)
	}
	if got := attr(t, one(t, doc, "transfer-select"), "name"); got != "to" {
		t.Errorf("transfer select name = %q, want to", got)
	}
	options := []struct {
		identity     string
		wantDisabled bool
		wantText     string
	}{
		{identity: "bob", wantDisabled: false, wantText: "Bob Brown"},
		{identity: "carol", wantDisabled: true, wantText: "Carol Chen (busy)"},
		{identity: "dave", wantDisabled: true, wantText: "Dave Diaz (away)"},
	}
	for _, o := range options {
		opt := one(t, doc, "transfer-option-"+o.identity)
		if got := attr(t, opt, "value"); got != o.identity {
			t.Errorf("option %s value = %q", o.identity, got)
		}
		if _, disabled := opt.Attr("disabled"); disabled != o.wantDisabled {
			t.Errorf("option %s disabled = %v, want %v", o.identity, disabled, o.wantDisabled)
		}
		if got := text(opt); got != o.wantText {
			t.Errorf("option %s text = %q, want %q", o.identity, got, o.wantText)
		}
	}
	if got := attr(t, one(t, doc, "leave-button"), "hx-post"); got != "/calls/7/leave" {
		t.Errorf("leave hx-post = %q", got)
	}
	hangup := one(t, doc, "hangup-button")
	if got := attr(t, hangup, "hx-post"); got != "/calls/7/hangup" {
		t.Errorf("hang up hx-post = %q", got)
	}
	if attr(t, hangup, "hx-confirm") == "" {
		t.Error("hang up does not ask for confirmation")
	}
	if byTestID(doc, "transfer-progress").Length() != 0 {
		t.Error("transfer progress shown with no transfer")
	}

	t.Run("no call", func(t *testing.T) {
		html := render(t, fragmentCtx(), CallPanel(callflow.AgentView{Me: alice}))
		assertSwappable(t, html, "call", EventCall)
		doc := parse(t, html)
		if got := text(one(t, doc, "no-call")); got != "No call" {
			t.Errorf("placeholder = %q", got)
		}
	})
}

func TestCallPanelLeaveNeedsAColleague(t *testing.T) {
	tests := []struct {
		name      string
		call      *callflow.CallSummary
		wantLeave bool
	}{
		{name: "alone with the caller", call: answeredCall(), wantLeave: false},
		{name: "colleague ringing", call: transferringCall(models.TransferRinging, models.LegRinging), wantLeave: false},
		{name: "colleague joined", call: transferringCall(models.TransferJoined, models.LegJoined), wantLeave: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := renderDoc(t, fragmentCtx(), CallPanel(callflow.AgentView{Me: alice, Call: tt.call, Colleagues: colleagues()}))
			_, disabled := one(t, doc, "leave-button").Attr("disabled")
			if disabled == tt.wantLeave {
				t.Errorf("leave disabled = %v, want %v", disabled, !tt.wantLeave)
			}
			if hint := byTestID(doc, "leave-hint").Length() == 1; hint == tt.wantLeave {
				t.Errorf("leave hint shown = %v, want %v", hint, !tt.wantLeave)
			}
		})
	}
}

func TestCallPanelTransferProgress(t *testing.T) {
	tests := []struct {
		name         string
		me           callflow.AgentSummary
		transfer     models.TransferState
		leg          models.LegState
		wantText     string
		wantSelectOK bool // a new transfer can be started
	}{
		{name: "ringing the colleague", me: alice, transfer: models.TransferRinging, leg: models.LegRinging, wantText: "Ringing Bob Brown…"},
		{name: "colleague joined", me: alice, transfer: models.TransferJoined, leg: models.LegJoined, wantText: "Bob Brown joined — you may leave now"},
		{name: "colleague declined", me: alice, transfer: models.TransferDeclined, leg: models.LegDeclined, wantText: "Bob Brown declined", wantSelectOK: true},
		{name: "colleague did not answer", me: alice, transfer: models.TransferNoAnswer, leg: models.LegNoAnswer, wantText: "Bob Brown did not answer", wantSelectOK: true},
		{name: "colleague unreachable", me: alice, transfer: models.TransferFailed, leg: models.LegFailed, wantText: "Could not reach Bob Brown", wantSelectOK: true},
		{name: "seen by the colleague who joined", me: bob, transfer: models.TransferJoined, leg: models.LegJoined, wantText: "You joined Alice Adams's call — Alice Adams can leave now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := callflow.AgentView{Me: tt.me, Call: transferringCall(tt.transfer, tt.leg), Colleagues: colleagues()}
			doc := renderDoc(t, fragmentCtx(), CallPanel(v))
			if got := text(one(t, doc, "transfer-progress")); got != tt.wantText {
				t.Errorf("progress = %q, want %q", got, tt.wantText)
			}
			_, disabled := one(t, doc, "transfer-button").Attr("disabled")
			if disabled == tt.wantSelectOK {
				t.Errorf("transfer button disabled = %v, want %v", disabled, !tt.wantSelectOK)
			}
		})
	}
}

func TestRoster(t *testing.T) {
	doc := renderDoc(t, fragmentCtx(), Roster(callflow.AgentView{Me: alice, Colleagues: colleagues()}))
	for _, a := range colleagues() {
		row := one(t, doc, "roster-"+a.Identity)
		if !strings.Contains(text(row), a.Name) {
			t.Errorf("roster row %s = %q", a.Identity, text(row))
		}
		badge := row.Find(".badge")
		if !badge.HasClass("badge-"+string(a.Presence)) || text(badge) != string(a.Presence) {
			t.Errorf("roster %s badge = %q (class %q), want %s", a.Identity, text(badge), badge.AttrOr("class", ""), a.Presence)
		}
	}
	if got := text(one(t, doc, "roster-available")); got != "1 available" {
		t.Errorf("available count = %q", got)
	}
}

func TestClockStopsAtUntil(t *testing.T) {
	since := testNow.Add(-10 * time.Minute)
	doc := renderDoc(t, fragmentCtx(), clock(since, testNow.Add(-8*time.Minute), "c"))
	c := one(t, doc, "c")
	if got := attr(t, c, "data-until"); got != timestamp(testNow.Add(-8*time.Minute)) {
		t.Errorf("data-until = %q", got)
	}
	if got := text(c); got != "2:00" {
		t.Errorf("stopped clock = %q, want 2:00", got)
	}
}

func TestCallPanelShowsHold(t *testing.T) {
	c := transferringCall(models.TransferJoined, models.LegJoined)
	c.CustomerOnHold = true
	c.Participants[1].Hold = true
	doc := renderDoc(t, fragmentCtx(), CallPanel(callflow.AgentView{Me: alice, Call: c, Colleagues: colleagues()}))
	tests := []struct{ testid, want string }{
		{testid: "participant-customer", want: "Jane Doe caller on hold"},
		{testid: "participant-alice", want: "Alice Adams (you) agent on the call"},
		{testid: "participant-bob", want: "Bob Brown colleague on the call, on hold"},
	}
	for _, tt := range tests {
		if got := text(one(t, doc, tt.testid)); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.testid, got, tt.want)
		}
	}
}
