package models_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestCallTimingsSince(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		mustCall(t, db, models.Call{CallSID: "CAyesterday", CreatedAt: t0.Add(-time.Minute), AnsweredAt: t0.Add(-50 * time.Second)})
		mustCall(t, db, models.Call{CallSID: "CAanswered", CreatedAt: t0, AnsweredAt: t0.Add(12 * time.Second)})
		mustCall(t, db, models.Call{CallSID: "CAabandoned", CreatedAt: t0.Add(time.Minute), EndedAt: t0.Add(90 * time.Second), State: models.CallEnded})
		mustCall(t, db, models.Call{CallSID: "CAwaiting", CreatedAt: t0.Add(2 * time.Minute)})

		got, err := models.CallTimingsSince(ctx, db, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("CallTimingsSince(t0) = %d calls, want 3 (the boundary is inclusive): %+v", len(got), got)
		}
		byCreated := map[time.Time]models.CallTiming{}
		for _, c := range got {
			byCreated[c.CreatedAt.UTC()] = c
		}
		answered, abandoned, waiting := byCreated[t0], byCreated[t0.Add(time.Minute)], byCreated[t0.Add(2*time.Minute)]
		wantTime(t, "answered call's answer", answered.AnsweredAt, t0.Add(12*time.Second))
		if !answered.EndedAt.IsZero() {
			t.Errorf("answered call's end = %v, want none", answered.EndedAt)
		}
		wantTime(t, "abandoned call's end", abandoned.EndedAt, t0.Add(90*time.Second))
		if !abandoned.AnsweredAt.IsZero() || !waiting.AnsweredAt.IsZero() || !waiting.EndedAt.IsZero() {
			t.Errorf("unanswered calls read back with times: %+v, %+v", abandoned, waiting)
		}
	})
}

func TestCountTransfersSince(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		alice := mustAgent(t, db, models.Agent{Identity: "alice"})
		bob := mustAgent(t, db, models.Agent{Identity: "bob"})
		call := mustCall(t, db, models.Call{CallSID: "CA1"})
		for i, tr := range []struct {
			state models.TransferState
			at    time.Time
		}{
			{models.TransferCompleted, t0.Add(-time.Second)}, // before since: not counted
			{models.TransferCompleted, t0},
			{models.TransferCompleted, t0.Add(time.Minute)},
			{models.TransferDeclined, t0.Add(2 * time.Minute)},
			{models.TransferRinging, t0.Add(3 * time.Minute)},
		} {
			row := &models.Transfer{CallID: call.ID, FromAgentID: alice.ID, ToAgentID: bob.ID, Mode: models.TransferDirect, State: tr.state, CreatedAt: tr.at}
			if err := models.CreateTransfer(ctx, db, row); err != nil {
				t.Fatalf("transfer %d: %v", i, err)
			}
		}
		got, err := models.CountTransfersSince(ctx, db, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := map[models.TransferState]int{models.TransferCompleted: 2, models.TransferDeclined: 1, models.TransferRinging: 1}
		if len(got) != len(want) {
			t.Errorf("CountTransfersSince = %v, want %v", got, want)
		}
		for state, n := range want {
			if got[state] != n {
				t.Errorf("%s = %d, want %d", state, got[state], n)
			}
		}
	})
}

func TestRowsForCalls(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		alice := mustAgent(t, db, models.Agent{Identity: "alice"})
		bob := mustAgent(t, db, models.Agent{Identity: "bob"})
		one := mustCall(t, db, models.Call{CallSID: "CA1"})
		two := mustCall(t, db, models.Call{CallSID: "CA2"})
		other := mustCall(t, db, models.Call{CallSID: "CA3"})
		for i, c := range []*models.Call{one, two, other, one} {
			if err := models.AppendEvent(ctx, db, &models.Event{CallID: c.ID, Kind: "call.queued", Payload: "{}"}); err != nil {
				t.Fatal(err)
			}
			mustLeg(t, db, models.Leg{CallID: c.ID, AgentID: alice.ID, CallSID: "CAleg" + strconv.Itoa(i)})
			tr := &models.Transfer{CallID: c.ID, FromAgentID: alice.ID, ToAgentID: bob.ID, Mode: models.TransferDirect}
			if err := models.CreateTransfer(ctx, db, tr); err != nil {
				t.Fatal(err)
			}
		}
		ids := []int64{one.ID, two.ID}
		wantCalls := []int64{one.ID, two.ID, one.ID} // in id order, the other call left out

		events, err := models.EventsForCalls(ctx, db, ids)
		if err != nil {
			t.Fatal(err)
		}
		legs, err := models.LegsForCalls(ctx, db, ids)
		if err != nil {
			t.Fatal(err)
		}
		transfers, err := models.TransfersForCalls(ctx, db, ids)
		if err != nil {
			t.Fatal(err)
		}
		var gotEvents, gotLegs, gotTransfers []int64
		for i := range events {
			gotEvents = append(gotEvents, events[i].CallID)
		}
		for i := range legs {
			gotLegs = append(gotLegs, legs[i].CallID)
		}
		for i := range transfers {
			gotTransfers = append(gotTransfers, transfers[i].CallID)
		}
		for what, got := range map[string][]int64{"EventsForCalls": gotEvents, "LegsForCalls": gotLegs, "TransfersForCalls": gotTransfers} {
			if len(got) != len(wantCalls) {
				t.Errorf("%s: calls %v, want %v", what, got, wantCalls)
				continue
			}
			for i := range got {
				if got[i] != wantCalls[i] {
					t.Errorf("%s: calls %v, want %v", what, got, wantCalls)
					break
				}
			}
		}

		// No calls, no query and nothing found.
		if e, err := models.EventsForCalls(ctx, db, nil); err != nil || len(e) != 0 {
			t.Errorf("EventsForCalls(nil) = %v, %v", e, err)
		}
		if l, err := models.LegsForCalls(ctx, db, nil); err != nil || len(l) != 0 {
			t.Errorf("LegsForCalls(nil) = %v, %v", l, err)
		}
		if tr, err := models.TransfersForCalls(ctx, db, nil); err != nil || len(tr) != 0 {
			t.Errorf("TransfersForCalls(nil) = %v, %v", tr, err)
		}
	})
}
