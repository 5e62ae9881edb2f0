package twiliosim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// twilioError is Twilio's REST error body, decoded strictly enough to tell
// a missing field from a zero one.
type twilioError struct {
	Code     *int    `json:"code"`
	Message  *string `json:"message"`
	MoreInfo *string `json:"more_info"`
	Status   *int    `json:"status"`
}

// checkTwilioError reports what is wrong with an error answer, or "".
func checkTwilioError(status int, contentType string, body []byte) string {
	if !strings.HasPrefix(contentType, "application/json") {
		return "Content-Type " + contentType
	}
	var e twilioError
	if err := json.Unmarshal(body, &e); err != nil {
		return "body is not JSON: " + err.Error()
	}
	switch {
	case e.Code == nil || *e.Code == 0:
		return "no code"
	case e.Message == nil || *e.Message == "":
		return "no message"
	case e.MoreInfo == nil || *e.MoreInfo != "https://www.twilio.com/docs/errors/"+strconv.Itoa(*e.Code):
		return "more_info does not point at the code's page"
	case e.Status == nil || *e.Status != status:
		return "status field differs from the HTTP status"
	}
	return ""
}

// stateSummary is the part of the state a refused request must not change.
func stateSummary(st twiliosim.State) string {
	var b strings.Builder
	for _, c := range st.Calls {
		fmt.Fprintf(&b, "call %s %s %s %s %q\n", c.SID, c.Status, c.Direction, c.Conference, c.Hearing)
	}
	for _, c := range st.Conferences {
		fmt.Fprintf(&b, "conf %s %s %s %s\n", c.SID, c.FriendlyName, c.Status, c.ReasonConferenceEnded)
		for _, p := range c.Participants {
			fmt.Fprintf(&b, "  %+v\n", p)
		}
	}
	fmt.Fprintf(&b, "%d notifications\n", len(st.Notifications))
	return b.String()
}

type rawRequest struct {
	name, method, path, body string
	contentType              string
	user, pass               string // default: the account's credentials
	noAuth                   bool
}

