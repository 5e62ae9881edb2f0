package browser_test

import (
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// aheadTenMinutes sets the page's clock ten minutes ahead of the real one,
// as on a PC whose clock is off.
const aheadTenMinutes = `(() => {
	const realNow = Date.now.bind(Date);
	Date.now = () => realNow() + 10 * 60 * 1000;
})()`

// TestClocksRunOnTheServersTime: an agent whose PC clock is ten minutes
// fast still sees a caller who has just called as waiting for seconds,
// not ten minutes: the page's clocks are corrected by the server's time.
func TestClocksRunOnTheServersTime(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	ctx := browser(t)
	shots := newScreenshots(t)
	alice := newPerson(t, ctx, "alice", shots)
	if _, err := chromedp.Call(alice.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: aheadTenMinutes}); err != nil {
		t.Fatal(err)
	}
	alice.signIn(env, "alice")
	alice.see("her clock ten minutes fast", `Date.now() - new Date().getTime() > 9 * 60 * 1000`)
	env.PlaceCall("+15551238888")
	alice.see("the caller waiting for seconds, not minutes", `(() => {
		const w = document.querySelector('[data-testid="offer"]:not([hidden]) [data-testid="offer-wait"]');
		return !!w && /^0:[0-5][0-9]$/.test(w.textContent) && w.textContent !== "";
	})()`)
	// And it ticks: a second later it reads more, still on the server's
	// time.
	alice.see("the clock ticking", `(() => {
		const w = document.querySelector('[data-testid="offer-wait"]');
		return !!w && /^0:(0[1-9]|[1-5][0-9])$/.test(w.textContent);
	})()`)
	shots.all("offer with a corrected clock", alice)
}
