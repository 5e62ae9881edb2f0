package models_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestEvents(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()

		latest, err := models.LatestEventID(ctx, db)
		if err != nil || latest != 0 {
			t.Fatalf("LatestEventID on no events = %d, %v, want 0", latest, err)
		}
		none, err := models.EventsAfter(ctx, db, 0, 10)
		if err != nil || len(none) != 0 {
			t.Fatalf("EventsAfter on no events = %v, %v, want none", none, err)
		}

		alice := mustAgent(t, db, models.Agent{Identity: "alice"})
		call := mustCall(t, db, models.Call{CallSID: "CA1"})
		appended := []*models.Event{
			{CallID: call.ID, Kind: "call.queued", Payload: `{"from":"+15551230000"}`},
			{AgentID: alice.ID, Kind: "agent.presence", Payload: `{"presence":"available"}`},
			{CallID: call.ID, AgentID: alice.ID, Kind: "call.answered", Payload: `{}`, CreatedAt: t0},
			{Kind: "board.reset"},
			{CallID: call.ID, Kind: "call.ended", Payload: `{"reason":"customer hung up"}`},
		}
		var ids []int64
		for _, e := range appended {
			if err := models.AppendEvent(ctx, db, e); err != nil {
				t.Fatal(err)
			}
			if e.CreatedAt.IsZero() {
				t.Errorf("event %q: CreatedAt not filled in", e.Kind)
			}
			ids = append(ids, e.ID)
		}
		for i, id := range ids {
			if id <= 0 || (i > 0 && id <= ids[i-1]) {
				t.Fatalf("event ids = %v, want positive and strictly increasing", ids)
			}
		}

		latest, err = models.LatestEventID(ctx, db)
		if err != nil || latest != ids[len(ids)-1] {
			t.Errorf("LatestEventID = %d, %v, want %d", latest, err, ids[len(ids)-1])
		}

		tests := []struct {
			name    string
			afterID int64
			limit   int
			want    []int64
		}{
			{"from the start", 0, 100, ids},
			{"after the second", ids[1], 100, ids[2:]},
			{"limited", 0, 2, ids[:2]},
			{"no limit", ids[2], 0, ids[3:]},
			{"after the last", ids[len(ids)-1], 10, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := models.EventsAfter(ctx, db, tt.afterID, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				wantEventIDs(t, "EventsAfter", got, tt.want)
			})
		}

		t.Run("stored fields", func(t *testing.T) {
			got := eventByID(t, db, ids[2])
			if got.CallID != call.ID || got.AgentID != alice.ID || got.Kind != "call.answered" || got.Payload != "{}" {
				t.Errorf("event %d = %+v", ids[2], got)
			}
			wantTime(t, "CreatedAt", got.CreatedAt, t0)
			board := eventByID(t, db, ids[3])
			if board.CallID != 0 || board.AgentID != 0 {
				t.Errorf("event without call or agent = %+v", board)
			}
		})

		t.Run("history of a call", func(t *testing.T) {
			got, err := models.EventsForCall(ctx, db, call.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantEventIDs(t, "EventsForCall", got, []int64{ids[0], ids[2], ids[4]})
		})
	})
}

func TestAppendEventInTransaction(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		committed := &models.Event{Kind: "committed"}
		inTx(t, db, func(ctx context.Context, tx bun.Tx) error {
			return models.AppendEvent(ctx, tx, committed)
		})

		errRollback := errors.New("roll back")
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if err := models.AppendEvent(ctx, tx, &models.Event{Kind: "rolled back"}); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("RunInTx = %v, want the rollback error", err)
		}

		got, err := models.EventsAfter(ctx, db, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != committed.ID || got[0].Kind != "committed" {
			t.Errorf("events = %+v, want only the committed one", got)
		}
	})
}

// TestAppendEventConcurrently checks what SSE replay relies on: with many
// writers, every committed event is visible to a reader that resumes after
// the highest id it has seen, i.e. ids become visible in order.
func TestAppendEventConcurrently(t *testing.T) {
	const writers, perWriter = 8, 10
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
						return models.AppendEvent(ctx, tx, &models.Event{Kind: fmt.Sprintf("w%d.%d", w, i)})
					})
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}

		// A reader following the stream the way SSE does.
		seen := map[int64]bool{}
		var last int64
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		follow := func() {
			events, err := models.EventsAfter(ctx, db, last, 0)
			if err != nil {
				t.Errorf("EventsAfter: %v", err)
				return
			}
			for _, e := range events {
				seen[e.ID] = true
				last = e.ID
			}
		}
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
			}
			follow()
		}
		follow()
		close(errs)
		for err := range errs {
			t.Fatalf("AppendEvent: %v", err)
		}

		all, err := models.EventsAfter(ctx, db, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != writers*perWriter {
			t.Fatalf("stored %d events, want %d", len(all), writers*perWriter)
		}
		for _, e := range all {
			if !seen[e.ID] {
				t.Errorf("the following reader missed event %d (%s)", e.ID, e.Kind)
			}
		}
	})
}

func wantEventIDs(t *testing.T, what string, events []models.Event, want []int64) {
	t.Helper()
	var got []int64
	for _, e := range events {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s ids = %v, want %v", what, got, want)
	}
}

// eventByID reads back the event with the given id.
func eventByID(t *testing.T, db bun.IDB, id int64) models.Event {
	t.Helper()
	got, err := models.EventsAfter(context.Background(), db, id-1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("event %d not found (read %+v)", id, got)
	}
	return got[0]
}

// A transaction that has locked an agent's or a call's row to change it,
// and then appends its events, must not deadlock with one that holds the
// event lock and is appending an event that names the same agent and call:
// that insert's foreign-key checks must not wait for the row locks.
func TestRowLocksLetEventsReferToTheRows(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		if db.Dialect().Name() != dialect.PG {
			t.Skip("SQLite's write transactions take turns: no row locks")
		}
		ctx := t.Context()
		alice := mustAgent(t, db, models.Agent{Identity: "alice", Presence: models.PresenceAvailable})
		call := mustCall(t, db, models.Call{CallSID: "CA-locked"})

		// The dispatcher's way: lock the agent and the call to change them.
		locker, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Rollback()
		if _, err := models.AvailableAgents(ctx, locker, 1); err != nil {
			t.Fatal(err)
		}
		if err := models.LockCallRows(ctx, locker, []int64{call.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := models.LockAgent(ctx, locker, "alice"); err != nil {
			t.Fatal(err)
		}

		// Meanwhile another transaction takes the event lock and appends
		// an event about both.
		appended := make(chan error, 1)
		go func() {
			appended <- db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				return models.AppendEvent(ctx, tx, &models.Event{Kind: "call.offered", CallID: call.ID, AgentID: alice.ID, Payload: "{}"})
			})
		}()
		select {
		case err := <-appended:
			if err != nil {
				t.Fatalf("appending while the rows were locked: %v", err)
			}
		case <-time.After(10 * time.Second): // it would wait until the locker ends
			t.Fatal("appending an event waited for the locks on the rows it refers to")
		}
		// The locker appends its own and commits.
		if err := models.AppendEvent(ctx, locker, &models.Event{Kind: "agent.presence", AgentID: alice.ID, Payload: "{}"}); err != nil {
			t.Fatal(err)
		}
		if err := locker.Commit(); err != nil {
			t.Fatal(err)
		}
	})
}
