package browser_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// chromiumPath finds Debian's chromium, or skips the test with how to get it;
// under CI a missing browser is a failure.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is required under CI: apt-get install chromium")
	}
	t.Skip("browser tests skipped: Chromium not found; install it with 'apt-get install chromium' to run them")
	return ""
}

// browser starts one headless Chromium for the test.
func browser(t testing.TB) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// person is one browser context (its own cookies): an agent or a manager.
type person struct {
	t    testing.TB
	name string
	ctx  context.Context
	shot *screenshots
}

func newPerson(t testing.TB, browserCtx context.Context, name string, shots *screenshots) *person {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action on a context opens its tab for the context's whole
	// life, so it must not run under a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("opening %s's browser: %v", name, err)
	}
	return &person{t: t, name: name, ctx: ctx, shot: shots}
}

func (p *person) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.shot.take(p, "failed-"+what)
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// see waits, in the page, for a JavaScript condition to hold: a state
// the page reaches by loading (a phone registered, a stream open) or one
// it may already show. Live updates are checked with updates.after, which
// also measures them.
func (p *person) see(what, js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(apptest.WaitLimit))); err != nil {
		p.shot.take(p, "missing-"+what)
		p.t.Fatalf("%s did not see %s within %s: %v", p.name, what, apptest.WaitLimit, err)
	}
}

