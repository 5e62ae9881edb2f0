package browser_test

import (
	"context"
	"slices"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// twilioStub stands in for the Twilio Voice SDK's Device and Call, which
// would talk to Twilio's servers. It is put in the page before any of the
// page's scripts: the vendored SDK still loads, and keeps a Twilio.Device
// it finds (root.Twilio.Device || Voice.Device), so phone.js drives the
// stub. The stub records what phone.js asks of it, and of fetch, in
// window.__twilio.log; the test plays Twilio's part, raising the events
// the SDK would (incoming, accept, registered, tokenWillExpire, error).
// Like the SDK, reject() and disconnect() end the call at once.
const twilioStub = `(() => {
	"use strict";
	const log = [];
	const realFetch = window.fetch.bind(window);
	window.fetch = (input, init) => {
		log.push({ what: "fetch", url: String(input && input.url ? input.url : input), method: (init && init.method) || "GET" });
		return realFetch(input, init);
	};
	class Emitter {
		constructor() { this.handlers = {}; }
		on(name, fn) { (this.handlers[name] = this.handlers[name] || []).push(fn); return this; }
		emit(name, ...args) { (this.handlers[name] || []).forEach((fn) => fn(...args)); }
	}
	class Call extends Emitter {
		constructor(parameters) { super(); this.parameters = parameters; this.state = "pending"; }
		status() { return this.state; }
		accept() { log.push({ what: "accept", sid: this.parameters.CallSid }); this.state = "connecting"; }
		reject() { log.push({ what: "reject", sid: this.parameters.CallSid }); this.state = "closed"; this.emit("reject"); }
		disconnect() { log.push({ what: "disconnect", sid: this.parameters.CallSid }); this.state = "closed"; this.emit("disconnect", this); }
	}
	class Device extends Emitter {
		constructor(token, options) { super(); log.push({ what: "new Device", token: token, options: options }); stub.device = this; }
		register() { log.push({ what: "register" }); return Promise.resolve(); }
		updateToken(token) { log.push({ what: "updateToken", token: token }); }
	}
	const stub = {
		log: log, Device: Device, device: null, calls: {},
		ring(parameters) { const c = new Call(parameters); stub.calls[parameters.CallSid] = c; stub.device.emit("incoming", c); },
		connected(sid) { const c = stub.calls[sid]; c.state = "open"; c.emit("accept", c); },
	};
	window.__twilio = stub;
	window.Twilio = { Device: Device };
})();`

// stubEntry is one thing phone.js asked of the stub.
type stubEntry struct {
	What    string         `json:"what"`
	SID     string         `json:"sid"`
	Token   string         `json:"token"`
	URL     string         `json:"url"`
	Method  string         `json:"method"`
	Options map[string]any `json:"options"`
}

func (p *person) stubLog() []stubEntry {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, apptest.WaitLimit)
	defer cancel()
	log, err := chromedp.Run(ctx, chromedp.Evaluate[[]stubEntry](`window.__twilio.log`))
	if err != nil {
		p.t.Fatalf("%s: reading the Twilio stub's log: %v", p.name, err)
	}
	return log
}

// twilio runs JavaScript against the stub: Twilio raising an event.
func (p *person) twilio(what, js string) {
	p.t.Helper()
	p.do(what, chromedp.Evaluate[chromedp.Void](`(() => { const tw = window.__twilio; `+js+`; })()`))
}

// logged is the stub's log holding an entry of that kind (for that call).
func logged(what, sid string) string {
	return `window.__twilio.log.some((e) => e.what === ` + jsString(what) + ` && (` + jsString(sid) + ` === "" || e.sid === ` + jsString(sid) + `))`
}

