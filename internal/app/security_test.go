package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/golang-jwt/jwt/v5"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestTwilioRoutesRequireSignature sends every Twilio-facing route, while
// a customer talks to alice, what would change that call if it were
// believed (a new caller, alice's leg completed, the conference ended),
// unsigned, signed with a wrong token, and signed with the right token over
// another URL, another route or other parameters. Each is refused with 403
// and nothing changes. The same requests correctly signed are then taken,
// so the refusals were the signature's doing.
func TestTwilioRoutesRequireSignature(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.SignIn("alice")
	customer := env.PlaceCall("+15551230001")
	aliceLeg := env.Ringing("alice")
	env.SimAction(aliceLeg, "accept")
	env.WaitSettled(1)
	call := callBySID(t, env, customer)
	leg, err := models.LegByCallSID(context.Background(), env.App.DB, aliceLeg)
	if err != nil {
		t.Fatal(err)
	}
	legQuery := "?leg=" + strconv.FormatInt(leg.ID, 10)
	account := "AC00000000000000000000000000000000"
	routes := []struct {
		target string
		form   url.Values
	}{
		{"/conference/connect/client", url.Values{"CallSid": {"CA0123456789abcdef0123456789abcdef"}, "From": {"+15551230002"},
			"To": {"+15550100000"}, "CallStatus": {"ringing"}, "Direction": {"inbound"}, "AccountSid": {account}}},
		{"/conference/wait", url.Values{"CallSid": {customer}, "ConferenceSid": {call.ConferenceSID}, "AccountSid": {account}}},
		{"/conference/connect/agent" + legQuery, url.Values{"CallSid": {aliceLeg}, "CallStatus": {"in-progress"}, "AccountSid": {account}}},
		{"/voice/status" + legQuery, url.Values{"CallSid": {aliceLeg}, "CallStatus": {"completed"}, "SequenceNumber": {"9"}, "AccountSid": {account}}},
		{"/voice/conference", url.Values{"ConferenceSid": {call.ConferenceSID}, "FriendlyName": {call.ConferenceName},
			"StatusCallbackEvent": {"conference-end"}, "SequenceNumber": {"99"}, "CallSidEndingConference": {customer},
			"ReasonConferenceEnded": {"participant-with-end-conference-on-exit-left"}, "AccountSid": {account}}},
	}
	token := env.App.AuthToken
	before := env.Snapshot(t)
	for i, route := range routes {
		other := routes[(i+1)%len(routes)].target
		tampered := url.Values{}
		for k, v := range route.form {
			tampered[k] = v
		}
		tampered.Set("AccountSid", "AC11111111111111111111111111111111")
		for _, sig := range []struct{ name, value string }{
			{"missing", ""},
			{"wrong token", twiliosig.Sign("not-the-auth-token", env.URL+route.target, route.form)},
			{"right token, another URL", twiliosig.Sign(token, env.URL+"/elsewhere", route.form)},
			{"right token, another route", twiliosig.Sign(token, env.URL+other, route.form)},
			{"right token, another host", twiliosig.Sign(token, "https://attacker.example"+route.target, route.form)},
			{"right token, other parameters", twiliosig.Sign(token, env.URL+route.target, tampered)},
		} {
			t.Run(route.target+" "+sig.name, func(t *testing.T) {
				if answer := env.PostTwilioSigned(t, route.target, route.form, sig.value); answer.Status != http.StatusForbidden {
					t.Fatalf("status %d %q, want 403", answer.Status, answer.Body)
				}
			})
		}
	}
	if diff := before.Diff(env.Snapshot(t)); diff != "" {
		t.Fatalf("unsigned or wrongly signed requests changed the state:\n%s", diff)
	}

	// The control: signed as Twilio signs, the same requests are taken.
	for _, route := range routes {
		if answer := env.PostTwilio(t, route.target, route.form); answer.Status < 200 || answer.Status > 299 {
			t.Fatalf("%s correctly signed: %d %q, want 2xx", route.target, answer.Status, answer.Body)
		}
	}
	if before.Diff(env.Snapshot(t)) == "" {
		t.Fatal("the correctly signed requests changed nothing either: the refusals above prove nothing")
	}
}

