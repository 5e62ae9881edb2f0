package faults_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestKilledAndRestarted kills the app with SIGKILL at three moments of a
// call and restarts it. Each call goes on to its correct end; nobody is
// rung twice for one offer (a restarted app that offered the caller again
// would ring a second time); the agents are free afterwards, on the board
// too; and every browser, agents' consoles as well as the manager's board,
// reconnects with Last-Event-ID and is replayed what it missed.
func TestKilledAndRestarted(t *testing.T) {
	t.Run("while a customer waits", func(t *testing.T) {
		dbURL := testdb.URL(t)
		addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"}, [3]string{"maria", "Maria Manager", "manager"})
		tw := newTwilio(t)
		app := newInstance(t, "app", dbURL, tw)
		app.start()
		tw.sim.SetVoiceURL(app.URL + "/conference/connect/client")
		tw.sim.SetVoiceStatusCallback(app.URL + "/voice/status")
		alice := signIn(t, app.URL, "alice")
		maria := signIn(t, app.URL, "maria")
		if status := alice.post("/presence", url.Values{"presence": {"away"}}); status != http.StatusOK {
			t.Fatalf("going away: %d", status)
		}
		console := alice.stream(0)
		console.showing(t, "Alice's console showing her away", "agent-status", func(data string) bool {
			return strings.Contains(data, `data-presence="away"`)
		})
		customer, err := tw.sim.PlaceInbound("+15551230001", "", "")
		if err != nil {
			t.Fatal(err)
		}
		db := openDB(t, dbURL)
		waitDB(t, "the caller waiting", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			return err == nil && c.State == models.CallQueued, err
		})
		// Kill once Twilio has the wait music: a caller whose waitUrl cannot
		// be fetched leaves the conference, as Twilio documents.
		tw.waitState(t, "the caller hearing music", func(st twiliosim.State) bool {
			c, _ := st.Call(customer)
			return strings.Contains(c.Hearing, "BusyStrings")
		})
		seen := console.lastID()

		app.kill()
		app.start()

		// Alice comes back (her session survives the restart) and gets the
		// call; her console reconnects after the offer and is replayed it.
		if status := alice.post("/presence", url.Values{"presence": {"available"}}); status != http.StatusOK {
			t.Fatalf("coming back: %d", status)
		}
		aliceLeg := tw.ringing(t, "alice")
		back := alice.stream(seen)
		back.replays(t, seen, "Alice Archer is now available", "Ringing Alice Archer for")
		if err := tw.sim.Accept(aliceLeg); err != nil {
			t.Fatal(err)
		}
		back.showing(t, "Alice's console with the caller", "call", func(data string) bool {
			return strings.Contains(data, `data-state="with_agent"`) && strings.Contains(data, "+15551230001")
		})
		waitDB(t, "the call with Alice", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			return err == nil && c.State == models.CallWithAgent, err
		})
		if err := tw.sim.Hangup(customer); err != nil {
			t.Fatalf("hanging up the caller: %v", err)
		}
		waitDB(t, "the call ended", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			return err == nil && c.State == models.CallEnded && c.EndedBy == "customer", err
		})
		agentsFree(t, db, maria, "alice")
		ringsOnce(t, tw, "alice")
	})

	t.Run("while an agent talks, and the caller hangs up while the app is down", func(t *testing.T) {
		dbURL := testdb.URL(t)
		addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"}, [3]string{"maria", "Maria Manager", "manager"})
		tw := newTwilio(t)
		app := newInstance(t, "app", dbURL, tw)
		app.start()
		tw.sim.SetVoiceURL(app.URL + "/conference/connect/client")
		tw.sim.SetVoiceStatusCallback(app.URL + "/voice/status")
		alice := signIn(t, app.URL, "alice")
		maria := signIn(t, app.URL, "maria")
		console := alice.stream(0)
		customer, err := tw.sim.PlaceInbound("+15551230001", "", "")
		if err != nil {
			t.Fatal(err)
		}
		aliceLeg := tw.ringing(t, "alice")
		if err := tw.sim.Accept(aliceLeg); err != nil {
			t.Fatal(err)
		}
		db := openDB(t, dbURL)
		waitDB(t, "the call with Alice", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			return err == nil && c.State == models.CallWithAgent, err
		})
		tw.waitState(t, "alice in the conference with the caller", func(st twiliosim.State) bool {
			c, _ := st.Call(aliceLeg)
			return c.Conference != "" && c.Hearing == "conference "+c.Conference
		})
		console.showing(t, "Alice's console with the caller", "call", func(data string) bool {
			return strings.Contains(data, `data-state="with_agent"`)
		})
		seen := console.lastID()

		app.kill()
		// Every callback about this goes nowhere: Twilio does not retry them.
		if err := tw.sim.Hangup(customer); err != nil {
			t.Fatalf("hanging up the caller: %v", err)
		}
		tw.waitState(t, "the conference ended", func(st twiliosim.State) bool {
			c, _ := st.Call(aliceLeg)
			return c.Status == twiliosim.StatusCompleted
		})
		app.start()

		// On start the app asks Twilio how its live calls stand.
		waitDB(t, "the call ended and Alice free", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			if err != nil || c.State != models.CallEnded {
				return false, err
			}
			a, err := models.AgentByIdentity(ctx, db, "alice")
			return err == nil && a.Presence == models.PresenceAvailable, err
		})
		leg, err := models.LegByCallSID(context.Background(), db, aliceLeg)
		if err != nil || leg.State != models.LegLeft {
			t.Fatalf("alice's leg = %+v, %v", leg, err)
		}
		// Alice's console reconnects and learns the call ended while it was
		// cut off, and shows her free with no call.
		back := alice.stream(seen)
		back.replays(t, seen, "Alice Archer left the call with +15551230001", "Alice Archer is now available", "call ended: caller hung up")
		back.showing(t, "Alice's console showing her available", "agent-status", func(data string) bool {
			return strings.Contains(data, `data-presence="available"`)
		})
		back.showing(t, "Alice's console without the call", "call", func(data string) bool {
			return !strings.Contains(data, "+15551230001")
		})
		agentsFree(t, db, maria, "alice")
		ringsOnce(t, tw, "alice")
	})

	t.Run("during a transfer", func(t *testing.T) {
		dbURL := testdb.URL(t)
		addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"}, [3]string{"bob", "Bob Baker", "agent"}, [3]string{"maria", "Maria Manager", "manager"})
		tw := newTwilio(t)
		app := newInstance(t, "app", dbURL, tw)
		app.start()
		tw.sim.SetVoiceURL(app.URL + "/conference/connect/client")
		tw.sim.SetVoiceStatusCallback(app.URL + "/voice/status")
		alice := signIn(t, app.URL, "alice")
		bob := signIn(t, app.URL, "bob")
		maria := signIn(t, app.URL, "maria")
		aliceConsole := alice.stream(0)
		bobConsole := bob.stream(0)
		board := maria.stream(0)
		customer, err := tw.sim.PlaceInbound("+15551230001", "", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.sim.Accept(tw.ringing(t, "alice")); err != nil {
			t.Fatal(err)
		}
		db := openDB(t, dbURL)
		var call *models.Call
		waitDB(t, "the call with Alice", func(ctx context.Context) (bool, error) {
			var err error
			call, err = models.CallBySID(ctx, db, customer)
			return err == nil && call.State == models.CallWithAgent, err
		})
		if status := alice.post("/calls/"+itoa(call.ID)+"/transfer", url.Values{"to": {"bob"}}); status != http.StatusOK {
			t.Fatalf("transfer: %d", status)
		}
		bobLeg := tw.ringing(t, "bob")
		board.until(t, "the board showing the transfer", func(ev sseEvent) bool {
			return ev.Event == "board-calls" && strings.Contains(ev.Data, "transferring")
		})
		bobConsole.showing(t, "Bob's console ringing", "offer", func(data string) bool {
			return strings.Contains(data, "+15551230001")
		})
		aliceConsole.until(t, "Alice's console showing the transfer", func(ev sseEvent) bool {
			return ev.Event == "activity" && strings.Contains(ev.Data, "is transferring")
		})
		seen := board.lastID()
		aliceSeen, bobSeen := aliceConsole.lastID(), bobConsole.lastID()

		app.kill()
		app.start()

		// Bob's phone kept ringing; he answers the restarted app.
		if err := tw.sim.Accept(bobLeg); err != nil {
			t.Fatal(err)
		}
		waitDB(t, "Bob joined", func(ctx context.Context) (bool, error) {
			tr, err := models.OpenTransferForCall(ctx, db, call.ID)
			return err == nil && tr.State == models.TransferJoined, err
		})
		if status := alice.post("/calls/"+itoa(call.ID)+"/leave", nil); status != http.StatusOK {
			t.Fatalf("leave: %d", status)
		}
		bobAgent, err := models.AgentByIdentity(context.Background(), db, "bob")
		if err != nil {
			t.Fatal(err)
		}
		waitDB(t, "the transfer completed", func(ctx context.Context) (bool, error) {
			c, err := models.CallByID(ctx, db, call.ID)
			return err == nil && c.AgentID == bobAgent.ID && c.State == models.CallWithAgent, err
		})

		// The board's browser reconnects with Last-Event-ID and is replayed
		// what happened while it was cut off; so are both agents' consoles.
		back := maria.stream(seen)
		back.replays(t, seen, "Bob Baker joined", "now has")
		bobBack := bob.stream(bobSeen)
		bobBack.replays(t, bobSeen, "Bob Baker joined", "Bob Baker now has +15551230001")
		bobBack.showing(t, "Bob's console with the caller", "call", func(data string) bool {
			return strings.Contains(data, `data-state="with_agent"`) && strings.Contains(data, "+15551230001")
		})
		aliceBack := alice.stream(aliceSeen)
		aliceBack.replays(t, aliceSeen, "Bob Baker joined", "Alice Archer left the call")
		aliceBack.showing(t, "Alice's console without the call", "call", func(data string) bool {
			return !strings.Contains(data, "+15551230001")
		})

		if err := tw.sim.Hangup(customer); err != nil {
			t.Fatalf("hanging up the caller: %v", err)
		}
		waitDB(t, "the call ended", func(ctx context.Context) (bool, error) {
			c, err := models.CallByID(ctx, db, call.ID)
			return err == nil && c.State == models.CallEnded, err
		})
		back.until(t, "the board showing the call ended", func(ev sseEvent) bool {
			return ev.Event == "board-ended" && strings.Contains(ev.Data, "+15551230001")
		})
		back.showing(t, "the board showing Alice and Bob available", "board-agents", func(data string) bool {
			p := presences(html(t, data))
			return p["alice"] == string(models.PresenceAvailable) && p["bob"] == string(models.PresenceAvailable)
		})
		agentsFree(t, db, maria, "alice", "bob")
		ringsOnce(t, tw, "alice", "bob")
	})
}

