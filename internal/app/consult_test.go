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

const holdMusic = "play: https://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3 (looping)"

// consultCall is a customer's call that Alice has answered, with Bob
// signed in and free to be consulted.
type consultCall struct {
	env        *apptest.Env
	alice, bob *apptest.Client
	customer   string // the customer's CallSid
	aliceLeg   string
	conf       string // the conference's friendly name
	call       *models.Call
}

func startConsultCall(t *testing.T) *consultCall {
	t.Helper()
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	cc := &consultCall{env: env, alice: env.SignIn("alice"), bob: env.SignIn("bob")}
	cc.customer = env.PlaceCall("+15551230002")
	st := env.WaitSim("the customer in a conference", func(st twiliosim.State) bool {
		c, _ := st.Call(cc.customer)
		return c.Conference != ""
	})
	cust, _ := st.Call(cc.customer)
	cc.conf = cust.Conference
	cc.call = callBySID(t, env, cc.customer)
	cc.aliceLeg = env.Ringing("alice")
	env.SimAction(cc.aliceLeg, "accept")
	env.WaitSim("alice talking to the customer", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, in := c.Participant(cc.aliceLeg)
		return c.Status == twiliosim.ConfInProgress && in && p.Status == "connected"
	})
	env.WaitDB("the call with alice, its conference known", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		return err == nil && c.State == models.CallWithAgent && c.ConferenceSID != "" && !c.CustomerOnHold, err
	})
	return cc
}

func (cc *consultCall) path(action string) string {
	return "/calls/" + strconv.FormatInt(cc.call.ID, 10) + "/" + action
}

// do posts an action as an agent and checks the status it answered.
func (cc *consultCall) do(t *testing.T, who *apptest.Client, action string, form url.Values, want int) {
	t.Helper()
	if status, body := who.Post(cc.path(action), form); status != want {
		t.Fatalf("%s by %s: %d %s, want %d", action, who.Identity, status, body, want)
	}
}

// consultBob has Alice consult Bob and returns the leg ringing Bob.
func (cc *consultCall) consultBob(t *testing.T) string {
	t.Helper()
	cc.do(t, cc.alice, "consult", url.Values{"to": {"bob"}}, http.StatusOK)
	bobLeg := cc.env.Ringing("bob")
	cc.env.WaitSim("the customer on hold, hearing music", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, _ := c.Participant(cc.customer)
		return p.Hold && p.Hearing == holdMusic
	})
	tr := cc.transfer(t)
	if tr.Mode != models.TransferConsult || tr.State != models.TransferRinging {
		t.Fatalf("transfer after consult = %+v", tr)
	}
	return bobLeg
}

// bobJoins has Bob accept the consult and waits for him in the conference.
func (cc *consultCall) bobJoins(t *testing.T, bobLeg string) {
	t.Helper()
	cc.env.SimAction(bobLeg, "accept")
	cc.env.WaitSim("bob in the conference", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, in := c.Participant(bobLeg)
		return in && p.Status == "connected"
	})
	cc.env.WaitDB("the consult joined", func(ctx context.Context) (bool, error) {
		tr, err := models.LatestTransferForCall(ctx, cc.env.App.DB, cc.call.ID)
		return err == nil && tr.State == models.TransferJoined, err
	})
}

