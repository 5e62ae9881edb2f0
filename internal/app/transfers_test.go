package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// conferenceNow is the customer's conference as the simulator has it:
// who is in (connected), who is held, who ends it by leaving.
type conferenceNow struct {
	conf twiliosim.ConferenceState
}

func (cc *consultCall) conference() conferenceNow {
	c, _ := cc.env.Sim.State().Conference(cc.conf)
	return conferenceNow{c}
}

func (c conferenceNow) in(sid string) bool {
	p, ok := c.conf.Participant(sid)
	return ok && p.Status == "connected"
}

func (c conferenceNow) held(sid string) bool {
	p, _ := c.conf.Participant(sid)
	return p.Hold
}

func (c conferenceNow) endsIt(sid string) bool {
	p, _ := c.conf.Participant(sid)
	return p.EndConferenceOnExit
}

// wantOwner waits until exactly the customer and owner are in the
// conference, nobody held, and owner's leaving ends it.
func (cc *consultCall) wantOwner(t *testing.T, owner, ownerLeg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apptest.WaitLimit)
	defer cancel()
	if _, err := cc.env.Sim.WaitFor(ctx, func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		connected := 0
		for _, p := range c.Participants {
			if p.Status == "connected" {
				connected++
			}
		}
		cust, _ := c.Participant(cc.customer)
		p, in := c.Participant(ownerLeg)
		return connected == 2 && in && p.Status == "connected" && p.EndConferenceOnExit && !p.Hold && !cust.Hold && cust.EndConferenceOnExit
	}); err != nil {
		c, _ := cc.env.Sim.State().Conference(cc.conf)
		t.Fatalf("timed out waiting for %s alone with the customer, owning the call; the conference: %+v", owner, c)
	}
	id := cc.agentID(t, owner)
	cc.env.WaitDB(owner+" owns the call in the database", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, cc.env.App.DB, cc.call.ID)
		return err == nil && c.AgentID == id && c.State == models.CallWithAgent && !c.CustomerOnHold, err
	})
}

// board is the manager's view of the call.
func (cc *consultCall) board(t *testing.T, manager *apptest.Client) *goquery.Selection {
	t.Helper()
	return manager.Page("/board").Find(`[data-testid="call-row-` + strconv.FormatInt(cc.call.ID, 10) + `"]`)
}

// addColleague adds and signs in another agent.
func (cc *consultCall) addColleague(t *testing.T, identity, name string) *apptest.Client {
	t.Helper()
	cc.env.AddAgent(identity, name, models.RoleAgent)
	return cc.env.SignIn(identity)
}

