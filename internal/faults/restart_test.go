package faults_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

func callState(ctx context.Context, t *testing.T, dbURL string, sid string) (*models.Call, error) {
	db := openDB(t, dbURL)
	return models.CallBySID(ctx, db, sid)
}

// TestKilledAndRestarted kills the app with SIGKILL at three moments of a
// call and restarts it; each call goes on to its correct end.
func TestKilledAndRestarted(t *testing.T) {
	t.Run("while a customer waits", func(t *testing.T) {
		dbURL := testdb.URL(t)
		addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"})
		tw := newTwilio(t)
		app := newInstance(t, "app", dbURL, tw)
		app.start()
		tw.sim.SetVoiceURL(app.URL + "/conference/connect/client")
		tw.sim.SetVoiceStatusCallback(app.URL + "/voice/status")
		alice := signIn(t, app.URL, "alice")
		if status := alice.post("/presence", url.Values{"presence": {"away"}}); status != 200 {
			t.Fatalf("going away: %d", status)
		}
		customer, _ := tw.sim.PlaceInbound("+15551230001", "", "")
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

		app.kill()
		app.start()

		// Alice comes back (her session survives the restart) and gets the call.
		if status := alice.post("/presence", url.Values{"presence": {"available"}}); status != 200 {
			t.Fatalf("coming back: %d", status)
		}
		tw.sim.Accept(tw.ringing(t, "alice"))
		waitDB(t, "the call with Alice", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			return err == nil && c.State == models.CallWithAgent, err
		})
		tw.sim.Hangup(customer)
		waitDB(t, "the call ended", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			return err == nil && c.State == models.CallEnded && c.EndedBy == "customer", err
		})
	})

	t.Run("while an agent talks, and the caller hangs up while the app is down", func(t *testing.T) {
		dbURL := testdb.URL(t)
		addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"})
		tw := newTwilio(t)
		app := newInstance(t, "app", dbURL, tw)
		app.start()
		tw.sim.SetVoiceURL(app.URL + "/conference/connect/client")
		tw.sim.SetVoiceStatusCallback(app.URL + "/voice/status")
		signIn(t, app.URL, "alice")
		customer, _ := tw.sim.PlaceInbound("+15551230001", "", "")
		aliceLeg := tw.ringing(t, "alice")
		tw.sim.Accept(aliceLeg)
		db := openDB(t, dbURL)
		waitDB(t, "the call with Alice", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, db, customer)
			return err == nil && c.State == models.CallWithAgent, err
		})
		tw.waitState(t, "alice in the conference with the caller", func(st twiliosim.State) bool {
			c, _ := st.Call(aliceLeg)
			return c.Conference != "" && c.Hearing == "conference "+c.Conference
		})

		app.kill()
		// Every callback about this goes nowhere: Twilio does not retry them.
		tw.sim.Hangup(customer)
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
		signIn(t, app.URL, "bob")
		maria := signIn(t, app.URL, "maria")
		board := maria.stream(0)
		customer, _ := tw.sim.PlaceInbound("+15551230001", "", "")
		tw.sim.Accept(tw.ringing(t, "alice"))
		db := openDB(t, dbURL)
		var call *models.Call
		waitDB(t, "the call with Alice", func(ctx context.Context) (bool, error) {
			var err error
			call, err = models.CallBySID(ctx, db, customer)
			return err == nil && call.State == models.CallWithAgent, err
		})
		if status := alice.post("/calls/"+itoa(call.ID)+"/transfer", url.Values{"to": {"bob"}}); status != 200 {
			t.Fatalf("transfer: %d", status)
		}
		bobLeg := tw.ringing(t, "bob")
		board.until(t, "the board showing the transfer", func(ev sseEvent) bool {
			return ev.Event == "board-calls" && strings.Contains(ev.Data, "transferring")
		})
		seen := board.lastID()

		app.kill()
		app.start()

		// Bob's phone kept ringing; he answers the restarted app.
		tw.sim.Accept(bobLeg)
		waitDB(t, "Bob joined", func(ctx context.Context) (bool, error) {
			tr, err := models.OpenTransferForCall(ctx, db, call.ID)
			return err == nil && tr.State == models.TransferJoined, err
		})
		if status := alice.post("/calls/"+itoa(call.ID)+"/leave", nil); status != 200 {
			t.Fatalf("leave: %d", status)
		}
		waitDB(t, "the transfer completed", func(ctx context.Context) (bool, error) {
			c, err := models.CallByID(ctx, db, call.ID)
			bob, err2 := models.AgentByIdentity(ctx, db, "bob")
			return err == nil && err2 == nil && c.AgentID == bob.ID && c.State == models.CallWithAgent, err
		})

		// The board's browser reconnects with Last-Event-ID and is replayed
		// what happened while it was cut off.
		back := maria.stream(seen)
		replay := back.until(t, "the replay reaching the completed transfer", func(ev sseEvent) bool {
			return ev.Event == "activity" && strings.Contains(ev.Data, "now has")
		})
		for _, ev := range replay {
			if ev.Event == "activity" && ev.ID <= seen {
				t.Fatalf("replayed event %d, which the board had already seen (last %d)", ev.ID, seen)
			}
		}
		tw.sim.Hangup(customer)
		waitDB(t, "the call ended", func(ctx context.Context) (bool, error) {
			c, err := models.CallByID(ctx, db, call.ID)
			return err == nil && c.State == models.CallEnded, err
		})
		back.until(t, "the board showing the call ended", func(ev sseEvent) bool {
			return ev.Event == "board-ended" && strings.Contains(ev.Data, "+15551230001")
		})
	})
}

func itoa(n int64) string { return strconvFormat(n) }