func (h *harness) raw(r rawRequest) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(r.method, h.api.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		h.t.Fatal(err)
	}
	ct := r.contentType
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	req.Header.Set("Content-Type", ct)
	if !r.noAuth {
		user, pass := testAccount, testToken
		if r.user != "" || r.pass != "" {
			user, pass = r.user, r.pass
		}
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s: %v", r.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestBadRESTInputGetsTwiliosErrorAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial><Conference startConferenceOnEnter="false" waitUrl="">room</Conference></Dial></Response>`)
	customer := h.placeInbound()
	h.waitCall(customer, "customer waiting", func(c twiliosim.CallState) bool { return c.Hearing == "silence" })
	out, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).
		SetTwiml(`<Response><Play loop="0">https://example.com/a.mp3</Play></Response>`))
	if err != nil {
		t.Fatal(err)
	}
	call := *out.Sid
	h.waitCall(call, "playing", func(c twiliosim.CallState) bool { return strings.HasSuffix(c.Hearing, "(looping)") })
	conf, _ := h.sim.State().Conference("room")
	before := stateSummary(h.sim.State())

	const (
		acct      = "/2010-04-01/Accounts/" + testAccount
		unknownCA = "CA00000000000000000000000000000000"
		unknownCF = "CF00000000000000000000000000000000"
	)
	calls := acct + "/Calls.json"
	callURL := acct + "/Calls/" + call + ".json"
	confs := acct + "/Conferences.json"
	confURL := acct + "/Conferences/" + conf.SID + ".json"
	parts := acct + "/Conferences/" + conf.SID + "/Participants.json"
	partURL := acct + "/Conferences/" + conf.SID + "/Participants/" + customer + ".json"
	newCall := "To=%2B15557770001&From=%2B15550100000&Url=https%3A%2F%2Fexample.com%2Fx&"
	newPart := "To=client%3Abob&From=%2B15550100000&"
	huge := "To=" + strings.Repeat("1", 1<<20+1024)

	tests := []struct {
		rawRequest
		status, code int
	}{
		// Authentication, on every route.
		{rawRequest{name: "no auth calls", method: "GET", path: calls, noAuth: true}, 401, 20003},
		{rawRequest{name: "no auth call", method: "POST", path: callURL, body: "Status=completed", noAuth: true}, 401, 20003},
		{rawRequest{name: "wrong token conference", method: "POST", path: confURL, body: "Status=completed", user: testAccount, pass: "wrong"}, 401, 20003},
		{rawRequest{name: "wrong token participants", method: "POST", path: parts, body: newPart, user: testAccount, pass: "ffffffffffffffffffffffffffffffff"}, 401, 20003},
		{rawRequest{name: "wrong user participant", method: "DELETE", path: partURL, user: "ACffffffffffffffffffffffffffffffff", pass: testToken}, 401, 20003},
		{rawRequest{name: "empty password conferences", method: "GET", path: confs, user: testAccount, pass: ""}, 401, 20003},
		{rawRequest{name: "another account in the path", method: "GET", path: "/2010-04-01/Accounts/ACffffffffffffffffffffffffffffffff/Calls.json"}, 404, 20404},

		// Unknown SIDs and paths.
		{rawRequest{name: "unknown call", method: "GET", path: acct + "/Calls/" + unknownCA + ".json"}, 404, 20404},
		{rawRequest{name: "update unknown call", method: "POST", path: acct + "/Calls/" + unknownCA + ".json", body: "Status=completed"}, 404, 20404},
		{rawRequest{name: "delete unknown call", method: "DELETE", path: acct + "/Calls/" + unknownCA + ".json"}, 404, 20404},
		{rawRequest{name: "call without .json", method: "GET", path: acct + "/Calls/" + call}, 404, 20404},
		{rawRequest{name: "unknown conference", method: "GET", path: acct + "/Conferences/" + unknownCF + ".json"}, 404, 20404},
		{rawRequest{name: "update unknown conference", method: "POST", path: acct + "/Conferences/" + unknownCF + ".json", body: "Status=completed"}, 404, 20404},
		{rawRequest{name: "participants of unknown conference", method: "GET", path: acct + "/Conferences/" + unknownCF + "/Participants.json"}, 404, 20404},
		{rawRequest{name: "add to unknown conference SID", method: "POST", path: acct + "/Conferences/" + unknownCF + "/Participants.json", body: newPart}, 404, 20404},
		{rawRequest{name: "list participants by name", method: "GET", path: acct + "/Conferences/room/Participants.json"}, 404, 20404},
		{rawRequest{name: "unknown participant", method: "GET", path: acct + "/Conferences/" + conf.SID + "/Participants/" + unknownCA + ".json"}, 404, 20404},
		{rawRequest{name: "update unknown participant", method: "POST", path: acct + "/Conferences/" + conf.SID + "/Participants/nobody.json", body: "Hold=true"}, 404, 20404},
		{rawRequest{name: "delete unknown participant", method: "DELETE", path: acct + "/Conferences/" + conf.SID + "/Participants/" + unknownCA + ".json"}, 404, 20404},
		{rawRequest{name: "unknown resource", method: "GET", path: acct + "/Recordings.json"}, 404, 20404},
		{rawRequest{name: "unknown subresource", method: "GET", path: acct + "/Calls/" + call + "/Streams.json"}, 404, 20404},

		// Wrong methods.
		{rawRequest{name: "PUT calls", method: "PUT", path: calls, body: newCall}, 405, 20004},
		{rawRequest{name: "DELETE calls", method: "DELETE", path: calls}, 405, 20004},
		{rawRequest{name: "PATCH call", method: "PATCH", path: callURL, body: "Status=completed"}, 405, 20004},
		{rawRequest{name: "POST conferences", method: "POST", path: confs, body: "FriendlyName=x"}, 405, 20004},
		{rawRequest{name: "DELETE conference", method: "DELETE", path: confURL}, 405, 20004},
		{rawRequest{name: "DELETE participants", method: "DELETE", path: parts}, 405, 20004},
		{rawRequest{name: "PUT participant", method: "PUT", path: partURL, body: "Hold=true"}, 405, 20004},

		// Malformed and oversized bodies and queries.
		{rawRequest{name: "malformed form", method: "POST", path: calls, body: "To=%zz&From=%2B1"}, 400, 20001},
		{rawRequest{name: "malformed query", method: "GET", path: calls + "?PageSize=%zz"}, 400, 20001},
		{rawRequest{name: "huge body", method: "POST", path: calls, body: huge}, 400, 20001},
		{rawRequest{name: "JSON body is not a form", method: "POST", path: calls, body: `{"To":"+15557770001"}`, contentType: "application/json"}, 400, 21201},

		// Calls: create.
		{rawRequest{name: "create without To", method: "POST", path: calls, body: "From=%2B15550100000&Url=https%3A%2F%2Fexample.com%2Fx"}, 400, 21201},
		{rawRequest{name: "create with bad To", method: "POST", path: calls, body: "To=12&From=%2B15550100000&Url=https%3A%2F%2Fexample.com%2Fx"}, 400, 21211},
		{rawRequest{name: "create without From", method: "POST", path: calls, body: "To=%2B15557770001&Url=https%3A%2F%2Fexample.com%2Fx"}, 400, 21213},
		{rawRequest{name: "create with bad From", method: "POST", path: calls, body: "To=%2B15557770001&From=abc&Url=https%3A%2F%2Fexample.com%2Fx"}, 400, 21212},
		{rawRequest{name: "create without Url", method: "POST", path: calls, body: "To=%2B15557770001&From=%2B15550100000"}, 400, 21205},
		{rawRequest{name: "create with relative Url", method: "POST", path: calls, body: "To=%2B15557770001&From=%2B15550100000&Url=%2Fvoice"}, 400, 21205},
		{rawRequest{name: "create with bad Method", method: "POST", path: calls, body: newCall + "Method=PUT"}, 400, 20001},
		{rawRequest{name: "create with text Timeout", method: "POST", path: calls, body: newCall + "Timeout=soon"}, 400, 20001},
		{rawRequest{name: "create with zero Timeout", method: "POST", path: calls, body: newCall + "Timeout=0"}, 400, 20001},
		{rawRequest{name: "create with overflowing Timeout", method: "POST", path: calls, body: newCall + "Timeout=99999999999999999999"}, 400, 20001},
		{rawRequest{name: "create with bad StatusCallback", method: "POST", path: calls, body: newCall + "StatusCallback=mailto%3Ax"}, 400, 21205},
		{rawRequest{name: "create with bad StatusCallbackMethod", method: "POST", path: calls, body: newCall + "StatusCallbackMethod=TRACE"}, 400, 20001},
		{rawRequest{name: "create with bad StatusCallbackEvent", method: "POST", path: calls, body: newCall + "StatusCallbackEvent=answered&StatusCallbackEvent=exploded"}, 400, 20001},
		{rawRequest{name: "create with bad FallbackUrl", method: "POST", path: calls, body: newCall + "FallbackUrl=nope"}, 400, 21205},
		{rawRequest{name: "create with malformed Twiml", method: "POST", path: calls, body: "To=%2B15557770001&From=%2B15550100000&Twiml=%3CResponse%3E"}, 400, 12100},

		// Lists.
		{rawRequest{name: "PageSize not a number", method: "GET", path: calls + "?PageSize=many"}, 400, 20001},
		{rawRequest{name: "PageSize zero", method: "GET", path: calls + "?PageSize=0"}, 400, 20001},
		{rawRequest{name: "PageSize too big", method: "GET", path: confs + "?PageSize=1001"}, 400, 20001},
		{rawRequest{name: "negative Page", method: "GET", path: parts + "?Page=-1"}, 400, 20001},
		{rawRequest{name: "bad conference Status filter", method: "GET", path: confs + "?Status=ringing"}, 400, 20001},
		{rawRequest{name: "bad Muted filter", method: "GET", path: parts + "?Muted=maybe"}, 400, 20001},
		{rawRequest{name: "bad Hold filter", method: "GET", path: parts + "?Hold=2"}, 400, 20001},

		// Calls: update and delete.
		{rawRequest{name: "update with bad Status", method: "POST", path: callURL, body: "Status=busy"}, 400, 20001},
		{rawRequest{name: "update with bad Url", method: "POST", path: callURL, body: "Url=ftp%3A%2F%2Fexample.com"}, 400, 21205},
		{rawRequest{name: "update with bad Method", method: "POST", path: callURL, body: "Url=https%3A%2F%2Fexample.com%2Fx&Method=DELETE"}, 400, 20001},
		{rawRequest{name: "update with Url and Twiml", method: "POST", path: callURL, body: "Url=https%3A%2F%2Fexample.com%2Fx&Twiml=%3CResponse%2F%3E"}, 400, 20001},
		{rawRequest{name: "update with malformed Twiml", method: "POST", path: callURL, body: "Twiml=%3CResponse%3E%3CDance%2F%3E%3C%2FResponse%3E"}, 400, 12200},
		{rawRequest{name: "update with bad StatusCallback then a valid Status", method: "POST", path: callURL, body: "StatusCallback=x&Status=completed"}, 400, 21205},
		{rawRequest{name: "delete a live call", method: "DELETE", path: callURL}, 400, 21220},

		// Conferences: update.
		{rawRequest{name: "conference Status in-progress", method: "POST", path: confURL, body: "Status=in-progress"}, 400, 20001},
		{rawRequest{name: "conference bad AnnounceUrl", method: "POST", path: confURL, body: "AnnounceUrl=nope&Status=completed"}, 400, 21205},
		{rawRequest{name: "conference bad AnnounceMethod", method: "POST", path: confURL, body: "AnnounceUrl=https%3A%2F%2Fexample.com%2Fa&AnnounceMethod=PUT"}, 400, 20001},

		// Participants: create.
		{rawRequest{name: "participant without To", method: "POST", path: parts, body: "From=%2B15550100000"}, 400, 21201},
		{rawRequest{name: "participant with bad To", method: "POST", path: parts, body: "To=client%3Ab%20b&From=%2B15550100000"}, 400, 21211},
		{rawRequest{name: "participant without From", method: "POST", path: parts, body: "To=client%3Abob"}, 400, 21213},
		{rawRequest{name: "participant with bad StartConferenceOnEnter", method: "POST", path: parts, body: newPart + "StartConferenceOnEnter=yes"}, 400, 20001},
		{rawRequest{name: "participant with bad EndConferenceOnExit", method: "POST", path: parts, body: newPart + "EndConferenceOnExit=1"}, 400, 20001},
		{rawRequest{name: "participant with bad Muted", method: "POST", path: parts, body: newPart + "Muted=perhaps"}, 400, 20001},
		{rawRequest{name: "participant with MaxParticipants 1", method: "POST", path: parts, body: newPart + "MaxParticipants=1"}, 400, 20001},
		{rawRequest{name: "participant with MaxParticipants 251", method: "POST", path: parts, body: newPart + "MaxParticipants=251"}, 400, 20001},
		{rawRequest{name: "participant with bad Timeout", method: "POST", path: parts, body: newPart + "Timeout=1.5"}, 400, 20001},
		{rawRequest{name: "participant with Timeout under 5", method: "POST", path: parts, body: newPart + "Timeout=4"}, 400, 20001},
		{rawRequest{name: "participant with Timeout over 600", method: "POST", path: parts, body: newPart + "Timeout=601"}, 400, 20001},
		{rawRequest{name: "participant with bad WaitUrl", method: "POST", path: parts, body: newPart + "WaitUrl=music.mp3"}, 400, 21205},
		{rawRequest{name: "participant with bad WaitMethod", method: "POST", path: parts, body: newPart + "WaitMethod=PATCH"}, 400, 20001},
		{rawRequest{name: "participant with bad ConferenceStatusCallback", method: "POST", path: parts, body: newPart + "ConferenceStatusCallback=nope"}, 400, 21205},
		{rawRequest{name: "participant with bad ConferenceStatusCallbackEvent", method: "POST", path: parts, body: newPart + "ConferenceStatusCallbackEvent=start+explode"}, 400, 20001},
		{rawRequest{name: "participant with bad StatusCallbackEvent", method: "POST", path: parts, body: newPart + "StatusCallbackEvent=joined"}, 400, 20001},
		{rawRequest{name: "participant with a long Label", method: "POST", path: parts, body: newPart + "Label=" + strings.Repeat("l", 129)}, 400, 16023},
		{rawRequest{name: "participant with a Label like a CallSid", method: "POST", path: parts, body: newPart + "Label=" + unknownCA}, 400, 16023},
		{rawRequest{name: "participant with a Label containing /", method: "POST", path: parts, body: newPart + "Label=a%2Fb"}, 400, 16023},
		{rawRequest{name: "participant coaching nobody", method: "POST", path: parts, body: newPart + "Coaching=true"}, 400, 20001},
		{rawRequest{name: "participant coaching a stranger", method: "POST", path: parts, body: newPart + "CallSidToCoach=" + unknownCA}, 400, 13240},
		{rawRequest{name: "new conference by name, coaching a stranger", method: "POST", path: acct + "/Conferences/other-room/Participants.json", body: newPart + "CallSidToCoach=" + unknownCA}, 400, 13240},
		{rawRequest{name: "conference name too long", method: "POST", path: acct + "/Conferences/" + strings.Repeat("n", 129) + "/Participants.json", body: newPart}, 400, 20001},

		// Participants: update.
		{rawRequest{name: "participant bad Hold", method: "POST", path: partURL, body: "Hold=maybe"}, 400, 20001},
		{rawRequest{name: "participant bad Muted", method: "POST", path: partURL, body: "Muted=perhaps"}, 400, 20001},
		{rawRequest{name: "participant Muted 1", method: "POST", path: partURL, body: "Muted=1"}, 400, 20001},
		{rawRequest{name: "participant bad HoldUrl", method: "POST", path: partURL, body: "Hold=true&HoldUrl=hold.mp3"}, 400, 21205},
		{rawRequest{name: "participant bad HoldMethod", method: "POST", path: partURL, body: "Hold=true&HoldMethod=PUT"}, 400, 20001},
		{rawRequest{name: "participant bad EndConferenceOnExit", method: "POST", path: partURL, body: "EndConferenceOnExit=sometimes"}, 400, 20001},
		{rawRequest{name: "participant bad Coaching", method: "POST", path: partURL, body: "Coaching=2"}, 400, 20001},
		{rawRequest{name: "participant Coaching without a call to coach", method: "POST", path: partURL, body: "Coaching=true"}, 400, 20001},
		{rawRequest{name: "participant coaching a stranger", method: "POST", path: partURL, body: "CallSidToCoach=" + unknownCA}, 400, 13240},
		{rawRequest{name: "participant bad AnnounceUrl", method: "POST", path: partURL, body: "AnnounceUrl=ftp%3A%2F%2Fx"}, 400, 21205},
		{rawRequest{name: "participant bad AnnounceMethod", method: "POST", path: partURL, body: "AnnounceUrl=https%3A%2F%2Fexample.com%2Fa&AnnounceMethod=DELETE"}, 400, 20001},
		{rawRequest{name: "participant bad WaitUrl", method: "POST", path: partURL, body: "WaitUrl=%3A"}, 400, 21205},
		{rawRequest{name: "participant bad BeepOnExit", method: "POST", path: partURL, body: "BeepOnExit=loud"}, 400, 20001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.raw(tt.rawRequest)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s = %d, want %d: %s", tt.method, tt.path, resp.StatusCode, tt.status, body)
			}
			if problem := checkTwilioError(resp.StatusCode, resp.Header.Get("Content-Type"), body); problem != "" {
				t.Fatalf("error body: %s: %s", problem, body)
			}
			var e twilioError
			_ = json.Unmarshal(body, &e)
			if *e.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", *e.Code, tt.code, body)
			}
		})
	}
	if after := stateSummary(h.sim.State()); after != before {
		t.Fatalf("refused requests changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/Calls.json", "/Conferences.json?Status=completed"} {
		resp, body := h.raw(rawRequest{name: path, method: "GET", path: "/2010-04-01/Accounts/" + testAccount + path})
		var env map[string]json.RawMessage
		if err := json.Unmarshal(body, &env); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s = %d %s", path, resp.StatusCode, body)
		}
		key := strings.ToLower(strings.TrimSuffix(strings.Split(path, ".")[0][1:], ".json"))
		if string(env[key]) != "[]" || string(env["next_page_uri"]) != "null" {
			t.Fatalf("%s: %s = %s, next_page_uri = %s", path, key, env[key], env["next_page_uri"])
		}
	}
}

