package twiliosim_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

func TestVoiceWebhookCarriesTwiliosParameters(t *testing.T) {
	h := newHarness(t)
	h.app.twiml("/voice", keepTalking)
	sid, err := h.sim.PlaceInbound("+15551230001", "", "Pat Customer")
	if err != nil {
		t.Fatal(err)
	}
	got := h.app.waitRequests("/voice", func(r []hookRequest) bool { return len(r) == 1 })[0]
	if got.Method != http.MethodPost || !strings.HasPrefix(got.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		t.Fatalf("voice webhook is %s %s", got.Method, got.Header.Get("Content-Type"))
	}
	want := map[string]string{
		"CallSid": sid, "AccountSid": testAccount, "From": "+15551230001", "To": testNumber,
		"Caller": "+15551230001", "Called": testNumber, "CallStatus": "ringing", "Direction": "inbound",
		"ApiVersion": "2010-04-01", "CallerName": "Pat Customer",
	}
	for k, v := range want {
		if got.Form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Form.Get(k), v)
		}
	}
	if _, ok := got.Form["ParentCallSid"]; ok {
		t.Error("an inbound call's webhook has a ParentCallSid")
	}
}

func TestDialedLegsAreOutboundDialChildren(t *testing.T) {
	tests := []struct {
		name, noun, to string
	}{
		{"client", `<Client statusCallback="/child" statusCallbackEvent="initiated ringing answered completed">alice</Client>`, "client:alice"},
		{"number", `<Number statusCallback="/child" statusCallbackEvent="initiated ringing answered completed">+15557770002</Number>`, "+15557770002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.app.twiml("/voice", `<Response><Dial callerId="+15550109999">`+tt.noun+`</Dial></Response>`)
			parent := h.placeInbound()
			got := h.app.waitRequests("/child", untilEvent("CallStatus", "ringing"))
			child := got[0].Form.Get("CallSid")
			if tt.to == "client:alice" {
				h.must(h.sim.Accept(child))
			}
			h.waitStatus(child, twiliosim.StatusInProgress)
			h.must(h.sim.Hangup(parent))
			got = h.app.waitRequests("/child", untilEvent("CallStatus", "completed"))
			statuses := []string{}
			for _, r := range got {
				f := r.Form
				statuses = append(statuses, f.Get("CallStatus"))
				if f.Get("ParentCallSid") != parent || f.Get("Direction") != "outbound-dial" || f.Get("To") != tt.to ||
					f.Get("Called") != tt.to || f.Get("From") != "+15550109999" || f.Get("CallSid") != child ||
					f.Get("AccountSid") != testAccount || f.Get("ApiVersion") != "2010-04-01" {
					t.Errorf("child callback = %v", f)
				}
			}
			if strings.Join(statuses, " ") != "initiated ringing in-progress completed" {
				t.Errorf("child statuses = %v", statuses)
			}
		})
	}
}

func TestGETWebhooksCarryParametersInTheSignedURL(t *testing.T) {
	tests := []struct {
		name  string
		opt   harnessOption
		place func(h *harness)
		path  string
	}{
		{"number with VoiceMethod GET", func(c *twiliosim.Config) {
			c.VoiceMethod = http.MethodGet
			c.VoiceURL += "?tenant=a%20b&x=1"
		}, func(h *harness) {
			h.app.twiml("/voice", keepTalking)
			h.placeInbound()
		}, "/voice"},
		{"REST call with Method GET", nil, func(h *harness) {
			h.app.twiml("/outbound", `<Response><Pause length="600"/></Response>`)
			_, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).
				SetUrl(h.app.url("/outbound?tenant=a%20b&x=1")).SetMethod("GET"))
			if err != nil {
				h.t.Fatal(err)
			}
		}, "/outbound"},
		{"Redirect with method GET", nil, func(h *harness) {
			h.app.twiml("/voice", `<Response><Redirect method="GET">next?tenant=a%20b&amp;x=1</Redirect></Response>`)
			h.app.twiml("/next", `<Response><Pause length="600"/></Response>`)
			h.placeInbound()
		}, "/next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []harnessOption
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			h := newHarness(t, opts...)
			tt.place(h)
			got := h.app.waitRequests(tt.path, func(r []hookRequest) bool { return len(r) == 1 })[0]
			// The harness fails the test at cleanup if the signature (over
			// the full URL, query included) does not validate.
			if got.Method != http.MethodGet || got.Query.Get("CallSid") == "" || got.Query.Get("AccountSid") != testAccount ||
				got.Query.Get("tenant") != "a b" || got.Query.Get("x") != "1" {
				t.Fatalf("GET webhook = %s %v", got.Method, got.Query)
			}
		})
	}
}

// applicationErrorHeard reports whether the call played Twilio's apology.
func applicationErrorHeard(c twiliosim.CallState) bool {
	return strings.Contains(webhookNotes(c), "hears say: We're sorry, an application error has occurred.")
}

