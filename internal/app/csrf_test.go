package app_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// stateChangingMethods are the methods a request may change state with.
var stateChangingMethods = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// csrfExempt are the routes that change state without a session's CSRF
// token, each with the reason. Any other state-changing route must refuse
// a request without the token: a new route is held to that until it is
// listed here.
var csrfExempt = map[string]string{
	handlers.PathVoiceIncoming: "Twilio's webhook: X-Twilio-Signature stands in for a session (TestTwilioRoutesRequireSignature)",
	handlers.PathVoiceWait:     "Twilio's webhook: X-Twilio-Signature stands in for a session",
	handlers.PathVoiceAgent:    "Twilio's webhook: X-Twilio-Signature stands in for a session",
	handlers.PathVoiceStatus:   "Twilio's webhook: X-Twilio-Signature stands in for a session",
	handlers.PathVoiceConf:     "Twilio's webhook: X-Twilio-Signature stands in for a session",
	"/sim":                     "the simulator's page and control API (simulator mode only): it is the phone network, not the product, and has no sessions",
	"/sim/*":                   "the simulator's control API (simulator mode only), as above",
	"/2010-04-01/*":            "Twilio's REST API as the simulator serves it: HTTP Basic auth with the account's credentials, as on Twilio",
}

// fillRoute fills the path parameters of the routes walked: the live call
// and an agent who exists, so a request that got past the CSRF check would
// act on real state and show in the snapshot.
func fillRoute(t *testing.T, path string, callID int64) string {
	t.Helper()
	parts := strings.Split(path, "/")
	for i, p := range parts {
		switch {
		case p == ":id":
			parts[i] = strconv.FormatInt(callID, 10)
		case p == ":identity":
			parts[i] = "bob"
		case strings.HasPrefix(p, ":") || strings.Contains(p, "*"):
			t.Fatalf("route %s has a parameter %q this test cannot fill; teach fillRoute about it", path, p)
		}
	}
	return strings.Join(parts, "/")
}

// forgedForm is what a forged cross-site form sends: values every route
// could act on (a colleague, a presence, an agent to add, credentials).
func forgedForm() url.Values {
	return url.Values{
		"to": {"bob"}, "presence": {"available"},
		"identity": {"bob"}, "name": {"Mallory"}, "role": {"manager"}, "password": {apptest.Password("bob")},
	}
}

// postWithoutToken posts form as a cross-site form would: the session's
// cookie goes along, the CSRF token does not (or a wrong one does, when
// token is set).
func postWithoutToken(t *testing.T, c *apptest.Client, method, target string, form url.Values, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("X-CSRF-Token", token)
	}
	// Not following redirects: a refused request must say so itself.
	client := &http.Client{Jar: c.HTTP.Jar, Timeout: apptest.WaitLimit,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestEveryStateChangingRouteNeedsCSRF walks the app's router: every
// POST, PUT, PATCH and DELETE route that is not exempt (csrfExempt) refuses
// a signed-in manager's and agent's request that lacks the CSRF token, or
// carries another session's, with 403, and nothing changes. A manager is
// let through every role check, so the manager's refusal must be the
// token's doing, and its message says so ("expired", as the pages word
// it); the agent owns the call the routes name, and is refused either way.
func TestEveryStateChangingRouteNeedsCSRF(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	alice := env.SignIn("alice")
	bob := env.SignIn("bob")
	maria := env.SignIn("maria")
	customer := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitSettled(1)
	call := callBySID(t, env, customer)
	// Bob away: a forged sign-in or presence change would make him
	// available, which the snapshot would show.
	if status, body := bob.Post("/presence", url.Values{"presence": {"away"}}); status != http.StatusOK {
		t.Fatalf("bob going away: %d %s", status, body)
	}

	before := env.Snapshot(t)
	var walked []string
	for _, r := range env.App.Echo.Routes() {
		if !slices.Contains(stateChangingMethods, r.Method) {
			continue
		}
		if _, exempt := csrfExempt[r.Path]; exempt {
			continue
		}
		walked = append(walked, r.Method+" "+r.Path)
		target := env.URL + fillRoute(t, r.Path, call.ID)
		for _, tc := range []struct {
			name   string
			client *apptest.Client
			token  string
			// manager: every role check lets the client through, so
			// only the token can be why it is refused.
			manager bool
		}{
			{"manager, no token", maria, "", true},
			{"agent, no token", alice, "", false},
			{"manager, the agent's token", maria, alice.CSRF, true},
			{"agent, the manager's token", alice, maria.CSRF, false},
		} {
			t.Run(r.Method+" "+r.Path+" "+tc.name, func(t *testing.T) {
				status, body := postWithoutToken(t, tc.client, r.Method, target, forgedForm(), tc.token)
				if status != http.StatusForbidden {
					t.Fatalf("status %d %.300q, want 403", status, body)
				}
				if tc.manager && !strings.Contains(strings.ToLower(body), "expired") {
					t.Fatalf("refused with %.300q, not for the missing CSRF token", body)
				}
			})
		}
	}
	t.Logf("routes walked: %v", walked)
	// The walk found the routes it is about; a router it could not read
	// would pass vacuously.
	for _, want := range []string{"POST /signin", "POST /signout", "POST /calls/:id/transfer", "POST /calls/:id/hangup", "POST /presence", "POST /admin/agents"} {
		if !slices.Contains(walked, want) {
			t.Errorf("the walk missed %s", want)
		}
	}
	if diff := before.Diff(env.Snapshot(t)); diff != "" {
		t.Fatalf("requests without the CSRF token changed the state:\n%s", diff)
	}
}

// TestAgentsAreKeptOffManagersPages: an agent, with a valid session and
// CSRF token, gets 403 on the board and on every /admin route (walked from
// the router), and nothing changes.
func TestAgentsAreKeptOffManagersPages(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	alice := env.SignIn("alice")
	env.SignIn("bob")

	before := env.Snapshot(t)
	var walked []string
	for _, r := range env.App.Echo.Routes() {
		if !(r.Method == http.MethodGet && r.Path == "/board") && !strings.HasPrefix(r.Path, "/admin") {
			continue
		}
		walked = append(walked, r.Method+" "+r.Path)
		path := fillRoute(t, r.Path, 0)
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			var status int
			var body string
			switch r.Method {
			case http.MethodGet:
				resp, err := alice.HTTP.Get(env.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status = resp.StatusCode
			case http.MethodPost:
				status, body = alice.Post(path, forgedForm())
			default:
				t.Fatalf("no way to send %s yet; teach the test", r.Method)
			}
			if status != http.StatusForbidden {
				t.Fatalf("status %d %.300q, want 403", status, body)
			}
		})
	}
	t.Logf("routes walked: %v", walked)
	if !slices.Contains(walked, "GET /board") || !slices.Contains(walked, "GET /admin/agents") || !slices.Contains(walked, "POST /admin/agents/:identity/reset") {
		t.Fatalf("the walk missed the board or the admin routes: %v", walked)
	}
	if diff := before.Diff(env.Snapshot(t)); diff != "" {
		t.Fatalf("an agent's requests to managers' routes changed the state:\n%s", diff)
	}
}