// TestBlindTransfer: Alice hands the caller to Bob without talking to him:
// the caller holds with music while Bob's phone rings, Alice is off the
// call at once, and once Bob answers the caller is with him and his
// leaving ends the call.
func TestBlindTransfer(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	env.AddAgent("mia", "Mia Manager", models.RoleManager)
	mia := env.SignIn("mia")

	cc.do(t, cc.alice, "blind", url.Values{"to": {""}}, http.StatusBadRequest)
	cc.do(t, cc.alice, "blind", url.Values{"to": {"alice"}}, http.StatusBadRequest)
	cc.do(t, cc.bob, "blind", url.Values{"to": {"alice"}}, http.StatusForbidden)
	if a := consoleOf(cc.alice); !a.has("blind-button") || a.disabled("blind-button") {
		t.Fatalf("alice's console has no Blind button")
	}

	cc.do(t, cc.alice, "blind", url.Values{"to": {"bob"}}, http.StatusOK)
	bobLeg := env.Ringing("bob")
	env.WaitSim("the customer on hold with music, alice gone", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, _ := c.Participant(cc.customer)
		a, _ := st.Call(cc.aliceLeg)
		return p.Hold && p.Hearing == holdMusic && a.Status == twiliosim.StatusCompleted
	})
	env.WaitDB("alice free for the next call", func(ctx context.Context) (bool, error) {
		a, err := models.AgentByIdentity(ctx, env.App.DB, "alice")
		return err == nil && a.Presence == models.PresenceAvailable, err
	})
	if a := consoleOf(cc.alice); !a.has("no-call") {
		t.Errorf("alice's console still shows the call after a blind transfer")
	}
	row := cc.board(t, mia)
	if got := row.Find(`[data-testid="call-state"]`).Text(); got != "transferring" {
		t.Errorf("board shows the call %q while bob rings, want transferring", got)
	}
	if got := row.Find(`[data-testid="call-agents"]`).Text(); !strings.Contains(got, "Bob Baker (ringing)") || strings.Contains(got, "Alice") {
		t.Errorf("board's agents while bob rings = %q", got)
	}
	if got := consoleOf(cc.bob).text("offer-transfer-from"); got != "transfer from Alice Archer" {
		t.Errorf("bob's offer says %q", got)
	}

	env.SimAction(bobLeg, "accept")
	cc.wantOwner(t, "bob", bobLeg)
	tr := cc.transfer(t)
	if tr.Mode != models.TransferBlind || tr.State != models.TransferCompleted {
		t.Fatalf("transfer = %+v, want a completed blind transfer", tr)
	}
	b := consoleOf(cc.bob)
	if b.customerHeld() || !b.has("participant-bob") || b.has("participant-alice") && !strings.Contains(b.text("participant-alice"), "left") {
		t.Errorf("bob's console after answering: held %v, participants %q", b.customerHeld(), b.text("participants"))
	}
	if got := cc.board(t, mia).Find(`[data-testid="call-agents"]`).Text(); got != "Bob Baker" {
		t.Errorf("board's agents after bob answered = %q, want Bob Baker", got)
	}

	// Bob hangs up his phone: he owns the call, so it ends for the caller.
	env.SimAction(bobLeg, "hangup")
	st := env.WaitSim("the conference ended by bob", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		return c.Status == twiliosim.ConfCompleted
	})
	c, _ := st.Conference(cc.conf)
	if c.ReasonConferenceEnded != "participant-with-end-conference-on-exit-left" || c.CallSIDEndingConference != bobLeg {
		t.Fatalf("conference ended %q by %q, want by bob's leg", c.ReasonConferenceEnded, c.CallSIDEndingConference)
	}
	env.WaitDB("the call ended by bob", func(ctx context.Context) (bool, error) {
		cl, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		if err == nil && cl.State == models.CallEnded && cl.EndedBy != "bob" {
			t.Fatalf("call ended by %q (%s), want bob", cl.EndedBy, cl.EndReason)
		}
		return err == nil && cl.State == models.CallEnded && cl.EndedBy == "bob", err
	})
}

// TestBlindTransferNotAnswered: the colleague declines a blind transfer;
// the caller, still on hold, goes back to the queue and the next free agent
// (not the one who declined nor the one who sent it) is rung.
func TestBlindTransferNotAnswered(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	cc.addColleague(t, "carol", "Carol Cole")

	cc.do(t, cc.alice, "blind", url.Values{"to": {"bob"}}, http.StatusOK)
	bobLeg := env.Ringing("bob")
	env.WaitDB("alice free", func(ctx context.Context) (bool, error) {
		a, err := models.AgentByIdentity(ctx, env.App.DB, "alice")
		return err == nil && a.Presence == models.PresenceAvailable, err
	})
	env.SimAction(bobLeg, "reject")
	carolLeg := env.Ringing("carol")
	if cc.conference().in(cc.customer) && !cc.conference().held(cc.customer) {
		t.Fatalf("the customer came off hold with nobody to talk to")
	}
	if tr := cc.transfer(t); tr.State != models.TransferDeclined {
		t.Fatalf("transfer = %+v, want declined", tr)
	}
	env.SimAction(carolLeg, "accept")
	env.WaitSim("carol talking to the customer", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		cust, _ := c.Participant(cc.customer)
		p, in := c.Participant(carolLeg)
		return in && p.Status == "connected" && !cust.Hold
	})
	carol := cc.agentID(t, "carol")
	env.WaitDB("the call is carol's", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		return err == nil && c.AgentID == carol && c.State == models.CallWithAgent, err
	})
}

