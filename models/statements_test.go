package models_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestStatementsQueuePosition(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		// CA2 and CA3 were created at the same instant: the lower id is
		// ahead. CA4 is older than both but ringing, so not waiting.
		mustCall(t, db, models.Call{CallSID: "CA1", CreatedAt: t0})
		mustCall(t, db, models.Call{CallSID: "CA4", CreatedAt: t0.Add(-time.Hour), State: models.CallRinging})
		mustCall(t, db, models.Call{CallSID: "CA2", CreatedAt: t0.Add(time.Second)})
		mustCall(t, db, models.Call{CallSID: "CA3", CreatedAt: t0.Add(time.Second)})
		mustCall(t, db, models.Call{CallSID: "CA0", CreatedAt: t0.Add(-time.Microsecond)})
		st := models.NewStatements(db)
		tests := []struct {
			name string
			sid  string
			want int
		}{
			{"oldest waiting", "CA0", 1},
			{"second", "CA1", 2},
			{"same instant, lower id", "CA2", 3},
			{"same instant, higher id", "CA3", 4},
			{"ringing", "CA4", 0},
			{"unknown", "CA9", 0},
		}
		t.Run("QueuedCallSIDs in the same order", func(t *testing.T) {
			sids, err := models.QueuedCallSIDs(ctx, db)
			if err != nil || !slices.Equal(sids, []string{"CA0", "CA1", "CA2", "CA3"}) {
				t.Fatalf("QueuedCallSIDs = %v, %v; want CA0 CA1 CA2 CA3", sids, err)
			}
		})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := st.QueuePosition(ctx, tt.sid)
				if err != nil || got != tt.want {
					t.Fatalf("QueuePosition(%s) = %d, %v; want %d", tt.sid, got, err, tt.want)
				}
			})
		}
	})
}

func TestStatementsInsertCall(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		st := models.NewStatements(db)
		mustCall(t, db, models.Call{CallSID: "CA1", ConferenceName: "call-CA1", CreatedAt: t0})
		in := models.Call{CallSID: "CA2", ConferenceName: "call-CA2", FromNumber: "+15551230000", CallerName: "Pat", ToNumber: "+15559990000", CreatedAt: t0.Add(time.Second)}
		tests := []struct {
			name  string
			call  models.Call
			added bool
		}{
			{"new call", in, true},
			{"retried webhook", models.Call{CallSID: "CA1", ConferenceName: "call-CA1"}, false},
			{"conference name taken", models.Call{CallSID: "CA3", ConferenceName: "call-CA1"}, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := tt.call
				var added bool
				inTx(t, db, func(ctx context.Context, tx bun.Tx) error {
					var err error
					added, err = st.InsertCall(ctx, tx, &c)
					return err
				})
				if added != tt.added {
					t.Fatalf("InsertCall added = %v, want %v", added, tt.added)
				}
				if added && c.ID == 0 {
					t.Fatal("InsertCall left the ID zero")
				}
			})
		}
		t.Run("reads back as written by bun", func(t *testing.T) {
			got, err := models.CallBySID(ctx, db, "CA2")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != models.CallQueued || got.FromNumber != in.FromNumber || got.CallerName != in.CallerName ||
				got.ConferenceSID != "" || got.AgentID != 0 || !got.AnsweredAt.IsZero() || !got.EndedAt.IsZero() {
				t.Errorf("call read back = %+v", got)
			}
			wantTime(t, "created_at", got.CreatedAt, in.CreatedAt)
			wantTime(t, "updated_at", got.UpdatedAt, in.CreatedAt)
			// It queues behind the older call bun wrote: the times compare.
			if pos, err := st.QueuePosition(ctx, "CA2"); err != nil || pos != 2 {
				t.Errorf("QueuePosition = %d, %v; want 2", pos, err)
			}
		})
	})
}