func (cc *consultCall) transfer(t *testing.T) *models.Transfer {
	t.Helper()
	tr, err := models.LatestTransferForCall(context.Background(), cc.env.App.DB, cc.call.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (cc *consultCall) agentID(t *testing.T, identity string) int64 {
	t.Helper()
	a, err := models.AgentByIdentity(context.Background(), cc.env.App.DB, identity)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// console is what an agent's console shows of their call.
type console struct {
	doc *goquery.Document
}

func consoleOf(c *apptest.Client) console { return console{c.Page("/agent")} }

func (c console) text(testid string) string {
	return strings.TrimSpace(c.doc.Find(`[data-testid="` + testid + `"]`).Text())
}

func (c console) has(testid string) bool {
	return c.doc.Find(`[data-testid="`+testid+`"]`).Length() > 0
}

func (c console) disabled(testid string) bool {
	_, ok := c.doc.Find(`[data-testid="` + testid + `"]`).Attr("disabled")
	return ok
}

func (c console) customerHeld() bool {
	v, _ := c.doc.Find(`[data-testid="participant-customer"]`).Attr("data-hold")
	return v == "true" && strings.Contains(c.text("participant-customer"), "on hold")
}

// wantConsulting checks both consoles while the customer holds and Bob is
// on the call with Alice.
func (cc *consultCall) wantConsulting(t *testing.T) {
	t.Helper()
	a := consoleOf(cc.alice)
	if !a.customerHeld() {
		t.Errorf("alice's console does not show the caller on hold: %q", a.text("participant-customer"))
	}
	if got, want := a.text("transfer-progress"), "Consulting Bob Baker — the caller is on hold"; got != want {
		t.Errorf("alice's progress = %q, want %q", got, want)
	}
	for _, b := range []string{"complete-button", "threeway-button", "cancel-button"} {
		if !a.has(b) || a.disabled(b) {
			t.Errorf("alice's %s missing or disabled", b)
		}
	}
	if !a.disabled("consult-button") || !a.disabled("transfer-button") {
		t.Errorf("alice can start a second transfer during the consult")
	}
	b := consoleOf(cc.bob)
	if got, want := b.text("transfer-progress"), "Alice Archer is consulting you — the caller is on hold"; got != want {
		t.Errorf("bob's progress = %q, want %q", got, want)
	}
	if b.has("consult-actions") {
		t.Errorf("bob's console offers the consult's actions, which are alice's")
	}
}

// TestConsultComplete: Alice consults Bob while the customer holds with
// music, then completes; the customer is with Bob, whose leaving ends it.
func TestConsultComplete(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env

	// Nothing to complete, three-way or cancel yet; a colleague not on the
	// call may not consult.
	for _, action := range []string{"complete", "threeway", "cancel"} {
		cc.do(t, cc.alice, action, nil, http.StatusConflict)
	}
	cc.do(t, cc.bob, "consult", url.Values{"to": {"alice"}}, http.StatusForbidden)
	cc.do(t, cc.alice, "consult", url.Values{"to": {""}}, http.StatusBadRequest)
	if a := consoleOf(cc.alice); !a.has("consult-button") || a.disabled("consult-button") || a.has("consult-actions") {
		t.Fatalf("alice's console before the consult: consult button %v, actions %v", a.has("consult-button"), a.has("consult-actions"))
	}

	bobLeg := cc.consultBob(t)
	// Bob has not answered: the consult cannot complete or go three-way.
	cc.do(t, cc.alice, "complete", nil, http.StatusConflict)
	cc.do(t, cc.alice, "threeway", nil, http.StatusConflict)
	if a := consoleOf(cc.alice); !a.disabled("complete-button") || a.disabled("cancel-button") {
		t.Errorf("alice's console while bob rings: complete disabled %v, cancel disabled %v", a.disabled("complete-button"), a.disabled("cancel-button"))
	}

	cc.bobJoins(t, bobLeg)
	st := env.WaitSim("the customer still on hold with bob in", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		p, _ := c.Participant(cc.customer)
		return p.Hold && p.Hearing == holdMusic
	})
	c, _ := st.Conference(cc.conf)
	if p, _ := c.Participant(cc.aliceLeg); p.Hold || p.Status != "connected" {
		t.Fatalf("alice during the consult = %+v", p)
	}
	if p, _ := c.Participant(bobLeg); p.Hold || p.EndConferenceOnExit {
		t.Fatalf("bob during the consult = %+v", p)
	}
	if call := callBySID(t, env, cc.customer); !call.CustomerOnHold || call.AgentID != cc.agentID(t, "alice") {
		t.Fatalf("call during the consult = %+v", call)
	}
	cc.wantConsulting(t)
	// Only the agent who consulted completes it.
	cc.do(t, cc.bob, "complete", nil, http.StatusConflict)

	cc.do(t, cc.alice, "complete", nil, http.StatusOK)
	st = env.WaitSim("alice gone, the customer off hold with bob", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		ac, _ := st.Call(cc.aliceLeg)
		cust, _ := c.Participant(cc.customer)
		bob, _ := c.Participant(bobLeg)
		return ac.Status == twiliosim.StatusCompleted && len(c.Participants) == 2 &&
			!cust.Hold && cust.Hearing == "conference "+cc.conf && bob.EndConferenceOnExit
	})
	c, _ = st.Conference(cc.conf)
	if c.Status != twiliosim.ConfInProgress {
		t.Fatalf("conference %q after completing", c.Status)
	}
	bobID := cc.agentID(t, "bob")
	env.WaitDB("bob owns the call, the transfer completed", func(ctx context.Context) (bool, error) {
		call, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		if err != nil {
			return false, err
		}
		tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
		return err == nil && call.AgentID == bobID && call.State == models.CallWithAgent && !call.CustomerOnHold &&
			tr.State == models.TransferCompleted && tr.Mode == models.TransferConsult, err
	})
	b := consoleOf(cc.bob)
	if b.customerHeld() || b.text("transfer-progress") != "Transferred to you by Alice Archer" {
		t.Errorf("bob's console after completing: caller %q, progress %q", b.text("participant-customer"), b.text("transfer-progress"))
	}
	if a := consoleOf(cc.alice); !a.has("no-call") {
		t.Errorf("alice's console still shows the call after completing")
	}

	// Bob's leaving now ends the call.
	env.SimAction(bobLeg, "hangup")
	st = env.WaitSim("the conference ended by bob", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		return c.Status == twiliosim.ConfCompleted
	})
	if c, _ := st.Conference(cc.conf); c.CallSIDEndingConference != bobLeg {
		t.Fatalf("conference ended by %q (%s), want bob's leg", c.CallSIDEndingConference, c.ReasonConferenceEnded)
	}
	if n := st.Notifications; len(n) != 0 {
		t.Fatalf("the simulator recorded webhook failures: %+v", n)
	}
}

