package twiliosim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

func nextPhoneEvent(t *testing.T, ch <-chan twiliosim.PhoneEvent) twiliosim.PhoneEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the phone's event stream ended")
		}
		return ev
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for a phone event")
	}
	return twiliosim.PhoneEvent{}
}

// openPhone connects to a browser phone's SSE stream over HTTP and returns
// its events, each checked to be named by its type.
func (h *harness) openPhone(identity string) <-chan twiliosim.PhoneEvent {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.api.URL+"/sim/phones/"+identity+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		h.t.Fatalf("phone stream = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan twiliosim.PhoneEvent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
				continue
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var ev twiliosim.PhoneEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Type != name {
				h.t.Errorf("bad SSE event %q (event: %q): %v", data, name, err)
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	h.t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return events
}

func (h *harness) callClient(identity string) string {
	h.t.Helper()
	c, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("client:" + identity).SetFrom(testNumber).
		SetTwiml(`<Response><Pause length="600"/></Response>`))
	if err != nil {
		h.t.Fatal(err)
	}
	return *c.Sid
}

func TestPhoneEventStream(t *testing.T) {
	h := newHarness(t)
	events := h.openPhone("alice")

	first := h.callClient("alice")
	if ev := nextPhoneEvent(t, events); ev.Type != "incoming" || ev.CallSID != first || ev.From != testNumber || ev.To != "client:alice" {
		t.Fatalf("first event = %+v", ev)
	}
	h.control("/sim/calls/"+first+"/ring-out", nil)
	if ev := nextPhoneEvent(t, events); ev.Type != "canceled" || ev.CallSID != first || ev.Status != "no-answer" {
		t.Fatalf("after ring-out = %+v", ev)
	}

	second := h.callClient("alice")
	if ev := nextPhoneEvent(t, events); ev.Type != "incoming" || ev.CallSID != second {
		t.Fatalf("second call = %+v", ev)
	}
	h.control("/sim/calls/"+second+"/accept", nil)
	if ev := nextPhoneEvent(t, events); ev.Type != "accepted" || ev.CallSID != second {
		t.Fatalf("after accept = %+v", ev)
	}
	h.control("/sim/calls/"+second+"/hangup", nil)
	if ev := nextPhoneEvent(t, events); ev.Type != "disconnected" || ev.CallSID != second || ev.Status != "completed" {
		t.Fatalf("after hangup = %+v", ev)
	}
}

func TestPhoneStreamStartsWithCallsAlreadyRinging(t *testing.T) {
	h := newHarness(t)
	sid := h.callClient("bob")
	h.ringingClient("bob")
	events := h.openPhone("bob")
	if ev := nextPhoneEvent(t, events); ev.Type != "incoming" || ev.CallSID != sid {
		t.Fatalf("first event = %+v", ev)
	}
	h.waitState("bob's stream counted", func(st twiliosim.State) bool {
		return len(st.Phones) == 1 && st.Phones[0].Identity == "bob" && st.Phones[0].Streams == 1
	})
	h.must(h.sim.Reject(sid))
	if ev := nextPhoneEvent(t, events); ev.Type != "canceled" || ev.Status != "busy" {
		t.Fatalf("after reject = %+v", ev)
	}
}

// controlResult is a control API answer, read whole.
type controlResult struct {
	status int
	header http.Header
	json   map[string]any
	body   string
}

func (h *harness) controlRequest(method, path string, form url.Values, accept string) controlResult {
	h.t.Helper()
	if form == nil {
		return h.controlRaw(method, path, "", accept)
	}
	return h.controlRaw(method, path, form.Encode(), accept)
}

// controlRaw sends body as it is, so a test can send a malformed form.
func (h *harness) controlRaw(method, path, form, accept string) controlResult {
	h.t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, _ := http.NewRequest(method, h.api.URL+path, body)
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := controlResult{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	_ = json.Unmarshal(raw, &res.json)
	return res
}

func TestControlPlaceCall(t *testing.T) {
	tests := []struct {
		name             string
		form             url.Values
		status           int
		wantTo, wantName string
	}{
		{"To defaults to the number", url.Values{"From": {"+15551230001"}, "CallerName": {"Pat"}}, http.StatusCreated, testNumber, "Pat"},
		{"explicit To equal to the configured number", url.Values{"From": {"+15551230001"}, "To": {testNumber}}, http.StatusCreated, testNumber, ""},
		{"To another number is refused", url.Values{"From": {"+15551230001"}, "To": {"+15550100001"}}, http.StatusBadRequest, "", ""},
		{"missing From", url.Values{"To": {testNumber}}, http.StatusBadRequest, "", ""},
		{"From not E.164", url.Values{"From": {"555-1234"}}, http.StatusBadRequest, "", ""},
		{"To not E.164", url.Values{"From": {"+15551230001"}, "To": {"client:alice"}}, http.StatusBadRequest, "", ""},
		{"CallerName too long", url.Values{"From": {"+15551230001"}, "CallerName": {strings.Repeat("x", 65)}}, http.StatusBadRequest, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.app.twiml("/voice", keepTalking)
			res := h.controlRequest(http.MethodPost, "/sim/calls", tt.form, "")
			if res.status != tt.status || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Fatalf("POST /sim/calls = %d %s %s", res.status, res.header.Get("Content-Type"), res.body)
			}
			if tt.status != http.StatusCreated {
				if msg, _ := res.json["error"].(string); msg == "" {
					t.Fatalf("error answer without an error field: %s", res.body)
				}
				if n := len(h.sim.State().Calls); n != 0 {
					t.Fatalf("a refused request placed %d calls", n)
				}
				return
			}
			sid, _ := res.json["sid"].(string)
			c, ok := h.sim.State().Call(sid)
			if !ok || c.To != tt.wantTo || c.From != "+15551230001" || c.CallerName != tt.wantName || c.Direction != "inbound" {
				t.Fatalf("placed call = %+v", c)
			}
		})
	}
}

