package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// signInAs tries identity and password through the sign-in form, as a
// browser would, and returns the status and path it ended on.
func signInAs(t *testing.T, env *apptest.Env, identity, password string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: apptest.WaitLimit}
	resp, err := client.Get(env.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	csrf, _ := doc.Find(`input[name="csrf"]`).Attr("value")
	resp, err = client.PostForm(env.URL+"/signin", url.Values{"identity": {identity}, "password": {password}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Request.URL.Path
}

// signedOut says a client's session no longer works: a page sends it to
// the sign-in form, an action is refused with 401.
func signedOut(t *testing.T, env *apptest.Env, c *apptest.Client) bool {
	t.Helper()
	resp, err := c.HTTP.Get(env.URL + "/agent")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status, _ := c.Post("/presence", url.Values{"presence": {"available"}})
	return resp.Request.URL.Path == "/signin" && status == http.StatusUnauthorized
}

func agent(t *testing.T, env *apptest.Env, identity string) *models.Agent {
	t.Helper()
	a, err := models.AgentByIdentity(context.Background(), env.App.DB, identity)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// adminEvents are the agent.presence events a manager's changes appended,
// as "identity:action".
func adminEvents(t *testing.T, env *apptest.Env) []string {
	t.Helper()
	ctx := context.Background()
	events, err := models.EventsAfter(ctx, env.App.DB, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		var p struct{ Admin, By string }
		_ = json.Unmarshal([]byte(ev.Payload), &p)
		if ev.Kind != "agent.presence" || p.Admin == "" {
			continue
		}
		a, err := models.AgentByID(ctx, env.App.DB, ev.AgentID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a.Identity+":"+p.Admin+" by "+p.By)
	}
	return out
}

func parseHTML(t *testing.T, body string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// rang counts the calls the simulator placed to each browser phone.
func rang(st twiliosim.State) map[string]int {
	out := map[string]int{}
	for _, c := range st.Calls {
		if id, ok := strings.CutPrefix(c.To, "client:"); ok {
			out[id]++
		}
	}
	return out
}

// TestAdminAddsAgents: a manager adds an agent (htmx) and a manager (plain
// form); each can sign in at once, the agent is offered calls, and the
// board's agent list shows the newcomer live.
func TestAdminAddsAgents(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	maria := env.SignIn("maria")
	board := maria.Stream(0)
	defer board.Close()

	status, body := maria.Post("/admin/agents", url.Values{
		"identity": {"erin"}, "name": {"Erin Evans"}, "role": {"agent"}, "password": {apptest.Password("erin")},
	})
	if status != http.StatusOK {
		t.Fatalf("adding erin: %d %s", status, body)
	}
	frag := parseHTML(t, body)
	if frag.Find(`[data-testid="admin-row-erin"]`).Length() != 1 || frag.Find(`[data-testid="admin-notice"]`).Length() != 1 {
		t.Fatalf("the answer has no row or notice for erin: %s", body)
	}
	if frag.Find(`[data-testid="nav"], head title`).Length() != 0 {
		t.Fatalf("htmx got a whole page, want the #admin-agents fragment: %s", body)
	}
	if v, _ := frag.Find(`[data-testid="admin-add-identity"]`).Attr("value"); v != "" {
		t.Fatalf("the add form came back filled with %q", v)
	}
	if a := agent(t, env, "erin"); a.Role != models.RoleAgent || a.Disabled || a.Presence != models.PresenceOffline || a.Name != "Erin Evans" {
		t.Fatalf("erin = %+v", a)
	}
	if _, ok := board.Until(func(ev apptest.SSEEvent) bool {
		return ev.Event == "board-agents" && strings.Contains(ev.Data, `data-testid="agent-row-erin"`)
	}); !ok {
		t.Fatal("the board's agent list never showed erin")
	}

	// A plain form (no JavaScript) posts, is sent back to the page, and
	// the page lists the new manager.
	resp, err := maria.HTTP.PostForm(env.URL+"/admin/agents", url.Values{
		"identity": {"max.m@hq"}, "name": {"Max Manager"}, "role": {"manager"}, "password": {apptest.Password("max.m@hq")}, "csrf": {maria.CSRF},
	})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin/agents" || resp.Request.Method != http.MethodGet {
		t.Fatalf("plain form: %d at %s %s", resp.StatusCode, resp.Request.Method, resp.Request.URL)
	}
	if row := parseHTML(t, string(page)).Find(`[data-testid="admin-row-max.m@hq"]`); row.AttrOr("data-role", "") != "manager" {
		t.Fatalf("the page has no manager row for max: %s", page)
	}
	if status, path := signInAs(t, env, "max.m@hq", apptest.Password("max.m@hq")); status != http.StatusOK || path != "/board" {
		t.Fatalf("max signing in: %d at %s", status, path)
	}

	env.SignIn("erin")
	env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("erin"), "accept")
	env.WaitDB("erin on the call", func(ctx context.Context) (bool, error) {
		calls, err := models.ListActiveCalls(ctx, env.App.DB)
		return err == nil && len(calls) == 1 && calls[0].State == models.CallWithAgent, err
	})

	want := []string{"erin:added by maria", "max.m@hq:added by maria"}
	if got := adminEvents(t, env); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("admin events = %v, want %v", got, want)
	}
}

// TestAdminDisable: a disabled agent is signed out everywhere, cannot sign
// in and is offered no calls; a call ringing them goes to someone else, and
// one they are on goes on to its end. Enabling lets them back in.
func TestAdminDisable(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("carol", "Carol Chen", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	maria := env.SignIn("maria")
	alice := env.SignIn("alice")

	var first string
	t.Run("a call ringing a disabled agent goes to someone else", func(t *testing.T) {
		first = env.PlaceCall("+15551230001")
		aliceLeg := env.Ringing("alice")
		if status, body := maria.Post("/admin/agents/alice/disable", nil); status != http.StatusOK {
			t.Fatalf("disable: %d %s", status, body)
		}
		env.WaitSim("alice's phone to stop ringing", func(st twiliosim.State) bool {
			c, _ := st.Call(aliceLeg)
			return c.Status != twiliosim.StatusRinging
		})
		env.WaitDB("the caller waiting again", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, env.App.DB, first)
			return err == nil && c.State == models.CallQueued, err
		})
		env.SignIn("bob")
		env.SimAction(env.Ringing("bob"), "accept")
		env.WaitDB("bob with the caller", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, env.App.DB, first)
			return err == nil && c.State == models.CallWithAgent, err
		})
	})

	t.Run("disabled agent is signed out everywhere", func(t *testing.T) {
		a := agent(t, env, "alice")
		if !a.Disabled || a.Presence != models.PresenceOffline {
			t.Fatalf("alice = disabled %v, %s", a.Disabled, a.Presence)
		}
		if !signedOut(t, env, alice) {
			t.Fatal("alice's old session still works")
		}
	})

	t.Run("disabled agent cannot sign in", func(t *testing.T) {
		if status, path := signInAs(t, env, "alice", apptest.Password("alice")); status != http.StatusUnauthorized || path != "/signin" {
			t.Fatalf("alice signing in: %d at %s, want 401 at /signin", status, path)
		}
	})

	t.Run("disabled agent is not offered calls", func(t *testing.T) {
		// Bob is busy: the second caller waits rather than ring alice.
		second := env.PlaceCall("+15551230002")
		env.WaitDB("the second caller waiting", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, env.App.DB, second)
			return err == nil && c.State == models.CallQueued, err
		})
		env.SignIn("carol")
		env.SimAction(env.Ringing("carol"), "accept")
		if n := rang(env.Sim.State())["alice"]; n != 1 {
			t.Fatalf("alice's phone rang %d times, want only the first call's offer", n)
		}
	})

	t.Run("an agent disabled mid-call keeps the call until it ends", func(t *testing.T) {
		bobLeg := ""
		for _, c := range env.Sim.State().Calls {
			if c.To == "client:bob" && c.Status == twiliosim.StatusInProgress {
				bobLeg = c.SID
			}
		}
		if status, body := maria.Post("/admin/agents/bob/disable", nil); status != http.StatusOK {
			t.Fatalf("disable: %d %s", status, body)
		}
		st := env.Sim.State()
		if c, _ := st.Call(bobLeg); c.Status != twiliosim.StatusInProgress {
			t.Fatalf("bob's call is %q right after he was disabled", c.Status)
		}
		if c, _ := st.Call(first); c.Status != twiliosim.StatusInProgress {
			t.Fatalf("the caller's call is %q right after bob was disabled", c.Status)
		}
		if c, _ := models.CallBySID(context.Background(), env.App.DB, first); c.State != models.CallWithAgent {
			t.Fatalf("the call is %s right after bob was disabled", c.State)
		}
		env.SimAction(first, "hangup")
		env.WaitSim("bob's leg ended", func(st twiliosim.State) bool {
			c, _ := st.Call(bobLeg)
			return c.Status == twiliosim.StatusCompleted
		})
		// Bob's phone hanging up is what frees an agent after a call.
		env.WaitDB("the call ended and bob's phone hung up", func(ctx context.Context) (bool, error) {
			c, err := models.CallBySID(ctx, env.App.DB, first)
			if err != nil || c.State != models.CallEnded {
				return false, err
			}
			return !agent(t, env, "bob").LastCallEndedAt.IsZero(), nil
		})
		if b := agent(t, env, "bob"); b.Presence != models.PresenceOffline {
			t.Fatalf("bob is %s after his last call, want offline", b.Presence)
		}
	})

	t.Run("a manager cannot disable themselves", func(t *testing.T) {
		if status, body := maria.Post("/admin/agents/maria/disable", nil); status != http.StatusBadRequest || !strings.Contains(body, "your own") {
			t.Fatalf("status %d %q, want 400", status, body)
		}
		if agent(t, env, "maria").Disabled {
			t.Fatal("maria disabled herself")
		}
	})

	t.Run("enabling lets them sign in and take calls again", func(t *testing.T) {
		if status, body := maria.Post("/admin/agents/alice/enable", nil); status != http.StatusOK {
			t.Fatalf("enable: %d %s", status, body)
		}
		if a := agent(t, env, "alice"); a.Disabled || a.Presence != models.PresenceOffline {
			t.Fatalf("alice after enable: disabled %v, %s (want offline until she signs in)", a.Disabled, a.Presence)
		}
		env.SignIn("alice")
		env.PlaceCall("+15551230003")
		env.Ringing("alice")
	})

	want := []string{"alice:disabled by maria", "bob:disabled by maria", "alice:enabled by maria"}
	if got := adminEvents(t, env); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("admin events = %v, want %v", got, want)
	}
}