// TestConsultCancel: Alice cancels the consult, while Bob's phone rings and
// after he joined; Bob is dropped and the customer is back with Alice.
func TestConsultCancel(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bobAnswers bool
	}{
		{"cancel while ringing", false},
		{"cancel after joining", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := startConsultCall(t)
			env := cc.env
			bobLeg := cc.consultBob(t)
			if tc.bobAnswers {
				cc.bobJoins(t, bobLeg)
				cc.wantConsulting(t)
			}
			// Bob is not on the call while he rings, and the consult is not
			// his to cancel once he is.
			if tc.bobAnswers {
				cc.do(t, cc.bob, "cancel", nil, http.StatusConflict)
			} else {
				cc.do(t, cc.bob, "cancel", nil, http.StatusForbidden)
			}

			cc.do(t, cc.alice, "cancel", nil, http.StatusOK)
			st := env.WaitSim("bob dropped, the customer off hold with alice", func(st twiliosim.State) bool {
				bc, _ := st.Call(bobLeg)
				c, _ := st.Conference(cc.conf)
				cust, _ := c.Participant(cc.customer)
				_, bobIn := c.Participant(bobLeg)
				return (bc.Status == twiliosim.StatusCompleted || bc.Status == twiliosim.StatusCanceled) && !bobIn &&
					!cust.Hold && cust.Hearing == "conference "+cc.conf
			})
			c, _ := st.Conference(cc.conf)
			if p, in := c.Participant(cc.aliceLeg); !in || p.Status != "connected" || c.Status != twiliosim.ConfInProgress {
				t.Fatalf("alice after the cancel = %+v (in %v), conference %q", p, in, c.Status)
			}
			aliceID := cc.agentID(t, "alice")
			env.WaitDB("the consult canceled, bob free", func(ctx context.Context) (bool, error) {
				call, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
				if err != nil {
					return false, err
				}
				tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
				if err != nil {
					return false, err
				}
				bob, err := models.AgentByIdentity(ctx, env.App.DB, "bob")
				return err == nil && call.AgentID == aliceID && call.State == models.CallWithAgent && !call.CustomerOnHold &&
					tr.State == models.TransferCanceled && bob.Presence == models.PresenceAvailable, err
			})
			a := consoleOf(cc.alice)
			if a.customerHeld() || a.has("consult-actions") || a.disabled("consult-button") {
				t.Errorf("alice's console after the cancel: caller %q, actions %v, consult disabled %v", a.text("participant-customer"), a.has("consult-actions"), a.disabled("consult-button"))
			}
			if got, want := a.text("transfer-progress"), "Consult with Bob Baker canceled"; got != want {
				t.Errorf("alice's progress = %q, want %q", got, want)
			}
			if b := consoleOf(cc.bob); !b.has("no-call") {
				t.Errorf("bob's console still shows the call after the cancel")
			}
			// Nothing left to cancel; a new consult can start.
			cc.do(t, cc.alice, "cancel", nil, http.StatusConflict)
			if n := st.Notifications; len(n) != 0 {
				t.Fatalf("the simulator recorded webhook failures: %+v", n)
			}
		})
	}
}

