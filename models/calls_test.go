package models_test

import (
	"errors"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestCreateCallUnique(t *testing.T) {
	tests := []struct {
		name   string
		second models.Call
	}{
		{"same call sid", models.Call{CallSID: "CA1", ConferenceName: "wt-other"}},
		{"same conference name", models.Call{CallSID: "CA2", ConferenceName: "wt-CA1"}},
		{"same conference sid", models.Call{CallSID: "CA3", ConferenceName: "wt-CA3", ConferenceSID: "CF1"}},
	}
	eachDB(t, func(t *testing.T, db *bun.DB) {
		mustCall(t, db, models.Call{CallSID: "CA1", ConferenceName: "wt-CA1", ConferenceSID: "CF1"})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := tt.second
				err := models.CreateCall(t.Context(), db, &c)
				if !errors.Is(err, models.ErrDuplicate) {
					t.Fatalf("CreateCall error = %v, want ErrDuplicate", err)
				}
			})
		}
		t.Run("calls without conference sid", func(t *testing.T) {
			// NULLs never collide.
			mustCall(t, db, models.Call{CallSID: "CA4"})
			mustCall(t, db, models.Call{CallSID: "CA5"})
		})
	})
}

func TestCalls(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		alice := mustAgent(t, db, models.Agent{Identity: "alice"})
		c := mustCall(t, db, models.Call{
			CallSID:    "CA100",
			FromNumber: "+15551230000",
			CallerName: "Customer",
			ToNumber:   "+15559990000",
		})
		if c.ID == 0 || c.State != models.CallQueued {
			t.Fatalf("created call: id %d state %q, want non-zero queued", c.ID, c.State)
		}

		t.Run("lookups", func(t *testing.T) {
			lookups := []struct {
				name string
				get  func() (*models.Call, error)
			}{
				{"by sid", func() (*models.Call, error) { return models.CallBySID(ctx, db, "CA100") }},
				{"by id", func() (*models.Call, error) { return models.CallByID(ctx, db, c.ID) }},
				{"by conference name", func() (*models.Call, error) { return models.CallByConferenceName(ctx, db, "wt-CA100") }},
			}
			for _, l := range lookups {
				got, err := l.get()
				if err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				if got.ID != c.ID || got.FromNumber != "+15551230000" || got.CallerName != "Customer" || got.AgentID != 0 || got.ConferenceSID != "" {
					t.Errorf("%s = %+v", l.name, got)
				}
				wantTime(t, l.name+": CreatedAt", got.CreatedAt, c.CreatedAt)
			}
			missing := []struct {
				name string
				get  func() (*models.Call, error)
			}{
				{"by sid", func() (*models.Call, error) { return models.CallBySID(ctx, db, "CAnone") }},
				{"by id", func() (*models.Call, error) { return models.CallByID(ctx, db, 999) }},
				{"by conference name", func() (*models.Call, error) { return models.CallByConferenceName(ctx, db, "none") }},
				{"by conference sid", func() (*models.Call, error) { return models.CallByConferenceSID(ctx, db, "CFnone") }},
			}
			for _, m := range missing {
				_, err := m.get()
				wantNotFound(t, "missing call "+m.name, err)
			}
		})

		t.Run("update columns", func(t *testing.T) {
			// A time in another zone is the same instant once stored.
			answered := t0.In(time.FixedZone("UTC+5", 5*3600))
			c.State = models.CallWithAgent
			c.AgentID = alice.ID
			c.ConferenceSID = "CF100"
			c.AnsweredAt = answered
			c.CallerName = "not written"
			if err := models.UpdateCall(ctx, db, c, "state", "agent_id", "conference_sid", "answered_at"); err != nil {
				t.Fatal(err)
			}
			got, err := models.CallByConferenceSID(ctx, db, "CF100")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != models.CallWithAgent || got.AgentID != alice.ID || got.CallerName != "Customer" {
				t.Errorf("after UpdateCall = %+v", got)
			}
			wantTime(t, "AnsweredAt", got.AnsweredAt, answered)
			wantTime(t, "UpdatedAt", got.UpdatedAt, c.UpdatedAt)
			if !got.EndedAt.IsZero() {
				t.Errorf("EndedAt = %v, want zero", got.EndedAt)
			}

			err = models.UpdateCall(ctx, db, &models.Call{ID: 999, State: models.CallEnded}, "state")
			wantNotFound(t, "UpdateCall(999)", err)
		})

		t.Run("foreign key on owning agent", func(t *testing.T) {
			c2 := mustCall(t, db, models.Call{CallSID: "CA101"})
			c2.AgentID = 999
			if err := models.UpdateCall(ctx, db, c2, "agent_id"); err == nil {
				t.Fatal("UpdateCall with a missing agent succeeded, want a foreign key error")
			}
		})
	})
}

