package browser_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// hostileName is a Twilio CallerName made of markup (the simulator takes
// at most 64 characters): a script, and an image whose error handler runs.
const hostileName = `<script>window.__xss=1</script><img src=x onerror=__xss=2>`

// placeNamedCall is a customer with a caller name dialling in, through the
// simulator's control API. It returns the customer's CallSid.
func placeNamedCall(t testing.TB, env *apptest.Env, from, name string) string {
	t.Helper()
	resp, err := http.PostForm(env.URL+"/sim/calls", url.Values{"From": {from}, "CallerName": {name}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ SID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.SID == "" {
		t.Fatalf("placing a call from %q: %d %v", name, resp.StatusCode, err)
	}
	return out.SID
}

// watchViolations records, from now on, every script or image the page's
// Content-Security-Policy refused. The policy would stop an injected
// inline script from running, so window.__xss alone proves little; a
// refused one shows that markup became elements.
func (p *person) watchViolations() {
	p.t.Helper()
	p.do("watch for refused scripts", chromedp.Evaluate[chromedp.Void](`(() => {
		window.__violations = [];
		document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
	})()`))
}

// markupCheck is what wantText finds in a page.
type markupCheck struct {
	Texts      []string `json:"texts"`      // the textContent of each element found
	Elements   int      `json:"elements"`   // script or img elements in them or in the live parts
	Stray      int      `json:"stray"`      // inline scripts or src=x images anywhere in the page
	XSS        string   `json:"xss"`        // typeof window.__xss
	Violations []string `json:"violations"` // what the policy refused
}

// liveParts are the parts of the pages that show callers: none of them
// has a script or an image of its own.
const liveParts = `#offer, #call, #activity, #board-calls, #board-ended, #board-agents`

// wantText checks that the elements css selects (at least one) all show
// hostileName as text, that no element was made from it, in them, in the
// live parts or anywhere in the page, and that nothing of it ran or was
// refused. With css empty it checks the page only.
func (p *person) wantText(where, css string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[markupCheck](`(() => {
		const css = `+jsString(css)+`;
		const found = css ? [...document.querySelectorAll(css)] : [];
		return {
			texts: found.map((el) => el.textContent.trim()),
			elements: [...found, ...document.querySelectorAll(`+jsString(liveParts)+`)].reduce((n, el) => n + el.querySelectorAll("script, img").length, 0),
			stray: document.querySelectorAll('script:not([src]), img[src="x"], img[onerror]').length,
			xss: typeof window.__xss,
			violations: window.__violations || ["(not watching)"],
		};
	})()`))
	if err != nil {
		p.t.Fatalf("%s: checking %s: %v", p.name, where, err)
	}
	if css != "" && len(got.Texts) == 0 {
		p.t.Errorf("%s: no %s (%s) in the page", p.name, where, css)
	}
	for _, text := range got.Texts {
		if text != hostileName {
			p.t.Errorf("%s: %s shows %q, want the caller name as text %q", p.name, where, text, hostileName)
		}
	}
	if got.Elements != 0 || got.Stray != 0 {
		p.t.Errorf("%s: the caller name became elements: %d in %s or the live parts, %d inline scripts or images in the page", p.name, got.Elements, where, got.Stray)
	}
	if got.XSS != "undefined" {
		p.t.Errorf("%s: window.__xss is %s: the caller name's script ran", p.name, got.XSS)
	}
	if len(got.Violations) != 0 {
		p.t.Errorf("%s: the page's policy refused %q: markup from the caller name reached the DOM", p.name, got.Violations)
	}
}

// TestHostileCallerNameShowsAsText: a caller whose Twilio CallerName is a
// script and an image with an error handler. Every place the name shows,
// on the agent's console and the manager's board, live and after each
// swap, shows it as text: no element is made from it and nothing runs.
func TestHostileCallerNameShowsAsText(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	ctx := browser(t)
	shots := newScreenshots(t)
	u := newUpdates(t)
	defer u.report(shots.dir, true)
	alice := newPerson(t, ctx, "alice", shots)
	maria := newPerson(t, ctx, "maria", shots)
	const number = "+15551230666"

	alice.signInAgent(env, "alice")
	maria.signInManager(env, "maria")
	alice.watchViolations()
	maria.watchViolations()

	var sid string
	u.after("a caller with markup for a name calls", now(func() { sid = placeNamedCall(t, env, number, hostileName) }),
		alice.sees("the offer card", offerFor(number)),
		maria.sees("the call on the board", rowOf(number)),
	)
	shots.all("hostile caller offered", alice, maria)
	alice.wantText("the offer card's caller", `[data-testid="offer"] [data-testid="offer-caller"]`)
	maria.wantText("the board row's caller", `[data-testid^="call-row-"] [data-testid="caller-name"]`)
	maria.see("the caller in the activity, as text", activityLine(hostileName+" ("+number+") called and is waiting"))

	u.after("Alice accepts", alice.pressing("Accept", `[data-testid="offer-accept"]`),
		alice.sees("the call panel", onCallWith(number, "with_agent")),
		maria.sees("the call with Alice", rowState(number, "with agent")),
	)
	alice.wantText("the call panel's caller", `[data-testid="call-caller"], [data-testid="participant-customer"] .participant-name`)
	maria.wantText("the board row's caller", `[data-testid^="call-row-"] [data-testid="caller-name"]`)
	maria.see("Alice answering in the activity, as text", activityLine("Alice Archer answered "+hostileName+" ("+number+")"))
	shots.all("hostile caller answered", alice, maria)

	u.after("the caller hangs up", now(func() { env.SimAction(sid, "hangup") }),
		alice.sees("no call any more", noCall),
		maria.sees("the call among the ended", endedBy(number, "Caller")),
	)
	alice.wantText("the console", "")
	maria.wantText("the ended row's caller", `[data-testid^="ended-row-"] [data-testid="caller-name"]`)
	shots.all("hostile caller hung up", alice, maria)
}
