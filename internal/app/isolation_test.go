package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestDeclinedCallIsNoLongerTheAgentsToFollow: an agent offered a call who
// declines it sees no more of it once a colleague takes it: not the
// colleague answering, not the call ending, not on reconnecting. Their own
// part (the offer, and missing it) is theirs.
func TestDeclinedCallIsNoLongerTheAgentsToFollow(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("carol", "Carol Clark", models.RoleAgent)
	// Alice, available longest, is offered the call first.
	alice := env.SignIn("alice")
	env.SignIn("bob")
	aliceStream := alice.Stream(0)
	const number = "+15553330003"
	customer := env.PlaceCall(number)
	env.SimAction(env.Ringing("alice"), "reject")
	env.SimAction(env.Ringing("bob"), "accept")
	env.WaitDB("bob on the call", func(ctx context.Context) (bool, error) {
		n, err := env.App.DB.NewSelect().Model((*models.Call)(nil)).Where("state = ?", models.CallWithAgent).Count(ctx)
		return n == 1, err
	})
	env.SimAction(customer, "hangup")
	env.WaitDB("the call ended", func(ctx context.Context) (bool, error) {
		n, err := env.App.DB.NewSelect().Model((*models.Call)(nil)).Where("state = ?", models.CallEnded).Count(ctx)
		return n == 1, err
	})

	ctx := context.Background()
	var call models.Call
	if err := env.App.DB.NewSelect().Model(&call).Where("from_number = ?", number).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var missed models.Event
	if err := env.App.DB.NewSelect().Model(&missed).
		Where("kind = ? AND call_id = ?", callflow.EventOfferMissed, call.ID).Scan(ctx); err != nil {
		t.Fatalf("alice's missed offer was not recorded: %v", err)
	}
	// After the call, one more change Alice sees: a colleague signing in.
	// Everything up to it has been sent to her by then.
	env.SignIn("carol")
	got, ok := aliceStream.Until(func(ev apptest.SSEEvent) bool {
		return carolAvailable(ev.Data)
	})
	if !ok {
		t.Fatal("alice never saw carol sign in")
	}
	leaks := func(what string, events []apptest.SSEEvent) {
		t.Helper()
		callAttr := `data-call-id="` + strconv.FormatInt(call.ID, 10) + `"`
		for _, ev := range events {
			if strings.Contains(ev.Data, number) || strings.Contains(ev.Data, callAttr) || strings.Contains(ev.Data, "Bob Baker answered") {
				t.Errorf("%s carried the call after she declined it, in %q (id %d): %s", what, ev.Event, ev.ID, ev.Data)
			}
		}
	}
	// Her own line about missing the offer is where her part ends.
	end := -1
	for i, ev := range got {
		if ev.Event == "activity" && ev.ID == missed.ID {
			end = i
		}
	}
	if end < 0 {
		t.Fatalf("alice's stream never told her she missed the offer (event %d)", missed.ID)
	}
	sawOffer := false
	for _, ev := range got[:end] {
		sawOffer = sawOffer || strings.Contains(ev.Data, number)
	}
	if !sawOffer {
		t.Fatal("alice's stream never offered her the call: the test proves nothing")
	}
	leaks("alice's live stream", got[end+1:])

	// Reconnecting from her missed offer replays nothing more of it.
	aliceStream.Close()
	replay := alice.Stream(missed.ID)
	got, ok = replay.Until(func(ev apptest.SSEEvent) bool {
		return carolAvailable(ev.Data)
	})
	if !ok {
		t.Fatal("alice's replayed stream never started")
	}
	leaks("alice's replayed stream", got)
	// And her console page, rendered now, has no trace of Bob's call.
	html, _ := alice.Page("/agent").Html()
	for _, later := range []string{"Ringing Bob Baker for " + number, "Bob Baker answered " + number, "Bob Baker joined the call with " + number} {
		if strings.Contains(html, later) {
			t.Errorf("alice's console page shows %q, which happened after she declined the call", later)
		}
	}
}

var carolsRosterItem = regexp.MustCompile(`<li[^>]*data-testid="roster-carol"[^>]*>`)

// carolAvailable reports whether a roster fragment shows Carol available,
// whatever the order of the item's attributes.
func carolAvailable(html string) bool {
	item := carolsRosterItem.FindString(html)
	return strings.Contains(item, `data-presence="available"`)
}

// TestTheColleagueFollowsATransferFromItsStart: a colleague a call is being
// transferred to takes part in it from the transfer's start: the line that
// says so reaches their stream, though they have not joined yet.
func TestTheColleagueFollowsATransferFromItsStart(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	alice := env.SignIn("alice")
	customer := env.PlaceCall("+15559990009")
	env.SimAction(env.Ringing("alice"), "accept")
	var call *models.Call
	env.WaitDB("alice with the caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, customer)
		call = c
		return err == nil && c.State == models.CallWithAgent, nil
	})
	bob := env.SignIn("bob")
	bobStream := bob.Stream(0)
	if status, body := alice.Post("/calls/"+strconv.FormatInt(call.ID, 10)+"/transfer", url.Values{"to": {"bob"}}); status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("transfer: %d %s", status, body)
	}
	var started models.Event
	env.WaitDB("the transfer started", func(ctx context.Context) (bool, error) {
		err := env.App.DB.NewSelect().Model(&started).Where("kind = ? AND call_id = ?", callflow.EventTransferStarted, call.ID).Scan(ctx)
		return err == nil, nil
	})
	if _, ok := bobStream.Until(func(ev apptest.SSEEvent) bool { return ev.Event == "activity" && ev.ID == started.ID }); !ok {
		t.Fatalf("bob never saw the transfer to him start (event %d)", started.ID)
	}
}
