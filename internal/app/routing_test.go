package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// setPresence posts an agent's presence from their console.
func setPresence(t *testing.T, c *apptest.Client, p models.Presence) {
	t.Helper()
	if status, body := c.Post("/presence", url.Values{"presence": {string(p)}}); status != http.StatusOK {
		t.Fatalf("%s setting %s: %d %s", c.Identity, p, status, body)
	}
}

// heard reports whether the simulator played text to the call (a Say).
func heard(st twiliosim.State, callSID, text string) bool {
	c, ok := st.Call(callSID)
	if !ok {
		return false
	}
	for _, w := range c.Webhooks {
		if w.Note == "hears say: "+text {
			return true
		}
	}
	return false
}

// ringingFor waits for identity's phone to ring and returns the leg and the
// customer's call it is for.
func ringingFor(t *testing.T, env *apptest.Env, identity string) (string, *models.Call) {
	t.Helper()
	sid := env.Ringing(identity)
	var call *models.Call
	env.WaitDB("the leg ringing "+identity+" stored", func(ctx context.Context) (bool, error) {
		leg, err := models.LegByCallSID(ctx, env.App.DB, sid)
		if err != nil {
			return false, err
		}
		call, err = models.CallByID(ctx, env.App.DB, leg.CallID)
		return err == nil, err
	})
	return sid, call
}

// presenceOf reads an agent as stored, presence included.
func presenceOf(t *testing.T, env *apptest.Env, identity string) *models.Agent {
	t.Helper()
	a, err := models.AgentByIdentity(context.Background(), env.App.DB, identity)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCallersWaitInOrderHearingTheirPlace: with nobody free, callers queue
// in the order they called and each hears their place in line; agents
// becoming free take them oldest first.
func TestCallersWaitInOrderHearingTheirPlace(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	alice, bob := env.SignIn("alice"), env.SignIn("bob")
	setPresence(t, alice, models.PresenceAway)
	setPresence(t, bob, models.PresenceAway)

	places := []string{"You are next in line.", "You are number 2 in line.", "You are number 3 in line."}
	var customers []string
	for i, place := range places {
		c := env.PlaceCall("+1555123000" + string(rune('1'+i)))
		customers = append(customers, c)
		env.WaitSim("caller "+c+" told their place", func(st twiliosim.State) bool {
			cs, _ := st.Call(c)
			return heard(st, c, place) && strings.Contains(cs.Hearing, "BusyStrings")
		})
	}
	// The page says who waits, in order.
	for _, c := range customers {
		if got := callBySID(t, env, c).State; got != models.CallQueued {
			t.Fatalf("caller %s is %s, want queued", c, got)
		}
	}

	// Bob comes back first: he gets the caller who has waited longest.
	setPresence(t, bob, models.PresenceAvailable)
	bobLeg, call := ringingFor(t, env, "bob")
	if call.CallSID != customers[0] {
		t.Fatalf("bob was offered %s, want the first caller %s", call.CallSID, customers[0])
	}
	env.SimAction(bobLeg, "accept")
	setPresence(t, alice, models.PresenceAvailable)
	aliceLeg, call := ringingFor(t, env, "alice")
	if call.CallSID != customers[1] {
		t.Fatalf("alice was offered %s, want the second caller %s", call.CallSID, customers[1])
	}
	env.SimAction(aliceLeg, "accept")

	// The third caller still waits, now first in line: a caller coming
	// back to the wait music hears the new place.
	if pos, err := env.App.Service.QueuePosition(context.Background(), customers[2]); err != nil || pos != 1 {
		t.Fatalf("third caller's place = %d, %v; want 1", pos, err)
	}
	// Whoever is free first takes them: bob's caller hangs up.
	env.SimAction(customers[0], "hangup")
	bobLeg, call = ringingFor(t, env, "bob")
	if call.CallSID != customers[2] {
		t.Fatalf("bob was offered %s, want the third caller %s", call.CallSID, customers[2])
	}
	env.SimAction(bobLeg, "accept")
	env.WaitDB("every caller with an agent or gone", func(ctx context.Context) (bool, error) {
		n, err := env.App.DB.NewSelect().Model((*models.Call)(nil)).Where("state = ?", models.CallQueued).Count(ctx)
		return n == 0, err
	})
}

// TestQueuePlacesFollowEveryChange: the places callers hear stay right
// through every change of the queue, whether they are answered from the
// snapshot of the queue or counted while the snapshot is stale, and for
// long enough after each change that the snapshot is read again.
func TestQueuePlacesFollowEveryChange(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")
	setPresence(t, alice, models.PresenceAway)

	var callers []string
	for i := range 4 {
		c := env.PlaceCall(fmt.Sprintf("+155512300%02d", i))
		callBySIDWhenStored(t, env, c)
		callers = append(callers, c)
	}
	// wantPlaces asks for every caller's place, again and again until the
	// snapshot of the queue has been read anew after the last change.
	wantPlaces := func(what string, want map[string]int) {
		t.Helper()
		since := time.Now()
		for time.Since(since) < 3*callflowQueueReadInterval {
			for _, c := range callers {
				got, err := env.App.Service.QueuePosition(t.Context(), c)
				if err != nil || got != want[c] {
					t.Fatalf("%s: place of %s = %d, %v; want %d", what, c, got, err, want[c])
				}
			}
		}
	}
	wantPlaces("four waiting", map[string]int{callers[0]: 1, callers[1]: 2, callers[2]: 3, callers[3]: 4})

	// The second caller hangs up.
	env.SimAction(callers[1], "hangup")
	env.WaitDB("the second caller's call ended", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, callers[1])
		return err == nil && c.State == models.CallEnded, err
	})
	wantPlaces("second hung up", map[string]int{callers[0]: 1, callers[2]: 2, callers[3]: 3})

	// Alice takes the first.
	setPresence(t, alice, models.PresenceAvailable)
	leg, call := ringingFor(t, env, "alice")
	if call.CallSID != callers[0] {
		t.Fatalf("alice was offered %s, want %s", call.CallSID, callers[0])
	}
	wantPlaces("first being rung", map[string]int{callers[2]: 1, callers[3]: 2})
	env.SimAction(leg, "accept")
	wantPlaces("first with alice", map[string]int{callers[2]: 1, callers[3]: 2})
}

