package views

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// testNow is the fixed clock the components render elapsed times against.
var testNow = time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)

// routes registers the app's route names on a real Echo router, so that the
// components are checked against Echo's own Reverse.
func routes() *echo.Echo {
	e := echo.New()
	h := func(echo.Context) error { return nil }
	e.GET("/", h).Name = "home"
	e.GET("/signin", h).Name = "auth.signin"
	e.POST("/signin", h).Name = "auth.signin.post"
	e.POST("/signout", h).Name = "auth.signout"
	e.POST("/token", h).Name = "auth.token"
	e.GET("/agent", h).Name = "agent.console"
	e.POST("/presence", h).Name = "agent.presence"
	e.POST("/calls/:id/transfer", h).Name = "calls.transfer"
	e.POST("/calls/:id/leave", h).Name = "calls.leave"
	e.POST("/calls/:id/hangup", h).Name = "calls.hangup"
	e.POST("/calls/:id/consult", h).Name = "calls.consult"
	e.POST("/calls/:id/complete", h).Name = "calls.complete"
	e.POST("/calls/:id/threeway", h).Name = "calls.threeway"
	e.POST("/calls/:id/cancel", h).Name = "calls.cancel"
	e.POST("/calls/:id/blind", h).Name = "calls.blind"
	e.POST("/calls/:id/queue", h).Name = "calls.queue"
	e.POST("/calls/:id/listen", h).Name = "calls.listen"
	e.POST("/calls/:id/coach", h).Name = "calls.coach"
	e.POST("/calls/:id/unmonitor", h).Name = "calls.unmonitor"
	e.GET("/board", h).Name = "board"
	e.GET("/events", h).Name = "events"
	e.GET("/static/*", h).Name = "static"
	e.GET("/sim", h).Name = "sim.console"
	e.GET("/admin/agents", h).Name = "admin.agents"
	e.POST("/admin/agents", h).Name = "admin.agents.add"
	e.POST("/admin/agents/:identity/disable", h).Name = "admin.agents.disable"
	e.POST("/admin/agents/:identity/enable", h).Name = "admin.agents.enable"
	e.POST("/admin/agents/:identity/reset", h).Name = "admin.agents.reset"
	return e
}

var (
	alice = callflow.AgentSummary{ID: 1, Identity: "alice", Name: "Alice Adams", Role: models.RoleAgent, Presence: models.PresenceBusy, PresenceSince: testNow.Add(-3 * time.Minute)}
	bob   = callflow.AgentSummary{ID: 2, Identity: "bob", Name: "Bob Brown", Role: models.RoleAgent, Presence: models.PresenceAvailable, PresenceSince: testNow.Add(-10 * time.Minute)}
	carol = callflow.AgentSummary{ID: 3, Identity: "carol", Name: "Carol Chen", Role: models.RoleAgent, Presence: models.PresenceBusy, PresenceSince: testNow.Add(-1 * time.Minute), CallID: 8}
	dave  = callflow.AgentSummary{ID: 4, Identity: "dave", Name: "Dave Diaz", Role: models.RoleAgent, Presence: models.PresenceAway, PresenceSince: testNow.Add(-1 * time.Hour)}
	mia   = callflow.AgentSummary{ID: 5, Identity: "mia", Name: "Mia Moreno", Role: models.RoleManager, Presence: models.PresenceOffline, PresenceSince: testNow.Add(-2 * time.Hour)}
)

// requestCtx is a context as a handler builds it for the signed-in agent.
func requestCtx(agent *callflow.AgentSummary, simulator bool) context.Context {
	e := routes()
	ctx := WithRequest(context.Background(), RequestData{Reverse: e.Reverse, CSRF: "csrf-token-123", Simulator: simulator, Agent: agent})
	return withClock(ctx, func() time.Time { return testNow })
}

// fragmentCtx is a context as the SSE broker builds it: URL reversal only.
func fragmentCtx() context.Context {
	e := routes()
	ctx := WithRequest(context.Background(), RequestData{Reverse: e.Reverse})
	return withClock(ctx, func() time.Time { return testNow })
}

