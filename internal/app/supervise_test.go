package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestManagerListensAndCoaches: a manager listens in on Alice's call
// (muted), stops, then coaches her (only Alice hears them); Alice's
// console and the board say so, and the call is never disturbed.
func TestManagerListensAndCoaches(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	env.AddAgent("mia", "Mia Manager", models.RoleManager)
	mia := env.SignIn("mia")

	row := cc.board(t, mia)
	if row.Find(`[data-testid="listen-button"]`).Length() != 1 || row.Find(`[data-testid="coach-button"]`).Length() != 1 {
		t.Fatalf("the board offers no Listen and Coach on alice's call")
	}
	cc.do(t, cc.alice, "listen", nil, http.StatusForbidden)
	cc.do(t, cc.bob, "coach", nil, http.StatusForbidden)

	// miaJoins waits for the manager's phone to ring, answers it, and
	// returns her leg.
	miaJoins := func() string {
		t.Helper()
		leg := env.Ringing("mia")
		env.WaitDB("mia's leg known", func(ctx context.Context) (bool, error) {
			_, err := models.LegByCallSID(ctx, env.App.DB, leg)
			return err == nil, err
		})
		env.SimAction(leg, "accept")
		env.WaitDB("mia on the call", func(ctx context.Context) (bool, error) {
			l, err := models.LegByCallSID(ctx, env.App.DB, leg)
			return err == nil && l.State == models.LegJoined, err
		})
		return leg
	}
	undisturbed := func(when string) {
		t.Helper()
		c := cc.conference()
		if !c.in(cc.customer) || !c.in(cc.aliceLeg) || c.held(cc.customer) || !c.endsIt(cc.customer) {
			t.Fatalf("%s: the call was disturbed: %+v", when, c.conf)
		}
		call := callBySID(t, env, cc.customer)
		if call.AgentID != cc.agentID(t, "alice") || call.State != models.CallWithAgent {
			t.Fatalf("%s: the call is %s with agent %d, want alice's", when, call.State, call.AgentID)
		}
	}

	// Listen: muted, not coaching.
	cc.do(t, mia, "listen", nil, http.StatusNoContent)
	cc.do(t, mia, "listen", nil, http.StatusConflict) // one call at a time
	miaLeg := miaJoins()
	st := env.WaitSim("mia in the conference, muted", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, in := c.Participant(miaLeg)
		return in && p.Status == "connected"
	})
	c, _ := st.Conference(cc.conf)
	if p, _ := c.Participant(miaLeg); !p.Muted || p.Coaching || p.EndConferenceOnExit || p.Hold {
		t.Fatalf("mia listening = %+v, want muted, not coaching, not ending the call", p)
	}
	undisturbed("mia listening")
	if got := consoleOf(cc.alice).text("supervisor-mia"); got != "manager, listening" {
		t.Errorf("alice's console says of mia %q, want manager, listening", got)
	}
	if got := consoleOf(mia).text("supervising"); !strings.Contains(got, "You are listening to Alice Archer") {
		t.Errorf("mia's console says %q", got)
	}
	if got := cc.board(t, mia).Find(`[data-testid="call-agents"]`).Text(); got != "Alice Archer, Mia Manager (listening)" {
		t.Errorf("board's agents = %q", got)
	}
	// Listening does not let her act on the call.
	cc.do(t, mia, "hangup", nil, http.StatusForbidden)

	cc.do(t, mia, "unmonitor", nil, http.StatusNoContent)
	env.WaitSim("mia's phone hung up", func(st twiliosim.State) bool {
		l, _ := st.Call(miaLeg)
		return l.Status == twiliosim.StatusCompleted
	})
	env.WaitDB("mia off the call and free", func(ctx context.Context) (bool, error) {
		l, err := models.LegByCallSID(ctx, env.App.DB, miaLeg)
		if err != nil {
			return false, err
		}
		m, err := models.AgentByIdentity(ctx, env.App.DB, "mia")
		return err == nil && l.State == models.LegLeft && m.Presence != models.PresenceBusy, err
	})
	undisturbed("mia gone")
	if consoleOf(cc.alice).has("supervisor-mia") {
		t.Error("alice's console still shows mia")
	}
	cc.do(t, mia, "unmonitor", nil, http.StatusConflict)

	// Coach: heard by Alice alone.
	cc.do(t, mia, "coach", nil, http.StatusNoContent)
	miaLeg = miaJoins()
	st = env.WaitSim("mia coaching alice", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, in := c.Participant(miaLeg)
		return in && p.Status == "connected"
	})
	c, _ = st.Conference(cc.conf)
	if p, _ := c.Participant(miaLeg); !p.Coaching || p.CallSIDToCoach != cc.aliceLeg || p.Muted || p.EndConferenceOnExit {
		t.Fatalf("mia coaching = %+v, want coaching alice's leg %s", p, cc.aliceLeg)
	}
	undisturbed("mia coaching")
	if got := consoleOf(cc.alice).text("supervisor-mia"); !strings.HasPrefix(got, "manager, coaching") {
		t.Errorf("alice's console says of mia %q, want coaching", got)
	}

	// Mia hangs up her own phone: the call goes on.
	env.SimAction(miaLeg, "hangup")
	env.WaitDB("mia off the call", func(ctx context.Context) (bool, error) {
		l, err := models.LegByCallSID(ctx, env.App.DB, miaLeg)
		return err == nil && l.State == models.LegLeft, err
	})
	undisturbed("mia hung up")
}
