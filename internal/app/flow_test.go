package app_test

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/internal/twiml"
	"github.com/warmtransfer/warmtransfer/models"
)

// twimlFor returns the conference a call was told to join by the first
// TwiML document the app answered it with.
func twimlFor(t *testing.T, c twiliosim.CallState, path string) twiml.Conference {
	t.Helper()
	for _, w := range c.Webhooks {
		u, _ := url.Parse(w.URL)
		if w.URL == "" || u.Path != path {
			continue
		}
		doc, err := twiml.Parse([]byte(w.Response))
		if err != nil {
			t.Fatalf("the app answered %s with invalid TwiML: %v\n%s", path, err, w.Response)
		}
		for _, v := range doc.Verbs {
			if d, ok := v.(twiml.Dial); ok {
				for _, n := range d.Nouns {
					if conf, ok := n.(twiml.Conference); ok {
						return conf
					}
				}
			}
		}
		t.Fatalf("%s answered without <Dial><Conference>: %s", path, w.Response)
	}
	t.Fatalf("call %s never requested %s", c.SID, path)
	return twiml.Conference{}
}

func callBySID(t *testing.T, env *apptest.Env, sid string) *models.Call {
	t.Helper()
	c, err := models.CallBySID(context.Background(), env.App.DB, sid)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// conferenceEvents are the conference status callbacks the call flow acts
// on; every party's <Conference> must ask for them.
var conferenceEvents = []string{"start", "end", "join", "leave", "hold", "modify", "mute"}

// wantCallbacks checks a party's <Conference> reports to the conference
// status route under the public URL, for the events the flow needs.
func wantCallbacks(t *testing.T, env *apptest.Env, who string, conf twiml.Conference) {
	t.Helper()
	if conf.StatusCallback != env.URL+"/voice/conference" || conf.StatusCallbackMethod != "POST" {
		t.Errorf("%s's <Conference> reports to %s %s, want POST %s/voice/conference", who, conf.StatusCallbackMethod, conf.StatusCallback, env.URL)
	}
	got := slices.Sorted(slices.Values(conf.StatusCallbackEvent))
	if want := slices.Sorted(slices.Values(conferenceEvents)); !slices.Equal(got, want) {
		t.Errorf("%s's <Conference> asks for events %v, want %v", who, got, want)
	}
}

// TestSeedsFlow is the whole warm transfer: the customer waits with music,
// agent A is rung and joins, transfers to B, B joins, A leaves, the customer
// and B remain, the customer hangs up and the conference ends.
//
// The app runs behind a reverse proxy, as deployed: WT_PUBLIC_URL is the
// proxy's address and the app sees its own listen address in the Host
// header, so every URL given to Twilio (TwiML, REST, the simulator's
// requests) must come from WT_PUBLIC_URL.
func TestSeedsFlow(t *testing.T) {
	env := apptest.Start(t, apptest.Options{BehindProxy: true})
	if env.URL == env.ListenURL {
		t.Fatalf("the public URL %s is the listen address: the test could not tell them apart", env.URL)
	}
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	alice := env.SignIn("alice")
	env.SignIn("bob")

	customer := env.PlaceCall("+15551230001")
	st := env.WaitSim("the customer waiting with music", func(st twiliosim.State) bool {
		c, _ := st.Call(customer)
		return c.Conference != "" && c.Hearing == "play: https://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3 (looping)"
	})
	cust, _ := st.Call(customer)
	conf := twimlFor(t, cust, "/conference/connect/client")
	if conf.StartConferenceOnEnter || !conf.EndConferenceOnExit || conf.WaitURL != env.URL+"/conference/wait" || conf.WaitMethod != "POST" {
		t.Fatalf("customer's <Conference> = %+v", conf)
	}
	wantCallbacks(t, env, "the customer", conf)
	call := callBySID(t, env, customer)
	if conf.Name != call.ConferenceName || conf.Name == cust.From {
		t.Fatalf("conference named %q, call's conference %q", conf.Name, call.ConferenceName)
	}

	// Alice signed in first, so she has been idle longest and is rung.
	aliceLeg := env.Ringing("alice")
	env.SimAction(aliceLeg, "accept")
	st = env.WaitSim("alice in the conference, started", func(st twiliosim.State) bool {
		c, ok := st.Conference(conf.Name)
		p, in := c.Participant(aliceLeg)
		return ok && c.Status == twiliosim.ConfInProgress && in && p.Status == "connected"
	})
	a, _ := st.Call(aliceLeg)
	ac := twimlFor(t, a, "/conference/connect/agent")
	if !ac.StartConferenceOnEnter || ac.EndConferenceOnExit || ac.Name != conf.Name {
		t.Fatalf("alice's <Conference> = %+v", ac)
	}
	wantCallbacks(t, env, "alice", ac)
	env.WaitDB("the call with alice", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, call.ID)
		return err == nil && c.State == models.CallWithAgent && c.AnsweredAt.After(c.CreatedAt), err
	})

	// Alice transfers to Bob.
	if status, body := alice.Post("/calls/"+strconv.FormatInt(call.ID, 10)+"/transfer", url.Values{"to": {"bob"}}); status != 200 {
		t.Fatalf("transfer: %d %s", status, body)
	}
	bobLeg := env.Ringing("bob")
	env.SimAction(bobLeg, "accept")
	st = env.WaitSim("bob in the conference", func(st twiliosim.State) bool {
		c, _ := st.Conference(conf.Name)
		p, in := c.Participant(bobLeg)
		return in && p.Status == "connected"
	})
	b, _ := st.Call(bobLeg)
	bc := twimlFor(t, b, "/conference/connect/agent")
	if !bc.StartConferenceOnEnter || bc.EndConferenceOnExit || bc.Name != call.ConferenceName {
		t.Fatalf("bob's <Conference> = %+v, want the call's conference %q", bc, call.ConferenceName)
	}
	wantCallbacks(t, env, "bob", bc)
	env.WaitDB("the transfer joined", func(ctx context.Context) (bool, error) {
		tr, err := models.OpenTransferForCall(ctx, env.App.DB, call.ID)
		return err == nil && tr.State == models.TransferJoined, err
	})

	// Alice leaves: the customer stays with Bob, whose leaving now ends it.
	if status, body := alice.Post("/calls/"+strconv.FormatInt(call.ID, 10)+"/leave", nil); status != 200 {
		t.Fatalf("leave: %d %s", status, body)
	}
	st = env.WaitSim("alice gone, customer and bob remain", func(st twiliosim.State) bool {
		c, _ := st.Conference(conf.Name)
		ac, _ := st.Call(aliceLeg)
		return ac.Status == twiliosim.StatusCompleted && len(c.Participants) == 2
	})
	c, _ := st.Conference(conf.Name)
	if p, _ := c.Participant(bobLeg); !p.EndConferenceOnExit {
		t.Fatalf("bob's participant after alice left = %+v", p)
	}
	if p, _ := c.Participant(customer); !p.EndConferenceOnExit || p.Hold {
		t.Fatalf("customer's participant after alice left = %+v", p)
	}
	if c.Status != twiliosim.ConfInProgress {
		t.Fatalf("conference status %q after alice left", c.Status)
	}
	env.WaitDB("the transfer completed, bob owns the call", func(ctx context.Context) (bool, error) {
		cl, err := models.CallByID(ctx, env.App.DB, call.ID)
		if err != nil {
			return false, err
		}
		bob, err := models.AgentByIdentity(ctx, env.App.DB, "bob")
		return err == nil && cl.AgentID == bob.ID && cl.State == models.CallWithAgent, err
	})

	// The customer hangs up: the conference ends for everyone.
	env.SimAction(customer, "hangup")
	st = env.WaitSim("the conference ended", func(st twiliosim.State) bool {
		c, _ := st.Conference(conf.Name)
		bc, _ := st.Call(bobLeg)
		return c.Status == twiliosim.ConfCompleted && bc.Status == twiliosim.StatusCompleted
	})
	c, _ = st.Conference(conf.Name)
	if c.ReasonConferenceEnded != "participant-with-end-conference-on-exit-left" || c.CallSIDEndingConference != customer {
		t.Fatalf("conference ended %q by %q", c.ReasonConferenceEnded, c.CallSIDEndingConference)
	}
	env.WaitDB("the call ended in the database", func(ctx context.Context) (bool, error) {
		cl, err := models.CallByID(ctx, env.App.DB, call.ID)
		return err == nil && cl.State == models.CallEnded && cl.EndedBy == "customer", err
	})
	if ended := callBySID(t, env, customer); ended.ConferenceSID == "" || ended.ConferenceSID != c.SID {
		t.Fatalf("the database's ConferenceSid %q, the simulator's %q", ended.ConferenceSID, c.SID)
	}

	ctx := context.Background()
	legs, err := models.LegsForCall(ctx, env.App.DB, call.ID)
	if err != nil || len(legs) != 2 {
		t.Fatalf("legs = %+v, %v", legs, err)
	}
	for _, l := range legs {
		if l.State != models.LegLeft || l.JoinedAt.IsZero() || l.LeftAt.IsZero() {
			t.Fatalf("leg %+v did not join and leave", l)
		}
	}
	if legs[0].Role != models.LegPrimary || legs[0].CallSID != aliceLeg || legs[1].Role != models.LegColleague || legs[1].CallSID != bobLeg {
		t.Fatalf("legs = %+v", legs)
	}
	transfers, err := models.TransfersForCalls(ctx, env.App.DB, []int64{call.ID})
	if err != nil || len(transfers) != 1 || transfers[0].State != models.TransferCompleted || transfers[0].EndedAt.IsZero() {
		t.Fatalf("transfers = %+v (%v), want one, completed", transfers, err)
	}
	wantPublicURLs(t, env, customer, legs)
	env.WaitDB("both agents available again", func(ctx context.Context) (bool, error) {
		for _, id := range []string{"alice", "bob"} {
			a, err := models.AgentByIdentity(ctx, env.App.DB, id)
			if err != nil || a.Presence != models.PresenceAvailable || a.LastCallEndedAt.IsZero() {
				return false, err
			}
		}
		return true, nil
	})
	events, err := models.EventsForCall(ctx, env.App.DB, call.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	for _, want := range []string{"call.queued", "call.offered", "call.answered", "transfer.started", "transfer.joined", "transfer.completed", "call.ended"} {
		found := false
		for _, k := range kinds {
			found = found || k == want
		}
		if !found {
			t.Errorf("no %s event; events: %v", want, kinds)
		}
	}
	if n := len(env.Sim.State().Notifications); n != 0 {
		t.Fatalf("the simulator recorded webhook failures: %+v", env.Sim.State().Notifications)
	}
}