func render(t *testing.T, ctx context.Context, c templ.Component) string {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(ctx, &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	return buf.String()
}

func parse(t *testing.T, html string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

func renderDoc(t *testing.T, ctx context.Context, c templ.Component) *goquery.Document {
	t.Helper()
	return parse(t, render(t, ctx, c))
}

// byTestID finds elements by data-testid.
func byTestID(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

// one asserts exactly one element matches and returns it.
func one(t *testing.T, doc *goquery.Document, testid string) *goquery.Selection {
	t.Helper()
	s := byTestID(doc, testid)
	if s.Length() != 1 {
		t.Fatalf("want one [data-testid=%q], found %d", testid, s.Length())
	}
	return s
}

func text(s *goquery.Selection) string {
	return strings.Join(strings.Fields(s.Text()), " ")
}

func attr(t *testing.T, s *goquery.Selection, name string) string {
	t.Helper()
	v, ok := s.Attr(name)
	if !ok {
		t.Fatalf("element %s has no %s attribute", goquery.NodeName(s), name)
	}
	return v
}

// Sample calls, relative to testNow.

// ringingCall is a caller waiting 1:30 whose call rings alice.
func ringingCall() *callflow.CallSummary {
	return &callflow.CallSummary{
		ID: 7, From: "+15551230001", CallerName: "Jane Doe", State: models.CallRinging,
		CreatedAt: testNow.Add(-90 * time.Second),
		Participants: []callflow.Participant{
			{LegID: 70, Identity: "alice", Name: "Alice Adams", Role: models.LegPrimary, State: models.LegRinging},
		},
	}
}

// answeredCall is alice talking with the caller for a minute, after 30 s
// of waiting.
func answeredCall() *callflow.CallSummary {
	c := ringingCall()
	c.State = models.CallWithAgent
	c.AnsweredAt = testNow.Add(-60 * time.Second)
	c.Owner = &alice
	c.Participants = []callflow.Participant{
		{LegID: 70, Identity: "alice", Name: "Alice Adams", Role: models.LegPrimary, State: models.LegJoined, JoinedAt: c.AnsweredAt},
	}
	return c
}

// transferringCall is answeredCall with a transfer to bob in the given state
// and bob's leg in legState.
func transferringCall(tr models.TransferState, leg models.LegState) *callflow.CallSummary {
	c := answeredCall()
	c.State = models.CallTransferring
	c.Participants = append(c.Participants, callflow.Participant{LegID: 71, Identity: "bob", Name: "Bob Brown", Role: models.LegColleague, State: leg})
	c.Transfer = &callflow.TransferSummary{ID: 3, FromIdentity: "alice", FromName: "Alice Adams", ToIdentity: "bob", ToName: "Bob Brown", State: tr}
	return c
}

func colleagues() []callflow.AgentSummary {
	return []callflow.AgentSummary{bob, carol, dave}
}

// sampleBoard is two active calls (one waiting, one with alice), agents,
// and one call that ended today.
func sampleBoard() callflow.BoardView {
	waiting := callflow.CallSummary{ID: 9, From: "+15551230009", CallerName: "Sam Queue", State: models.CallQueued, CreatedAt: testNow.Add(-2 * time.Minute)}
	talking := *answeredCall()
	ended := callflow.CallSummary{
		ID: 5, From: "+15551230005", CallerName: "Eve Ended", State: models.CallEnded,
		CreatedAt: testNow.Add(-time.Hour), AnsweredAt: testNow.Add(-time.Hour + 20*time.Second), EndedAt: testNow.Add(-time.Hour + 5*time.Minute),
		EndedBy: "carol", EndReason: "participant-with-end-conference-on-exit-left",
	}
	onCall := alice
	onCall.CallID = talking.ID
	return callflow.BoardView{
		Active:             []callflow.CallSummary{waiting, talking},
		EndedToday:         []callflow.CallSummary{ended},
		Agents:             []callflow.AgentSummary{onCall, bob, {ID: 3, Identity: "carol", Name: "Carol Chen", Role: models.RoleAgent, Presence: models.PresenceWrapUp, PresenceSince: testNow.Add(-15 * time.Second)}, dave, mia},
		Waiting:            1,
		OldestWaitingSince: waiting.CreatedAt,
	}
}

func goqueryNodeName(s *goquery.Selection) string { return goquery.NodeName(s) }

// scriptSources lists the src of every <script>, in order.
func scriptSources(doc *goquery.Document) []string {
	var out []string
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		out = append(out, s.AttrOr("src", "(inline)"))
	})
	return out
}
