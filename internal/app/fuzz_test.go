package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/internal/twiml"
	"github.com/warmtransfer/warmtransfer/models"
)

// The fuzz targets below send the Twilio-facing routes what a caller could
// send, through the app's real handler stack, and hold it to one rule: no
// answer is a 5xx (and nothing panics). The signed targets sign every
// request with the app's auth token, so the fuzzer gets past the signature
// check into the handlers and the call flow; FuzzUnsigned checks that
// everything else is refused and changes nothing.
//
// Each fuzz process runs one app (simulator mode) with one real call in it,
// played by the simulator: a customer in their conference with alice. Fuzz
// inputs name that call with placeholders, replaced before sending, so
// mutations reach past "no such call" into the flow:
//
//	{{call}}       the customer's CallSid
//	{{conf}}       the conference's FriendlyName
//	{{confsid}}    its ConferenceSid
//	{{agentcall}}  alice's CallSid
//	{{leg}}        alice's leg id (the leg query parameter)
//
// The seed corpora in testdata/fuzz are the webhooks the simulator sent
// during a real warm transfer (files named recorded-*), with these
// placeholders put back in, and edge cases written by hand: bodies that are
// not form-encoded, JSON and multipart bodies, fields at and over the size
// limit, NUL bytes and invalid UTF-8, malformed legs and sequence numbers.

// maxWebhookBody is the body size the Twilio routes accept (64 KiB); larger
// bodies are refused with 413.
const maxWebhookBody = 64 << 10

// fuzzApp is the running app a fuzz process sends its inputs to.
type fuzzApp struct {
	env  *apptest.Env
	refs *strings.Replacer
}