// TestAdminResetPassword: the old password stops working, the new one
// works, and every existing session is signed out; an empty password is
// generated and shown once.
func TestAdminResetPassword(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	maria := env.SignIn("maria")
	alice := env.SignIn("alice")
	const typed = "a brand new passphrase"

	status, body := maria.Post("/admin/agents/alice/reset", url.Values{"password": {typed}})
	if status != http.StatusOK {
		t.Fatalf("reset: %d %s", status, body)
	}
	if parseHTML(t, body).Find(`[data-testid="admin-new-password"]`).Length() != 0 {
		t.Fatal("a typed password is shown back")
	}
	if !signedOut(t, env, alice) {
		t.Fatal("alice's old session still works")
	}
	if a := agent(t, env, "alice"); a.Presence != models.PresenceOffline {
		t.Fatalf("alice is %s after a reset signed her out", a.Presence)
	}
	if status, _ := signInAs(t, env, "alice", apptest.Password("alice")); status != http.StatusUnauthorized {
		t.Fatalf("the old password: status %d, want 401", status)
	}
	if status, path := signInAs(t, env, "alice", typed); status != http.StatusOK || path != "/agent" {
		t.Fatalf("the new password: %d at %s", status, path)
	}

	status, body = maria.Post("/admin/agents/alice/reset", url.Values{"password": {""}})
	if status != http.StatusOK {
		t.Fatalf("reset with a generated password: %d %s", status, body)
	}
	doc := parseHTML(t, body)
	generated := strings.TrimSpace(doc.Find(`[data-testid="admin-new-password-value"]`).Text())
	if len(generated) < 16 || doc.Find(`[data-testid="admin-new-password-for"]`).Text() != "alice" {
		t.Fatalf("no generated password shown: %s", body)
	}
	if status, _ := signInAs(t, env, "alice", typed); status != http.StatusUnauthorized {
		t.Fatalf("the replaced password: status %d, want 401", status)
	}
	if status, path := signInAs(t, env, "alice", generated); status != http.StatusOK || path != "/agent" {
		t.Fatalf("the generated password: %d at %s", status, path)
	}
	// Shown once: the page does not show it again.
	if n := maria.Page("/admin/agents").Find(`[data-testid="admin-new-password"]`).Length(); n != 0 {
		t.Fatal("the page shows the generated password again")
	}
	if strings.Contains(maria.Page("/admin/agents").Text(), generated) {
		t.Fatal("the generated password is on the page")
	}
	want := []string{"alice:password_reset by maria", "alice:password_reset by maria"}
	if got := adminEvents(t, env); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("admin events = %v, want %v", got, want)
	}
}

