package views

import (
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

func TestBoardPage(t *testing.T) {
	doc := renderDoc(t, requestCtx(&mia, false), BoardPage(sampleBoard()))
	html, _ := doc.Html()
	assertSlots(t, html, EventBoardSummary, EventBoardCalls, EventBoardAgents, EventBoardEnded)
	board := one(t, doc, "board")
	if attr(t, board, "hx-ext") != "sse" || attr(t, board, "sse-connect") != "/events?last=0" {
		t.Errorf("board wrapper: hx-ext=%q sse-connect=%q", board.AttrOr("hx-ext", ""), board.AttrOr("sse-connect", ""))
	}
	for _, id := range []string{"board-summary", "board-calls", "board-agents", "board-ended"} {
		if n := board.Find("#" + id).Length(); n != 1 {
			t.Errorf("#%s inside the SSE wrapper: found %d, want 1", id, n)
		}
	}
	for _, src := range scriptSources(doc) {
		if strings.Contains(src, "twilio") || strings.Contains(src, "phone.js") {
			t.Errorf("the board loads %s", src)
		}
	}
	if got := attr(t, one(t, doc, "nav-board"), "aria-current"); got != "page" {
		t.Errorf("board nav link aria-current = %q", got)
	}
}

func TestBoardFragmentsAreSwappable(t *testing.T) {
	boards := []struct {
		name string
		v    callflow.BoardView
	}{
		{name: "quiet", v: callflow.BoardView{}},
		{name: "busy", v: sampleBoard()},
	}
	wantIDs := map[string]string{EventBoardSummary: "board-summary", EventBoardCalls: "board-calls", EventBoardAgents: "board-agents", EventBoardEnded: "board-ended"}
	for _, tb := range boards {
		t.Run(tb.name, func(t *testing.T) {
			frags := BoardFragments(tb.v)
			if len(frags) != len(wantIDs) {
				t.Fatalf("BoardFragments: %d fragments, want %d", len(frags), len(wantIDs))
			}
			for _, f := range frags {
				assertSwappable(t, render(t, fragmentCtx(), f.Component), wantIDs[f.Event], f.Event)
			}
		})
	}
}

func TestBoardSummary(t *testing.T) {
	t.Run("callers waiting", func(t *testing.T) {
		doc := renderDoc(t, fragmentCtx(), BoardSummary(sampleBoard()))
		want := map[string]string{"board-waiting": "1", "board-longest-wait": "2:00", "board-active": "2", "board-available": "1"}
		for id, w := range want {
			if got := text(one(t, doc, id)); got != w {
				t.Errorf("%s = %q, want %q", id, got, w)
			}
		}
		if got := attr(t, one(t, doc, "board-longest-wait"), "data-since"); got != timestamp(testNow.Add(-2*60e9)) {
			t.Errorf("longest wait data-since = %q", got)
		}
	})
	t.Run("nobody waiting", func(t *testing.T) {
		doc := renderDoc(t, fragmentCtx(), BoardSummary(callflow.BoardView{}))
		wait := one(t, doc, "board-longest-wait")
		if _, ticking := wait.Attr("data-since"); ticking || text(wait) != "—" {
			t.Errorf("longest wait with nobody waiting = %q (ticking %v)", text(wait), ticking)
		}
	})
}

func TestActiveCalls(t *testing.T) {
	v := sampleBoard()
	doc := renderDoc(t, fragmentCtx(), ActiveCalls(v))

	tests := []struct {
		id           string
		wantCaller   string
		wantNumber   string
		wantState    string
		wantBadge    string
		wantAgents   string
		wantWait     string
		wantWaitStop bool
		wantTalk     string
	}{
		{id: "9", wantCaller: "Sam Queue", wantNumber: "+15551230009", wantState: "waiting", wantBadge: "badge-waiting", wantAgents: "—", wantWait: "2:00", wantTalk: "—"},
		{id: "7", wantCaller: "Jane Doe", wantNumber: "+15551230001", wantState: "with agent", wantBadge: "badge-with-agent", wantAgents: "Alice Adams", wantWait: "0:30", wantWaitStop: true, wantTalk: "1:00"},
	}
	for _, tt := range tests {
		t.Run("call "+tt.id, func(t *testing.T) {
			row := one(t, doc, "call-row-"+tt.id)
			in := func(testid string) string { return text(row.Find(`[data-testid="` + testid + `"]`)) }
			if got := in("caller-name"); got != tt.wantCaller {
				t.Errorf("caller = %q, want %q", got, tt.wantCaller)
			}
			if got := in("caller-number"); got != tt.wantNumber {
				t.Errorf("number = %q, want %q", got, tt.wantNumber)
			}
			state := row.Find(`[data-testid="call-state"]`)
			if text(state) != tt.wantState || !state.HasClass(tt.wantBadge) {
				t.Errorf("state = %q (class %q), want %q (%s)", text(state), state.AttrOr("class", ""), tt.wantState, tt.wantBadge)
			}
			if got := in("call-agents"); got != tt.wantAgents {
				t.Errorf("agents = %q, want %q", got, tt.wantAgents)
			}
			wait := row.Find(`[data-testid="wait-time"]`)
			if got := text(wait); got != tt.wantWait {
				t.Errorf("waiting = %q, want %q", got, tt.wantWait)
			}
			if _, stops := wait.Attr("data-until"); stops != tt.wantWaitStop {
				t.Errorf("waiting clock stops = %v, want %v", stops, tt.wantWaitStop)
			}
			if got := in("talk-time"); got != tt.wantTalk {
				t.Errorf("talk time = %q, want %q", got, tt.wantTalk)
			}
		})
	}

	t.Run("every state in words", func(t *testing.T) {
		words := map[models.CallState]string{
			models.CallQueued: "waiting", models.CallRinging: "ringing", models.CallWithAgent: "with agent",
			models.CallTransferring: "transferring", models.CallEnded: "ended",
		}
		for state, want := range words {
			c := *answeredCall()
			c.State = state
			doc := renderDoc(t, fragmentCtx(), ActiveCalls(callflow.BoardView{Active: []callflow.CallSummary{c}}))
			if got := text(doc.Find(`[data-testid="call-row-7"] [data-testid="call-state"]`)); got != want {
				t.Errorf("%s shows as %q, want %q", state, got, want)
			}
		}
	})

	t.Run("no calls", func(t *testing.T) {
		doc := renderDoc(t, fragmentCtx(), ActiveCalls(callflow.BoardView{}))
		one(t, doc, "no-active-calls")
	})
}

func TestAgentList(t *testing.T) {
	doc := renderDoc(t, fragmentCtx(), AgentList(sampleBoard()))
	tests := []struct {
		identity     string
		wantPresence string
		wantSince    string
		wantCall     string
	}{
		{identity: "alice", wantPresence: "busy", wantSince: "3:00", wantCall: "Jane Doe +15551230001"},
		{identity: "bob", wantPresence: "available", wantSince: "10:00", wantCall: "—"},
		{identity: "carol", wantPresence: "wrap-up", wantSince: "0:15", wantCall: "—"},
		{identity: "mia", wantPresence: "offline", wantSince: "2:00:00", wantCall: "—"},
	}
	for _, tt := range tests {
		t.Run(tt.identity, func(t *testing.T) {
			row := one(t, doc, "agent-row-"+tt.identity)
			if got := text(row.Find(`[data-testid="agent-presence"]`)); got != tt.wantPresence {
				t.Errorf("presence = %q, want %q", got, tt.wantPresence)
			}
			if got := text(row.Find(`[data-testid="agent-since"]`)); got != tt.wantSince {
				t.Errorf("in state = %q, want %q", got, tt.wantSince)
			}
			if got := text(row.Find(`[data-testid="agent-call"]`)); got != tt.wantCall {
				t.Errorf("current call = %q, want %q", got, tt.wantCall)
			}
		})
	}
}

func TestEndedCalls(t *testing.T) {
	v := sampleBoard()
	doc := renderDoc(t, fragmentCtx(), EndedCalls(v))
	row := one(t, doc, "ended-row-5")
	want := map[string]string{
		"caller-name": "Eve Ended", "caller-number": "+15551230005", "duration": "5:00",
		"ended-by": "Carol Chen", "end-reason": "Last agent left", "ended-at": "13:35 UTC",
	}
	for id, w := range want {
		if got := text(row.Find(`[data-testid="` + id + `"]`)); got != w {
			t.Errorf("%s = %q, want %q", id, got, w)
		}
	}

	t.Run("who ended it", func(t *testing.T) {
		tests := []struct{ by, want string }{
			{by: "customer", want: "Caller"},
			{by: "agent", want: "An agent"},
			{by: "alice", want: "Alice Adams"},
			{by: "gone", want: "gone"},
			{by: "", want: "—"},
		}
		for _, tt := range tests {
			if got := endedBy(v, tt.by); got != tt.want {
				t.Errorf("endedBy(%q) = %q, want %q", tt.by, got, tt.want)
			}
		}
	})

	t.Run("none today", func(t *testing.T) {
		doc := renderDoc(t, fragmentCtx(), EndedCalls(callflow.BoardView{}))
		one(t, doc, "no-ended-calls")
	})
}
