package faults_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestTwoInstancesShareOneBoard runs two app processes on one PostgreSQL
// database behind one load balancer, the deployment the README describes:
// both instances have the balancer's address as their public URL, and
// Twilio posts every webhook there. The balancer alternates each call's
// webhooks between the instances, so no instance sees a whole call.
//
// The first caller reaches A; Alice, whose browser is on B, sees it ring
// live. The second reaches B; Bob, on A, sees his. Alice transfers her
// caller to Carol, on A, and leaves; both callers hang up. Every webhook is
// accepted (its signature checks against the public URL on either
// instance), every agent rings once, the calls end as they should and the
// agents are free again. LISTEN/NOTIFY carries the events across.
func TestTwoInstancesShareOneBoard(t *testing.T) {
	dbURL := testdb.Postgres(t)
	addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"}, [3]string{"bob", "Bob Baker", "agent"},
		[3]string{"carol", "Carol Carter", "agent"}, [3]string{"maria", "Maria Manager", "manager"})
	tw := newTwilio(t)
	a := newInstance(t, "A", dbURL, tw)
	b := newInstance(t, "B", dbURL, tw)
	lb := newBalancer(t, a, b)
	a.start()
	b.start()
	db := openDB(t, dbURL)
	tw.sim.SetVoiceURL(lb.URL + handlers.PathVoiceIncoming)
	tw.sim.SetVoiceStatusCallback(lb.URL + handlers.PathVoiceStatus)
	t.Cleanup(func() {
		if t.Failed() {
			logState(t, tw, lb, db)
		}
	})

	// Browsers reach an instance each (a balancer may send them anywhere;
	// here the test chooses, to know which instance serves which stream).
	alice := signIn(t, b.URL, "alice")
	aliceStream := alice.stream(0)
	maria := signIn(t, a.URL, "maria")
	board := maria.stream(0)
	bob := signIn(t, a.URL, "bob")
	bobStream := bob.stream(0)
	// Carol waits away until the transfer, so that the callers go to Alice
	// and Bob.
	carol := signIn(t, a.URL, "carol")
	carolStream := carol.stream(0)
	if status := carol.post("/presence", url.Values{"presence": {"away"}}); status != http.StatusOK {
		t.Fatalf("Carol going away: %d", status)
	}
	// Bob too, until the first caller is Alice's.
	if status := bob.post("/presence", url.Values{"presence": {"away"}}); status != http.StatusOK {
		t.Fatalf("Bob going away: %d", status)
	}

	first, err := tw.sim.PlaceInbound("+15551110001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	aliceStream.until(t, "the first caller offered to Alice on B", func(ev sseEvent) bool {
		return ev.Event == "offer" && strings.Contains(ev.Data, "+15551110001")
	})
	if got := lb.instancesFor(first); len(got) == 0 || got[0] != "A" {
		t.Fatalf("the first caller's webhooks reached %v; the first should reach A", got)
	}
	if err := tw.sim.Accept(tw.ringing(t, "alice")); err != nil {
		t.Fatal(err)
	}
	aliceStream.until(t, "the call with Alice on B", func(ev sseEvent) bool {
		return ev.Event == "call" && strings.Contains(ev.Data, `data-state="with_agent"`)
	})
	board.until(t, "the board on A showing Alice on the call", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && strings.Contains(ev.Data, "Alice Archer") && strings.Contains(ev.Data, "+15551110001")
	})

	if status := bob.post("/presence", url.Values{"presence": {"available"}}); status != http.StatusOK {
		t.Fatalf("Bob coming back: %d", status)
	}
	second, err := tw.sim.PlaceInbound("+15552220002", "", "")
	if err != nil {
		t.Fatal(err)
	}
	bobStream.until(t, "the second caller offered to Bob on A", func(ev sseEvent) bool {
		return ev.Event == "offer" && strings.Contains(ev.Data, "+15552220002")
	})
	if got := lb.instancesFor(second); len(got) == 0 || got[0] != "B" {
		t.Fatalf("the second caller's webhooks reached %v; the second should reach B", got)
	}
	if err := tw.sim.Accept(tw.ringing(t, "bob")); err != nil {
		t.Fatal(err)
	}
	board.until(t, "the board on A showing Bob's call, posted to B", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && strings.Contains(ev.Data, "Bob Baker") && strings.Contains(ev.Data, "+15552220002")
	})

	// Alice, on B, transfers her caller to Carol, on A.
	call, err := models.CallBySID(context.Background(), db, first)
	if err != nil {
		t.Fatal(err)
	}
	if status := carol.post("/presence", url.Values{"presence": {"available"}}); status != http.StatusOK {
		t.Fatalf("Carol coming back: %d", status)
	}
	if status := alice.post("/calls/"+itoa(call.ID)+"/transfer", url.Values{"to": {"carol"}}); status != http.StatusOK {
		t.Fatalf("transfer: %d", status)
	}
	carolLeg := tw.ringing(t, "carol")
	carolStream.until(t, "the transfer ringing Carol on A", func(ev sseEvent) bool {
		return ev.Event == "offer" && strings.Contains(ev.Data, "+15551110001")
	})
	if err := tw.sim.Accept(carolLeg); err != nil {
		t.Fatal(err)
	}
	waitDB(t, "Carol joined", func(ctx context.Context) (bool, error) {
		tr, err := models.OpenTransferForCall(ctx, db, call.ID)
		return err == nil && tr.State == models.TransferJoined, err
	})
	if status := alice.post("/calls/"+itoa(call.ID)+"/leave", nil); status != http.StatusOK {
		t.Fatalf("leave: %d", status)
	}
	carolStream.until(t, "Carol's console on A with the caller", func(ev sseEvent) bool {
		return ev.Event == "call" && strings.Contains(ev.Data, `data-state="with_agent"`) && strings.Contains(ev.Data, "+15551110001")
	})
	board.until(t, "the board on A showing Carol alone with the first caller", func(ev sseEvent) bool {
		if ev.Event != "board-calls" {
			return false
		}
		agents := html(t, ev.Data).Find(`[data-testid="call-row-` + itoa(call.ID) + `"] [data-testid="call-agents"]`).Text()
		return strings.TrimSpace(agents) == "Carol Carter"
	})
	carolID := agentID(t, db, "carol")
	waitDB(t, "the transfer completed", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, db, call.ID)
		return err == nil && c.AgentID == carolID && c.State == models.CallWithAgent, err
	})

	// Both callers hang up.
	if err := tw.sim.Hangup(first); err != nil {
		t.Fatalf("hanging up the first caller: %v", err)
	}
	if err := tw.sim.Hangup(second); err != nil {
		t.Fatalf("hanging up the second caller: %v", err)
	}
	waitDB(t, "both calls ended by their callers", func(ctx context.Context) (bool, error) {
		n, err := db.NewSelect().Model((*models.Call)(nil)).
			Where("state = ? AND ended_by = ?", models.CallEnded, "customer").Count(ctx)
		return n == 2, err
	})
	board.until(t, "the board with no active call", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && !strings.Contains(ev.Data, "call-row-")
	})
	free := map[string]string{"alice": "available", "bob": "available", "carol": "available"}
	agentsOf := func(p map[string]string) map[string]string {
		delete(p, "maria") // a manager takes no calls
		return p
	}
	var last map[string]string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the board's agents, last: %v", last)
		}
	})
	board.showing(t, "the board showing every agent free", "board-agents", func(data string) bool {
		last = agentsOf(presences(html(t, data)))
		return maps.Equal(last, free)
	})
	// B's board, drawn from the database, agrees with A's live one.
	if got := agentsOf(presences(maria.at(b.URL).page("/board"))); !maps.Equal(got, free) {
		t.Fatalf("B's board shows the agents %v, want %v", got, free)
	}

	// Nobody was rung twice.
	if got, want := rings(tw.sim.State()), map[string]int{"alice": 1, "bob": 1, "carol": 1}; !maps.Equal(got, want) {
		t.Fatalf("agents were rung %v times, want %v", got, want)
	}
	// Every call's webhooks went to both instances, and every one was
	// accepted: the signatures, made over the balancer's address, check on
	// either instance.
	for _, sid := range []string{first, second} {
		if got := lb.instancesFor(sid); !slices.Contains(got, "A") || !slices.Contains(got, "B") {
			t.Errorf("caller %s's webhooks all reached %v", sid, got)
		}
	}
	for _, s := range lb.requests() {
		if !s.Gone && (s.Status < 200 || s.Status > 299) {
			t.Errorf("%s answered %s (call %s) with %d", s.Instance, s.Path, s.CallSID, s.Status)
		}
	}
	if n := tw.sim.State().Notifications; len(n) != 0 {
		t.Errorf("Twilio recorded webhook failures: %+v", n)
	}
	// The instances check against the public URL, not their own address: a
	// webhook signed over A's own address is refused.
	form := url.Values{"CallSid": {first}, "AccountSid": {accountSID}, "CallStatus": {"completed"}}
	status, err := postSigned(a.URL+handlers.PathVoiceStatus, a.URL+handlers.PathVoiceStatus, form)
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("a webhook signed over the instance's own address: %d, %v; want 403", status, err)
	}
}

func agentID(t *testing.T, db bun.IDB, identity string) int64 {
	t.Helper()
	a, err := models.AgentByIdentity(context.Background(), db, identity)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}
