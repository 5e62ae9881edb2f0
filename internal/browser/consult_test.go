package browser_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// holdMusic is what the simulator says a held caller hears.
const holdMusic = "play: https://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3 (looping)"

// The conditions below are JavaScript expressions for person.see, built
// from the consoles' data-testid attributes.

func byTestID(id string) string {
	return `document.querySelector('[data-testid="` + id + `"]')`
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func and(conds ...string) string { return "(" + strings.Join(conds, ") && (") + ")" }

func phoneIs(state string) string {
	return byTestID("phone-state") + `?.dataset.state === ` + jsString(state)
}

func customerHeld(held bool) string {
	want := "false"
	if held {
		want = "true"
	}
	return byTestID("participant-customer") + `?.dataset.hold === "` + want + `"`
}

func progressIs(text string) string {
	return byTestID("transfer-progress") + `?.textContent.trim() === ` + jsString(text)
}

func present(id string) string { return "!!" + byTestID(id) }

func absent(id string) string { return "!" + byTestID(id) }

func enabled(id string) string {
	return `(() => { const b = ` + byTestID(id) + `; return !!b && !b.disabled; })()`
}

func disabled(id string) string {
	return `(() => { const b = ` + byTestID(id) + `; return !!b && b.disabled; })()`
}

func participantIs(identity, state string) string {
	return byTestID("participant-"+identity) + `?.dataset.state === ` + jsString(state)
}

// offerFrom is the offer card showing a colleague's call from the named agent.
func offerFrom(name string) string {
	return `(() => { const o = ` + byTestID("offer") + `; const f = o && o.querySelector('[data-testid="offer-transfer-from"]'); ` +
		`return !!o && !o.hidden && !!f && f.textContent.includes(` + jsString(name) + `); })()`
}

// noOffer is the offer card empty and hidden.
const noOffer = `(() => { const o = document.querySelector('[data-testid="offer"]'); return !!o && o.hidden && !o.querySelector('[data-testid="offer-accept"]'); })()`

// consultScene is a customer's call that Alice has answered in her browser,
// with Bob signed in to his and free to be consulted.
type consultScene struct {
	t          *testing.T
	env        *apptest.Env
	shots      *screenshots
	alice, bob *person
	customer   string // the customer's CallSid
	aliceLeg   string // Alice's CallSid into the conference
	conf       string // the conference's friendly name
	callID     int64
}

func startConsultScene(t *testing.T) *consultScene {
	t.Helper()
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	ctx := browser(t)
	s := &consultScene{t: t, env: env, shots: newScreenshots(t)}
	s.alice = newPerson(t, ctx, "alice", s.shots)
	s.bob = newPerson(t, ctx, "bob", s.shots)

	s.alice.signIn(env, "alice")
	s.alice.see("her phone ready", phoneIs("ready"))
	s.bob.signIn(env, "bob")
	s.bob.see("his phone ready", phoneIs("ready"))

	s.customer = env.PlaceCall("+15551230003")
	st := env.WaitSim("the customer in a conference", func(st twiliosim.State) bool {
		c, _ := st.Call(s.customer)
		return c.Conference != ""
	})
	cust, _ := st.Call(s.customer)
	s.conf = cust.Conference
	s.alice.see("the incoming call", `(() => { const o = `+byTestID("offer")+`; return !!o && !o.hidden && o.textContent.includes("+15551230003"); })()`)
	s.alice.see("her phone ringing", phoneIs("ringing"))
	s.aliceLeg = env.Ringing("alice")
	s.alice.click("Accept", `[data-testid="offer-accept"]`)
	s.alice.see("the call with the caller", and(byTestID("call")+`?.dataset.state === "with_agent"`, customerHeld(false), phoneIs("in-call")))
	env.WaitSim("alice talking to the customer", func(st twiliosim.State) bool {
		c, _ := st.Conference(s.conf)
		p, in := c.Participant(s.aliceLeg)
		return c.Status == twiliosim.ConfInProgress && in && p.Status == "connected"
	})
	env.WaitDB("the call with alice", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, s.customer)
		if err != nil {
			return false, err
		}
		s.callID = c.ID
		return c.State == models.CallWithAgent && c.ConferenceSID != "", nil
	})
	s.shots.all("alice answered", s.alice, s.bob)
	return s
}

