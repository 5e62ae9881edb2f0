package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// boardFragment parses the HTML fragment an SSE event carries.
func boardFragment(t *testing.T, ev apptest.SSEEvent) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(ev.Data))
	if err != nil {
		t.Fatalf("parsing the %s fragment: %v", ev.Event, err)
	}
	return doc
}

// byTestID finds the elements with a data-testid inside sel.
func byTestID(sel interface {
	Find(string) *goquery.Selection
}, testid string) *goquery.Selection {
	return sel.Find(`[data-testid="` + testid + `"]`)
}

// timelineTexts are a call's timeline steps in words, in the order shown.
func timelineTexts(sel interface {
	Find(string) *goquery.Selection
}, callID int64) []string {
	var out []string
	byTestID(sel, "timeline-"+strconv.FormatInt(callID, 10)).Find(`[data-testid="timeline-text"]`).Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.TrimSpace(s.Text()))
	})
	return out
}

// inOrder says whether want appear in got in this order (other steps may
// come between them).
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// transferCounts reads the transfer outcome counts the summary shows (an
// outcome that did not happen is not shown, and reads 0).
func transferCounts(t *testing.T, sel interface {
	Find(string) *goquery.Selection
}) map[string]int {
	t.Helper()
	counts := map[string]int{}
	byTestID(sel, "board-transfer-outcomes").Find("li").Each(func(_ int, s *goquery.Selection) {
		n, err := strconv.Atoi(s.AttrOr("data-count", ""))
		if err != nil {
			t.Errorf("transfer outcome %q has no count", s.Text())
		}
		counts[s.AttrOr("data-outcome", "")] = n
	})
	return counts
}

// untilFragments reads the stream until, for each event name in want, a
// fragment of that name has satisfied its check (in any order: one change
// pushes all the board's fragments). It reports the names never satisfied,
// with the last fragment of each.
func untilFragments(t *testing.T, s *apptest.Stream, want map[string]func(*goquery.Document) bool) map[string]string {
	t.Helper()
	missing := map[string]string{}
	for name := range want {
		missing[name] = "(none)"
	}
	for len(missing) > 0 {
		ev, ok := s.Next()
		if !ok {
			return missing
		}
		check, wanted := want[ev.Event]
		if _, open := missing[ev.Event]; !wanted || !open {
			continue
		}
		if check(boardFragment(t, ev)) {
			delete(missing, ev.Event)
		} else {
			missing[ev.Event] = ev.Data
		}
	}
	return nil
}