// TestQueuePlacesFollowWritesElsewhere: a change to the queue that this
// instance did not make (another instance's offer, on PostgreSQL) reaches
// the places callers hear within the snapshot's age limit.
func TestQueuePlacesFollowWritesElsewhere(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	setPresence(t, env.SignIn("alice"), models.PresenceAway)
	// The second caller rings once the first is stored: two calls placed
	// together reach the app in either order.
	first := env.PlaceCall("+15551230001")
	callBySIDWhenStored(t, env, first)
	second := env.PlaceCall("+15551230002")
	callBySIDWhenStored(t, env, second)
	for _, c := range []string{first, second} {
		env.WaitSim("caller "+c+" hearing the wait music", func(st twiliosim.State) bool {
			cs, _ := st.Call(c)
			return strings.Contains(cs.Hearing, "BusyStrings")
		})
	}
	// Until the callbacks of their joining have been applied and a
	// snapshot of the queue has been read after the last of them.
	settled := time.Now()
	deadline := settled.Add(apptest.WaitLimit)
	seen := map[int]int{}
	for time.Since(settled) < 3*callflowQueueReadInterval {
		pos, err := env.App.Service.QueuePosition(t.Context(), second)
		if err != nil {
			t.Fatal(err)
		}
		seen[pos]++
		if pos != 2 {
			settled = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second caller's place never stayed 2 for %s: places answered (place: times) %v", 3*callflowQueueReadInterval, seen)
		}
	}

	// Another instance offers the first caller to an agent of its own.
	if _, err := env.App.DB.NewUpdate().Model((*models.Call)(nil)).
		Set("state = ?", models.CallRinging).Where("call_sid = ?", first).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	env.WaitDB("the second caller next in line", func(ctx context.Context) (bool, error) {
		pos, err := env.App.Service.QueuePosition(ctx, second)
		return pos == 1, err
	})
}

// callflowQueueReadInterval is at least how long the service answers
// places from a stale count before it reads the queue again.
const callflowQueueReadInterval = 100 * time.Millisecond

