package twiliosim_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// simGoroutines returns the stacks of goroutines running the simulator's
// own code.
func simGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "/internal/twiliosim.") {
			out = append(out, g)
		}
	}
	return out
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	h := newHarness(t)
	// Something of every kind in flight: a phone ringing on a long timer, a
	// number that never answers, a caller in a conference hearing looping
	// wait music, a webhook that never answers, a status callback and a
	// phone's event stream.
	h.app.twiml("/wait", `<Response><Play loop="0">https://example.com/music.mp3</Play></Response>`)
	h.app.twiml("/voice", `<Response><Dial><Conference waitUrl="/wait" statusCallback="/conf-events" statusCallbackEvent="join">room</Conference></Dial></Response>`)
	h.app.handle("/stuck", func(r hookRequest) reply {
		<-r.ctx.Done()
		return reply{status: http.StatusServiceUnavailable}
	})
	h.openPhone("alice")
	if _, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("client:alice").SetFrom(testNumber).SetTimeout(600).
		SetTwiml("<Response><Hangup/></Response>")); err != nil {
		t.Fatal(err)
	}
	h.control("/sim/numbers", url.Values{"Number": {"+15557770003"}, "Behavior": {"no-answer"}})
	if _, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770003").SetFrom(testNumber).SetTimeout(600).
		SetTwiml("<Response><Hangup/></Response>")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770004").SetFrom(testNumber).SetUrl(h.app.url("/stuck"))); err != nil {
		t.Fatal(err)
	}
	customer := h.placeInbound()
	h.waitCall(customer, "wait music", func(c twiliosim.CallState) bool { return strings.HasSuffix(c.Hearing, "(looping)") })
	h.app.waitRequests("/stuck", func(r []hookRequest) bool { return len(r) == 1 })
	h.ringingClient("alice")

	h.sim.Close()
	deadline := time.Now().Add(waitLimit)
	for left := simGoroutines(); len(left) > 0; left = simGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d simulator goroutines outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
	}

	// A request after Close is answered but starts nothing, and Close may
	// be called again (the harness does, at cleanup).
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/2010-04-01/Accounts/"+testAccount+"/Calls.json",
		strings.NewReader(url.Values{"To": {"client:bob"}, "From": {testNumber}, "Twiml": {"<Response/>"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testAccount, testToken)
	h.sim.Handler().ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("request after Close = %d", rec.Code)
	}
	if left := simGoroutines(); len(left) > 0 {
		t.Fatalf("a request after Close started goroutines:\n%s", strings.Join(left, "\n\n"))
	}
	h.sim.Close()
}