// replays reads a stream reconnected with Last-Event-ID until it has
// replayed an activity line containing each of wants. A line the browser
// had already seen (an id not after seen) fails the test: it would show
// twice.
func (s *sse) replays(t *testing.T, seen int64, wants ...string) {
	t.Helper()
	missing := slices.Clone(wants)
	var old []int64
	s.until(t, fmt.Sprintf("the replay of %q", wants), func(ev sseEvent) bool {
		if ev.Event != "activity" {
			return false
		}
		if ev.ID <= seen {
			old = append(old, ev.ID)
		}
		missing = slices.DeleteFunc(missing, func(w string) bool { return strings.Contains(ev.Data, w) })
		return len(missing) == 0
	})
	if len(old) > 0 {
		t.Fatalf("replayed events %v, which the browser had already seen (last %d)", old, seen)
	}
}

// agentsFree checks, once every call has ended, that the agents are
// available in the database and on the manager's board: nobody is left
// busy by a call the app lost track of while it was down. (The app runs
// with no wrap-up time, so available is where an agent goes.)
func agentsFree(t *testing.T, db bun.IDB, manager *browser, identities ...string) {
	t.Helper()
	want := map[string]string{}
	for _, id := range identities {
		want[id] = string(models.PresenceAvailable)
	}
	waitDB(t, fmt.Sprintf("%v available", identities), func(ctx context.Context) (bool, error) {
		for _, id := range identities {
			a, err := models.AgentByIdentity(ctx, db, id)
			if err != nil || a.Presence != models.PresenceAvailable {
				return false, err
			}
		}
		return true, nil
	})
	got := presences(manager.page("/board"))
	delete(got, "maria") // a manager takes no calls
	if !maps.Equal(got, want) {
		t.Fatalf("the board shows the agents %v, want %v", got, want)
	}
}

// ringsOnce checks each agent was rung exactly once: the one offer each
// test makes them.
func ringsOnce(t *testing.T, tw *twilio, identities ...string) {
	t.Helper()
	want := map[string]int{}
	for _, id := range identities {
		want[id] = 1
	}
	if got := rings(tw.sim.State()); !maps.Equal(got, want) {
		t.Fatalf("agents were rung %v times, want %v", got, want)
	}
}

func itoa(n int64) string { return strconvFormat(n) }