// startFuzzApp starts the app and plays a call until the customer is
// talking to alice and every callback the simulator sends for that has been
// applied, so the database only changes when a fuzz input changes it.
func startFuzzApp(f *testing.F) *fuzzApp {
	f.Helper()
	env := apptest.Start(f, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.SignIn("alice")
	customer := env.PlaceCall("+15551230001")
	aliceSID := env.Ringing("alice")
	env.SimAction(aliceSID, "accept")
	env.WaitSim("alice and the customer in conference", func(st twiliosim.State) bool {
		c, _ := st.Call(customer)
		conf, ok := st.Conference(c.Conference)
		p, in := conf.Participant(aliceSID)
		return ok && conf.Status == twiliosim.ConfInProgress && in && p.Status == "connected"
	})
	// Every callback of the call applied, and recorded by the simulator,
	// so the state only changes when a fuzz input changes it.
	env.WaitSettled(1)
	ctx := context.Background()
	call, err := models.CallBySID(ctx, env.App.DB, customer)
	if err != nil {
		f.Fatal(err)
	}
	leg, err := models.LegByCallSID(ctx, env.App.DB, aliceSID)
	if err != nil {
		f.Fatal(err)
	}
	if call.State != models.CallWithAgent || leg.State != models.LegJoined || call.ConferenceSID == "" {
		f.Fatalf("the fuzz call did not settle with alice: call %+v, leg %+v", call, leg)
	}
	return &fuzzApp{env: env, refs: strings.NewReplacer(
		"{{call}}", call.CallSID,
		"{{conf}}", call.ConferenceName,
		"{{confsid}}", call.ConferenceSID,
		"{{agentcall}}", leg.CallSID,
		"{{leg}}", strconv.FormatInt(leg.ID, 10),
	)}
}

// webhook is one fuzzed request to a Twilio route.
type webhook struct {
	path string
	// leg is the leg query parameter; omitted when empty.
	leg string
	// fields are the structured parameters, in order; empty ones are left
	// out.
	fields [][2]string
	raw    []byte
	// shape says how the body is made: shape%5 is its kind (see bodyKind),
	// and odd shape/5 pads one field to (shape/10)*2700 bytes, up to past
	// the 64 KiB limit.
	shape uint8
}

// Body kinds.
const (
	bodyForm      = iota // the fields, form-encoded
	bodyRaw              // the raw bytes as a form body
	bodyFormRaw          // the fields, then the raw bytes
	bodyJSON             // the raw bytes as JSON; the fields in the URL
	bodyMultipart        // the raw bytes as multipart; the fields in the URL
)

// request is a webhook, ready to sign.
type request struct {
	target      string // path and query
	contentType string
	body        []byte
	// params are the form parameters the signature covers (nil for
	// non-form bodies, where the URL carries bodySHA256).
	params url.Values
	// parsed reports whether a form body parses; one that does not cannot
	// be checked and is refused.
	parsed bool
}

// build makes the request, placeholders replaced.
func (w webhook) build(refs *strings.Replacer) request {
	fields := url.Values{}
	var keys []string
	for _, kv := range w.fields {
		if kv[1] != "" {
			fields.Add(kv[0], refs.Replace(kv[1]))
			keys = append(keys, kv[0])
		}
	}
	if pad := int(w.shape / 5); pad%2 == 1 && len(keys) > 0 {
		k := keys[(pad/2)%len(keys)]
		v := fields.Get(k)
		fields.Set(k, strings.Repeat(v, (pad/2)*2700/len(v)+1))
	}
	raw := []byte(refs.Replace(string(w.raw)))
	query := url.Values{}
	if w.leg != "" {
		query.Set("leg", refs.Replace(w.leg))
	}
	r := request{contentType: "application/x-www-form-urlencoded", parsed: true}
	switch w.shape % 5 {
	case bodyForm:
		r.body = []byte(fields.Encode())
	case bodyRaw:
		r.body = raw
	case bodyFormRaw:
		r.body = []byte(fields.Encode() + "&" + string(raw))
	default:
		r.contentType = "application/json"
		if w.shape%5 == bodyMultipart {
			r.contentType = "multipart/form-data; boundary=fuzz"
		}
		r.body = raw
		for k, vs := range fields {
			query[k] = vs
		}
		sum := sha256.Sum256(raw)
		query.Set("bodySHA256", hex.EncodeToString(sum[:]))
	}
	if r.contentType == "application/x-www-form-urlencoded" {
		var err error
		r.params, err = url.ParseQuery(string(r.body))
		r.parsed = err == nil
	}
	r.target = w.path
	if len(query) > 0 {
		r.target += "?" + query.Encode()
	}
	return r
}

// serve sends r to the app's handler stack with the given signature (none
// when empty) and returns the recorded answer. A panic in a handler fails
// the fuzz input with its stack.
func (a *fuzzApp) serve(r request, signature string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, r.target, strings.NewReader(string(r.body)))
	req.Header.Set("Content-Type", r.contentType)
	if signature != "" {
		req.Header.Set(twiliosig.Header, signature)
	}
	rec := httptest.NewRecorder()
	a.env.App.Echo.ServeHTTP(rec, req)
	return rec
}

// sign signs r for the app's public URL, as Twilio would.
func (a *fuzzApp) sign(r request) string {
	return twiliosig.Sign(a.env.App.AuthToken, a.env.URL+r.target, r.params)
}

// checkSigned sends w correctly signed and checks the answer: never 5xx;
// for a TwiML route a 200 with a TwiML document Twilio accepts, for a
// callback a 2xx, or else a 4xx that is not the signature check's.
func (a *fuzzApp) checkSigned(t *testing.T, w webhook, answersTwiML bool) {
	r := w.build(a.refs)
	rec := a.serve(r, a.sign(r))
	status, body := rec.Code, rec.Body.String()
	switch {
	case status >= 500:
		t.Fatalf("POST %s answered %d %q to\n%s", r.target, status, body, r.body)
	case len(r.body) > maxWebhookBody:
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST %s with a %d-byte body: %d %q, want 413", r.target, len(r.body), status, body)
		}
	case !r.parsed:
		if status != http.StatusForbidden {
			t.Fatalf("POST %s with a body that is not form-encoded: %d %q, want 403", r.target, status, body)
		}
	case status == http.StatusForbidden:
		t.Fatalf("POST %s: a correctly signed request was refused: %q\n%s", r.target, body, r.body)
	case status >= 400:
	case answersTwiML:
		if status != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/xml") {
			t.Fatalf("POST %s: %d %s, want 200 text/xml", r.target, status, rec.Header().Get("Content-Type"))
		}
		if _, err := twiml.Parse(rec.Body.Bytes()); err != nil {
			t.Fatalf("POST %s answered TwiML that Twilio would refuse: %v\n%s", r.target, err, body)
		}
	case status < 200 || status >= 300:
		t.Fatalf("POST %s: %d %q, want 2xx or 4xx", r.target, status, body)
	}
}