// stallingWriter is a client that stops reading: its first Write blocks
// until released.
type stallingWriter struct {
	header  http.Header
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (w *stallingWriter) Header() http.Header { return w.header }
func (w *stallingWriter) WriteHeader(int)     {}
func (w *stallingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

// A REST client that is slow to read its answer must not stall the
// simulator: answers are written after Sim.mu is released.
func TestSlowRESTClientDoesNotHoldTheSimulator(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", `<Response><Dial><Conference waitUrl="">room</Conference></Dial></Response>`)
	customer := h.placeInbound()
	h.waitCall(customer, "in the conference", func(c twiliosim.CallState) bool { return c.Conference == "room" })
	conf, _ := h.sim.State().Conference("room")
	acct := "/2010-04-01/Accounts/" + testAccount
	tests := []struct{ name, method, path, body string }{
		{"fetch call", "GET", acct + "/Calls/" + customer + ".json", ""},
		{"list calls", "GET", acct + "/Calls.json", ""},
		{"update call", "POST", acct + "/Calls/" + customer + ".json", "StatusCallbackMethod=GET"},
		{"fetch conference", "GET", acct + "/Conferences/" + conf.SID + ".json", ""},
		{"list participants", "GET", acct + "/Conferences/" + conf.SID + "/Participants.json", ""},
		{"update participant", "POST", acct + "/Conferences/" + conf.SID + "/Participants/" + customer + ".json", "Muted=false"},
		{"error answer", "GET", acct + "/Calls/CA00000000000000000000000000000000.json", ""},
	}
	handler := h.sim.Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(testAccount, testToken)
			w := &stallingWriter{header: http.Header{}, entered: make(chan struct{}), release: make(chan struct{})}
			served := make(chan struct{})
			go func() {
				defer close(served)
				handler.ServeHTTP(w, req)
			}()
			defer func() { close(w.release); <-served }()
			select {
			case <-w.entered:
			case <-time.After(waitLimit):
				t.Fatal("the handler never wrote its answer")
			}
			state := make(chan struct{})
			go func() {
				defer close(state)
				h.sim.State()
			}()
			select {
			case <-state:
			case <-time.After(waitLimit):
				t.Fatal("Sim.State blocked while a REST answer was being written: Sim.mu is held across HTTP")
			}
		})
	}
}
