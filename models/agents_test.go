package models_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestAgents(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()

		bob := mustAgent(t, db, models.Agent{Identity: "bob", Name: "Bob", Role: models.RoleManager, PasswordHash: "h"})
		alice := mustAgent(t, db, models.Agent{Identity: "alice", Name: "Alice"})
		if alice.ID == 0 || bob.ID == 0 || alice.ID == bob.ID {
			t.Fatalf("ids = %d, %d, want distinct non-zero", alice.ID, bob.ID)
		}
		if alice.Role != models.RoleAgent || alice.Presence != models.PresenceOffline {
			t.Errorf("defaults: role %q presence %q, want agent offline", alice.Role, alice.Presence)
		}

		t.Run("duplicate identity", func(t *testing.T) {
			err := models.CreateAgent(ctx, db, &models.Agent{Identity: "alice"})
			if !errors.Is(err, models.ErrDuplicate) {
				t.Fatalf("CreateAgent(alice again) error = %v, want ErrDuplicate", err)
			}
		})

		t.Run("lookups", func(t *testing.T) {
			got, err := models.AgentByIdentity(ctx, db, "bob")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != bob.ID || got.Name != "Bob" || got.Role != models.RoleManager || got.PasswordHash != "h" {
				t.Errorf("AgentByIdentity(bob) = %+v", got)
			}
			wantTime(t, "CreatedAt", got.CreatedAt, bob.CreatedAt)
			if !got.LastCallEndedAt.IsZero() {
				t.Errorf("LastCallEndedAt = %v, want zero (NULL)", got.LastCallEndedAt)
			}
			byID, err := models.AgentByID(ctx, db, alice.ID)
			if err != nil || byID.Identity != "alice" {
				t.Errorf("AgentByID(%d) = %+v, %v", alice.ID, byID, err)
			}
			_, err = models.AgentByIdentity(ctx, db, "nobody")
			wantNotFound(t, "AgentByIdentity(nobody)", err)
			_, err = models.AgentByID(ctx, db, 999)
			wantNotFound(t, "AgentByID(999)", err)
		})

		t.Run("list by identity", func(t *testing.T) {
			agents, err := models.ListAgents(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if len(agents) != 2 || agents[0].Identity != "alice" || agents[1].Identity != "bob" {
				t.Errorf("ListAgents = %+v, want alice, bob", agents)
			}
		})

		t.Run("presence", func(t *testing.T) {
			steps := []struct {
				name      string
				presence  models.Presence
				at        time.Time
				wantSince time.Time
			}{
				{"goes available", models.PresenceAvailable, t0, t0},
				{"available again keeps since", models.PresenceAvailable, t0.Add(time.Minute), t0},
				{"goes busy", models.PresenceBusy, t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
				{"wrap up", models.PresenceWrapUp, t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
			}
			for _, s := range steps {
				got, err := models.UpdateAgentPresence(ctx, db, "alice", s.presence, s.at)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if got.Presence != s.presence || got.ID != alice.ID {
					t.Errorf("%s: presence = %q (agent %d), want %q (agent %d)", s.name, got.Presence, got.ID, s.presence, alice.ID)
				}
				wantTime(t, s.name+": PresenceSince", got.PresenceSince, s.wantSince)
				wantTime(t, s.name+": UpdatedAt", got.UpdatedAt, s.at)
			}
			_, err := models.UpdateAgentPresence(ctx, db, "nobody", models.PresenceAvailable, t0)
			wantNotFound(t, "UpdateAgentPresence(nobody)", err)
			if _, err := models.UpdateAgentPresence(ctx, db, "alice", "lunch", t0); err == nil {
				t.Error("UpdateAgentPresence(lunch) succeeded, want an error")
			}
		})

		t.Run("session epoch", func(t *testing.T) {
			for want := int64(1); want <= 2; want++ {
				got, err := models.BumpSessionEpoch(ctx, db, "bob")
				if err != nil || got != want {
					t.Fatalf("BumpSessionEpoch(bob) = %d, %v, want %d", got, err, want)
				}
			}
			_, err := models.BumpSessionEpoch(ctx, db, "nobody")
			wantNotFound(t, "BumpSessionEpoch(nobody)", err)
		})

		t.Run("update columns", func(t *testing.T) {
			a, err := models.AgentByIdentity(ctx, db, "bob")
			if err != nil {
				t.Fatal(err)
			}
			a.MissedOffers = 3
			a.LastCallEndedAt = t0
			a.Name = "not written"
			if err := models.UpdateAgent(ctx, db, a, "missed_offers", "last_call_ended_at"); err != nil {
				t.Fatal(err)
			}
			got, err := models.AgentByIdentity(ctx, db, "bob")
			if err != nil {
				t.Fatal(err)
			}
			if got.MissedOffers != 3 || got.Name != "Bob" {
				t.Errorf("after UpdateAgent: missed %d name %q, want 3 Bob", got.MissedOffers, got.Name)
			}
			wantTime(t, "LastCallEndedAt", got.LastCallEndedAt, t0)
			wantTime(t, "UpdatedAt", got.UpdatedAt, a.UpdatedAt)
			err = models.UpdateAgent(ctx, db, &models.Agent{ID: 999}, "name")
			wantNotFound(t, "UpdateAgent(999)", err)
		})
	})
}

func TestAvailableAgents(t *testing.T) {
	type agent struct {
		identity  string
		presence  models.Presence
		disabled  bool
		lastEnded time.Duration // after t0; 0 means never had a call
		since     time.Duration // after t0
	}
	tests := []struct {
		name   string
		agents []agent
		limit  int
		want   []string // longest idle first
	}{
		{
			name: "nobody available",
			agents: []agent{
				{identity: "alice", presence: models.PresenceBusy},
				{identity: "bob", presence: models.PresenceOffline},
			},
		},
		{
			name: "longest since last call",
			agents: []agent{
				{identity: "alice", presence: models.PresenceAvailable, lastEnded: 5 * time.Minute},
				{identity: "bob", presence: models.PresenceAvailable, lastEnded: 2 * time.Minute},
				{identity: "carol", presence: models.PresenceAvailable, lastEnded: 9 * time.Minute},
			},
			want: []string{"bob", "alice", "carol"},
		},
		{
			name:  "the first of them up to the limit",
			limit: 2,
			agents: []agent{
				{identity: "alice", presence: models.PresenceAvailable, lastEnded: 5 * time.Minute},
				{identity: "bob", presence: models.PresenceAvailable, lastEnded: 2 * time.Minute},
				{identity: "carol", presence: models.PresenceAvailable, lastEnded: 9 * time.Minute},
			},
			want: []string{"bob", "alice"},
		},
		{
			name: "never had a call beats any last call",
			agents: []agent{
				{identity: "alice", presence: models.PresenceAvailable, lastEnded: time.Minute},
				{identity: "bob", presence: models.PresenceAvailable, since: 30 * time.Minute},
			},
			want: []string{"bob", "alice"},
		},
		{
			name: "ties broken by presence since",
			agents: []agent{
				{identity: "alice", presence: models.PresenceAvailable, since: 3 * time.Minute},
				{identity: "bob", presence: models.PresenceAvailable, since: time.Minute},
			},
			want: []string{"bob", "alice"},
		},
		{
			name: "skips busy away wrap-up and offline",
			agents: []agent{
				{identity: "alice", presence: models.PresenceBusy},
				{identity: "bob", presence: models.PresenceAway},
				{identity: "carol", presence: models.PresenceWrapUp},
				{identity: "dave", presence: models.PresenceOffline},
				{identity: "erin", presence: models.PresenceAvailable, lastEnded: time.Hour},
			},
			want: []string{"erin"},
		},
		{
			name: "skips disabled",
			agents: []agent{
				{identity: "alice", presence: models.PresenceAvailable, disabled: true},
				{identity: "bob", presence: models.PresenceAvailable, lastEnded: time.Hour},
			},
			want: []string{"bob"},
		},
	}
	eachDB(t, func(t *testing.T, db *bun.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				if _, err := db.NewDelete().Model((*models.Agent)(nil)).Where("1 = 1").Exec(ctx); err != nil {
					t.Fatal(err)
				}
				for _, a := range tt.agents {
					m := models.Agent{
						Identity:      a.identity,
						Presence:      a.presence,
						Disabled:      a.disabled,
						PresenceSince: t0.Add(a.since),
					}
					if a.lastEnded != 0 {
						m.LastCallEndedAt = t0.Add(a.lastEnded)
					}
					mustAgent(t, db, m)
				}
				got, err := models.AvailableAgents(ctx, db, tt.limit)
				if err != nil {
					t.Fatalf("AvailableAgents: %v", err)
				}
				var identities []string
				for _, a := range got {
					identities = append(identities, a.Identity)
				}
				if !slices.Equal(identities, tt.want) {
					t.Errorf("AvailableAgents = %q, want %q", identities, tt.want)
				}
			})
		}
	})
}