// TestBoardShowsTodayLive drives a day's worth of calls through the
// simulator and checks what the manager's board shows, on the page and in
// the fragments its stream pushes: the service level (one call answered in
// time, one caller who gave up after the target, one who hung up within it
// and is not counted), transfers by outcome (one declined, one completed),
// each agent's state with the moment it began, and a call's timeline.
func TestBoardShowsTodayLive(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Timezone: zoneAwayFromMidnight(t, time.Now())})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	alice := env.SignIn("alice")
	env.SignIn("bob")
	maria := env.SignIn("maria")
	stream := maria.Stream(0)
	ctx := context.Background()
	db := env.App.DB

	waitCall := func(what string, id int64, cond func(c *models.Call) bool) {
		t.Helper()
		env.WaitDB(what, func(ctx context.Context) (bool, error) {
			c, err := models.CallByID(ctx, db, id)
			return err == nil && cond(c), err
		})
	}
	waitAvailable := func(identities ...string) {
		t.Helper()
		env.WaitDB(strings.Join(identities, " and ")+" available", func(ctx context.Context) (bool, error) {
			for _, id := range identities {
				a, err := models.AgentByIdentity(ctx, db, id)
				if err != nil || a.Presence != models.PresenceAvailable {
					return false, err
				}
			}
			return true, nil
		})
	}
	waitTransfer := func(what string, callID int64, state models.TransferState) {
		t.Helper()
		env.WaitDB(what, func(ctx context.Context) (bool, error) {
			tr, err := models.LatestTransferForCall(ctx, db, callID)
			return err == nil && tr.State == state, err
		})
	}

	// The first caller is answered at once by Alice: in time.
	first := callBySIDWhenStored(t, env, env.PlaceCall("+15551230001"))
	env.SimAction(env.Ringing("alice"), "accept")
	waitCall("alice with the first caller", first.ID, func(c *models.Call) bool { return c.State == models.CallWithAgent })
	transfer := "/calls/" + strconv.FormatInt(first.ID, 10) + "/transfer"

	// Alice transfers to Bob, who declines.
	if status, body := alice.Post(transfer, url.Values{"to": {"bob"}}); status != http.StatusOK {
		t.Fatalf("transfer: %d %s", status, body)
	}
	bobLeg := env.Ringing("bob")
	// While Bob's phone rings the board shows him busy, since the moment
	// he was rung, and the call's timeline has the transfer.
	bob, err := models.AgentByIdentity(ctx, db, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stream.Until(func(ev apptest.SSEEvent) bool {
		if ev.Event != "board-agents" {
			return false
		}
		row := byTestID(boardFragment(t, ev), "agent-row-bob")
		since := byTestID(row, "agent-since").AttrOr("data-since", "")
		return row.AttrOr("data-presence", "") == string(models.PresenceBusy) && since == bob.PresenceSince.UTC().Format(time.RFC3339)
	}); !ok {
		t.Fatalf("no board-agents fragment showing bob busy since %s", bob.PresenceSince.UTC().Format(time.RFC3339))
	}
	env.SimAction(bobLeg, "reject")
	waitTransfer("the transfer declined", first.ID, models.TransferDeclined)
	if missing := untilFragments(t, stream, map[string]func(*goquery.Document) bool{
		"board-calls": func(doc *goquery.Document) bool {
			return inOrder(timelineTexts(doc, first.ID), []string{
				"Called, waiting for an agent", "Rang Alice Archer", "Alice Archer answered",
				"Alice Archer transferring to Bob Baker", "Transfer to Bob Baker declined",
			})
		},
		"board-summary": func(doc *goquery.Document) bool { return transferCounts(t, doc)["declined"] == 1 },
	}); missing != nil {
		t.Fatalf("the stream never showed the declined transfer; the last fragments: %v", missing)
	}

	// Alice transfers to Bob again; he answers and she leaves.
	waitAvailable("bob")
	if status, body := alice.Post(transfer, url.Values{"to": {"bob"}}); status != http.StatusOK {
		t.Fatalf("second transfer: %d %s", status, body)
	}
	env.SimAction(env.Ringing("bob"), "accept")
	waitTransfer("the second transfer joined", first.ID, models.TransferJoined)
	if status, body := alice.Post("/calls/"+strconv.FormatInt(first.ID, 10)+"/leave", nil); status != http.StatusOK {
		t.Fatalf("leave: %d %s", status, body)
	}
	waitTransfer("the second transfer completed", first.ID, models.TransferCompleted)
	env.SimAction(first.CallSID, "hangup")
	waitCall("the first call ended", first.ID, func(c *models.Call) bool { return c.State == models.CallEnded })
	waitAvailable("alice", "bob")

	// The second caller has waited longer than the target (the call is
	// made to look 30 s older) and gives up: missed.
	second := callBySIDWhenStored(t, env, env.PlaceCall("+15551230002"))
	second.CreatedAt = second.CreatedAt.Add(-30 * time.Second)
	if err := models.UpdateCall(ctx, db, second, "created_at"); err != nil {
		t.Fatal(err)
	}
	env.SimAction(second.CallSID, "hangup")
	waitCall("the second call ended", second.ID, func(c *models.Call) bool { return c.State == models.CallEnded })
	waitAvailable("alice", "bob")

	// The third hangs up at once, within the target: not counted.
	third := callBySIDWhenStored(t, env, env.PlaceCall("+15551230003"))
	env.SimAction(third.CallSID, "hangup")
	waitCall("the third call ended", third.ID, func(c *models.Call) bool { return c.State == models.CallEnded })
	waitAvailable("alice", "bob")

	const (
		wantLevel  = "50%"
		wantDetail = "1 of 2 within 20 s · 3 calls today"
	)
	wantTransfers := map[string]int{"completed": 1, "declined": 1, "no_answer": 0, "failed": 0, "canceled": 0, "in_progress": 0}
	wantTimeline := []string{
		"Called, waiting for an agent",
		"Rang Alice Archer",
		"Alice Archer answered",
		"Alice Archer transferring to Bob Baker",
		"Transfer to Bob Baker declined",
		"Alice Archer transferring to Bob Baker",
		"Bob Baker joined",
		"Transferred from Alice Archer to Bob Baker",
		"Alice Archer left",
		"Caller hung up",
	}

	// The stream brings the board up to date.
	if missing := untilFragments(t, stream, map[string]func(*goquery.Document) bool{
		"board-summary": func(doc *goquery.Document) bool {
			return strings.TrimSpace(byTestID(doc, "board-service-level").Text()) == wantLevel &&
				strings.TrimSpace(byTestID(doc, "board-service-level-detail").Text()) == wantDetail &&
				transferCounts(t, doc)["completed"] == 1
		},
		"board-ended": func(doc *goquery.Document) bool {
			return inOrder(timelineTexts(doc, first.ID), wantTimeline) && len(timelineTexts(doc, third.ID)) > 0
		},
	}); missing != nil {
		t.Errorf("the stream never brought the board up to date; the last fragments: %v", missing)
	}

	// The page shows the same.
	page := maria.Page("/board")
	summary := byTestID(page, "board-summary")
	if got := strings.TrimSpace(byTestID(summary, "board-service-level").Text()); got != wantLevel {
		t.Errorf("service level = %q, want %q", got, wantLevel)
	}
	if got := strings.TrimSpace(byTestID(summary, "board-service-level-detail").Text()); got != wantDetail {
		t.Errorf("service level detail = %q, want %q", got, wantDetail)
	}
	legend := byTestID(summary, "board-service-level-card").AttrOr("title", "")
	for _, want := range []string{"within 20 s", "hung up after waiting more than 20 s", "not counted"} {
		if !strings.Contains(legend, want) {
			t.Errorf("the service level's tooltip %q does not say %q", legend, want)
		}
	}
	if got := strings.TrimSpace(byTestID(summary, "board-service-level-legend").Text()); got != legend {
		t.Errorf("the service level's legend %q is not its definition %q", got, legend)
	}
	if got := strings.TrimSpace(byTestID(summary, "board-transfers").Text()); got != "2" {
		t.Errorf("transfers today = %q, want 2", got)
	}
	got := transferCounts(t, summary)
	for outcome, want := range wantTransfers {
		if got[outcome] != want {
			t.Errorf("transfers %s = %d, want %d", outcome, got[outcome], want)
		}
	}
	if text := strings.TrimSpace(byTestID(summary, "transfers-completed").Text()); text != "1 completed" {
		t.Errorf("completed transfers read %q", text)
	}

	for _, identity := range []string{"alice", "bob"} {
		a, err := models.AgentByIdentity(ctx, db, identity)
		if err != nil {
			t.Fatal(err)
		}
		row := byTestID(page, "agent-row-"+identity)
		if got := strings.TrimSpace(byTestID(row, "agent-presence").Text()); got != "available" {
			t.Errorf("%s's state = %q, want available", identity, got)
		}
		since := byTestID(row, "agent-since")
		if got, want := since.AttrOr("data-since", ""), a.PresenceSince.UTC().Format(time.RFC3339); got != want {
			t.Errorf("%s's state since %q, want %q", identity, got, want)
		}
		if strings.TrimSpace(since.Text()) == "" {
			t.Errorf("%s's time in state is empty", identity)
		}
	}

	steps := byTestID(page, "timeline-"+strconv.FormatInt(first.ID, 10)).Find(`[data-testid="timeline-step"]`)
	var texts []string
	var last time.Time
	steps.Each(func(i int, s *goquery.Selection) {
		texts = append(texts, strings.TrimSpace(byTestID(s, "timeline-text").Text()))
		at, err := time.Parse(time.RFC3339, s.Find("time").AttrOr("datetime", ""))
		if err != nil {
			t.Errorf("step %d has no time: %v", i, err)
		}
		if at.Before(last) {
			t.Errorf("step %d (%s) at %s comes before the step above it (%s)", i, texts[i], at, last)
		}
		last = at
		if off := strings.TrimSpace(s.Find("time").Text()); !strings.HasPrefix(off, "+") {
			t.Errorf("step %d shows %q, want an offset into the call", i, off)
		}
	})
	// In order, from the call to its end; nothing else is asserted between
	// the steps, so a new kind of step does not break this test.
	if len(texts) == 0 || !inOrder(texts, wantTimeline) || texts[0] != wantTimeline[0] || texts[len(texts)-1] != wantTimeline[len(wantTimeline)-1] {
		t.Errorf("the first call's timeline:\n  %s\nwant, in this order:\n  %s", strings.Join(texts, "\n  "), strings.Join(wantTimeline, "\n  "))
	}
	if got := timelineTexts(page, second.ID); !inOrder(got, []string{"Called, waiting for an agent", "Caller hung up"}) {
		t.Errorf("the second call's timeline = %q", got)
	}
}

// callBySIDWhenStored waits for the app to store a customer's call.
func callBySIDWhenStored(t *testing.T, env *apptest.Env, sid string) *models.Call {
	t.Helper()
	var c *models.Call
	env.WaitDB("call "+sid+" stored", func(ctx context.Context) (bool, error) {
		var err error
		c, err = models.CallBySID(ctx, env.App.DB, sid)
		return err == nil, err
	})
	return c
}

// zoneAwayFromMidnight names a time zone in which now is far from
// midnight, so the board's day cannot change while a test runs: UTC, or
// twelve hours off it near midnight UTC.
func zoneAwayFromMidnight(t *testing.T, now time.Time) string {
	t.Helper()
	for _, name := range []string{"UTC", "Etc/GMT+12"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		local := now.In(loc)
		sinceMidnight := time.Duration(local.Hour())*time.Hour + time.Duration(local.Minute())*time.Minute
		if sinceMidnight > time.Hour && sinceMidnight < 23*time.Hour {
			return name
		}
	}
	t.Fatalf("no zone away from midnight at %v", now)
	return ""
}
