package browser_test

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// BenchmarkBrowserUpdates measures how long live updates take to show in
// real pages: each iteration is one warm transfer watched by two agents
// and a manager, every update timed from the action that caused it (see
// updates.after). It reports the median, the 99th percentile and the
// slowest of all the iterations' updates, in milliseconds; the target is
// every update within 2 s. Each update is also in latencies.txt beside
// the screenshots.
//
//	go test -run '^$' -bench BrowserUpdates -benchtime 5x ./internal/browser/
func BenchmarkBrowserUpdates(b *testing.B) {
	env := apptest.Start(b, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	ctx := browser(b)
	shots := newScreenshots(b)
	u := newUpdates(b)
	alice := newPerson(b, ctx, "alice", shots)
	bob := newPerson(b, ctx, "bob", shots)
	maria := newPerson(b, ctx, "maria", shots)
	alice.signInAgent(env, "alice")
	bob.signInAgent(env, "bob")
	maria.signInManager(env, "maria")
	maria.see("both agents available", and(boardPresence("alice", "available"), boardPresence("bob", "available")))

	for i := 0; b.Loop(); i++ {
		u.prefix = fmt.Sprintf("call %d: ", i+1)
		warmTransfer(u, env, alice, bob, maria, fmt.Sprintf("+1555200%04d", i))
	}
	b.StopTimer()

	ms := u.latencies()
	b.ReportMetric(percentile(ms, 50), "p50-ms")
	b.ReportMetric(percentile(ms, 99), "p99-ms")
	b.ReportMetric(ms[len(ms)-1], "max-ms")
	b.ReportMetric(float64(len(ms))/float64(b.N), "updates/op")
	u.report(shots.dir, false)
}

// warmTransfer is one call from number, both agents available at its
// start: Bob steps away so the call goes to Alice, who answers; Bob comes
// back, Alice transfers to him, he accepts, she leaves, and the customer
// hangs up. Both agents are available again at its end.
func warmTransfer(u *updates, env *apptest.Env, alice, bob, maria *person, number string) {
	u.after("Bob sets himself away", bob.pressing("Away", `[data-testid="presence-away"]`),
		bob.sees("himself away", myPresence("away")),
		alice.sees("Bob away among her colleagues", rosterPresence("bob", "away")),
		maria.sees("Bob away on the board", boardPresence("bob", "away")),
	)
	var sid string
	u.after("a customer calls", now(func() { sid = env.PlaceCall(number) }),
		alice.sees("the incoming call card", offerFor(number)),
		alice.sees("her phone ringing", phoneIs("ringing")),
		maria.sees("the call on the board", rowOf(number)),
	)
	u.after("Alice accepts", alice.pressing("Accept", `[data-testid="offer-accept"]`),
		alice.sees("the call panel with the caller", and(onCallWith(number, "with_agent"), phoneIs("in-call"))),
		maria.sees("the call with Alice", and(rowState(number, "with agent"), rowAgents(number, []string{"Alice"}, nil))),
	)
	u.after("Bob sets himself available", bob.pressing("Available", `[data-testid="presence-available"]`),
		alice.sees("Bob pickable for a transfer", transferOption("bob", "available", true)),
		maria.sees("Bob available on the board", boardPresence("bob", "available")),
	)
	alice.do("choose Bob", chromedp.SetValue(chromedp.CSS(`[data-testid="transfer-select"]`), "bob"))
	u.after("Alice transfers to Bob", alice.pressing("Transfer", `[data-testid="transfer-button"]`),
		alice.sees("the transfer ringing Bob", progressIs("Ringing Bob Baker…")),
		bob.sees("the transfer offered to him", and(offerFrom("Alice Archer"), offerFor(number))),
		maria.sees("the call transferring", rowState(number, "transferring")),
	)
	u.after("Bob accepts the transfer", bob.pressing("Accept", `[data-testid="offer-accept"]`),
		bob.sees("the call panel with the caller", and(present("participant-customer"), phoneIs("in-call"))),
		alice.sees("Bob joined, she may leave", and(progressIs("Bob Baker joined — you may leave now"), enabled("leave-button"))),
		maria.sees("both agents on the call", rowAgents(number, []string{"Alice", "Bob"}, []string{"(ringing)"})),
	)
	u.after("Alice leaves", alice.pressing("Leave call", `[data-testid="leave-button"]`),
		alice.sees("no call any more", and(noCall, phoneIs("ready"))),
		bob.sees("himself alone with the caller", and(absent("participant-alice"), present("participant-customer"))),
		maria.sees("the call with Bob only", rowAgents(number, []string{"Bob"}, []string{"Alice"})),
	)
	u.after("the customer hangs up", now(func() { env.SimAction(sid, "hangup") }),
		bob.sees("the call ended", and(noCall, phoneIs("ready"))),
		alice.sees("Bob available again", rosterPresence("bob", "available")),
		maria.sees("the call ended by the caller", and(noRow(number), endedBy(number, "Caller"))),
	)
}