// wantPublicURLs checks every address the app gave Twilio in the call:
// each agent was rung (REST Calls.create, seen at the proxy) with the
// connect URL and status callback of their own leg under the public URL,
// asking for the call's end only; every URL in any REST request is under
// the public URL; and every request the simulator made for the call went
// there, the status callbacks of the agents' calls only at their end.
func wantPublicURLs(t *testing.T, env *apptest.Env, customer string, legs []models.Leg) {
	t.Helper()
	ctx := context.Background()
	rest := env.ProxiedREST()
	for _, r := range rest {
		for k, vs := range r.Form {
			for _, v := range vs {
				if strings.Contains(v, "://") && !strings.HasPrefix(v, env.URL+"/") {
					t.Errorf("REST %s %s: %s=%s is not under the public URL %s", r.Method, r.Path, k, v, env.URL)
				}
			}
		}
	}
	for _, l := range legs {
		a, err := models.AgentByID(ctx, env.App.DB, l.AgentID)
		if err != nil {
			t.Fatal(err)
		}
		leg := strconv.FormatInt(l.ID, 10)
		var creates []url.Values
		for _, r := range rest {
			if r.Method == "POST" && strings.HasSuffix(r.Path, "/Calls.json") && r.Form.Get("To") == "client:"+a.Identity {
				creates = append(creates, r.Form)
			}
		}
		if len(creates) != 1 {
			t.Fatalf("%s was rung %d times through REST, want once: %v", a.Identity, len(creates), creates)
		}
		f := creates[0]
		if f.Get("Url") != env.URL+"/conference/connect/agent?leg="+leg || f.Get("StatusCallback") != env.URL+"/voice/status?leg="+leg ||
			f.Get("StatusCallbackMethod") != "POST" || !slices.Equal(f["StatusCallbackEvent"], []string{"completed"}) {
			t.Errorf("%s's Calls.create = %v, want Url and StatusCallback of leg %s under %s, events [completed]", a.Identity, f, leg, env.URL)
		}
	}
	st := env.Sim.State()
	for _, c := range st.Calls {
		agentCall := strings.HasPrefix(c.To, "client:")
		if c.SID != customer && !agentCall {
			continue
		}
		for _, w := range apptest.Requests(c) {
			if !strings.HasPrefix(w.URL, env.URL+"/") {
				t.Errorf("the simulator called %s for %s, not under the public URL %s", w.URL, c.To, env.URL)
			}
			if u, _ := url.Parse(w.URL); agentCall && u.Path == "/voice/status" && w.Params["CallStatus"] != "completed" {
				t.Errorf("%s's status callback came for %q: the app asked for the call's end only", c.To, w.Params["CallStatus"])
			}
		}
	}
}