func TestListCalls(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		calls := []struct {
			sid     string
			state   models.CallState
			endedAt time.Duration // after t0, for ended calls
		}{
			{"CA1", models.CallQueued, 0},
			{"CA2", models.CallEnded, time.Minute},
			{"CA3", models.CallWithAgent, 0},
			{"CA4", models.CallEnded, 3 * time.Minute},
			{"CA5", models.CallTransferring, 0},
			{"CA6", models.CallEnded, 2 * time.Minute},
			{"CA7", models.CallRinging, 0},
		}
		for i, c := range calls {
			m := models.Call{CallSID: c.sid, State: c.state, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
			if c.state == models.CallEnded {
				m.EndedAt = t0.Add(c.endedAt)
			}
			mustCall(t, db, m)
		}

		active, err := models.ListActiveCalls(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		wantSIDs(t, "ListActiveCalls", active, "CA1", "CA3", "CA5", "CA7")

		tests := []struct {
			name  string
			since time.Time
			limit int
			want  []string
		}{
			{"all ended, most recent first", t0, 0, []string{"CA4", "CA6", "CA2"}},
			{"limited to the most recent", t0, 2, []string{"CA4", "CA6"}},
			{"boundary is inclusive", t0.Add(2 * time.Minute), 0, []string{"CA4", "CA6"}},
			{"since in another zone", t0.Add(2*time.Minute + time.Second).In(time.FixedZone("UTC-8", -8*3600)), 0, []string{"CA4"}},
			{"none since", t0.Add(time.Hour), 0, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := models.ListEndedCallsSince(ctx, db, tt.since, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				wantSIDs(t, "ListEndedCallsSince", got, tt.want...)
			})
		}
	})
}

func wantSIDs(t *testing.T, what string, calls []models.Call, want ...string) {
	t.Helper()
	var got []string
	for _, c := range calls {
		got = append(got, c.CallSID)
	}
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}

func TestAdvanceConferenceSeq(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		c := mustCall(t, db, models.Call{CallSID: "CA1"})
		steps := []struct {
			name string
			seq  int64
			want bool
		}{
			{"first", 2, true},
			{"newer", 5, true},
			{"older arrives late", 3, false},
			{"same again", 5, false},
			{"next", 6, true},
		}
		for _, s := range steps {
			got, err := models.AdvanceConferenceSeq(t.Context(), db, c.ID, s.seq)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got != s.want {
				t.Errorf("%s: AdvanceConferenceSeq(%d) = %v, want %v", s.name, s.seq, got, s.want)
			}
		}
		stored, err := models.CallByID(t.Context(), db, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.ConferenceSeq != 6 {
			t.Errorf("ConferenceSeq = %d, want 6", stored.ConferenceSeq)
		}
		_, err = models.AdvanceConferenceSeq(t.Context(), db, 999, 1)
		if !errors.Is(err, models.ErrNotFound) {
			t.Errorf("AdvanceConferenceSeq(missing call) error = %v, want ErrNotFound", err)
		}
	})
}

func TestOldestQueuedCallsAndSetCallsState(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		mustCall(t, db, models.Call{CallSID: "CA-late", State: models.CallQueued, CreatedAt: t0.Add(3 * time.Minute)})
		mustCall(t, db, models.Call{CallSID: "CA-talking", State: models.CallWithAgent, CreatedAt: t0})
		first := mustCall(t, db, models.Call{CallSID: "CA-first", State: models.CallQueued, CreatedAt: t0.Add(time.Minute)})
		second := mustCall(t, db, models.Call{CallSID: "CA-second", State: models.CallQueued, CreatedAt: t0.Add(2 * time.Minute)})

		got, err := models.OldestQueuedCalls(ctx, db, 2)
		if err != nil {
			t.Fatal(err)
		}
		wantSIDs(t, "OldestQueuedCalls(2)", got, "CA-first", "CA-second")

		if err := models.SetCallsState(ctx, db, []int64{first.ID, second.ID}, models.CallRinging); err != nil {
			t.Fatal(err)
		}
		got, err = models.OldestQueuedCalls(ctx, db, 10)
		if err != nil {
			t.Fatal(err)
		}
		wantSIDs(t, "OldestQueuedCalls after two rang", got, "CA-late")

		for _, id := range []int64{first.ID, second.ID} {
			c, err := models.CallByID(ctx, db, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.State != models.CallRinging {
				t.Errorf("%s: state %q, want ringing", c.CallSID, c.State)
			}
		}
	})
}

func TestLockCallRows(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		a := mustCall(t, db, models.Call{CallSID: "CA-a", State: models.CallRinging})
		b := mustCall(t, db, models.Call{CallSID: "CA-b", State: models.CallRinging})
		if err := models.LockCallRows(ctx, db, nil); err != nil {
			t.Fatalf("LockCallRows(none): %v", err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := models.LockCallRows(ctx, tx, []int64{a.ID, b.ID}); err != nil {
			t.Fatalf("LockCallRows: %v", err)
		}
		if db.Dialect().Name() != dialect.PG {
			return // SQLite's write transactions take turns already
		}
		// Another transaction cannot take a locked call's row meanwhile.
		other, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Rollback()
		lock := func(tx bun.Tx, mode string) error {
			var id int64
			return tx.NewSelect().Model((*models.Call)(nil)).Column("c.id").Where("c.id = ?", b.ID).For(mode+" NOWAIT").Scan(ctx, &id)
		}
		if lock(other, "NO KEY UPDATE") == nil {
			t.Fatal("another transaction locked a call LockCallRows had locked")
		}
		// But a row that refers to the call may still be inserted: its
		// foreign-key check takes a key-share lock, which must not wait.
		refer, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer refer.Rollback()
		if err := lock(refer, "KEY SHARE"); err != nil {
			t.Fatalf("a key-share lock on a locked call: %v", err)
		}
	})
}