// curl -d does not percent-encode, so `curl -X POST .../sim/calls -d
// From=+15551230001` sends a literal "+", which form decoding reads as a
// space. The body here is written by hand to send exactly those bytes.
func TestControlPlaceCallWithAnUnencodedPlus(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"From only", "From=+15551230001"},
		{"From and To", "From=+15551230001&To=" + testNumber},
		{"percent-encoded, as a browser sends it", "From=%2B15551230001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.app.twiml("/voice", keepTalking)
			res := h.controlRaw(http.MethodPost, "/sim/calls", tt.body, "")
			if res.status != http.StatusCreated {
				t.Fatalf("POST /sim/calls %q = %d %s", tt.body, res.status, res.body)
			}
			sid, _ := res.json["sid"].(string)
			c, ok := h.sim.State().Call(sid)
			if !ok || c.From != "+15551230001" || c.To != testNumber || c.Direction != twiliosim.DirectionInbound {
				t.Fatalf("placed call = %+v", c)
			}
			voice := h.app.waitRequests("/voice", func(r []hookRequest) bool { return len(r) == 1 })
			if voice[0].Form.Get("From") != "+15551230001" || voice[0].Form.Get("CallSid") != sid {
				t.Fatalf("voice webhook = %v", voice[0].Form)
			}
		})
	}
}

func TestControlErrorsAreJSON(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", keepTalking)
	inbound := h.placeInbound()
	h.waitStatus(inbound, twiliosim.StatusInProgress)
	ended := h.callClient("carol")
	h.ringingClient("carol")
	h.must(h.sim.Hangup(ended))
	const unknown = "CA00000000000000000000000000000000"

	tests := []struct {
		name, method, path string
		form               string
		status             int
	}{
		{"hangup unknown call", "POST", "/sim/calls/" + unknown + "/hangup", "", 404},
		{"accept unknown call", "POST", "/sim/calls/" + unknown + "/accept", "", 404},
		{"reject unknown call", "POST", "/sim/calls/" + unknown + "/reject", "", 404},
		{"ring-out unknown call", "POST", "/sim/calls/" + unknown + "/ring-out", "", 404},
		{"show unknown call", "GET", "/sim/calls/" + unknown, "", 404},
		{"unknown action", "POST", "/sim/calls/" + inbound + "/explode", "", 404},
		{"accept a call that is not to a phone", "POST", "/sim/calls/" + inbound + "/accept", "", 409},
		{"ring-out a call in progress", "POST", "/sim/calls/" + inbound + "/ring-out", "", 409},
		{"hang up an ended call", "POST", "/sim/calls/" + ended + "/hangup", "", 409},
		{"reject an ended call", "POST", "/sim/calls/" + ended + "/reject", "", 409},
		{"accept an ended call", "POST", "/sim/calls/" + ended + "/accept", "", 409},
		{"unknown endpoint", "GET", "/sim/nothing", "", 404},
		{"POST to the page", "POST", "/sim", "", 405},
		{"bad number behaviour", "POST", "/sim/numbers", "Number=%2B15557770002&Behavior=explode", 400},
		{"bad number", "POST", "/sim/numbers", "Number=7&Behavior=busy", 400},
		{"bad phone identity", "GET", "/sim/phones/" + url.PathEscape("a b") + "/events", "", 400},
		{"malformed form", "POST", "/sim/calls", "From=%zz", 400},
		{"malformed number form", "POST", "/sim/numbers", "Number=%zz", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.controlRaw(tt.method, tt.path, tt.form, "")
			msg, _ := res.json["error"].(string)
			if res.status != tt.status || msg == "" || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s %s = %d %s %s", tt.method, tt.path, res.status, res.header.Get("Content-Type"), res.body)
			}
		})
	}
	if c, _ := h.sim.State().Call(inbound); c.Status != twiliosim.StatusInProgress {
		t.Fatalf("refused actions changed the call: %+v", c)
	}
}