// TestBackToQueue: Alice sends the caller back to the queue; they hold
// with music, hear their place in line, and the next free agent takes them.
func TestBackToQueue(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	bob := cc.bob
	setPresence(t, bob, models.PresenceAway)

	cc.do(t, cc.bob, "queue", nil, http.StatusForbidden)
	cc.do(t, cc.alice, "queue", nil, http.StatusOK)
	env.WaitSim("the customer on hold, told they are next, alice gone", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, _ := c.Participant(cc.customer)
		a, _ := st.Call(cc.aliceLeg)
		return p.Hold && p.Hearing == holdMusic && heard(st, cc.customer, "You are next in line.") && a.Status == twiliosim.StatusCompleted
	})
	// Alice is the only one free: the call comes back to her rather than
	// wait, but only once nobody else is free. Bob comes back first.
	setPresence(t, bob, models.PresenceAvailable)
	var ringing string
	env.WaitSim("someone rung for the caller", func(st twiliosim.State) bool {
		for _, c := range st.Calls {
			if strings.HasPrefix(c.To, "client:") && c.Status == twiliosim.StatusRinging {
				ringing = c.To
				return true
			}
		}
		return false
	})
	if ringing != "client:bob" && ringing != "client:alice" {
		t.Fatalf("%s rung for the requeued caller", ringing)
	}
	leg := env.Ringing(strings.TrimPrefix(ringing, "client:"))
	env.SimAction(leg, "accept")
	env.WaitSim("the customer off hold with an agent", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		cust, _ := c.Participant(cc.customer)
		p, in := c.Participant(leg)
		return in && p.Status == "connected" && !cust.Hold
	})
}

// TestBackToQueuePrefersAnotherAgent: the agent who sent the caller back is
// not offered them again while a colleague is free.
func TestBackToQueuePrefersAnotherAgent(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	cc.do(t, cc.alice, "queue", nil, http.StatusOK)
	// Both are free once alice's phone hangs up; bob is rung.
	bobLeg := env.Ringing("bob")
	env.SimAction(bobLeg, "accept")
	cc.wantOwnerPrimary(t, "bob", bobLeg)
}

// wantOwnerPrimary waits until agent, rung as a new offer, is talking to the
// customer off hold.
func (cc *consultCall) wantOwnerPrimary(t *testing.T, agent, leg string) {
	t.Helper()
	cc.env.WaitSim(agent+" talking to the customer", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		cust, _ := c.Participant(cc.customer)
		p, in := c.Participant(leg)
		return in && p.Status == "connected" && !cust.Hold
	})
	id := cc.agentID(t, agent)
	cc.env.WaitDB(agent+" has the call", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, cc.env.App.DB, cc.call.ID)
		return err == nil && c.AgentID == id && c.State == models.CallWithAgent, err
	})
}