func (p *person) signIn(env *apptest.Env, identity string) {
	p.t.Helper()
	p.do("sign in",
		chromedp.Navigate(env.URL+"/signin"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-form"]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid="signin-identity"]`), identity),
		chromedp.SetValue(chromedp.CSS(`[data-testid="signin-password"]`), apptest.Password(identity)),
		chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-user"]`)),
	)
}

// click clicks the element css selects once it is visible and enabled.
func (p *person) click(what, css string) {
	p.t.Helper()
	p.press(what, css)
}

// press clicks the element css selects once it is visible and enabled, and
// returns the page's time just before the click: the cause of whatever the
// click changes. The element is found and clicked in one step in the page:
// a live fragment swapped in between finding a node and clicking it would
// otherwise leave the click aimed at a node that is gone. An element that
// acts through htmx is clicked only once htmx has set it up (on a slow
// machine the deferred script may still be loading), or the click would
// do nothing.
func (p *person) press(what, css string) time.Time {
	p.t.Helper()
	js := `(() => {
		const el = document.querySelector(` + strconv.Quote(css) + `);
		if (!el || el.disabled || el.offsetParent === null) return 0;
		const acts = el.closest("[hx-post],[hx-get],[hx-put],[hx-patch],[hx-delete]");
		if (acts && !(acts["htmx-internal-data"] && acts["htmx-internal-data"].initHash)) return 0;
		const at = Date.now();
		el.click();
		return at;
	})()`
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	ms, err := chromedp.Run(ctx, chromedp.Poll[float64](js, chromedp.WithPollingTimeout(apptest.WaitLimit)))
	if err != nil {
		p.shot.take(p, "failed-click-"+what)
		p.t.Fatalf("%s: click %s: %v", p.name, what, err)
	}
	return time.UnixMilli(int64(ms))
}

// pressing is a step's cause: p presses the element css selects.
func (p *person) pressing(what, css string) func() time.Time {
	return func() time.Time { return p.press(what, css) }
}

// pressConfirmed presses a button that asks for confirmation (hx-confirm),
// checks the question, and confirms it. It returns the moment the person
// confirmed, the cause of what follows.
func (p *person) pressConfirmed(what, css, question string) time.Time {
	p.t.Helper()
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	confirmed := make(chan time.Time, 1)
	failed := make(chan error, 1)
	go func() {
		for d, err := range dialogs {
			if err != nil {
				failed <- err
				return
			}
			if d.Type != page.DialogTypeConfirm || d.Message != question {
				failed <- fmt.Errorf("a %s dialog asked %q, want a confirm asking %q", d.Type, d.Message, question)
				_, _ = chromedp.Call(p.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
				return
			}
			at := time.Now()
			if _, err := chromedp.Call(p.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				failed <- err
				return
			}
			confirmed <- at
			return
		}
	}()
	p.press(what, css)
	select {
	case at := <-confirmed:
		return at
	case err := <-failed:
		p.t.Fatalf("%s: confirming %s: %v", p.name, what, err)
	case <-time.After(apptest.WaitLimit):
		p.t.Fatalf("%s: %s asked for no confirmation within %s", p.name, what, apptest.WaitLimit)
	}
	return time.Time{}
}

// screenshots writes each step's pages to a folder named after the test.
type screenshots struct {
	t   testing.TB
	dir string
	n   int
}

func newScreenshots(t testing.TB) *screenshots {
	t.Helper()
	root := os.Getenv("WT_SCREENSHOTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "warmtransfer-screenshots")
	}
	dir := filepath.Join(root, t.Name())
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return &screenshots{t: t, dir: dir}
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

func (s *screenshots) take(p *person, step string) {
	s.n++
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Logf("screenshot %s: %v", step, err)
		return
	}
	name := fmt.Sprintf("%02d-%s-%s.png", s.n, p.name, unsafeName.ReplaceAllString(strings.ToLower(step), "-"))
	_ = os.WriteFile(filepath.Join(s.dir, name), png, 0o644)
}

func (s *screenshots) all(step string, people ...*person) {
	for _, p := range people {
		s.take(p, step)
	}
}

// signInAgent signs an agent in and waits for the console's phone to be
// ready and its stream open, so what follows is a live update.
func (p *person) signInAgent(env *apptest.Env, identity string) {
	p.t.Helper()
	p.signIn(env, identity)
	p.see("the console with the phone ready and the stream open", and(phoneIs("ready"), live))
}

// signInManager signs a manager in to the board, its stream open.
func (p *person) signInManager(env *apptest.Env, identity string) {
	p.t.Helper()
	p.signIn(env, identity)
	p.see("the board, live", and(present("board"), live))
}

// TestWarmTransferInTheBrowser: two agents and a manager in their own
// browser contexts, none of whose pages is ever reloaded. Presence set to
// away and back shows on the board and in a colleague's roster. A customer
// calls Bob, who declines: the offer moves to Alice, who accepts. Bob takes
// a second caller, and shows busy (not pickable) in Alice's transfer list;
// a third caller waits while nobody is free and gives up. Bob hangs his
// call up from the console. Alice transfers to Bob, Bob accepts, Alice is
// told she may leave and leaves; the customer hangs up. The board shows
// every step, and who ended each call. How long each update took to show,
// from the action that caused it, is written to latencies.json and
// latencies.txt beside the screenshots.
func TestWarmTransferInTheBrowser(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	ctx := browser(t)
	shots := newScreenshots(t)
	u := newUpdates(t)
	defer u.report(shots.dir, true)
	alice := newPerson(t, ctx, "alice", shots)
	bob := newPerson(t, ctx, "bob", shots)
	maria := newPerson(t, ctx, "maria", shots)
	const first, second, third = "+15551230001", "+15551230002", "+15551230003"

	alice.signInAgent(env, "alice")
	bob.signInAgent(env, "bob")
	maria.signInManager(env, "maria")
	maria.see("both agents available", and(boardPresence("alice", "available"), boardPresence("bob", "available")))
	shots.all("signed in", alice, bob, maria)

	u.after("Alice sets herself away", alice.pressing("Away", `[data-testid="presence-away"]`),
		alice.sees("herself away", myPresence("away")),
		bob.sees("Alice away among his colleagues", rosterPresence("alice", "away")),
		maria.sees("Alice away on the board", boardPresence("alice", "away")),
	)

	// With Alice away the call can only be offered to Bob.
	var firstSID string
	u.after("a customer calls", now(func() { firstSID = env.PlaceCall(first) }),
		bob.sees("the incoming call card", offerFor(first)),
		bob.sees("his phone ringing", phoneIs("ringing")),
		maria.sees("the call on the board", rowOf(first)),
		maria.sees("Bob busy with the offer", boardPresence("bob", "busy")),
	)
	shots.all("offered to bob", bob, maria)

	u.after("Alice sets herself available", alice.pressing("Available", `[data-testid="presence-available"]`),
		alice.sees("herself available", myPresence("available")),
		bob.sees("Alice available among his colleagues", rosterPresence("alice", "available")),
		maria.sees("Alice available on the board", boardPresence("alice", "available")),
	)

	u.after("Bob declines", bob.pressing("Decline", `[data-testid="offer-decline"]`),
		bob.sees("the offer gone, his phone free", and(noOffer, phoneIs("ready"))),
		alice.sees("the call offered to her", offerFor(first)),
		alice.sees("her phone ringing", phoneIs("ringing")),
		maria.sees("Bob's declining in the activity", activityLine("Bob Baker declined")),
		maria.sees("Alice busy with the offer, Bob available", and(boardPresence("alice", "busy"), boardPresence("bob", "available"))),
		bob.sees("Alice busy among his colleagues", rosterPresence("alice", "busy")),
	)
	shots.all("bob declined", alice, bob, maria)

	u.after("Alice accepts", alice.pressing("Accept", `[data-testid="offer-accept"]`),
		alice.sees("the call panel with the caller", and(onCallWith(first, "with_agent"), phoneIs("in-call"))),
		maria.sees("the call with Alice", and(rowState(first, "with agent"), rowAgents(first, []string{"Alice"}, nil))),
	)
	alice.see("Bob pickable for a transfer", transferOption("bob", "available", true))
	shots.all("alice answered", alice, bob, maria)

	var secondSID string
	u.after("a second customer calls", now(func() { secondSID = env.PlaceCall(second) }),
		bob.sees("the second call offered", offerFor(second)),
		alice.sees("Bob busy, not pickable for a transfer", transferOption("bob", "busy", false)),
		alice.sees("Bob busy among her colleagues", rosterPresence("bob", "busy")),
		maria.sees("the second call on the board, Bob busy", and(rowOf(second), boardPresence("bob", "busy"))),
	)
	u.after("Bob accepts the second call", bob.pressing("Accept", `[data-testid="offer-accept"]`),
		bob.sees("the second caller", and(onCallWith(second, "with_agent"), phoneIs("in-call"))),
		maria.sees("the second call with Bob", and(rowState(second, "with agent"), rowAgents(second, []string{"Bob"}, nil))),
	)
	shots.all("both agents busy", alice, bob, maria)

	var thirdSID string
	u.after("a third customer calls, nobody is free", now(func() { thirdSID = env.PlaceCall(third) }),
		maria.sees("the third call waiting", and(rowState(third, "waiting"), boardWaiting("1"))),
	)
	shots.all("third caller waiting", maria)
	u.after("the third customer gives up", now(func() { env.SimAction(thirdSID, "hangup") }),
		maria.sees("the third call ended by the caller", and(noRow(third), endedBy(third, "Caller"), boardWaiting("0"))),
	)

	// Hang up ends the call for everyone on it, the customer included.
	u.after("Bob hangs up the second call", func() time.Time {
		return bob.pressConfirmed("Hang up", `[data-testid="hangup-button"]`, "End the call for everyone, the caller included?")
	},
		bob.sees("no call any more, his phone free", and(noCall, phoneIs("ready"))),
		alice.sees("Bob pickable again", transferOption("bob", "available", true)),
		maria.sees("the second call ended by Bob", and(noRow(second), endedBy(second, "Bob Baker"))),
	)
	env.WaitSim("the second customer's call over", func(st twiliosim.State) bool {
		c, _ := st.Call(secondSID)
		return c.Status == twiliosim.StatusCompleted
	})
	shots.all("bob hung up", alice, bob, maria)

	alice.do("choose Bob", chromedp.SetValue(chromedp.CSS(`[data-testid="transfer-select"]`), "bob"))
	u.after("Alice transfers to Bob", alice.pressing("Transfer", `[data-testid="transfer-button"]`),
		alice.sees("the transfer ringing Bob", progressIs("Ringing Bob Baker…")),
		bob.sees("the transfer offered to him", and(offerFrom("Alice Archer"), offerFor(first))),
		bob.sees("his phone ringing", phoneIs("ringing")),
		maria.sees("the call transferring, Bob's phone ringing", and(rowState(first, "transferring"), rowAgents(first, []string{"Alice", "Bob Baker (ringing)"}, nil))),
	)
	shots.all("transfer ringing", alice, bob, maria)

	u.after("Bob accepts the transfer", bob.pressing("Accept", `[data-testid="offer-accept"]`),
		bob.sees("the call panel with the caller and Alice", and(
			progressIs("You joined Alice Archer's call — Alice Archer can leave now"),
			present("participant-customer"), participantIs("alice", "joined"), phoneIs("in-call"))),
		alice.sees("Bob joined, she may leave", and(
			progressIs("Bob Baker joined — you may leave now"), enabled("leave-button"), participantIs("bob", "joined"))),
		maria.sees("both agents on the call", rowAgents(first, []string{"Alice", "Bob"}, []string{"(ringing)"})),
	)
	shots.all("bob joined", alice, bob, maria)

	u.after("Alice leaves", alice.pressing("Leave call", `[data-testid="leave-button"]`),
		alice.sees("no call any more, her phone free", and(noCall, phoneIs("ready"))),
		bob.sees("himself alone with the caller", and(
			absent("participant-alice"), present("participant-customer"), progressIs("Transferred to you by Alice Archer"))),
		maria.sees("the call with Bob only", rowAgents(first, []string{"Bob"}, []string{"Alice"})),
		maria.sees("Alice available again", boardPresence("alice", "available")),
	)
	shots.all("alice left", alice, bob, maria)

	u.after("the customer hangs up", now(func() { env.SimAction(firstSID, "hangup") }),
		bob.sees("the call ended, his phone free", and(noCall, phoneIs("ready"))),
		alice.sees("Bob available again", rosterPresence("bob", "available")),
		maria.sees("the call ended by the caller", and(noRow(first), endedBy(first, "Caller"))),
	)
	alice.see("still no call", noCall)
	shots.all("customer hung up", alice, bob, maria)
}

// TestHangUpEndsTheCallForEveryone: Alice has transferred a caller to Bob
// and both are on the call when Bob presses Hang up and confirms: the
// caller's call and both agents' legs end, both consoles and the board
// show it, with Bob as the one who ended it.
func TestHangUpEndsTheCallForEveryone(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	ctx := browser(t)
	shots := newScreenshots(t)
	u := newUpdates(t)
	defer u.report(shots.dir, true)
	alice := newPerson(t, ctx, "alice", shots)
	bob := newPerson(t, ctx, "bob", shots)
	maria := newPerson(t, ctx, "maria", shots)
	const number = "+15551230999"

	alice.signInAgent(env, "alice")
	bob.signInAgent(env, "bob")
	maria.signInManager(env, "maria")
	// Bob steps away so the call goes to Alice.
	bob.click("Away", `[data-testid="presence-away"]`)
	alice.see("Bob away", rosterPresence("bob", "away"))
	customer := env.PlaceCall(number)
	alice.see("the incoming call", offerFor(number))
	alice.click("Accept", `[data-testid="offer-accept"]`)
	alice.see("the call with the caller", onCallWith(number, "with_agent"))
	bob.click("Available", `[data-testid="presence-available"]`)
	alice.see("Bob pickable", transferOption("bob", "available", true))
	alice.do("choose Bob", chromedp.SetValue(chromedp.CSS(`[data-testid="transfer-select"]`), "bob"))
	alice.click("Transfer", `[data-testid="transfer-button"]`)
	bob.see("the transfer offered", offerFrom("Alice Archer"))
	bob.click("Accept", `[data-testid="offer-accept"]`)
	alice.see("Bob joined", participantIs("bob", "joined"))
	bob.see("the call with the caller and Alice", and(participantIs("alice", "joined"), phoneIs("in-call")))
	maria.see("both agents on the call", rowAgents(number, []string{"Alice", "Bob"}, []string{"(ringing)"}))
	shots.all("both agents on the call", alice, bob, maria)

	u.after("Bob hangs up for everyone", func() time.Time {
		return bob.pressConfirmed("Hang up", `[data-testid="hangup-button"]`, "End the call for everyone, the caller included?")
	},
		bob.sees("no call any more, his phone free", and(noCall, phoneIs("ready"))),
		alice.sees("no call any more, her phone free", and(noCall, phoneIs("ready"))),
		maria.sees("the call ended by Bob", and(noRow(number), endedBy(number, "Bob Baker"))),
	)
	st := env.WaitSim("every leg of the call over", func(st twiliosim.State) bool {
		for _, c := range st.Calls {
			if c.From == number && c.Status != twiliosim.StatusCompleted && c.Status != twiliosim.StatusCanceled {
				return false
			}
		}
		c, _ := st.Call(customer)
		return c.Status == twiliosim.StatusCompleted
	})
	if c, _ := st.Call(customer); c.Conference != "" {
		if conf, _ := st.Conference(c.Conference); conf.Status != twiliosim.ConfCompleted {
			t.Errorf("the conference is %s after the hang-up", conf.Status)
		}
	}
	shots.all("bob hung up for everyone", alice, bob, maria)
}
