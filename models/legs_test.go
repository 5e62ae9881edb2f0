package models_test

import (
	"errors"
	"testing"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestLegs(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		alice := mustAgent(t, db, models.Agent{Identity: "alice"})
		bob := mustAgent(t, db, models.Agent{Identity: "bob"})
		call := mustCall(t, db, models.Call{CallSID: "CA1"})

		first := mustLeg(t, db, models.Leg{CallID: call.ID, AgentID: alice.ID, CallSID: "CAleg1", EndConferenceOnExit: false})
		second := mustLeg(t, db, models.Leg{CallID: call.ID, AgentID: bob.ID, CallSID: "CAleg2", Role: models.LegColleague})
		if first.State != models.LegRinging {
			t.Errorf("default state = %q, want ringing", first.State)
		}

		t.Run("duplicate call sid", func(t *testing.T) {
			err := models.CreateLeg(ctx, db, &models.Leg{CallID: call.ID, CallSID: "CAleg1", Role: models.LegPrimary})
			if !errors.Is(err, models.ErrDuplicate) {
				t.Fatalf("CreateLeg error = %v, want ErrDuplicate", err)
			}
		})

		t.Run("foreign key on call", func(t *testing.T) {
			err := models.CreateLeg(ctx, db, &models.Leg{CallID: 999, CallSID: "CAorphan", Role: models.LegPrimary})
			if err == nil {
				t.Fatal("CreateLeg for a missing call succeeded, want a foreign key error")
			}
		})

		t.Run("lookups", func(t *testing.T) {
			got, err := models.LegByCallSID(ctx, db, "CAleg2")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != second.ID || got.AgentID != bob.ID || got.Role != models.LegColleague || got.CallID != call.ID {
				t.Errorf("LegByCallSID = %+v", got)
			}
			_, err = models.LegByCallSID(ctx, db, "CAnone")
			wantNotFound(t, "LegByCallSID(CAnone)", err)

			legs, err := models.LegsForCall(ctx, db, call.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(legs) != 2 || legs[0].ID != first.ID || legs[1].ID != second.ID {
				t.Errorf("LegsForCall = %+v, want the two legs in order", legs)
			}
		})

		t.Run("update columns", func(t *testing.T) {
			first.State = models.LegJoined
			first.JoinedAt = t0
			first.Hold = true
			first.EndConferenceOnExit = true
			if err := models.UpdateLeg(ctx, db, first, "state", "joined_at", "hold", "end_conference_on_exit"); err != nil {
				t.Fatal(err)
			}
			got, err := models.LegByCallSID(ctx, db, "CAleg1")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != models.LegJoined || !got.Hold || got.Muted || !got.EndConferenceOnExit {
				t.Errorf("after UpdateLeg = %+v", got)
			}
			wantTime(t, "JoinedAt", got.JoinedAt, t0)
			err = models.UpdateLeg(ctx, db, &models.Leg{ID: 999}, "state")
			wantNotFound(t, "UpdateLeg(999)", err)
		})
	})
}

func TestActiveLegForAgent(t *testing.T) {
	tests := []struct {
		name   string
		states []models.LegState // the agent's legs, oldest first
		want   int               // index into states; -1 means ErrNotFound
	}{
		{"no legs", nil, -1},
		{"ringing", []models.LegState{models.LegRinging}, 0},
		{"joined", []models.LegState{models.LegJoined}, 0},
		{"only finished legs", []models.LegState{models.LegLeft, models.LegNoAnswer, models.LegDeclined, models.LegFailed, models.LegCanceled}, -1},
		{"joined after a left one", []models.LegState{models.LegLeft, models.LegJoined, models.LegDeclined}, 1},
		{"newest of two active", []models.LegState{models.LegJoined, models.LegRinging}, 1},
	}
	eachDB(t, func(t *testing.T, db *bun.DB) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				agent := mustAgent(t, db, models.Agent{Identity: "agent" + string(rune('a'+i))})
				other := mustAgent(t, db, models.Agent{Identity: "other" + string(rune('a'+i))})
				call := mustCall(t, db, models.Call{CallSID: "CA" + tt.name})
				// Another agent's active leg must never be returned.
				mustLeg(t, db, models.Leg{CallID: call.ID, AgentID: other.ID, CallSID: "CAother " + tt.name, State: models.LegJoined})
				var ids []int64
				for j, s := range tt.states {
					l := mustLeg(t, db, models.Leg{CallID: call.ID, AgentID: agent.ID, CallSID: tt.name + string(rune('0'+j)), State: s})
					ids = append(ids, l.ID)
				}

				got, err := models.ActiveLegForAgent(ctx, db, agent.ID)
				if tt.want < 0 {
					wantNotFound(t, "ActiveLegForAgent", err)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.ID != ids[tt.want] {
					t.Errorf("ActiveLegForAgent = leg %d (%s), want leg %d", got.ID, got.State, ids[tt.want])
				}
			})
		}
	})
}

func TestLegsByIDs(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		agent := mustAgent(t, db, models.Agent{Identity: "alice"})
		call := mustCall(t, db, models.Call{CallSID: "CA-legs"})
		a := mustLeg(t, db, models.Leg{CallID: call.ID, AgentID: agent.ID, CallSID: "CA-leg-a"})
		b := mustLeg(t, db, models.Leg{CallID: call.ID, AgentID: agent.ID, CallSID: "CA-leg-b"})
		got, err := models.LegsByIDs(ctx, db, []int64{b.ID, a.ID, b.ID + 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[a.ID] == nil || got[a.ID].CallSID != "CA-leg-a" || got[b.ID] == nil || got[b.ID].CallSID != "CA-leg-b" {
			t.Errorf("LegsByIDs = %v, want legs a and b by ID", got)
		}
		none, err := models.LegsByIDs(ctx, db, nil)
		if err != nil || len(none) != 0 {
			t.Errorf("LegsByIDs(none) = %v, %v; want empty", none, err)
		}
	})
}