// consultBob has Alice choose Bob and press Consult, and waits for Bob's
// phone to ring and the caller to hold with music. It returns Bob's leg.
func (s *consultScene) consultBob() string {
	s.t.Helper()
	s.alice.see("Bob available to consult", and(enabled("transfer-option-bob"), byTestID("transfer-option-bob")+`.dataset.presence === "available"`, enabled("consult-button")))
	s.alice.do("choose Bob", chromedp.SetValue(chromedp.CSS(`[data-testid="transfer-select"]`), "bob"))
	s.alice.click("Consult", `[data-testid="consult-button"]`)
	s.alice.see("the consult ringing Bob, the caller on hold", and(
		progressIs("Consulting Bob Baker — the caller is on hold"),
		customerHeld(true),
		present("consult-actions"), disabled("complete-button"), disabled("threeway-button"), enabled("cancel-button"),
		disabled("consult-button"), disabled("transfer-button"),
	))
	s.bob.see("the consult offered to him", offerFrom("Alice Archer"))
	s.bob.see("his phone ringing", phoneIs("ringing"))
	bobLeg := s.env.Ringing("bob")
	s.env.WaitSim("the customer on hold, hearing music", func(st twiliosim.State) bool {
		c, _ := st.Conference(s.conf)
		p, _ := c.Participant(s.customer)
		return p.Hold && p.Hearing == holdMusic
	})
	s.shots.all("consult ringing bob", s.alice, s.bob)
	return bobLeg
}

// bobJoins has Bob accept the consult in his browser and checks both
// consoles and the conference while the caller holds.
func (s *consultScene) bobJoins(bobLeg string) {
	s.t.Helper()
	s.bob.click("Accept", `[data-testid="offer-accept"]`)
	s.bob.see("the consult with Alice, the caller on hold", and(
		progressIs("Alice Archer is consulting you — the caller is on hold"),
		customerHeld(true), participantIs("alice", "joined"), absent("consult-actions"), phoneIs("in-call"),
	))
	s.alice.see("Bob joined the consult, the caller on hold", and(
		progressIs("Consulting Bob Baker — the caller is on hold"),
		customerHeld(true), participantIs("bob", "joined"),
		enabled("complete-button"), enabled("threeway-button"), enabled("cancel-button"),
	))
	st := s.env.WaitSim("the customer on hold while alice and bob talk", func(st twiliosim.State) bool {
		c, _ := st.Conference(s.conf)
		cust, _ := c.Participant(s.customer)
		b, in := c.Participant(bobLeg)
		return cust.Hold && cust.Hearing == holdMusic && in && b.Status == "connected"
	})
	c, _ := st.Conference(s.conf)
	if cust, _ := c.Participant(s.customer); !cust.EndConferenceOnExit {
		s.t.Errorf("the held customer's leaving would not end the conference: %+v", cust)
	}
	if a, in := c.Participant(s.aliceLeg); !in || a.Hold || a.Status != "connected" || a.EndConferenceOnExit {
		s.t.Errorf("alice during the consult = %+v (in %v)", a, in)
	}
	if b, _ := c.Participant(bobLeg); b.Hold || b.EndConferenceOnExit {
		s.t.Errorf("bob during the consult = %+v", b)
	}
	if len(c.Participants) != 3 || c.Status != twiliosim.ConfInProgress {
		s.t.Errorf("conference during the consult: %s with %d participants", c.Status, len(c.Participants))
	}
	s.shots.all("bob joined the consult", s.alice, s.bob)
}

// TestConsultCompleteInTheBrowser: Alice answers a caller, consults Bob
// with the caller on hold hearing music, Bob accepts in his browser, Alice
// completes; the caller is off hold with Bob, whose leaving, from his
// browser phone, ends the call.
func TestConsultCompleteInTheBrowser(t *testing.T) {
	s := startConsultScene(t)
	env := s.env
	bobLeg := s.consultBob()
	s.bobJoins(bobLeg)

	s.alice.click("Complete", `[data-testid="complete-button"]`)
	s.alice.see("no call any more, her phone free", and(present("no-call"), phoneIs("ready")))
	s.bob.see("himself alone with the caller, off hold", and(
		progressIs("Transferred to you by Alice Archer"),
		customerHeld(false), absent("participant-alice"), participantIs("bob", "joined"), phoneIs("in-call"),
	))
	st := env.WaitSim("alice gone, the customer off hold with bob", func(st twiliosim.State) bool {
		c, _ := st.Conference(s.conf)
		ac, _ := st.Call(s.aliceLeg)
		cust, _ := c.Participant(s.customer)
		b, _ := c.Participant(bobLeg)
		return ac.Status == twiliosim.StatusCompleted && len(c.Participants) == 2 &&
			!cust.Hold && cust.Hearing == "conference "+s.conf && b.EndConferenceOnExit
	})
	if c, _ := st.Conference(s.conf); c.Status != twiliosim.ConfInProgress {
		t.Fatalf("conference %q after completing", c.Status)
	}
	s.shots.all("alice completed", s.alice, s.bob)

	// The console has no button for the phone's own hang-up (a headset's
	// would call it); Bob leaves through his browser phone, not the app.
	s.bob.do("hang up his phone", chromedp.Evaluate[chromedp.Void](`window.WarmTransfer.phone.hangup()`, chromedp.EvalAwaitPromise))
	s.bob.see("the call ended, his phone free", and(present("no-call"), phoneIs("ready")))
	st = env.WaitSim("the conference ended by bob's leaving", func(st twiliosim.State) bool {
		c, _ := st.Conference(s.conf)
		return c.Status == twiliosim.ConfCompleted
	})
	if c, _ := st.Conference(s.conf); c.CallSIDEndingConference != bobLeg {
		t.Errorf("conference ended by %q (%s), want bob's leg %s", c.CallSIDEndingConference, c.ReasonConferenceEnded, bobLeg)
	}
	env.WaitDB("the call ended", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, s.callID)
		return err == nil && c.State == models.CallEnded, err
	})
	call, err := models.CallByID(context.Background(), env.App.DB, s.callID)
	if err != nil {
		t.Fatal(err)
	}
	if call.EndedBy != "bob" {
		t.Errorf("the call ended by %q (%s), want bob, whose leaving ended the conference", call.EndedBy, call.EndReason)
	}
	if n := st.Notifications; len(n) != 0 {
		t.Errorf("the simulator recorded webhook failures: %+v", n)
	}
	s.shots.all("bob hung up", s.alice, s.bob)
}