// TestChainedTransfers: the call passes from agent to agent in every mode
// (a direct transfer, a consult, a blind transfer), and at each step the
// agent who has it is the one whose leaving ends it, and nobody else.
func TestChainedTransfers(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	carol := cc.addColleague(t, "carol", "Carol Cole")
	cc.addColleague(t, "dave", "Dave Dunn")

	// Alice -> Bob, direct: Bob joins both, Alice leaves.
	cc.do(t, cc.alice, "transfer", url.Values{"to": {"bob"}}, http.StatusOK)
	bobLeg := env.Ringing("bob")
	env.SimAction(bobLeg, "accept")
	env.WaitDB("bob joined", func(ctx context.Context) (bool, error) {
		tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
		return err == nil && tr.State == models.TransferJoined, err
	})
	if cc.conference().endsIt(bobLeg) {
		t.Fatal("bob ends the call before alice handed it over")
	}
	cc.do(t, cc.alice, "leave", nil, http.StatusOK)
	cc.wantOwner(t, "bob", bobLeg)

	// Bob -> Carol, consult: the customer holds while they talk, then Bob
	// completes and Carol owns it; Bob's leaving no longer ends anything.
	cc.do(t, cc.bob, "consult", url.Values{"to": {"carol"}}, http.StatusOK)
	carolLeg := env.Ringing("carol")
	env.SimAction(carolLeg, "accept")
	env.WaitSim("carol with bob, the customer on hold", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		cust, _ := c.Participant(cc.customer)
		p, in := c.Participant(carolLeg)
		return in && p.Status == "connected" && cust.Hold
	})
	env.WaitDB("the consult joined", func(ctx context.Context) (bool, error) {
		tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
		return err == nil && tr.State == models.TransferJoined && tr.Mode == models.TransferConsult, err
	})
	if c := cc.conference(); !c.endsIt(bobLeg) || c.endsIt(carolLeg) {
		t.Fatalf("during bob's consult: bob ends it %v, carol ends it %v; want bob only", c.endsIt(bobLeg), c.endsIt(carolLeg))
	}
	cc.do(t, cc.bob, "complete", nil, http.StatusOK)
	cc.wantOwner(t, "carol", carolLeg)
	if st, _ := env.Sim.State().Call(bobLeg); st.Status != twiliosim.StatusCompleted {
		t.Fatalf("bob's leg is %s after completing, want completed", st.Status)
	}

	// Carol -> Dave, blind: Carol is off the call at once; the customer
	// holds until Dave answers, then Dave owns it.
	form := url.Values{"to": {"dave"}}
	if status, body := carol.Post(cc.path("blind"), form); status != http.StatusOK {
		t.Fatalf("carol's blind transfer: %d %s", status, body)
	}
	daveLeg := env.Ringing("dave")
	env.WaitSim("carol gone, the customer on hold", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		cust, _ := c.Participant(cc.customer)
		leg, _ := st.Call(carolLeg)
		return cust.Hold && leg.Status == twiliosim.StatusCompleted
	})
	if !cc.conference().in(cc.customer) {
		t.Fatal("carol's leaving (she owned the call) dropped the customer")
	}
	env.SimAction(daveLeg, "accept")
	cc.wantOwner(t, "dave", daveLeg)

	transfers, err := models.TransfersForCalls(context.Background(), env.App.DB, []int64{cc.call.ID})
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, tr := range transfers {
		if tr.State != models.TransferCompleted {
			t.Errorf("transfer %+v did not complete", tr)
		}
		modes = append(modes, string(tr.Mode))
	}
	if strings.Join(modes, ",") != "direct,consult,blind" {
		t.Errorf("transfers = %v, want direct, consult, blind", modes)
	}
	// Dave hangs up: the call ends, ended by dave.
	env.SimAction(daveLeg, "hangup")
	env.WaitDB("the call ended by dave", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		return err == nil && c.State == models.CallEnded && c.EndedBy == "dave", err
	})
}

// TestColleagueBrowserDropsMidConsult: Bob's browser drops while Alice
// consults him; Alice is told and the customer comes back to her.
func TestColleagueBrowserDropsMidConsult(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	bobLeg := cc.consultBob(t)
	cc.bobJoins(t, bobLeg)

	env.SimAction(bobLeg, "hangup") // the browser tab closed, the phone gone
	env.WaitSim("the customer back with alice, off hold", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		cust, _ := c.Participant(cc.customer)
		_, bobIn := c.Participant(bobLeg)
		return !bobIn && !cust.Hold && c.Status == twiliosim.ConfInProgress
	})
	env.WaitDB("the consult failed, alice has the call", func(ctx context.Context) (bool, error) {
		tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
		if err != nil {
			return false, err
		}
		c, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		return err == nil && !tr.State.Open() && c.AgentID == cc.agentID(t, "alice") && c.State == models.CallWithAgent && !c.CustomerOnHold, err
	})
	a := consoleOf(cc.alice)
	if a.customerHeld() || a.has("consult-actions") || a.disabled("consult-button") {
		t.Errorf("alice's console after bob dropped: held %v, consult actions %v", a.customerHeld(), a.has("consult-actions"))
	}
	if got := a.text("transfer-progress"); !strings.Contains(got, "Bob Baker") {
		t.Errorf("alice is not told what happened to the consult: %q", got)
	}
	env.WaitDB("bob free again", func(ctx context.Context) (bool, error) {
		b, err := models.AgentByIdentity(ctx, env.App.DB, "bob")
		return err == nil && b.Presence == models.PresenceAvailable, err
	})
}

