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

	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// chromiumPath finds Debian's chromium, or skips the test with how to get it;
// under CI a missing browser is a failure.
func chromiumPath(t *testing.T) string {
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
func browser(t *testing.T) context.Context {
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
	t    *testing.T
	name string
	ctx  context.Context
	shot *screenshots
}

func newPerson(t *testing.T, browserCtx context.Context, name string, shots *screenshots) *person {
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

// see waits, in the page, for a JavaScript condition to hold. Pages are
// never reloaded, so only a live update can make it hold. How long that
// took is logged, not asserted (these machines are shared, and a commit
// that waits on the disk delays every update behind it): the wait is
// bounded by apptest.WaitLimit, as every wait in the tests is.
func (p *person) see(what, js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	started := time.Now()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(apptest.WaitLimit))); err != nil {
		p.shot.take(p, "missing-"+what)
		p.t.Fatalf("%s did not see %s within %s: %v", p.name, what, apptest.WaitLimit, err)
	}
	p.t.Logf("%s saw %s after %s", p.name, what, time.Since(started).Round(time.Millisecond))
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
// The element is found and clicked in one step in the page: a live
// fragment swapped in between finding a node and clicking it would
// otherwise leave the click aimed at a node that is gone.
func (p *person) click(what, css string) {
	p.t.Helper()
	js := `(() => {
		const el = document.querySelector(` + strconv.Quote(css) + `);
		if (!el || el.disabled || el.offsetParent === null) return false;
		el.click();
		return true;
	})()`
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(apptest.WaitLimit))); err != nil {
		p.shot.take(p, "failed-click-"+what)
		p.t.Fatalf("%s: click %s: %v", p.name, what, err)
	}
}

// screenshots writes each step's pages to a folder named after the test.
type screenshots struct {
	t   *testing.T
	dir string
	n   int
}

func newScreenshots(t *testing.T) *screenshots {
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

// TestWarmTransferInTheBrowser: two agents and a manager in their own
// browser contexts. A customer calls; Alice sees the incoming call without
// reloading, accepts, transfers to Bob, Bob accepts, Alice leaves; the board
// shows each step; the customer hangs up and every page shows the call ended.
func TestWarmTransferInTheBrowser(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	ctx := browser(t)
	shots := newScreenshots(t)
	alice := newPerson(t, ctx, "alice", shots)
	bob := newPerson(t, ctx, "bob", shots)
	maria := newPerson(t, ctx, "maria", shots)

	alice.signIn(env, "alice")
	alice.see("her console with the phone ready", `document.querySelector('[data-testid="phone-state"]')?.dataset.state === "ready"`)
	bob.signIn(env, "bob")
	bob.see("his console with the phone ready", `document.querySelector('[data-testid="phone-state"]')?.dataset.state === "ready"`)
	maria.signIn(env, "maria")
	maria.see("the board, live", `document.querySelector('[data-testid="board"]') !== null && document.querySelector('[data-testid="live-status"]')?.textContent.includes("Live")`)
	shots.all("signed in", alice, bob, maria)

	customer := env.PlaceCall("+15551230001")
	alice.see("the incoming call card", `(() => { const o = document.querySelector('[data-testid="offer"]'); return !!o && !o.hidden && o.textContent.includes("+15551230001"); })()`)
	alice.see("her phone ringing", `document.querySelector('[data-testid="phone-state"]')?.dataset.state === "ringing"`)
	maria.see("the waiting call on the board", `(() => { const r = document.querySelector('[data-testid^="call-row-"]'); return !!r && r.textContent.includes("+15551230001"); })()`)
	shots.all("incoming call", alice, maria)

	alice.click("Accept", `[data-testid="offer-accept"]`)
	alice.see("the call panel with the caller", `document.querySelector('[data-testid="call"]')?.dataset.state === "with_agent"`)
	maria.see("the call with Alice", `(() => { const r = document.querySelector('[data-testid^="call-row-"] [data-testid="call-agents"]'); return !!r && r.textContent.includes("Alice"); })()`)
	shots.all("alice answered", alice, maria)

	alice.do("choose Bob", chromedp.SetValue(chromedp.CSS(`[data-testid="transfer-select"]`), "bob"))
	alice.click("Transfer", `[data-testid="transfer-button"]`)
	alice.see("the transfer ringing Bob", `document.querySelector('[data-testid="transfer-progress"]')?.textContent.includes("Bob")`)
	bob.see("the transfer offered to him", `(() => { const o = document.querySelector('[data-testid="offer"]'); return !!o && !o.hidden && !!o.querySelector('[data-testid="offer-transfer-from"]'); })()`)
	maria.see("the call transferring", `document.querySelector('[data-testid^="call-row-"] [data-testid="call-state"]')?.textContent.toLowerCase().includes("transferring")`)
	shots.all("transfer ringing", alice, bob, maria)

	bob.click("Accept", `[data-testid="offer-accept"]`)
	bob.see("the call panel", `document.querySelector('[data-testid="call"]')?.dataset.state !== undefined && !!document.querySelector('[data-testid="participant-customer"]')`)
	alice.see("Bob joined, leave enabled", `(() => { const b = document.querySelector('[data-testid="leave-button"]'); return !!b && !b.disabled && !!document.querySelector('[data-testid="participant-bob"]'); })()`)
	maria.see("both agents on the call", `(() => { const r = document.querySelector('[data-testid^="call-row-"] [data-testid="call-agents"]'); return !!r && r.textContent.includes("Alice") && r.textContent.includes("Bob"); })()`)
	// Presence changes arrive as single rows swapped out of band.
	maria.see("Bob busy on the board", `document.querySelector('[data-testid="agent-row-bob"]')?.dataset.presence === "busy"`)
	alice.see("Bob busy among her colleagues", `document.querySelector('[data-testid="roster-bob"]')?.dataset.presence === "busy"`)
	shots.all("bob joined", alice, bob, maria)

	// A second caller waits while both agents are busy, then gives up:
	// the board inserts the row beside the first call's, then removes it.
	second := env.PlaceCall("+15551230002")
	maria.see("a second caller waiting", `document.querySelectorAll('[data-testid^="call-row-"]').length === 2 && [...document.querySelectorAll('[data-testid^="call-row-"]')].some(r => r.textContent.includes("+15551230002"))`)
	env.SimAction(second, "hangup")
	maria.see("the second caller gone from the active calls", `(() => { const rows = document.querySelectorAll('[data-testid^="call-row-"]'); return rows.length === 1 && rows[0].textContent.includes("+15551230001"); })()`)

	alice.click("Leave call", `[data-testid="leave-button"]`)
	alice.see("no call any more", `!!document.querySelector('[data-testid="no-call"]')`)
	bob.see("himself alone with the caller", `!document.querySelector('[data-testid="participant-alice"]') && !!document.querySelector('[data-testid="participant-customer"]')`)
	maria.see("the call with Bob only", `(() => { const r = document.querySelector('[data-testid^="call-row-"] [data-testid="call-agents"]'); return !!r && r.textContent.includes("Bob") && !r.textContent.includes("Alice"); })()`)
	shots.all("alice left", alice, bob, maria)

	env.SimAction(customer, "hangup")
	bob.see("the call ended", `!!document.querySelector('[data-testid="no-call"]')`)
	alice.see("no call", `!!document.querySelector('[data-testid="no-call"]')`)
	maria.see("the call among the ended calls", `!document.querySelector('[data-testid^="call-row-"]') && !!document.querySelector('[data-testid^="ended-row-"]')`)
	shots.all("customer hung up", alice, bob, maria)
}
