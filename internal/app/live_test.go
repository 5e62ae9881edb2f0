package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestStreamReplaysExactlyWhatWasMissed: a stream that disconnects and
// comes back with Last-Event-ID gets the activity lines of exactly the
// events it missed, in order, then the fragments as they are now.
func TestStreamReplaysExactlyWhatWasMissed(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	env.SignIn("alice")
	maria := env.SignIn("maria")
	ctx := context.Background()

	stream := maria.Stream(0)
	first := env.PlaceCall("+15551230001")
	got, ok := stream.Until(func(ev apptest.SSEEvent) bool {
		return ev.Event == "activity" && strings.Contains(ev.Data, "Ringing Alice")
	})
	if !ok {
		t.Fatalf("no live activity for the first call: %+v", got)
	}
	var lastSeen int64
	for _, ev := range got {
		if ev.ID > lastSeen {
			lastSeen = ev.ID
		}
	}
	stream.Close()

	// While the manager is away, Alice answers and a second call arrives.
	env.SimAction(env.Ringing("alice"), "accept")
	env.PlaceCall("+15551230002")
	var missed []models.Event
	env.WaitDB("the events while away", func(ctx context.Context) (bool, error) {
		var err error
		missed, err = models.EventsAfter(ctx, env.App.DB, lastSeen, 0)
		queued := 0
		for _, e := range missed {
			if e.Kind == "call.queued" {
				queued++
			}
		}
		return queued >= 1 && len(missed) >= 4, err
	})
	_ = first

	back := maria.Stream(lastSeen)
	var replayed []apptest.SSEEvent
	fragments := map[string]bool{}
	for len(fragments) < 4 {
		ev, ok := back.Next()
		if !ok {
			t.Fatalf("the stream ended during the replay; got %+v", replayed)
		}
		if ev.Event == "activity" {
			replayed = append(replayed, ev)
			continue
		}
		fragments[ev.Event] = true
	}
	// Every missed event is replayed once, in order, and nothing else.
	missed, _ = models.EventsAfter(ctx, env.App.DB, lastSeen, 0)
	if len(replayed) < len(missed) {
		// Events committed after the replay started arrive live; read them.
		for len(replayed) < len(missed) {
			ev, ok := back.Next()
			if !ok {
				break
			}
			if ev.Event == "activity" {
				replayed = append(replayed, ev)
			}
		}
	}
	if len(replayed) != len(missed) {
		t.Fatalf("replayed %d activity lines for %d missed events", len(replayed), len(missed))
	}
	for i, ev := range replayed {
		if ev.ID != missed[i].ID || !strings.Contains(ev.Data, `data-event-id="`) {
			t.Fatalf("replayed line %d has id %d, want %d", i, ev.ID, missed[i].ID)
		}
	}
	for _, name := range []string{"board-summary", "board-calls", "board-agents", "board-ended"} {
		if !fragments[name] {
			t.Errorf("no %s fragment after the replay", name)
		}
	}
}

// TestAgentStreamCarriesNoOtherAgentsCalls: each agent's stream has their
// own call only; a colleague's caller never appears in it.
func TestAgentStreamCarriesNoOtherAgentsCalls(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	alice := env.SignIn("alice")
	bob := env.SignIn("bob")
	aliceStream := alice.Stream(0)
	bobStream := bob.Stream(0)

	env.PlaceCall("+15551110001")
	env.SimAction(env.Ringing("alice"), "accept")
	env.PlaceCall("+15552220002")
	env.SimAction(env.Ringing("bob"), "accept")

	// Each sees their own call in their call panel.
	for _, tc := range []struct {
		name   string
		s      *apptest.Stream
		mine   string
		theirs string
	}{
		{"alice", aliceStream, "+15551110001", "+15552220002"},
		{"bob", bobStream, "+15552220002", "+15551110001"},
	} {
		got, ok := tc.s.Until(func(ev apptest.SSEEvent) bool {
			return ev.Event == "call" && strings.Contains(ev.Data, tc.mine) && strings.Contains(ev.Data, `data-state="with_agent"`)
		})
		if !ok {
			t.Fatalf("%s never saw their own call", tc.name)
		}
		for _, ev := range got {
			if strings.Contains(ev.Data, tc.theirs) {
				t.Fatalf("%s's stream carried the other agent's caller in %q: %s", tc.name, ev.Event, ev.Data)
			}
		}
	}
	// And after both calls are fully set up, one more change: still nothing.
	env.WaitDB("both calls with agents", func(ctx context.Context) (bool, error) {
		n, err := env.App.DB.NewSelect().Model((*models.Call)(nil)).Where("state = ?", models.CallWithAgent).Count(ctx)
		return n == 2, err
	})
	doc := alice.Page("/agent")
	if html, _ := doc.Html(); strings.Contains(html, "+15552220002") {
		t.Fatal("alice's console page shows bob's caller")
	}
	if status, _ := alice.Post("/presence", url.Values{"presence": {"away"}}); status != http.StatusConflict {
		t.Fatalf("presence change while on a call: %d", status)
	}
}

