package models_test

import (
	"testing"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestTransfers(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		alice := mustAgent(t, db, models.Agent{Identity: "alice"})
		bob := mustAgent(t, db, models.Agent{Identity: "bob"})
		call := mustCall(t, db, models.Call{CallSID: "CA1"})

		_, err := models.OpenTransferForCall(ctx, db, call.ID)
		wantNotFound(t, "OpenTransferForCall before any transfer", err)

		tr := &models.Transfer{CallID: call.ID, FromAgentID: alice.ID, ToAgentID: bob.ID, Mode: models.TransferConsult}
		if err := models.CreateTransfer(ctx, db, tr); err != nil {
			t.Fatal(err)
		}
		if tr.ID == 0 || tr.State != models.TransferRinging {
			t.Fatalf("created transfer: id %d state %q", tr.ID, tr.State)
		}

		got, err := models.TransferByID(ctx, db, tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.FromAgentID != alice.ID || got.ToAgentID != bob.ID || got.Mode != models.TransferConsult || got.ToLegID != 0 {
			t.Errorf("TransferByID = %+v", got)
		}
		_, err = models.TransferByID(ctx, db, 999)
		wantNotFound(t, "TransferByID(999)", err)

		leg := mustLeg(t, db, models.Leg{CallID: call.ID, AgentID: bob.ID, CallSID: "CAbob", Role: models.LegColleague})
		steps := []struct {
			name     string
			state    models.TransferState
			wantOpen bool
		}{
			{"ringing is open", models.TransferRinging, true},
			{"joined is open", models.TransferJoined, true},
			{"completed is closed", models.TransferCompleted, false},
		}
		for _, s := range steps {
			tr.State = s.state
			tr.ToLegID = leg.ID
			if !s.wantOpen {
				tr.EndedAt = t0
			}
			if err := models.UpdateTransfer(ctx, db, tr, "state", "to_leg_id", "ended_at"); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			open, err := models.OpenTransferForCall(ctx, db, call.ID)
			if !s.wantOpen {
				wantNotFound(t, s.name, err)
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if open.ID != tr.ID || open.State != s.state || open.ToLegID != leg.ID {
				t.Errorf("%s: OpenTransferForCall = %+v", s.name, open)
			}
		}

		// A chained transfer: bob hands the call on after the first completed.
		next := &models.Transfer{CallID: call.ID, FromAgentID: bob.ID, ToAgentID: alice.ID, Mode: models.TransferBlind}
		if err := models.CreateTransfer(ctx, db, next); err != nil {
			t.Fatal(err)
		}
		open, err := models.OpenTransferForCall(ctx, db, call.ID)
		if err != nil || open.ID != next.ID {
			t.Errorf("OpenTransferForCall after a chained transfer = %+v, %v, want transfer %d", open, err, next.ID)
		}

		err = models.UpdateTransfer(ctx, db, &models.Transfer{ID: 999}, "state")
		wantNotFound(t, "UpdateTransfer(999)", err)
	})
}