// TestLongestIdleAgentIsOfferedFirst: of the free agents, the one whose
// last call ended longest ago (or who has had none) is rung.
func TestLongestIdleAgentIsOfferedFirst(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.SignIn("alice")
	env.SignIn("bob")

	talk := func(want string) {
		t.Helper()
		customer := env.PlaceCall("+15551239999")
		var leg string
		env.WaitSim("a phone ringing for "+customer, func(st twiliosim.State) bool {
			for _, c := range st.Calls {
				if strings.HasPrefix(c.To, "client:") && c.Status == twiliosim.StatusRinging {
					leg = c.SID
					if c.To != "client:"+want {
						t.Fatalf("%s was rung, want %s", c.To, want)
					}
					return true
				}
			}
			return false
		})
		env.SimAction(leg, "accept")
		env.WaitDB(want+" talking", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, env.App.DB, customer)
			return err == nil && c.State == models.CallWithAgent, err
		})
		env.SimAction(customer, "hangup")
		env.WaitDB(want+" free again", func(ctx context.Context) (bool, error) {
			a, err := models.AgentByIdentity(ctx, env.App.DB, want)
			return err == nil && a.Presence == models.PresenceAvailable && !a.LastCallEndedAt.IsZero(), err
		})
	}
	talk("alice") // signed in first: idle longest
	talk("bob")   // has had no call yet
	talk("alice") // her call ended before bob's
	talk("bob")
}

// TestWrapUpEndsWhenTheAgentIsReady: after a call the agent is in wrap-up
// and is not offered the next caller, who waits, until they choose
// Available.
func TestWrapUpEndsWhenTheAgentIsReady(t *testing.T) {
	env := apptest.Start(t, apptest.Options{WrapUp: time.Hour})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")

	first := env.PlaceCall("+15551230001")
	leg := env.Ringing("alice")
	env.SimAction(leg, "accept")
	env.WaitDB("alice talking", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, first)
		return err == nil && c.State == models.CallWithAgent, err
	})
	env.SimAction(first, "hangup")
	env.WaitDB("alice in wrap-up", func(ctx context.Context) (bool, error) {
		a, err := models.AgentByIdentity(ctx, env.App.DB, "alice")
		return err == nil && a.Presence == models.PresenceWrapUp, err
	})
	doc := alice.Page("/")
	if got := doc.Find(`[data-testid="presence-badge"]`).Text(); got != "wrap-up" {
		t.Fatalf("alice's console presence = %q, want wrap-up", got)
	}
	if doc.Find(`[data-testid="wrap-up"]`).Length() != 1 || doc.Find(`[data-testid="presence-available"]`).Length() != 1 {
		t.Fatalf("alice's console shows no wrap-up notice with an Available button:\n%s", doc.Find(`#agent-status`).Text())
	}

	// A new caller waits: alice is wrapping up.
	second := env.PlaceCall("+15551230002")
	env.WaitSim("the second caller told they are next", func(st twiliosim.State) bool {
		return heard(st, second, "You are next in line.")
	})
	if c := callBySID(t, env, second); c.State != models.CallQueued {
		t.Fatalf("second caller is %s while alice wraps up, want queued", c.State)
	}
	if a := presenceOf(t, env, "alice"); a.Presence != models.PresenceWrapUp {
		t.Fatalf("alice is %s, want wrap-up", a.Presence)
	}
	setPresence(t, alice, models.PresenceAvailable)
	leg = env.Ringing("alice")
	env.SimAction(leg, "accept")
	env.WaitDB("alice has the second caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, second)
		return err == nil && c.State == models.CallWithAgent, err
	})
}

// TestWrapUpEndsByItself: the wrap-up timer runs out and the waiting caller
// is offered to the agent.
func TestWrapUpEndsByItself(t *testing.T) {
	env := apptest.Start(t, apptest.Options{WrapUp: 300 * time.Millisecond})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.SignIn("alice")

	first := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitDB("alice talking", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, first)
		return err == nil && c.State == models.CallWithAgent, err
	})
	env.SimAction(first, "hangup")
	second := env.PlaceCall("+15551230002")
	leg := env.Ringing("alice")
	env.SimAction(leg, "accept")
	env.WaitDB("alice has the second caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, second)
		return err == nil && c.State == models.CallWithAgent, err
	})
	// Her presence went busy, wrap-up, available (the timer), busy.
	a := presenceOf(t, env, "alice")
	events, err := models.EventsAfter(context.Background(), env.App.DB, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range events {
		if e.Kind == "agent.presence" && e.AgentID == a.ID {
			seen = append(seen, e.Payload)
		}
	}
	wrap := slices.IndexFunc(seen, func(p string) bool { return strings.Contains(p, `"wrap_up"`) })
	over := slices.IndexFunc(seen, func(p string) bool { return strings.Contains(p, `"wrap_up_over":true`) })
	if wrap < 0 || over < wrap {
		t.Fatalf("alice's presence changes %v: no wrap-up ended by its timer", seen)
	}
}