// TestConsultThreeWay: Alice brings the held customer into the consult,
// then leaves; Bob has the call.
func TestConsultThreeWay(t *testing.T) {
	cc := startConsultCall(t)
	env := cc.env
	bobLeg := cc.consultBob(t)
	cc.bobJoins(t, bobLeg)

	cc.do(t, cc.alice, "threeway", nil, http.StatusOK)
	env.WaitSim("the customer off hold with both agents", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		cust, _ := c.Participant(cc.customer)
		a, aIn := c.Participant(cc.aliceLeg)
		b, bIn := c.Participant(bobLeg)
		return !cust.Hold && cust.Hearing == "conference "+cc.conf && aIn && bIn && !a.Hold && !b.Hold && len(c.Participants) == 3
	})
	env.WaitDB("the call not on hold", func(ctx context.Context) (bool, error) {
		call, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		return err == nil && !call.CustomerOnHold, err
	})
	a := consoleOf(cc.alice)
	if got, want := a.text("transfer-progress"), "Three-way with Bob Baker"; got != want {
		t.Errorf("alice's progress = %q, want %q", got, want)
	}
	if a.customerHeld() || !a.disabled("threeway-button") || a.disabled("complete-button") || a.disabled("leave-button") {
		t.Errorf("alice's console in three-way: held %v, three-way disabled %v, complete disabled %v, leave disabled %v",
			a.customerHeld(), a.disabled("threeway-button"), a.disabled("complete-button"), a.disabled("leave-button"))
	}
	if got, want := consoleOf(cc.bob).text("transfer-progress"), "Three-way with Alice Archer"; got != want {
		t.Errorf("bob's progress = %q, want %q", got, want)
	}
	// Three-way twice is harmless.
	cc.do(t, cc.alice, "threeway", nil, http.StatusOK)

	cc.do(t, cc.alice, "leave", nil, http.StatusOK)
	env.WaitSim("alice gone, bob ends the call on leaving", func(st twiliosim.State) bool {
		c, _ := st.Conference(cc.conf)
		ac, _ := st.Call(cc.aliceLeg)
		cust, _ := c.Participant(cc.customer)
		bob, _ := c.Participant(bobLeg)
		return ac.Status == twiliosim.StatusCompleted && len(c.Participants) == 2 && !cust.Hold && bob.EndConferenceOnExit
	})
	bobID := cc.agentID(t, "bob")
	env.WaitDB("bob owns the call", func(ctx context.Context) (bool, error) {
		call, err := models.CallByID(ctx, env.App.DB, cc.call.ID)
		if err != nil {
			return false, err
		}
		tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
		return err == nil && call.AgentID == bobID && tr.State == models.TransferCompleted, err
	})
	if b := consoleOf(cc.bob); b.customerHeld() || b.text("transfer-progress") != "Transferred to you by Alice Archer" {
		t.Errorf("bob's console after alice left: caller %q, progress %q", b.text("participant-customer"), b.text("transfer-progress"))
	}
}

// TestConsultNotAnswered: the consulted colleague declines, or does not
// answer in time; the agent is told and the caller comes off hold with them.
func TestConsultNotAnswered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action string
		state  models.TransferState
		words  string
	}{
		{"declined", "reject", models.TransferDeclined, "Bob Baker declined"},
		{"not answered", "ring-out", models.TransferNoAnswer, "Bob Baker did not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := startConsultCall(t)
			env := cc.env
			bobLeg := cc.consultBob(t)
			env.SimAction(bobLeg, tc.action)
			env.WaitSim("the customer off hold with alice", func(st twiliosim.State) bool {
				c, _ := st.Conference(cc.conf)
				cust, _ := c.Participant(cc.customer)
				return !cust.Hold && cust.Hearing == "conference "+cc.conf
			})
			env.WaitDB("the consult "+string(tc.state), func(ctx context.Context) (bool, error) {
				tr, err := models.LatestTransferForCall(ctx, env.App.DB, cc.call.ID)
				c, err2 := models.CallByID(ctx, env.App.DB, cc.call.ID)
				return err == nil && err2 == nil && tr.State == tc.state && !c.CustomerOnHold && c.State == models.CallWithAgent, err
			})
			// Twilio's hold and unhold callbacks for the consult may still be
			// on their way; the console settles once they have arrived.
			var a console
			env.WaitDB("alice's console showing the caller back", func(context.Context) (bool, error) {
				a = consoleOf(cc.alice)
				return !a.customerHeld(), nil
			})
			if got := a.text("transfer-progress"); got != tc.words {
				t.Errorf("alice's progress = %q, want %q", got, tc.words)
			}
		})
	}
}