func TestMarkAgentsBusy(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		busySince := t0.Add(time.Minute)
		alice := mustAgent(t, db, models.Agent{Identity: "alice", Presence: models.PresenceAvailable, PresenceSince: t0})
		bob := mustAgent(t, db, models.Agent{Identity: "bob", Presence: models.PresenceBusy, PresenceSince: busySince})
		carol := mustAgent(t, db, models.Agent{Identity: "carol", Presence: models.PresenceAvailable, PresenceSince: t0})
		at := t0.Add(time.Hour)
		if err := models.MarkAgentsBusy(ctx, db, []int64{alice.ID, bob.ID}, at); err != nil {
			t.Fatal(err)
		}
		if err := models.MarkAgentsBusy(ctx, db, nil, at); err != nil {
			t.Fatalf("MarkAgentsBusy(none): %v", err)
		}
		for _, tt := range []struct {
			id    int64
			want  models.Presence
			since time.Time
		}{
			{alice.ID, models.PresenceBusy, at},
			{bob.ID, models.PresenceBusy, busySince}, // already busy: since unchanged
			{carol.ID, models.PresenceAvailable, t0},
		} {
			got, err := models.AgentByID(ctx, db, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Presence != tt.want {
				t.Errorf("%s: presence %q, want %q", got.Identity, got.Presence, tt.want)
			}
			wantTime(t, got.Identity+" PresenceSince", got.PresenceSince, tt.since)
		}
	})
}
