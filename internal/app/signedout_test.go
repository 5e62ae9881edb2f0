package app_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/app"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestARestartWithAFreshSecretSignsEveryoneOut: without WT_SESSION_SECRET
// each run signs its sessions with a secret of its own, so a restart ends
// them all. An agent who was available must then not be rung: they are
// not signed in, and nobody would answer. Signing in again puts them
// back on routing.
func TestARestartWithAFreshSecretSignsEveryoneOut(t *testing.T) {
	dbURL := testdb.URL(t)
	first := apptest.Start(t, apptest.Options{DatabaseURL: dbURL})
	first.AddAgent("alice", "Alice Archer", models.RoleAgent)
	first.SignIn("alice")
	if p := presenceOf(t, first, "alice").Presence; p != models.PresenceAvailable {
		t.Fatalf("alice signed in is %q", p)
	}
	first.Stop()

	second := apptest.Start(t, apptest.Options{DatabaseURL: dbURL})
	if p := presenceOf(t, second, "alice").Presence; p != models.PresenceOffline {
		t.Fatalf("after a restart that ended her session alice is %q, want offline", p)
	}
	second.PlaceCall("+15554440004")
	second.WaitDB("the caller waiting", func(ctx context.Context) (bool, error) {
		n, err := second.App.DB.NewSelect().Model((*models.Call)(nil)).Where("state = ?", models.CallQueued).Count(ctx)
		return n == 1, err
	})
	// The caller is queued: the dispatcher has looked for an agent and
	// found none. No phone was rung.
	for _, c := range second.Sim.State().Calls {
		if c.To == "client:alice" {
			t.Fatalf("alice's phone was rung while she was signed out: %+v", c)
		}
	}
	second.SignIn("alice")
	second.WaitSim("alice rung once she signed in", func(st twiliosim.State) bool {
		for _, c := range st.Calls {
			if c.To == "client:alice" {
				return true
			}
		}
		return false
	})
}

// TestResettingAnAgentTakesThemOffRouting: `warmtransfer agent add` on an
// existing agent resets their password and ends their sessions; an agent
// who was available is then offline, not left to be rung unanswered.
func TestResettingAnAgentTakesThemOffRouting(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.SignIn("alice")
	before, err := models.AgentByIdentity(context.Background(), env.App.DB, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if before.Presence != models.PresenceAvailable {
		t.Fatalf("alice signed in is %q", before.Presence)
	}
	if err := app.UpsertAgent(context.Background(), env.App.DB, "alice", "Alice A.", models.RoleAgent, "a-new-password"); err != nil {
		t.Fatal(err)
	}
	after, err := models.AgentByIdentity(context.Background(), env.App.DB, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if after.Presence != models.PresenceOffline || after.SessionEpoch != before.SessionEpoch+1 || after.Name != "Alice A." {
		t.Fatalf("after the reset alice is %q, epoch %d (was %d), named %q", after.Presence, after.SessionEpoch, before.SessionEpoch, after.Name)
	}
}

// TestSigningOutMidCallKeepsTheCallButEndsTheRouting: an agent who signs
// out during a call finishes it (the caller is not cut off) and is then
// offered no more calls; signing in again puts them back. One who signs
// back in before the call ends is simply busy with it, and free after.
func TestSigningOutMidCallKeepsTheCallButEndsTheRouting(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")
	first := env.PlaceCall("+15558880001")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitDB("alice with the first caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, first)
		return err == nil && c.State == models.CallWithAgent, nil
	})
	if status, body := alice.Post("/signout", url.Values{}); status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", status, body)
	}
	if p := presenceOf(t, env, "alice").Presence; p != models.PresenceOffline {
		t.Fatalf("alice signed out mid-call is %q, want offline", p)
	}
	if st := env.Sim.State(); !inProgress(st, first) {
		t.Fatal("signing out cut the caller off")
	}
	env.SimAction(first, "hangup")
	env.WaitDB("the first call over", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, first)
		return err == nil && c.State == models.CallEnded, nil
	})
	if p := presenceOf(t, env, "alice").Presence; p != models.PresenceOffline {
		t.Fatalf("after her call alice, signed out, is %q, want offline", p)
	}
	second := env.PlaceCall("+15558880002")
	env.WaitDB("the second caller waiting", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, second)
		return err == nil && c.State == models.CallQueued, nil
	})
	if n := ringsTo(env.Sim.State(), "client:alice"); n != 1 {
		t.Fatalf("alice's phone was rung %d times, want only for the first call", n)
	}

	// Back: rung for the waiting caller. Signing out and in again during
	// that call leaves her busy with it, and free when it ends.
	alice = env.SignIn("alice")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitDB("alice with the second caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, second)
		return err == nil && c.State == models.CallWithAgent, nil
	})
	if status, body := alice.Post("/signout", url.Values{}); status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("sign out: %d %s", status, body)
	}
	env.SignIn("alice")
	if p := presenceOf(t, env, "alice").Presence; p != models.PresenceBusy {
		t.Fatalf("alice signed in again mid-call is %q, want busy", p)
	}
	env.SimAction(second, "hangup")
	env.WaitDB("alice free after the second call", func(ctx context.Context) (bool, error) {
		a, err := models.AgentByIdentity(ctx, env.App.DB, "alice")
		return err == nil && a.Presence == models.PresenceAvailable, err
	})
}

func inProgress(st twiliosim.State, sid string) bool {
	c, ok := st.Call(sid)
	return ok && c.Status == "in-progress"
}

func ringsTo(st twiliosim.State, to string) int {
	n := 0
	for _, c := range st.Calls {
		if c.To == to {
			n++
		}
	}
	return n
}