// FuzzVoiceIncoming is the number's voice URL: a customer calling.
func FuzzVoiceIncoming(f *testing.F) {
	a := startFuzzApp(f)
	f.Fuzz(func(t *testing.T, shape uint8, raw []byte, callSID, from, to, callerName string) {
		a.checkSigned(t, webhook{path: handlers.PathVoiceIncoming, shape: shape, raw: raw, fields: [][2]string{
			{"CallSid", callSID}, {"From", from}, {"To", to}, {"CallerName", callerName},
			{"AccountSid", "AC00000000000000000000000000000000"}, {"CallStatus", "ringing"}, {"Direction", "inbound"},
		}}, true)
	})
}

// FuzzVoiceWait is the wait URL a queued caller's conference fetches.
func FuzzVoiceWait(f *testing.F) {
	a := startFuzzApp(f)
	f.Fuzz(func(t *testing.T, shape uint8, raw []byte, callSID, conferenceSID, queueTime string) {
		a.checkSigned(t, webhook{path: handlers.PathVoiceWait, shape: shape, raw: raw, fields: [][2]string{
			{"CallSid", callSID}, {"ConferenceSid", conferenceSID}, {"QueueTime", queueTime},
			{"AccountSid", "AC00000000000000000000000000000000"},
		}}, true)
	})
}

// FuzzVoiceAgent is what an agent's phone fetches when they accept.
func FuzzVoiceAgent(f *testing.F) {
	a := startFuzzApp(f)
	f.Fuzz(func(t *testing.T, shape uint8, raw []byte, leg, callSID, callStatus, to string) {
		a.checkSigned(t, webhook{path: handlers.PathVoiceAgent, leg: leg, shape: shape, raw: raw, fields: [][2]string{
			{"CallSid", callSID}, {"CallStatus", callStatus}, {"To", to},
			{"AccountSid", "AC00000000000000000000000000000000"}, {"Direction", "outbound-api"},
		}}, true)
	})
}

// FuzzVoiceStatus is the call progress callback of every call the app
// places.
func FuzzVoiceStatus(f *testing.F) {
	a := startFuzzApp(f)
	f.Fuzz(func(t *testing.T, shape uint8, raw []byte, leg, callSID, callStatus, sequenceNumber, callDuration string) {
		a.checkSigned(t, webhook{path: handlers.PathVoiceStatus, leg: leg, shape: shape, raw: raw, fields: [][2]string{
			{"CallSid", callSID}, {"CallStatus", callStatus}, {"SequenceNumber", sequenceNumber}, {"CallDuration", callDuration},
			{"AccountSid", "AC00000000000000000000000000000000"},
		}}, false)
	})
}

// FuzzVoiceConference is the conference status callback.
func FuzzVoiceConference(f *testing.F) {
	a := startFuzzApp(f)
	f.Fuzz(func(t *testing.T, shape uint8, raw []byte, conferenceSID, friendlyName, event, sequenceNumber, callSID, hold, endOnExit, reasonEnded, callSIDEnding string) {
		a.checkSigned(t, webhook{path: handlers.PathVoiceConf, shape: shape, raw: raw, fields: [][2]string{
			{"ConferenceSid", conferenceSID}, {"FriendlyName", friendlyName}, {"StatusCallbackEvent", event},
			{"SequenceNumber", sequenceNumber}, {"CallSid", callSID}, {"Hold", hold}, {"EndConferenceOnExit", endOnExit},
			{"ReasonConferenceEnded", reasonEnded}, {"CallSidEndingConference", callSIDEnding},
			{"AccountSid", "AC00000000000000000000000000000000"},
		}}, false)
	})
}