// TestAdminIsForManagers: an agent gets 403 on every admin route, a
// stranger is sent to sign in, a manager without the CSRF token gets 403;
// none of them changes anything.
func TestAdminIsForManagers(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	alice := env.SignIn("alice")
	maria := env.SignIn("maria")
	before, _ := models.ListAgents(context.Background(), env.App.DB)

	add := url.Values{"identity": {"mallory"}, "name": {"Mallory"}, "role": {"manager"}, "password": {"mallory-password"}}
	routes := []struct {
		name string
		path string
		form url.Values
	}{
		{"add", "/admin/agents", add},
		{"disable", "/admin/agents/bob/disable", nil},
		{"enable", "/admin/agents/bob/enable", nil},
		{"reset", "/admin/agents/bob/reset", url.Values{"password": {"mallory-password"}}},
		{"disable an unknown agent", "/admin/agents/nobody/disable", nil},
	}
	for _, r := range routes {
		t.Run("agent: "+r.name, func(t *testing.T) {
			if status, body := alice.Post(r.path, r.form); status != http.StatusForbidden {
				t.Fatalf("status %d %q, want 403", status, body)
			}
		})
		t.Run("no session: "+r.name, func(t *testing.T) {
			resp, err := http.PostForm(env.URL+r.path, r.form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
		t.Run("manager without CSRF token: "+r.name, func(t *testing.T) {
			resp, err := maria.HTTP.PostForm(env.URL+r.path, r.form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	t.Run("agent: page", func(t *testing.T) {
		resp, err := alice.HTTP.Get(env.URL + "/admin/agents")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		if alice.Page("/agent").Find(`[data-testid="nav-admin"]`).Length() != 0 {
			t.Fatal("an agent's nav links to the admin page")
		}
	})
	t.Run("no session: page", func(t *testing.T) {
		resp, err := http.Get(env.URL + "/admin/agents")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Request.URL.Path != "/signin" {
			t.Fatalf("a stranger ended at %s, want /signin", resp.Request.URL.Path)
		}
	})

	after, _ := models.ListAgents(context.Background(), env.App.DB)
	if len(after) != len(before) {
		t.Fatalf("%d agents, %d before", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.Disabled != a.Disabled || b.PasswordHash != a.PasswordHash || b.SessionEpoch != a.SessionEpoch || b.Role != a.Role {
			t.Errorf("%s changed: %+v -> %+v", b.Identity, b, a)
		}
	}
	if got := adminEvents(t, env); len(got) != 0 {
		t.Fatalf("admin events = %v, want none", got)
	}
}

// TestAdminBadInput: every mistake a manager can make answers a clear 4xx
// and changes nothing.
func TestAdminBadInput(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	maria := env.SignIn("maria")
	ctx := context.Background()
	before, _ := models.ListAgents(ctx, env.App.DB)
	eventsBefore, _ := models.LatestEventID(ctx, env.App.DB)

	add := func(identity, name, role, password string) url.Values {
		return url.Values{"identity": {identity}, "name": {name}, "role": {role}, "password": {password}}
	}
	tests := []struct {
		name   string
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"identity with a space", "/admin/agents", add("dan diaz", "Dan", "agent", "long-enough"), 400, "identity"},
		{"identity with a slash", "/admin/agents", add("dan/diaz", "Dan", "agent", "long-enough"), 400, "identity"},
		{"empty identity", "/admin/agents", add("", "Dan", "agent", "long-enough"), 400, "identity"},
		{"identity too long", "/admin/agents", add(strings.Repeat("d", 122), "Dan", "agent", "long-enough"), 400, "identity"},
		{"empty name", "/admin/agents", add("dan", "  ", "agent", "long-enough"), 400, "name"},
		{"name too long", "/admin/agents", add("dan", strings.Repeat("D", 101), "agent", "long-enough"), 400, "name"},
		{"name with a control character", "/admin/agents", add("dan", "Dan\x07", "agent", "long-enough"), 400, "name"},
		{"unknown role", "/admin/agents", add("dan", "Dan", "admin", "long-enough"), 400, "role"},
		{"short password", "/admin/agents", add("dan", "Dan", "agent", "short"), 400, "at least 8"},
		{"empty password", "/admin/agents", add("dan", "Dan", "agent", ""), 400, "at least 8"},
		{"password over 72 bytes", "/admin/agents", add("dan", "Dan", "agent", strings.Repeat("p", 73)), 400, "at most 72"},
		{"identity taken", "/admin/agents", add("alice", "Another Alice", "agent", "long-enough"), 409, "already exists"},
		{"identity taken in another case", "/admin/agents", add("ALICE", "Another Alice", "agent", "long-enough"), 409, "already exists"},
		{"disable an unknown agent", "/admin/agents/nobody/disable", nil, 404, "no such agent"},
		{"enable an unknown agent", "/admin/agents/nobody/enable", nil, 404, "no such agent"},
		{"reset an unknown agent", "/admin/agents/nobody/reset", url.Values{"password": {"long-enough"}}, 404, "no such agent"},
		{"an identity that cannot exist", "/admin/agents/a%20b/disable", nil, 404, "no such agent"},
		{"reset to a short password", "/admin/agents/alice/reset", url.Values{"password": {"short"}}, 400, "at least 8"},
		{"disable oneself", "/admin/agents/maria/disable", nil, 400, "your own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := maria.Post(tt.path, tt.form)
			if status != tt.status || !strings.Contains(body, tt.says) {
				t.Fatalf("status %d %q, want %d saying %q", status, body, tt.status, tt.says)
			}
		})
	}

	t.Run("plain form: the page again, with the message and the form refilled", func(t *testing.T) {
		form := add("alice", "Another Alice", "manager", "long-enough")
		form.Set("csrf", maria.CSRF)
		resp, err := maria.HTTP.PostForm(env.URL+"/admin/agents", form)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := goquery.NewDocumentFromReader(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("status %d, want 409", resp.StatusCode)
		}
		if !strings.Contains(doc.Find(`[data-testid="admin-error"]`).Text(), "already exists") {
			t.Fatalf("no error on the page: %s", doc.Find("main").Text())
		}
		if v, _ := doc.Find(`[data-testid="admin-add-name"]`).Attr("value"); v != "Another Alice" {
			t.Fatalf("the name field holds %q", v)
		}
	})

	after, _ := models.ListAgents(ctx, env.App.DB)
	if len(after) != len(before) {
		t.Fatalf("%d agents, %d before", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.Disabled != a.Disabled || b.PasswordHash != a.PasswordHash || b.SessionEpoch != a.SessionEpoch || b.Presence != a.Presence {
			t.Errorf("%s changed: %+v -> %+v", b.Identity, b, a)
		}
	}
	if latest, _ := models.LatestEventID(ctx, env.App.DB); latest != eventsBefore {
		t.Fatalf("bad input appended events (%d -> %d)", eventsBefore, latest)
	}
}

// TestAdminPage: the page lists every agent and manager with their role,
// presence, account and the call they are on.
func TestAdminPage(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	maria := env.SignIn("maria")
	env.SignIn("alice")
	customer := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitDB("alice on the call", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, customer)
		return err == nil && c.State == models.CallWithAgent, err
	})
	if status, body := maria.Post("/admin/agents/bob/disable", nil); status != http.StatusOK {
		t.Fatalf("disable: %d %s", status, body)
	}

	doc := maria.Page("/admin/agents")
	if href, _ := doc.Find(`[data-testid="nav-admin"]`).Attr("href"); href != "/admin/agents" {
		t.Fatalf("the nav's Agents link goes to %q", href)
	}
	if n := doc.Find(`[data-testid="admin-agents-table"] tbody tr`).Length(); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
	tests := []struct {
		identity, role, presence, status, call string
		actions                                []string
	}{
		{"alice", "Agent", "busy", "Active", "+15551230001", []string{"admin-disable-form", "admin-reset-form"}},
		{"bob", "Agent", "offline", "Disabled", "—", []string{"admin-enable-form", "admin-reset-form"}},
		{"maria", "Manager", "offline", "Active", "—", []string{"admin-you", "admin-reset-form"}},
	}
	for _, tt := range tests {
		t.Run(tt.identity, func(t *testing.T) {
			row := doc.Find(`[data-testid="admin-row-` + tt.identity + `"]`)
			cell := func(id string) string {
				return strings.Join(strings.Fields(row.Find(`[data-testid="`+id+`"]`).Text()), " ")
			}
			if cell("admin-role") != tt.role || cell("admin-presence") != tt.presence || cell("admin-status") != tt.status || !strings.Contains(cell("admin-call"), tt.call) {
				t.Fatalf("row = %q", strings.Join(strings.Fields(row.Text()), " "))
			}
			for _, id := range tt.actions {
				if row.Find(`[data-testid="`+id+`"]`).Length() != 1 {
					t.Errorf("no %s in the row", id)
				}
			}
		})
	}
}