func TestFallbackURLIsTriedWhenTheWebhookFails(t *testing.T) {
	tests := []struct {
		name          string
		fallback      reply
		wantCodes     []int
		wantFallback  string // what the caller hears from the fallback
		wantAppError  bool
		wantEndStatus string
	}{
		{"fallback answers", reply{contentType: "text/xml", body: `<Response><Say>Sorry, from the fallback.</Say></Response>`},
			[]int{11200}, "say: Sorry, from the fallback.", false, twiliosim.StatusCompleted},
		{"fallback fails too", reply{status: http.StatusNotFound, contentType: "text/plain", body: "nope"},
			[]int{11200, 11200}, "", true, twiliosim.StatusCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.app.handle("/broken", func(hookRequest) reply { return reply{status: http.StatusInternalServerError, body: "boom"} })
			h.app.handle("/fallback", func(hookRequest) reply { return tt.fallback })
			c, err := h.tw.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(testNumber).
				SetUrl(h.app.url("/broken")).SetFallbackUrl(h.app.url("/fallback")))
			if err != nil {
				t.Fatal(err)
			}
			call := h.waitStatus(*c.Sid, tt.wantEndStatus)
			fb := h.app.requests("/fallback")
			if len(fb) != 1 || fb[0].Form.Get("ErrorCode") != "11200" || fb[0].Form.Get("ErrorUrl") != h.app.url("/broken") ||
				fb[0].Form.Get("CallSid") != *c.Sid {
				t.Fatalf("fallback requests = %+v", fb)
			}
			if tt.wantFallback != "" && !strings.Contains(webhookNotes(call), "hears "+tt.wantFallback) {
				t.Errorf("caller did not hear the fallback: %s", webhookNotes(call))
			}
			if applicationErrorHeard(call) != tt.wantAppError {
				t.Errorf("application error heard = %v, want %v: %s", !tt.wantAppError, tt.wantAppError, webhookNotes(call))
			}
			var codes []int
			for _, n := range h.sim.State().Notifications {
				if n.CallSID == *c.Sid {
					codes = append(codes, n.ErrorCode)
				}
			}
			if len(codes) != len(tt.wantCodes) {
				t.Fatalf("notifications %v, want %v", codes, tt.wantCodes)
			}
			for i := range codes {
				if codes[i] != tt.wantCodes[i] {
					t.Fatalf("notifications %v, want %v", codes, tt.wantCodes)
				}
			}
		})
	}
}

func TestWebhookFailuresEndTheCallWithTwiliosCodes(t *testing.T) {
	tests := []struct {
		name  string
		reply func(hookRequest) reply
		code  int
	}{
		{"no answer within WebhookTimeout", func(r hookRequest) reply {
			<-r.ctx.Done() // the simulator gives up and closes the connection
			return reply{contentType: "text/xml", body: "<Response/>"}
		}, 11205},
		{"non-2xx status", func(hookRequest) reply { return reply{status: http.StatusForbidden, body: "no"} }, 11200},
		{"malformed TwiML", func(hookRequest) reply {
			return reply{contentType: "text/xml", body: "<Response><Say>unclosed</Response>"}
		}, 12100},
		{"unknown verb", func(hookRequest) reply { return reply{contentType: "text/xml", body: "<Response><Dance/></Response>"} }, 12200},
		{"JSON content type", func(hookRequest) reply {
			return reply{contentType: "application/json", body: `{"twiml":"<Response/>"}`}
		}, 12300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *twiliosim.Config) { c.WebhookTimeout = 300 * time.Millisecond })
			h.app.handle("/voice", tt.reply)
			sid, err := h.sim.PlaceInbound("+15551230001", "", "")
			if err != nil {
				t.Fatal(err)
			}
			c := h.waitCall(sid, "call ended", func(c twiliosim.CallState) bool { return c.EndTime != nil })
			if !hasNotification(h.sim.State(), sid, tt.code) {
				t.Fatalf("no %d notification: %+v", tt.code, h.sim.State().Notifications)
			}
			if !applicationErrorHeard(c) {
				t.Fatalf("caller did not hear the application error: %s", webhookNotes(c))
			}
		})
	}
}

func TestAudioAnswerIsPlayed(t *testing.T) {
	h := newHarness(t)
	h.app.handle("/voice", func(hookRequest) reply { return reply{contentType: "audio/mpeg", body: "ID3 not really an mp3"} })
	sid := h.placeInbound()
	c := h.waitStatus(sid, twiliosim.StatusCompleted)
	if !strings.Contains(webhookNotes(c), "hears play: "+h.app.url("/voice")) {
		t.Fatalf("audio answer not played: %s", webhookNotes(c))
	}
	if n := len(h.sim.State().Notifications); n != 0 {
		t.Fatalf("audio answer recorded %d notifications", n)
	}
}

// The harness's second signature check, with twilio-go's validator, must be
// able to fail; otherwise every webhook "validating" would mean nothing.
func TestTwilioGoValidatorInTheHarnessCanFail(t *testing.T) {
	const postURL = "http://127.0.0.1:8080/voice"
	form := url.Values{"CallSid": {"CA123"}, "From": {"+15551230001"}}
	sig := twiliosig.Sign(testToken, postURL, form)
	if problem := validateWithTwilioGo(postURL, form, sig); problem != "" {
		t.Fatalf("a signature made by twiliosig does not validate with twilio-go: %s", problem)
	}
	getURL := "http://127.0.0.1:8080/voice?CallSid=CA123&tenant=a+b"
	if problem := validateWithTwilioGo(getURL, nil, twiliosig.Sign(testToken, getURL, nil)); problem != "" {
		t.Fatalf("a GET signature does not validate with twilio-go: %s", problem)
	}
	tampered := url.Values{"CallSid": {"CA124"}, "From": {"+15551230001"}}
	if validateWithTwilioGo(postURL, tampered, sig) == "" {
		t.Fatal("twilio-go accepted a signature over other parameters")
	}
	if validateWithTwilioGo(postURL, url.Values{"A": {"1", "2"}}, sig) == "" {
		t.Fatal("a repeated parameter was not reported")
	}
}
