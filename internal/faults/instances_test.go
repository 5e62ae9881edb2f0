package faults_test

import (
	"context"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestTwoInstancesShareOneBoard runs two app processes on one PostgreSQL
// database behind one Twilio. Twilio posts a call to instance A; Alice, whose
// browser is on instance B, sees it ring live. Then Twilio posts to B and
// Bob, on A, sees his call. LISTEN/NOTIFY carries the events across.
func TestTwoInstancesShareOneBoard(t *testing.T) {
	dbURL := testdb.Postgres(t)
	addAgents(t, dbURL, [3]string{"alice", "Alice Archer", "agent"}, [3]string{"bob", "Bob Baker", "agent"}, [3]string{"maria", "Maria Manager", "manager"})
	tw := newTwilio(t)
	a := newInstance(t, "A", dbURL, tw)
	b := newInstance(t, "B", dbURL, tw)
	a.start()
	b.start()
	db := openDB(t, dbURL)

	alice := signIn(t, b.URL, "alice") // Alice's browser is on B
	aliceStream := alice.stream(0)
	maria := signIn(t, a.URL, "maria") // the board is on A
	board := maria.stream(0)

	// Twilio posts the first call to A.
	tw.sim.SetVoiceURL(a.URL + "/conference/connect/client")
	tw.sim.SetVoiceStatusCallback(a.URL + "/voice/status")
	first, err := tw.sim.PlaceInbound("+15551110001", "", "")
	if err != nil {
		t.Fatal(err)
	}
	aliceStream.until(t, "the offer on B", func(ev sseEvent) bool {
		return ev.Event == "offer" && strings.Contains(ev.Data, "+15551110001")
	})
	tw.sim.Accept(tw.ringing(t, "alice"))
	aliceStream.until(t, "the call with Alice on B", func(ev sseEvent) bool {
		return ev.Event == "call" && strings.Contains(ev.Data, `data-state="with_agent"`)
	})
	board.until(t, "the board on A showing Alice on the call", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && strings.Contains(ev.Data, "Alice Archer") && strings.Contains(ev.Data, "+15551110001")
	})

	// Bob signs in on A; Twilio now posts to B.
	bob := signIn(t, a.URL, "bob")
	bobStream := bob.stream(0)
	tw.sim.SetVoiceURL(b.URL + "/conference/connect/client")
	tw.sim.SetVoiceStatusCallback(b.URL + "/voice/status")
	second, err := tw.sim.PlaceInbound("+15552220002", "", "")
	if err != nil {
		t.Fatal(err)
	}
	bobStream.until(t, "the second call offered to Bob on A", func(ev sseEvent) bool {
		return ev.Event == "offer" && strings.Contains(ev.Data, "+15552220002")
	})
	tw.sim.Accept(tw.ringing(t, "bob"))
	board.until(t, "the board on A showing Bob's call, posted to B", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && strings.Contains(ev.Data, "Bob Baker") && strings.Contains(ev.Data, "+15552220002")
	})

	// Both callers hang up; each instance's database view agrees.
	if err := tw.sim.Hangup(first); err != nil {
		t.Fatalf("hanging up the first caller: %v", err)
	}
	if err := tw.sim.Hangup(second); err != nil {
		t.Fatalf("hanging up the second caller: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			st := tw.sim.State()
			for _, c := range st.Calls {
				t.Logf("sim call %s %s->%s %s conf=%s hearing=%q", c.SID, c.From, c.To, c.Status, c.Conference, c.Hearing)
			}
			for _, c := range st.Conferences {
				t.Logf("sim conference %s %s %d participants", c.FriendlyName, c.Status, len(c.Participants))
			}
			for _, n := range st.Notifications {
				t.Logf("sim notification %s %d %s %s", n.CallSID, n.ErrorCode, n.Message, n.URL)
			}
			rows, err := db.QueryContext(context.Background(), `SELECT pid, coalesce(state,''), coalesce(wait_event_type,''), coalesce(wait_event,''), left(query, 160) FROM pg_stat_activity WHERE datname = current_database()`)
			if err == nil {
				for rows.Next() {
					var pid int
					var state, wt, we, q string
					_ = rows.Scan(&pid, &state, &wt, &we, &q)
					t.Logf("pg %d %s %s/%s %s", pid, state, wt, we, q)
				}
				rows.Close()
			}
		}
	})
	waitDB(t, "both calls ended", func(ctx context.Context) (bool, error) {
		n, err := db.NewSelect().Model((*models.Call)(nil)).Where("state = ?", models.CallEnded).Count(ctx)
		return n == 2, err
	})
	board.until(t, "the board with no active call", func(ev sseEvent) bool {
		return ev.Event == "board-calls" && !strings.Contains(ev.Data, "call-row-")
	})
	// Nobody was rung twice.
	rings := map[string]int{}
	for _, c := range tw.sim.State().Calls {
		if strings.HasPrefix(c.To, "client:") {
			rings[c.To]++
		}
	}
	if rings["client:alice"] != 1 || rings["client:bob"] != 1 {
		t.Fatalf("agents were rung %v times", rings)
	}
}
