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

func countRows(t *testing.T, env *apptest.Env, table string) int {
	t.Helper()
	n, err := env.App.DB.NewSelect().Table(table).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestTwilioRoutesRequireSignature sends every Twilio-facing route a
// request with no signature and with a wrong one: each is refused with 403
// and nothing is stored. The simulator's own signed requests pass (the
// seeds flow test shows that).
func TestTwilioRoutesRequireSignature(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	form := url.Values{
		"CallSid": {"CA0123456789abcdef0123456789abcdef"}, "From": {"+15551230001"}, "To": {"+15550100000"},
		"CallStatus": {"ringing"}, "AccountSid": {"AC00000000000000000000000000000000"},
		"ConferenceSid": {"CF0123456789abcdef0123456789abcdef"}, "FriendlyName": {"call-x"},
		"StatusCallbackEvent": {"participant-join"}, "SequenceNumber": {"1"},
	}
	routes := []string{"/conference/connect/client", "/conference/wait", "/conference/connect/agent?leg=1", "/voice/status?leg=1", "/voice/conference"}
	for _, route := range routes {
		for _, sig := range []struct{ name, value string }{
			{"missing", ""},
			{"wrong", twiliosig.Sign("not-the-auth-token", env.URL+route, form)},
			{"for another URL", twiliosig.Sign("not-the-auth-token", env.URL+"/elsewhere", form)},
		} {
			t.Run(route+" "+sig.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, env.URL+route, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if sig.value != "" {
					req.Header.Set(twiliosig.Header, sig.value)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403", resp.StatusCode)
				}
			})
		}
	}
	for _, table := range []string{"calls", "legs", "events", "webhook_receipts"} {
		if n := countRows(t, env, table); n != 0 {
			t.Fatalf("unsigned requests wrote %d rows to %s", n, table)
		}
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
	_ = carol
	// Carol goes away so she cannot be picked.
	if status, body := carol.Post("/presence", url.Values{"presence": {"away"}}); status != 200 {
		t.Fatalf("presence: %d %s", status, body)
	}

	id := strconv.FormatInt(aliceCall.ID, 10)
	before := map[string]int{}
	for _, table := range []string{"calls", "legs", "transfers"} {
		before[table] = countRows(t, env, table)
	}
	tests := []struct {
		name   string
		client *apptest.Client
		path   string
		form   url.Values
		status int
	}{
		{"unknown call", alice, "/calls/999999/transfer", url.Values{"to": {"carol"}}, 404},
		{"garbage call id", alice, "/calls/abc/transfer", url.Values{"to": {"carol"}}, 400},
		{"negative call id", alice, "/calls/-4/transfer", url.Values{"to": {"carol"}}, 400},
		{"huge call id", alice, "/calls/99999999999999999999999/transfer", url.Values{"to": {"carol"}}, 400},
		{"transfer to oneself", alice, "/calls/" + id + "/transfer", url.Values{"to": {"alice"}}, 400},
		{"transfer to nobody", alice, "/calls/" + id + "/transfer", url.Values{"to": {""}}, 400},
		{"transfer to an unknown agent", alice, "/calls/" + id + "/transfer", url.Values{"to": {"mallory"}}, 400},
		{"transfer to a busy agent", alice, "/calls/" + id + "/transfer", url.Values{"to": {"bob"}}, 409},
		{"transfer to an away agent", alice, "/calls/" + id + "/transfer", url.Values{"to": {"carol"}}, 409},
		{"transfer of a call the agent is not on", bob, "/calls/" + id + "/transfer", url.Values{"to": {"carol"}}, 403},
		{"leave with nobody else on the call", alice, "/calls/" + id + "/leave", nil, 409},
		{"leave a call the agent is not on", bob, "/calls/" + id + "/leave", nil, 403},
		{"hang up a call the agent is not on", bob, "/calls/" + id + "/hangup", nil, 403},
		{"garbage presence", alice, "/presence", url.Values{"presence": {"asleep"}}, 400},
		{"presence available while on a call", alice, "/presence", url.Values{"presence": {"available"}}, 409},
		{"garbage form encoding", alice, "/calls/" + id + "/transfer", url.Values{"to": {"%zz\x00"}}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.client.Post(tt.path, tt.form)
			if status != tt.status || strings.TrimSpace(body) == "" {
				t.Fatalf("status %d (%q), want %d with a message", status, body, tt.status)
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
	for table, n := range before {
		if got := countRows(t, env, table); got != n {
			t.Errorf("%s: %d rows, had %d before the bad requests", table, got, n)
		}
	}
	c, _ := models.CallByID(context.Background(), env.App.DB, aliceCall.ID)
	if c.State != models.CallWithAgent {
		t.Fatalf("alice's call is %s after bad requests", c.State)
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