// TestCallerNameIsEscaped: what Twilio relays from the caller's network is
// text, never markup, on every page and in every pushed fragment.
func TestCallerNameIsEscaped(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	alice := env.SignIn("alice")
	maria := env.SignIn("maria")
	board := maria.Stream(0)

	evil := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	resp, err := http.PostForm(env.URL+"/sim/calls", url.Values{"From": {"+15551230001"}, "CallerName": {evil}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, ok := board.Until(func(ev apptest.SSEEvent) bool {
		return ev.Event == "board-calls" && strings.Contains(ev.Data, "+15551230001")
	})
	if !ok {
		t.Fatal("the board never showed the call")
	}
	env.Ringing("alice")
	for _, body := range []string{got[len(got)-1].Data, pageHTML(t, maria, "/board"), pageHTML(t, alice, "/agent")} {
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Fatalf("the caller name was not escaped:\n%s", body)
		}
		if !strings.Contains(body, "&lt;script&gt;") {
			t.Fatalf("the caller name is not shown as text:\n%s", body)
		}
	}
}

func pageHTML(t *testing.T, c *apptest.Client, path string) string {
	t.Helper()
	html, err := c.Page(path).Html()
	if err != nil {
		t.Fatal(err)
	}
	return html
}

var thirdPartyURL = regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"(https?:)?//`)

// TestPagesUseVendoredFilesOnly: no page loads anything from another host.
func TestPagesUseVendoredFilesOnly(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	alice := env.SignIn("alice")
	maria := env.SignIn("maria")
	for _, page := range []struct {
		c    *apptest.Client
		path string
	}{{alice, "/agent"}, {maria, "/board"}, {alice, "/signin"}} {
		html := pageHTML(t, page.c, page.path)
		if m := thirdPartyURL.FindString(html); m != "" {
			t.Errorf("%s refers to another host: %s", page.path, m)
		}
		for _, src := range regexp.MustCompile(`src="([^"]+)"`).FindAllStringSubmatch(html, -1) {
			resp, err := page.c.HTTP.Get(env.URL + src[1])
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(src[1], "/static/") {
				t.Errorf("%s: script %s answers %d", page.path, src[1], resp.StatusCode)
			}
		}
	}
}

// TestStreamsLeaveNoGoroutinesBehind opens and drops 1,000 event streams and
// counts the goroutines before and after.
func TestStreamsLeaveNoGoroutinesBehind(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")
	warm := alice.Stream(0)
	warm.Next()
	warm.Close()

	settle := func() int {
		// Goroutines end asynchronously after a connection closes; poll with
		// a deadline until the count is steady.
		deadline := time.Now().Add(apptest.WaitLimit)
		prev := -1
		for {
			runtime.GC()
			n := runtime.NumGoroutine()
			if n == prev || time.Now().After(deadline) {
				return n
			}
			prev = n
			poll := time.NewTimer(100 * time.Millisecond)
			<-poll.C
		}
	}
	before := settle()
	for i := 0; i < 1000; i++ {
		s := alice.Stream(0)
		if _, ok := s.Next(); !ok {
			t.Fatalf("stream %d sent nothing", i)
		}
		s.Close()
	}
	deadline := time.Now().Add(apptest.WaitLimit)
	for env.App.Broker.Subscribers() != 0 && time.Now().Before(deadline) {
		poll := time.NewTimer(20 * time.Millisecond)
		<-poll.C
	}
	if n := env.App.Broker.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left after the streams closed", n)
	}
	alice.HTTP.CloseIdleConnections()
	after := settle()
	if after > before+5 {
		t.Fatalf("goroutines: %d before 1,000 streams, %d after", before, after)
	}
}