// TestFirstAgentDropsAfterColleagueJoined: Alice's browser drops after Bob
// joined her transfer; Bob has the caller and now owns the call.
func TestFirstAgentDropsAfterColleagueJoined(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	cc.do(t, cc.alice, "transfer", url.Values{"to": {"bob"}}, http.StatusOK)
	bobLeg := env.Ringing("bob")
	env.SimAction(bobLeg, "accept")
	env.WaitDB("bob joined", func(ctx context.Context) (bool, error) {
		tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
		return err == nil && tr.State == models.TransferJoined, err
	})
	env.SimAction(cc.aliceLeg, "hangup")
	cc.wantOwner(t, "bob", bobLeg)
}

// TestCallerHangsUpDuringConsult: the customer hangs up while Bob's phone
// rings for a consult; Bob's phone stops ringing, the call ends, and both
// consoles and the board show it.
func TestCallerHangsUpDuringConsult(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	env.AddAgent("mia", "Mia Manager", models.RoleManager)
	mia := env.SignIn("mia")
	bobLeg := cc.consultBob(t)

	env.SimAction(cc.customer, "hangup")
	st := env.WaitSim("the conference over and bob's phone silent", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		b, _ := st.Call(bobLeg)
		a, _ := st.Call(cc.aliceLeg)
		return c.Status == twiliosim.ConfCompleted && b.Status != twiliosim.StatusRinging && b.Status != twiliosim.StatusInProgress &&
			a.Status == twiliosim.StatusCompleted
	})
	if c, _ := st.Conference(cc.conf); c.CallSIDEndingConference != cc.customer {
		t.Errorf("conference ended by %q, want the customer", c.CallSIDEndingConference)
	}
	env.WaitDB("the call ended by the caller, the consult canceled, both agents free", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		if err != nil || c.State != models.CallEnded || c.EndedBy != "customer" {
			return false, err
		}
		tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
		if err != nil || tr.State.Open() {
			return false, err
		}
		for _, id := range []string{"alice", "bob"} {
			a, err := models.AgentByIdentity(ctx, env.App.DB, id)
			if err != nil || a.Presence != models.PresenceAvailable {
				return false, err
			}
		}
		return true, nil
	})
	if a := consoleOf(cc.alice); !a.has("no-call") {
		t.Error("alice's console still shows the call")
	}
	if b := consoleOf(cc.bob); b.has("offer-caller") {
		t.Error("bob's console still offers the consult")
	}
	ended := mia.Page("/board").Find(`[data-testid="ended-row-` + strconv.FormatInt(cc.call.ID, 10) + `"]`)
	if ended.Length() != 1 || !strings.Contains(ended.Find(`[data-testid="end-reason"]`).Text(), "hung up") {
		t.Errorf("the board's ended calls do not show the caller hanging up: %q", ended.Text())
	}
}

// TestFirstAgentDropsBeforeColleagueAnswers: Alice's browser drops while
// Bob's phone rings for her transfer; the caller is not dropped: they hold
// with music, Bob is still rung, and once he answers he has the call and
// owns it.
func TestFirstAgentDropsBeforeColleagueAnswers(t *testing.T) {
	for _, mode := range []string{"transfer", "consult"} {
		t.Run(mode, func(t *testing.T) {
			cc := startConsultCall(t)
			env := cc.env
			cc.do(t, cc.alice, mode, url.Values{"to": {"bob"}}, http.StatusOK)
			bobLeg := env.Ringing("bob")
			env.SimAction(cc.aliceLeg, "hangup")
			env.WaitSim("the customer holding with music, bob still rung", func(st twiliosim.State) bool {
				c, _ := st.Conference(cc.conf)
				cust, in := c.Participant(cc.customer)
				b, _ := st.Call(bobLeg)
				return in && cust.Hold && cust.Hearing == holdMusic && b.Status == twiliosim.StatusRinging
			})
			env.SimAction(bobLeg, "accept")
			cc.wantOwner(t, "bob", bobLeg)
			if tr := cc.transfer(t); tr.State != models.TransferCompleted {
				t.Errorf("transfer = %+v, want completed", tr)
			}
			if b := consoleOf(cc.bob); b.customerHeld() || !b.has("participant-bob") {
				t.Errorf("bob's console: caller held %v", b.customerHeld())
			}
		})
	}
}