// wantToken checks an Access Token the phone was given: signed with the
// account's API key for the agent, able to receive calls.
func wantToken(t testing.TB, what, token, identity string) {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(twAPISecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(twAPIKey), jwt.WithSubject(twAccountSID), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("%s: %q is not a valid Access Token: %v", what, token, err)
	}
	grants, _ := claims["grants"].(map[string]any)
	voice, _ := grants["voice"].(map[string]any)
	incoming, _ := voice["incoming"].(map[string]any)
	if grants["identity"] != identity || incoming["allow"] != true {
		t.Errorf("%s: grants %v, want identity %q allowed incoming calls", what, grants, identity)
	}
}

// ringingOtherThan waits for a call ringing identity's phone other than
// those in seen, and returns it.
func ringingOtherThan(env *apptest.Env, identity string, seen ...string) twiliosim.CallState {
	env.T.Helper()
	var ringing twiliosim.CallState
	env.WaitSim("a new call ringing "+identity, func(st twiliosim.State) bool {
		for _, c := range st.Calls {
			if c.To == "client:"+identity && c.Status == twiliosim.StatusRinging && !slices.Contains(seen, c.SID) {
				ringing = c
				return true
			}
		}
		return false
	})
	return ringing
}

// TestTwilioPhoneInTheBrowser: the console with the app in Twilio mode
// (TWILIO_* set, the REST API a standalone simulator) and the Voice SDK's
// Device stubbed in the page. The phone fetches a token and registers a
// Device with it; it is ready when the Device is registered. An incoming
// call rings it; Decline rejects the call, Accept accepts the next; a
// token about to expire is renewed through /token; a call's error and the
// Device's error show as the phone's state, with the reason; the phone's
// hang-up disconnects the call.
func TestTwilioPhoneInTheBrowser(t *testing.T) {
	srv, tw := startTwilioApp(t)
	env := srv.Env
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	ctx := browser(t)
	shots := newScreenshots(t)
	u := newUpdates(t)
	defer u.report(shots.dir, true)
	alice := newPerson(t, ctx, "alice", shots)
	const number = "+15551230777"

	if _, err := chromedp.Call(alice.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: twilioStub}); err != nil {
		t.Fatal(err)
	}
	alice.signIn(env, "alice")
	alice.see("the vendored SDK loaded, keeping the stub's Device", and(
		`!!document.querySelector('script[src$="/vendor/twilio-voice-2.18.5.min.js"]')`,
		`window.Twilio.Device === window.__twilio.Device`, `typeof window.Twilio.Call === "function"`,
	))
	alice.see("the phone connecting while the Device registers", and(phoneIs("connecting"), logged("register", "")))

	log := alice.stubLog()
	var device *stubEntry
	for i, e := range log {
		if e.What == "new Device" {
			device = &log[i]
			if i == 0 || log[i-1].What != "fetch" || log[i-1].Method != "POST" || log[i-1].URL != "/token" {
				t.Errorf("the Device was made without a token fetched first: %+v", log[:i+1])
			}
		}
	}
	if device == nil {
		t.Fatalf("no Device made: %+v", log)
	}
	wantToken(t, "the Device's token", device.Token, "alice")
	if device.Options["closeProtection"] != true {
		t.Errorf("Device options %v, want closeProtection", device.Options)
	}

	alice.twilio("the Device registered", `tw.device.emit("registered")`)
	alice.see("the phone ready", phoneIs("ready"))
	shots.all("twilio phone ready", alice)

	var customer string
	u.after("a customer calls", now(func() { customer = tw.PlaceCall(number) }),
		alice.sees("the incoming call card", offerFor(number)),
	)
	first := tw.Ringing("alice")
	alice.twilio("the call rings the Device", `tw.ring({ CallSid: `+jsString(first)+`, From: `+jsString(number)+`, To: "client:alice" })`)
	alice.see("her phone ringing, in the title too", and(phoneIs("ringing"), `document.title.startsWith("Ringing · ")`))
	shots.all("twilio phone ringing", alice)

	// Decline rejects the call in the SDK; Twilio then ends the leg. With
	// no one else to take it, the call rings Alice again, on a new leg.
	alice.click("Decline", `[data-testid="offer-decline"]`)
	alice.see("the call rejected, her phone free", and(logged("reject", first), phoneIs("ready")))
	tw.SimAction(first, "reject")
	again := ringingOtherThan(tw, "alice", first)
	alice.twilio("the call rings the Device again", `tw.ring({ CallSid: `+jsString(again.SID)+`, From: `+jsString(number)+`, To: "client:alice" })`)
	alice.see("her phone ringing again", phoneIs("ringing"))

	alice.click("Accept", `[data-testid="offer-accept"]`)
	alice.see("the call accepted in the SDK", logged("accept", again.SID))
	u.after("Twilio connects the call", now(func() {
		tw.SimAction(again.SID, "accept")
		alice.twilio("the call connected", `tw.connected(`+jsString(again.SID)+`)`)
	}),
		alice.sees("the call panel, her phone in call", and(onCallWith(number, "with_agent"), phoneIs("in-call"))),
	)
	shots.all("twilio call answered", alice)

	before := len(alice.stubLog())
	alice.twilio("the token about to expire", `tw.device.emit("tokenWillExpire")`)
	alice.see("the Device given a new token", logged("updateToken", ""))
	renewal := alice.stubLog()[before:]
	if len(renewal) != 2 || renewal[0].What != "fetch" || renewal[0].Method != "POST" || renewal[0].URL != "/token" || renewal[1].What != "updateToken" {
		t.Fatalf("renewing the token did %+v, want a POST to /token then updateToken", renewal)
	}
	wantToken(t, "the renewed token", renewal[1].Token, "alice")

	alice.twilio("the call failing", `tw.calls[`+jsString(again.SID)+`].emit("error", { code: 31003, message: "ICE connection failed" })`)
	alice.see("the phone in error, saying why", and(phoneIs("error"), byTestID("phone-state")+`.textContent === "error: ICE connection failed"`))
	shots.all("twilio call error", alice)

	// The phone's own hang-up (a headset's button would call it; the
	// console's Hang up ends the call on the server) disconnects the call
	// in the SDK, and Twilio ends the leg, which ends the call.
	alice.do("hang up her phone", chromedp.Evaluate[chromedp.Void](`window.WarmTransfer.phone.hangup()`, chromedp.EvalAwaitPromise))
	alice.see("the call disconnected, her phone free", and(logged("disconnect", again.SID), phoneIs("ready")))
	// Her leg ending leaves the caller on hold, offered to her again.
	u.after("Twilio ends her leg", now(func() { tw.SimAction(again.SID, "hangup") }),
		alice.sees("no call, the caller offered to her again", and(noCall, offerFor(number))),
	)
	last := ringingOtherThan(tw, "alice", first, again.SID)
	alice.twilio("the call rings the Device once more", `tw.ring({ CallSid: `+jsString(last.SID)+`, From: `+jsString(number)+`, To: "client:alice" })`)
	alice.see("her phone ringing once more", phoneIs("ringing"))
	u.after("the customer hangs up", now(func() { tw.SimAction(customer, "hangup") }),
		alice.sees("the offer gone", noOffer),
	)
	tw.WaitSim("the ringing leg canceled", func(st twiliosim.State) bool {
		c, _ := st.Call(last.SID)
		return c.Status == twiliosim.StatusCanceled || c.Status == twiliosim.StatusCompleted
	})
	alice.twilio("Twilio cancels the ringing call", `tw.calls[`+jsString(last.SID)+`].emit("cancel")`)
	alice.see("her phone free", phoneIs("ready"))

	alice.twilio("the Device failing", `tw.device.emit("error", { code: 53000, message: "Signaling connection error" })`)
	alice.see("the phone in error, saying why", and(phoneIs("error"), byTestID("phone-state")+`.textContent === "error: Signaling connection error"`))
	shots.all("twilio device error", alice)
	alice.twilio("the Device registered again", `tw.device.emit("registered")`)
	alice.see("the phone ready again", phoneIs("ready"))
}