// twilioRoutes are the Twilio-facing routes; agent and status carry the
// leg they are about.
var twilioRoutes = []struct {
	path    string
	withLeg bool
}{
	{handlers.PathVoiceIncoming, false},
	{handlers.PathVoiceWait, false},
	{handlers.PathVoiceAgent, true},
	{handlers.PathVoiceStatus, true},
	{handlers.PathVoiceConf, false},
}

// Forgeries FuzzUnsigned tries.
const (
	forgeNoSignature  = iota
	forgeFuzzed       // the fuzzer's own header value
	forgeWrongToken   // signed with another auth token
	forgeOtherRoute   // a genuine signature for another route
	forgeOtherHost    // signed for the path on another host
	forgeTampered     // signed, then a parameter or the body changed
	forgeNoBodySHA256 // a non-form body with the URL signed but no bodySHA256
	forgeKinds
)

// FuzzUnsigned sends every Twilio route requests that are unsigned or
// wrongly signed: each is refused with 403 (413 when too large to check)
// and the state does not change: neither the rows' state columns nor the
// simulator's calls and conferences (apptest.Snapshot).
func FuzzUnsigned(f *testing.F) {
	a := startFuzzApp(f)
	f.Fuzz(func(t *testing.T, route, shape, forgery uint8, raw []byte, signature, callSID, callStatus, event, sequenceNumber string) {
		rt := twilioRoutes[int(route)%len(twilioRoutes)]
		w := webhook{path: rt.path, shape: shape, raw: raw, fields: [][2]string{
			{"CallSid", callSID}, {"CallStatus", callStatus}, {"StatusCallbackEvent", event}, {"SequenceNumber", sequenceNumber},
			{"FriendlyName", "{{conf}}"}, {"ConferenceSid", "{{confsid}}"}, {"From", "+15551230002"},
		}}
		if rt.withLeg {
			w.leg = "{{leg}}"
		}
		r := w.build(a.refs)
		genuine := a.sign(r)
		token := a.env.App.AuthToken
		var sig string
		switch forgery % forgeKinds {
		case forgeNoSignature:
		case forgeFuzzed:
			sig = signature
		case forgeWrongToken:
			sig = twiliosig.Sign("0123456789abcdef0123456789abcdef", a.env.URL+r.target, r.params)
		case forgeOtherRoute:
			other := twilioRoutes[(int(route)+1)%len(twilioRoutes)].path
			sig = twiliosig.Sign(token, a.env.URL+other+strings.TrimPrefix(r.target, rt.path), r.params)
		case forgeOtherHost:
			sig = twiliosig.Sign(token, "https://attacker.example"+r.target, r.params)
		case forgeTampered:
			sig = genuine
			if r.contentType == "application/x-www-form-urlencoded" {
				r.body = append(r.body, "&Tampered=1"...)
			} else {
				r.body = append(r.body, ' ')
			}
		case forgeNoBodySHA256:
			if r.contentType == "application/x-www-form-urlencoded" {
				r.contentType = "application/json"
			}
			r.target = strings.Split(r.target, "?")[0]
			sig = twiliosig.Sign(token, a.env.URL+r.target, nil)
		}
		if sig == genuine && forgery%forgeKinds != forgeTampered {
			t.Skip("the fuzzer found the genuine signature")
		}
		before := a.env.Snapshot(t)
		rec := a.serve(r, sig)
		want := http.StatusForbidden
		if len(r.body) > maxWebhookBody {
			want = http.StatusRequestEntityTooLarge
		}
		if rec.Code != want {
			t.Fatalf("POST %s signed %q (forgery %d): %d %q, want %d\n%s", r.target, sig, forgery%forgeKinds, rec.Code, rec.Body, want, r.body)
		}
		if diff := before.Diff(a.env.Snapshot(t)); diff != "" {
			t.Fatalf("POST %s signed %q changed the state:\n%s", r.target, sig, diff)
		}
	})
}