// TestConsultCancelInTheBrowser: Alice consults Bob and cancels while his
// phone rings: it stops, his offer goes, the caller is back with Alice.
// She consults him again, he joins, she cancels: he is dropped and the
// caller is back with her.
func TestConsultCancelInTheBrowser(t *testing.T) {
	s := startConsultScene(t)
	env := s.env

	firstLeg := s.consultBob()
	s.alice.click("Cancel while Bob rings", `[data-testid="cancel-button"]`)
	s.bob.see("his phone stop ringing, the offer gone", and(phoneIs("ready"), noOffer, present("no-call")))
	s.wantBackWithAlice(firstLeg)
	s.shots.all("canceled while ringing", s.alice, s.bob)

	secondLeg := s.consultBob()
	if secondLeg == firstLeg {
		t.Fatalf("the second consult rang the first one's leg %s", firstLeg)
	}
	s.bobJoins(secondLeg)
	s.alice.click("Cancel after Bob joined", `[data-testid="cancel-button"]`)
	s.bob.see("the call gone, his phone free", and(present("no-call"), phoneIs("ready"), noOffer))
	s.wantBackWithAlice(secondLeg)
	s.shots.all("canceled after joining", s.alice, s.bob)
	if n := env.Sim.State().Notifications; len(n) != 0 {
		t.Errorf("the simulator recorded webhook failures: %+v", n)
	}
}

// wantBackWithAlice checks that a canceled consult left the caller off hold
// with Alice, Bob's leg gone and Bob free.
func (s *consultScene) wantBackWithAlice(bobLeg string) {
	s.t.Helper()
	s.alice.see("the caller back with her", and(
		progressIs("Consult with Bob Baker canceled"),
		customerHeld(false), absent("consult-actions"), absent("participant-bob"),
		enabled("consult-button"), phoneIs("in-call"),
	))
	st := s.env.WaitSim("bob dropped, the customer off hold with alice", func(st twiliosim.State) bool {
		bc, _ := st.Call(bobLeg)
		c, _ := st.Conference(s.conf)
		cust, _ := c.Participant(s.customer)
		_, bobIn := c.Participant(bobLeg)
		return (bc.Status == twiliosim.StatusCompleted || bc.Status == twiliosim.StatusCanceled) && !bobIn &&
			!cust.Hold && cust.Hearing == "conference "+s.conf
	})
	c, _ := st.Conference(s.conf)
	if a, in := c.Participant(s.aliceLeg); !in || a.Status != "connected" || a.Hold || c.Status != twiliosim.ConfInProgress {
		s.t.Fatalf("alice after the cancel = %+v (in %v), conference %q", a, in, c.Status)
	}
	aliceID := s.agentID("alice")
	s.env.WaitDB("the consult canceled, the call with alice, bob available", func(ctx context.Context) (bool, error) {
		call, err := models.CallByID(ctx, s.env.App.DB, s.callID)
		if err != nil {
			return false, err
		}
		tr, err := models.LatestTransferForCall(ctx, s.env.App.DB, s.callID)
		if err != nil {
			return false, err
		}
		bob, err := models.AgentByIdentity(ctx, s.env.App.DB, "bob")
		return err == nil && call.AgentID == aliceID && call.State == models.CallWithAgent && !call.CustomerOnHold &&
			tr.State == models.TransferCanceled && bob.Presence == models.PresenceAvailable, err
	})
}

func (s *consultScene) agentID(identity string) int64 {
	s.t.Helper()
	a, err := models.AgentByIdentity(context.Background(), s.env.App.DB, identity)
	if err != nil {
		s.t.Fatal(err)
	}
	return a.ID
}