func TestStatementsAppendEvents(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		st := models.NewStatements(db)
		c := mustCall(t, db, models.Call{CallSID: "CA1"})
		first := models.Event{Kind: "call.queued", CallID: c.ID, Payload: "{}"}
		if err := models.AppendEvent(ctx, db, &first); err != nil {
			t.Fatal(err)
		}
		events := []models.Event{
			{Kind: "call.offered", CallID: c.ID, Payload: `{"agent":"alice"}`, CreatedAt: t0},
			{Kind: "agent.presence", Payload: `{"presence":"busy"}`},
			{Kind: "call.answered", CallID: c.ID, Payload: "{}", CreatedAt: t0},
		}
		inTx(t, db, func(ctx context.Context, tx bun.Tx) error { return st.AppendEvents(ctx, tx, events) })
		// In order, after what was there.
		prev := first.ID
		for _, ev := range events {
			if ev.ID <= prev {
				t.Fatalf("event %q has id %d, want above %d", ev.Kind, ev.ID, prev)
			}
			prev = ev.ID
			got := eventByID(t, db, ev.ID)
			if got.Kind != ev.Kind || got.CallID != ev.CallID || got.AgentID != 0 || got.Payload != ev.Payload {
				t.Errorf("event read back = %+v, want %+v", got, ev)
			}
			if ev.CreatedAt.IsZero() {
				t.Errorf("event %q was not stamped", ev.Kind)
			}
		}
		wantTime(t, "created_at", eventByID(t, db, events[0].ID).CreatedAt, t0)
		// Nothing to append is not an error.
		inTx(t, db, func(ctx context.Context, tx bun.Tx) error { return st.AppendEvents(ctx, tx, nil) })
	})
}

func TestStatementsOfferPossible(t *testing.T) {
	tests := []struct {
		name     string
		call     models.CallState
		presence models.Presence
		disabled bool
		want     bool
	}{
		{"caller waiting, agent free", models.CallQueued, models.PresenceAvailable, false, true},
		{"nobody waiting", models.CallRinging, models.PresenceAvailable, false, false},
		{"nobody free", models.CallQueued, models.PresenceBusy, false, false},
		{"the free agent is disabled", models.CallQueued, models.PresenceAvailable, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, db *bun.DB) {
				mustCall(t, db, models.Call{CallSID: "CA1", State: tt.call})
				mustAgent(t, db, models.Agent{Identity: "alice", Presence: tt.presence, Disabled: tt.disabled})
				got, err := models.NewStatements(db).OfferPossible(t.Context())
				if err != nil || got != tt.want {
					t.Fatalf("OfferPossible = %v, %v; want %v", got, err, tt.want)
				}
			})
		})
	}
}

// TestCheckpointWAL checks that the checkpoint runs on both engines (on
// PostgreSQL it has nothing to do) while the database is in use.
func TestCheckpointWAL(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		mustCall(t, db, models.Call{CallSID: "CA1"})
		if err := models.CheckpointWAL(ctx, db); err != nil {
			t.Fatalf("CheckpointWAL: %v", err)
		}
		mustCall(t, db, models.Call{CallSID: "CA2"})
		if _, err := models.CallBySID(ctx, db, "CA1"); err != nil {
			t.Fatalf("after CheckpointWAL: %v", err)
		}
	})
}

func TestStatementsInsertLeg(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		st := models.NewStatements(db)
		agent := mustAgent(t, db, models.Agent{Identity: "alice"})
		c := mustCall(t, db, models.Call{CallSID: "CA1"})
		earlier := mustLeg(t, db, models.Leg{CallID: c.ID, AgentID: agent.ID, CallSID: "CA-earlier"})
		in := models.Leg{CallID: c.ID, AgentID: agent.ID, CallSID: "pending-1", Role: models.LegPrimary, CreatedAt: t0}
		inTx(t, db, func(ctx context.Context, tx bun.Tx) error { return st.InsertLeg(ctx, tx, &in) })
		if in.ID <= earlier.ID {
			t.Fatalf("leg id %d, want above %d", in.ID, earlier.ID)
		}
		got, err := models.LegByID(ctx, db, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CallID != c.ID || got.AgentID != agent.ID || got.CallSID != "pending-1" || got.Role != models.LegPrimary ||
			got.State != models.LegRinging || got.Hold || got.Muted || !got.JoinedAt.IsZero() || !got.LeftAt.IsZero() {
			t.Errorf("leg read back = %+v", got)
		}
		wantTime(t, "created_at", got.CreatedAt, t0)
		wantTime(t, "updated_at", got.UpdatedAt, t0)
		// Read back beside a leg bun wrote: the times compare.
		legs, err := models.LegsForCall(ctx, db, c.ID)
		if err != nil || len(legs) != 2 || legs[1].ID != in.ID {
			t.Errorf("LegsForCall = %v, %v; want the earlier leg, then this one", legs, err)
		}
	})
}
