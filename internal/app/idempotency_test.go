package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// delivered returns the simulator's delivery of a webhook to path for a
// call: the target it posted to (path and query, relative to the public
// URL), the parameters it sent, and the app's answer.
func delivered(t *testing.T, env *apptest.Env, callSID, path string) (string, url.Values, string) {
	t.Helper()
	w := env.WaitRequest(callSID, path)
	target, ok := strings.CutPrefix(w.URL, env.URL)
	if !ok {
		t.Fatalf("the simulator posted %s, not under the public URL %s", w.URL, env.URL)
	}
	params := url.Values{}
	for k, v := range w.Params {
		params.Set(k, v)
	}
	return target, params, w.Response
}

// sameTwiML checks a retried webhook's answer against the first one,
// compared as parsed XML (attribute order is not part of the answer), and
// that both join the named conference.
func sameTwiML(t *testing.T, what string, first string, retry apptest.TwilioAnswer, conference string) {
	t.Helper()
	if retry.Status != 200 || !strings.HasPrefix(retry.ContentType, "text/xml") {
		t.Fatalf("%s: %d %s %q, want 200 text/xml", what, retry.Status, retry.ContentType, retry.Body)
	}
	want, err := apptest.ParseXML(first)
	if err != nil {
		t.Fatalf("%s: the first answer is not XML: %v\n%s", what, err, first)
	}
	got, err := apptest.ParseXML(retry.Body)
	if err != nil {
		t.Fatalf("%s: the retry's answer is not XML: %v\n%s", what, err, retry.Body)
	}
	if !got.Equal(want) {
		t.Fatalf("%s: the retry was answered\n%s\nthe first delivery\n%s", what, retry.Body, first)
	}
	if conf, ok := got.Find("Conference"); !ok || conf.Text != conference {
		t.Fatalf("%s: joins conference %q, want the call's %q\n%s", what, conf.Text, conference, retry.Body)
	}
}

func countEvents(t *testing.T, env *apptest.Env, callID int64, kind string) int {
	t.Helper()
	events, err := models.EventsForCall(context.Background(), env.App.DB, callID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// TestRetriedWebhooksChangeNothing: Twilio retries a webhook it got no
// timely answer to, with the same CallSid and parameters. A retried voice
// URL must not store a second call or ring a second agent, and a retried
// agent-leg connect must not answer the call again; both answer the TwiML
// of the first delivery. Bob is available throughout, so a retry that
// offered the caller again would ring him.
func TestRetriedWebhooksChangeNothing(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.SignIn("alice")
	env.SignIn("bob")

	customer := env.PlaceCall("+15551230001")
	// Alice signed in first, so she has been idle longest and is rung.
	aliceLeg := env.Ringing("alice")
	voiceTarget, voiceParams, voiceTwiML := delivered(t, env, customer, handlers.PathVoiceIncoming)
	call := callBySID(t, env, customer)

	// The retry comes while alice's phone rings.
	sameTwiML(t, "voice URL retried while the agent rings", voiceTwiML, env.PostTwilio(t, voiceTarget, voiceParams), call.ConferenceName)
	n, err := env.App.DB.NewSelect().Model((*models.Call)(nil)).Where("call_sid = ?", customer).Count(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("%d calls rows for %s after a retry (%v), want 1", n, customer, err)
	}

	env.SimAction(aliceLeg, "accept")
	env.WaitSettled(1)
	agentTarget, agentParams, agentTwiML := delivered(t, env, aliceLeg, handlers.PathVoiceAgent)
	if !strings.Contains(agentTarget, "leg=") {
		t.Fatalf("the agent's connect URL %s names no leg", agentTarget)
	}

	// Late retries, once alice talks to the caller: of the agent's
	// connect, twice, and of the voice URL again. Nothing may change.
	before := env.Snapshot(t)
	sameTwiML(t, "agent connect retried", agentTwiML, env.PostTwilio(t, agentTarget, agentParams), call.ConferenceName)
	sameTwiML(t, "agent connect retried again", agentTwiML, env.PostTwilio(t, agentTarget, agentParams), call.ConferenceName)
	sameTwiML(t, "voice URL retried after the agent joined", voiceTwiML, env.PostTwilio(t, voiceTarget, voiceParams), call.ConferenceName)
	if diff := before.Diff(env.Snapshot(t)); diff != "" {
		t.Fatalf("retried webhooks changed the state:\n%s", diff)
	}

	// A second caller is offered to bob, the only agent free. Offers go
	// in order, so had a retry queued the first caller again, bob would
	// have been rung for that call first.
	second := env.PlaceCall("+15551230002")
	bobLeg := env.Ringing("bob")
	var bobsLeg *models.Leg
	env.WaitDB("bob's leg stored", func(ctx context.Context) (bool, error) {
		var err error
		bobsLeg, err = models.LegByCallSID(ctx, env.App.DB, bobLeg)
		return err == nil, err
	})
	if call2 := callBySID(t, env, second); bobsLeg.CallID != call2.ID {
		t.Fatalf("bob was rung for call %d, want the second caller's %d", bobsLeg.CallID, call2.ID)
	}
	if got := rang(env.SimState(t)); got["alice"] != 1 || got["bob"] != 1 || len(got) != 2 {
		t.Fatalf("phones rung: %v, want alice and bob once each", got)
	}
	legs, err := models.LegsForCall(context.Background(), env.App.DB, call.ID)
	if err != nil || len(legs) != 1 || legs[0].CallSID != aliceLeg || legs[0].State != models.LegJoined {
		t.Fatalf("the first call's legs = %+v (%v), want alice's alone, joined", legs, err)
	}
	for kind, want := range map[string]int{"call.queued": 1, "call.offered": 1, "call.answered": 1} {
		if got := countEvents(t, env, call.ID, kind); got != want {
			t.Errorf("%d %s events for the first call, want %d", got, kind, want)
		}
	}
}
