package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestFiftyCallersAtOnce has 50 customers call at once with three agents:
// every call gets its own conference, no agent is ever rung while busy,
// callers wait for a free agent, and every call is answered and ends.
func TestFiftyCallersAtOnce(t *testing.T) {
	const callers = 50
	env := apptest.Start(t, apptest.Options{})
	agents := []string{"alice", "bob", "carol"}
	for _, a := range agents {
		env.AddAgent(a, strings.ToUpper(a[:1])+a[1:], models.RoleAgent)
		env.SignIn(a)
	}

	customers := make([]string, callers)
	var wg sync.WaitGroup
	for i := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			customers[i] = env.PlaceCall(fmt.Sprintf("+1555123%04d", i))
		}()
	}
	wg.Wait()
	isCustomer := map[string]bool{}
	for _, c := range customers {
		isCustomer[c] = true
	}

	accepted := map[string]bool{}
	hungUp := map[string]bool{}
	maxWaiting := 0
	for {
		var toAccept, toHangUp []string
		done := false
		ctx, cancel := context.WithTimeout(context.Background(), apptest.WaitLimit)
		last, err := env.Sim.WaitFor(ctx, func(st twiliosim.State) bool {
			toAccept, toHangUp = nil, nil
			live := map[string]int{}
			ended, waiting := 0, 0
			for _, c := range st.Calls {
				if id, ok := strings.CutPrefix(c.To, "client:"); ok && (c.Status == twiliosim.StatusRinging || c.Status == twiliosim.StatusInProgress) {
					live[id]++
					if live[id] > 1 {
						t.Errorf("agent %s has %d live calls at once", id, live[id])
					}
					if c.Status == twiliosim.StatusRinging && !accepted[c.SID] {
						toAccept = append(toAccept, c.SID)
					}
				}
				if isCustomer[c.SID] && c.Status == twiliosim.StatusCompleted {
					ended++
				}
				if isCustomer[c.SID] && c.Status == twiliosim.StatusInProgress && strings.Contains(c.Hearing, "BusyStrings") {
					waiting++
				}
			}
			maxWaiting = max(maxWaiting, waiting)
			for _, conf := range st.Conferences {
				if conf.Status != twiliosim.ConfInProgress || len(conf.Participants) < 2 {
					continue
				}
				for _, p := range conf.Participants {
					if isCustomer[p.CallSID] && !hungUp[p.CallSID] {
						toHangUp = append(toHangUp, p.CallSID)
					}
				}
			}
			done = ended == callers
			return done || len(toAccept) > 0 || len(toHangUp) > 0
		})
		cancel()
		if err != nil {
			dumpLiveCalls(t, env, last)
			t.Fatalf("nothing to act on and not done")
		}
		if done || t.Failed() {
			break
		}
		for _, sid := range toAccept {
			accepted[sid] = true
			env.SimAction(sid, "accept")
		}
		for _, sid := range toHangUp {
			hungUp[sid] = true
			env.SimAction(sid, "hangup")
		}
	}
	if maxWaiting <= len(agents) {
		t.Errorf("at most %d callers waited at once; with %d callers and %d agents most should have", maxWaiting, callers, len(agents))
	}

	ctx := context.Background()
	env.WaitDB("every call ended in the database", func(ctx context.Context) (bool, error) {
		n, err := env.App.DB.NewSelect().Model((*models.Call)(nil)).Where("state = ?", models.CallEnded).Count(ctx)
		return n == callers, err
	})
	var calls []models.Call
	if err := env.App.DB.NewSelect().Model(&calls).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	conferences := map[string]bool{}
	for _, c := range calls {
		if c.AnsweredAt.IsZero() || c.ConferenceSID == "" || c.EndedBy != "customer" {
			legs, _ := models.LegsForCall(ctx, env.App.DB, c.ID)
			evs, _ := models.EventsForCall(ctx, env.App.DB, c.ID)
			var kinds []string
			for _, e := range evs {
				kinds = append(kinds, e.Kind+e.Payload)
			}
			var ls []string
			for _, l := range legs {
				ls = append(ls, fmt.Sprintf("%d:%s:%s:agent%d", l.ID, l.CallSID, l.State, l.AgentID))
			}
			t.Errorf("call %s was not answered and ended by the customer: state %s by %q legs %v events %v", c.CallSID, c.State, c.EndedBy, ls, kinds)
		}
		conferences[c.ConferenceName] = true
		conferences[c.ConferenceSID] = true
	}
	if len(calls) != callers || len(conferences) != 2*callers {
		t.Fatalf("%d calls with %d distinct conference names and SIDs", len(calls), len(conferences))
	}
	for _, c := range env.Sim.State().Conferences {
		if c.Status != twiliosim.ConfCompleted {
			t.Errorf("conference %s is %s", c.FriendlyName, c.Status)
		}
	}
}

// dumpLiveCalls reports what the simulator and the database say about calls
// that have not ended, to explain a stalled test.
func dumpLiveCalls(t *testing.T, env *apptest.Env, st twiliosim.State) {
	t.Helper()
	for _, c := range st.Calls {
		if c.Status != twiliosim.StatusCompleted && c.Status != twiliosim.StatusCanceled {
			t.Logf("sim call %s %s -> %s %s conf=%s hearing=%q", c.SID, c.From, c.To, c.Status, c.Conference, c.Hearing)
		}
	}
	var calls []models.Call
	_ = env.App.DB.NewSelect().Model(&calls).Where("state <> ?", models.CallEnded).Scan(context.Background())
	for _, c := range calls {
		t.Logf("db call %d %s state=%s agent=%d hold=%v", c.ID, c.CallSID, c.State, c.AgentID, c.CustomerOnHold)
	}
	var agents []models.Agent
	_ = env.App.DB.NewSelect().Model(&agents).Scan(context.Background())
	for _, a := range agents {
		t.Logf("db agent %s %s", a.Identity, a.Presence)
	}
	for _, n := range st.Notifications {
		t.Logf("notification %s %d %s", n.CallSID, n.ErrorCode, n.Message)
	}
}