func TestControlFormsFromThePageRedirectBack(t *testing.T) {
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	h := newHarness(t)
	h.app.twiml("/voice", keepTalking)

	res := h.controlRequest(http.MethodPost, "/sim/calls", url.Values{"From": {"+15551230001"}}, browser)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/sim" {
		t.Fatalf("form POST /sim/calls = %d Location %q", res.status, res.header.Get("Location"))
	}
	st := h.waitState("the call placed", func(st twiliosim.State) bool { return len(st.Calls) == 1 })
	sid := st.Calls[0].SID

	page := h.controlRequest(http.MethodGet, "/sim", nil, browser)
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page.body, sid) || !strings.Contains(page.body, `action="/sim/calls/`+sid+`/hangup"`) {
		t.Fatalf("/sim page = %d:\n%s", page.status, page.body)
	}

	res = h.controlRequest(http.MethodPost, "/sim/calls/"+sid+"/hangup", nil, browser)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/sim" {
		t.Fatalf("form hangup = %d Location %q", res.status, res.header.Get("Location"))
	}
	h.waitStatus(sid, twiliosim.StatusCompleted)

	// A program that accepts both gets JSON.
	res = h.controlRequest(http.MethodPost, "/sim/calls", url.Values{"From": {"+15551230001"}}, "application/json, text/html")
	if res.status != http.StatusCreated || res.json["sid"] == nil {
		t.Fatalf("JSON client = %d %s", res.status, res.body)
	}
}

func TestSimPageShowsRingingPhoneControls(t *testing.T) {
	h := newHarness(t)
	sid := h.callClient("alice")
	h.ringingClient("alice")
	page := h.controlRequest(http.MethodGet, "/sim", nil, "")
	for _, want := range []string{"/accept", "/reject", "/ring-out", "/hangup"} {
		if !strings.Contains(page.body, `action="/sim/calls/`+sid+want+`"`) {
			t.Errorf("page lacks the %s form for a ringing phone", want)
		}
	}
}

func TestControlRejectARingingPhone(t *testing.T) {
	h := newHarness(t)
	events := h.openPhone("alice")
	sid := h.callClient("alice")
	if ev := nextPhoneEvent(t, events); ev.Type != "incoming" || ev.CallSID != sid {
		t.Fatalf("first event = %+v", ev)
	}
	res := h.controlRequest(http.MethodPost, "/sim/calls/"+sid+"/reject", nil, "")
	if res.status != http.StatusOK || res.json["sid"] != sid || res.json["status"] != twiliosim.StatusBusy {
		t.Fatalf("POST reject = %d %s", res.status, res.body)
	}
	if ev := nextPhoneEvent(t, events); ev.Type != "canceled" || ev.CallSID != sid || ev.Status != twiliosim.StatusBusy {
		t.Fatalf("after reject = %+v", ev)
	}
	if c, _ := h.sim.State().Call(sid); c.Status != twiliosim.StatusBusy || c.StartTime != nil {
		t.Fatalf("rejected call = %+v", c)
	}
}