// TestAccessToken checks the token the browser phone registers with.
func TestAccessToken(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")

	status, body := alice.Post("/token", nil)
	if status != http.StatusOK {
		t.Fatalf("/token: %d %s", status, body)
	}
	var out struct {
		Token    string `json:"token"`
		Identity string `json:"identity"`
		TTL      int    `json:"ttl"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if out.Identity != "alice" || out.TTL != int(time.Hour.Seconds()) {
		t.Fatalf("token response = %+v", out)
	}
	tokens := env.App.Tokens
	parsed, err := jwt.Parse(out.Token, func(*jwt.Token) (any, error) { return []byte(tokens.APISecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if parsed.Header["cty"] != "twilio-fpa;v=1" {
		t.Fatalf("header = %v", parsed.Header)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	if claims["iss"] != tokens.APIKey || claims["sub"] != tokens.AccountSID {
		t.Fatalf("claims = %v", claims)
	}
	grants := claims["grants"].(map[string]any)
	voice := grants["voice"].(map[string]any)
	incoming := voice["incoming"].(map[string]any)
	if grants["identity"] != "alice" || incoming["allow"] != true {
		t.Fatalf("grants = %v", grants)
	}
	exp, _ := claims.GetExpirationTime()
	if d := time.Until(exp.Time); d < 59*time.Minute || d > time.Hour+time.Minute {
		t.Fatalf("token expires in %s", d)
	}

	if status, _ := alice.Post("/token", url.Values{"identity": {"bob"}}); status != http.StatusForbidden {
		t.Fatalf("a token for another agent: status %d, want 403", status)
	}
	resp, err := http.Post(env.URL+"/token", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token without a session: status %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/token", nil)
	resp, err = alice.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a token without the CSRF token: status %d, want 403", resp.StatusCode)
	}
}

// TestBadInputChangesNothing sends the agent routes what a careless or
// hostile caller might: each answer is a clear 4xx and nothing changes.
func TestBadInputChangesNothing(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("carol", "Carol Chen", models.RoleAgent)
	alice := env.SignIn("alice")
	bob := env.SignIn("bob")

	// Alice takes a call, Bob takes another, so Bob is busy.
	first := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "accept")
	second := env.PlaceCall("+15551230002")
	env.SimAction(env.Ringing("bob"), "accept")
	var aliceCall, bobCall *models.Call
	env.WaitDB("both calls answered", func(ctx context.Context) (bool, error) {
		var err error
		if aliceCall, err = models.CallBySID(ctx, env.App.DB, first); err != nil {
			return false, err
		}
		if bobCall, err = models.CallBySID(ctx, env.App.DB, second); err != nil {
			return false, err
		}
		return aliceCall.State == models.CallWithAgent && bobCall.State == models.CallWithAgent, nil
	})
	carol := env.SignIn("carol")
	// Carol goes away so she cannot be picked.
	if status, body := carol.Post("/presence", url.Values{"presence": {"away"}}); status != 200 {
		t.Fatalf("presence: %d %s", status, body)
	}
	// Every callback of both calls applied, so only a bad request could
	// change the state from here.
	env.WaitSettled(2)

	id := strconv.FormatInt(aliceCall.ID, 10)
	before := env.Snapshot(t)
	tests := []struct {
		name   string
		client *apptest.Client
		path   string
		form   url.Values
		// raw, when set, is the body sent as it is, for what a form
		// encoder cannot produce.
		raw    string
		status int
	}{
		{"unknown call", alice, "/calls/999999/transfer", url.Values{"to": {"carol"}}, "", 404},
		{"garbage call id", alice, "/calls/abc/transfer", url.Values{"to": {"carol"}}, "", 400},
		{"negative call id", alice, "/calls/-4/transfer", url.Values{"to": {"carol"}}, "", 400},
		{"huge call id", alice, "/calls/99999999999999999999999/transfer", url.Values{"to": {"carol"}}, "", 400},
		{"transfer to oneself", alice, "/calls/" + id + "/transfer", url.Values{"to": {"alice"}}, "", 400},
		{"transfer to nobody", alice, "/calls/" + id + "/transfer", url.Values{"to": {""}}, "", 400},
		{"transfer to an unknown agent", alice, "/calls/" + id + "/transfer", url.Values{"to": {"mallory"}}, "", 400},
		{"transfer to a busy agent", alice, "/calls/" + id + "/transfer", url.Values{"to": {"bob"}}, "", 409},
		{"transfer to an away agent", alice, "/calls/" + id + "/transfer", url.Values{"to": {"carol"}}, "", 409},
		{"transfer of a call the agent is not on", bob, "/calls/" + id + "/transfer", url.Values{"to": {"carol"}}, "", 403},
		{"leave with nobody else on the call", alice, "/calls/" + id + "/leave", nil, "", 409},
		{"leave a call the agent is not on", bob, "/calls/" + id + "/leave", nil, "", 403},
		{"hang up a call the agent is not on", bob, "/calls/" + id + "/hangup", nil, "", 403},
		{"garbage presence", alice, "/presence", url.Values{"presence": {"asleep"}}, "", 400},
		{"presence available while on a call", alice, "/presence", url.Values{"presence": {"available"}}, "", 409},
		// Encoded properly, so the server reads the value "%zz\x00".
		{"garbage agent name", alice, "/calls/" + id + "/transfer", url.Values{"to": {"%zz\x00"}}, "", 400},
		// What curl -d 'to=%zz' sends: the body is not valid form encoding.
		// It is refused whole, a good field before the broken part
		// included (read by halves, these would answer 409 and 200).
		{"broken form encoding", alice, "/calls/" + id + "/transfer", nil, "to=%zz", 400},
		{"broken form encoding after a colleague", alice, "/calls/" + id + "/transfer", nil, "to=carol&x=%zz", 400},
		{"broken form encoding after a presence", carol, "/presence", nil, "presence=available&%zz", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var status int
			var body string
			if tt.raw != "" {
				status, body = tt.client.PostRaw(tt.path, "application/x-www-form-urlencoded", tt.raw)
			} else {
				status, body = tt.client.Post(tt.path, tt.form)
			}
			if status != tt.status || strings.TrimSpace(body) == "" {
				t.Fatalf("status %d (%q), want %d with a message", status, body, tt.status)
			}
			if tt.raw != "" && !strings.Contains(body, "not valid form encoding") {
				t.Fatalf("the answer %q does not say the body is malformed", body)
			}
		})
	}
	t.Run("no CSRF token", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/calls/"+id+"/hangup", nil)
		resp, err := alice.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d %s, want 403", resp.StatusCode, body)
		}
	})
	t.Run("no session", func(t *testing.T) {
		resp, err := http.PostForm(env.URL+"/calls/"+id+"/hangup", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	if diff := before.Diff(env.Snapshot(t)); diff != "" {
		t.Fatalf("bad requests changed the state:\n%s", diff)
	}
}

// TestSignInRefusesImpossibleIdentities: what no agent could be called is
// refused like a wrong password, never reaching the database.
func TestSignInRefusesImpossibleIdentities(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	for _, identity := range []string{"al\x00ice", "\xff\xfe", strings.Repeat("a", 500), "with space"} {
		jar := apptest.NewJar()
		c := &http.Client{Jar: jar}
		resp, err := c.Get(env.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := goquery.NewDocumentFromReader(resp.Body)
		resp.Body.Close()
		token, _ := doc.Find(`input[name="csrf"]`).Attr("value")
		resp, err = c.PostForm(env.URL+"/signin", url.Values{"identity": {identity}, "password": {"whatever-password"}, "csrf": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("identity %q: status %d, want 401", identity, resp.StatusCode)
		}
	}
}

// TestSignOutEndsEverySession: signing out in one browser takes the agent
// off routing and ends their sessions in every browser (the cookies carry
// the old epoch); signing in again works.
func TestSignOutEndsEverySession(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	laptop, phone := env.SignIn("alice"), env.SignIn("alice")
	if a := agent(t, env, "alice"); a.Presence != models.PresenceAvailable {
		t.Fatalf("alice after signing in: %s, want available", a.Presence)
	}
	epoch := agent(t, env, "alice").SessionEpoch

	if status, body := laptop.Post("/signout", nil); status != http.StatusNoContent {
		t.Fatalf("signing out: %d %s", status, body)
	}
	a := agent(t, env, "alice")
	if a.Presence != models.PresenceOffline || a.SessionEpoch != epoch+1 {
		t.Fatalf("alice after signing out: %s, epoch %d; want offline, epoch %d", a.Presence, a.SessionEpoch, epoch+1)
	}
	for name, c := range map[string]*apptest.Client{"laptop": laptop, "phone": phone} {
		if !signedOut(t, env, c) {
			t.Errorf("the %s's session still works", name)
		}
	}
	// Nobody to ring: a caller waits.
	caller := env.PlaceCall("+15551230001")
	env.WaitDB("the caller waiting", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, caller)
		return err == nil && c.State == models.CallQueued, err
	})
	if n := rang(env.Sim.State())["alice"]; n != 0 {
		t.Fatalf("alice was rung %d times after signing out", n)
	}
	// Back again: the new session works and she takes the caller.
	env.SignIn("alice")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitDB("alice with the caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, caller)
		return err == nil && c.State == models.CallWithAgent, err
	})
}