// TestMissedOffersMoveOnAndSetTheAgentAway: an offer not answered in time
// goes to the next agent; after the configured number of missed offers in
// a row the agent is set away and told why.
func TestMissedOffersMoveOnAndSetTheAgentAway(t *testing.T) {
	env := apptest.Start(t, apptest.Options{MaxMissedOffers: 2})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	alice := env.SignIn("alice")
	env.SignIn("bob")

	// Alice is rung first and lets it ring out: bob is rung next.
	first := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "ring-out")
	bobLeg, call := ringingFor(t, env, "bob")
	if call.CallSID != first {
		t.Fatalf("bob was offered %s, want %s", call.CallSID, first)
	}
	env.SimAction(bobLeg, "accept")
	env.WaitDB("alice free with one missed offer", func(ctx context.Context) (bool, error) {
		a, err := models.AgentByIdentity(ctx, env.App.DB, "alice")
		return err == nil && a.Presence == models.PresenceAvailable && a.MissedOffers == 1, err
	})

	// Bob is busy; alice declines the next caller: her second miss.
	second := env.PlaceCall("+15551230002")
	env.SimAction(env.Ringing("alice"), "reject")
	env.WaitDB("alice set away", func(ctx context.Context) (bool, error) {
		a, err := models.AgentByIdentity(ctx, env.App.DB, "alice")
		return err == nil && a.Presence == models.PresenceAway, err
	})
	env.WaitDB("the second caller waiting again", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, second)
		return err == nil && c.State == models.CallQueued, err
	})
	doc := alice.Page("/")
	if got := doc.Find(`[data-testid="missed-offers"]`).Text(); !strings.Contains(got, "missing 2 calls") {
		t.Fatalf("alice's console does not say why she is away: %q", got)
	}
	if st := env.Sim.State(); slices.ContainsFunc(st.Calls, func(c twiliosim.CallState) bool {
		return c.To == "client:alice" && c.Status == twiliosim.StatusRinging
	}) {
		t.Fatal("alice's phone rings although she was set away")
	}

	// Back at her desk: she takes the waiting caller, and her count starts
	// again.
	setPresence(t, alice, models.PresenceAvailable)
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitDB("alice has the second caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, second)
		if err != nil {
			return false, err
		}
		a, err := models.AgentByIdentity(ctx, env.App.DB, "alice")
		return err == nil && c.State == models.CallWithAgent && a.MissedOffers == 0, err
	})
}

// TestAgentsFreedTogetherTakeTheQueueTogether: when several agents come
// free at once, one round of offers rings each of them for a different
// caller (the round matches them in one transaction and rings them all at
// once).
func TestAgentsFreedTogetherTakeTheQueueTogether(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	names := []string{"alice", "bob", "carol"}
	for _, n := range names {
		env.AddAgent(n, strings.ToUpper(n[:1])+n[1:], models.RoleAgent)
		setPresence(t, env.SignIn(n), models.PresenceAway)
	}
	var customers []string
	for i := range names {
		c := env.PlaceCall("+1555123100" + string(rune('1'+i)))
		customers = append(customers, c)
		env.WaitDB("caller "+c+" queued", func(ctx context.Context) (bool, error) {
			call, err := models.CallBySID(ctx, env.App.DB, c)
			return err == nil && call.State == models.CallQueued, err
		})
	}
	// All three come free in the same instant, without a round of offers
	// each: one round finds them all.
	ctx := context.Background()
	for _, n := range names {
		if _, err := models.UpdateAgentPresence(ctx, env.App.DB, n, models.PresenceAvailable, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
	env.App.Service.Dispatch(ctx)

	rung := map[int64]string{} // call id -> agent identity
	for _, n := range names {
		_, call := ringingFor(t, env, n)
		if prev, dup := rung[call.ID]; dup {
			t.Fatalf("caller %s was offered to both %s and %s", call.CallSID, prev, n)
		}
		rung[call.ID] = n
	}
	for _, c := range customers {
		if got := callBySID(t, env, c).State; got != models.CallRinging {
			t.Fatalf("caller %s is %s after the round, want ringing", c, got)
		}
	}
}
