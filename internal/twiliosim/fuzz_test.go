package twiliosim_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// offline is a webhook transport that fails at once, so fuzzed URLs never
// reach the network and never make the fuzzer wait.
type offline struct{}

func (offline) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("the fuzzer's simulator is offline")
}

var fuzzMethods = []string{"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"}

// fuzzPath builds a path among the REST routes; ref stands for a SID, a
// conference name or a label, and is either one that exists or the
// fuzzer's own.
func fuzzPath(route uint8, ref, ref2 string) string {
	acct := "/2010-04-01/Accounts/" + testAccount
	switch route % 9 {
	case 0:
		return acct + "/Calls.json"
	case 1:
		return acct + "/Calls/" + ref + ".json"
	case 2:
		return acct + "/Conferences.json"
	case 3:
		return acct + "/Conferences/" + ref + ".json"
	case 4:
		return acct + "/Conferences/" + ref + "/Participants.json"
	case 5:
		return acct + "/Conferences/" + ref + "/Participants/" + ref2 + ".json"
	case 6:
		return acct + "/Calls/" + ref
	case 7:
		return "/2010-04-01/Accounts/" + ref + "/Calls.json"
	default:
		return acct + "/" + ref
	}
}

func FuzzREST(f *testing.F) {
	sim, err := twiliosim.New(twiliosim.Config{
		AccountSID: testAccount, AuthToken: testToken, Number: testNumber, VoiceURL: "http://app.invalid/voice",
		Speed: 1000, WebhookTimeout: time.Second, HTTPClient: &http.Client{Transport: offline{}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(sim.Close)
	handler := sim.Handler()
	post := func(path string, form url.Values) {
		req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(testAccount, testToken)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			f.Fatalf("setup POST %s = %d %s", path, rec.Code, rec.Body)
		}
	}
	// Some things that exist, so fuzzed requests reach past the lookups.
	acct := "/2010-04-01/Accounts/" + testAccount
	post(acct+"/Calls.json", url.Values{"To": {"+15557770001"}, "From": {testNumber},
		"Twiml": {`<Response><Dial><Conference waitUrl="" startConferenceOnEnter="false">room</Conference></Dial></Response>`}})
	post(acct+"/Conferences/room/Participants.json", url.Values{"To": {"client:alice"}, "From": {testNumber}, "Label": {"agent"}})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := sim.WaitFor(ctx, func(st twiliosim.State) bool {
		c, ok := st.Conference("room")
		return ok && len(c.Participants) == 2
	})
	if err != nil {
		f.Fatalf("setup: %v: %+v", err, st)
	}
	conf, _ := st.Conference("room")
	callSID, agentSID := conf.Participants[0].CallSID, conf.Participants[1].CallSID
	refs := []string{callSID, conf.SID, "room", agentSID, "agent"}

	f.Add(uint8(1), uint8(0), uint8(0), uint8(0), "", "", "To=%2B15557770002&From=%2B15550100000&Twiml=%3CResponse%2F%3E")
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), "", "PageSize=1&Page=3&Status=completed", "")
	f.Add(uint8(1), uint8(1), uint8(0), uint8(0), "", "", "Url=https%3A%2F%2Fexample.com%2Fx&Method=GET&Status=canceled")
	f.Add(uint8(2), uint8(1), uint8(0), uint8(0), "", "", "")
	f.Add(uint8(1), uint8(3), uint8(1), uint8(0), "", "", "Status=completed&AnnounceUrl=https%3A%2F%2Fexample.com%2Fa")
	f.Add(uint8(1), uint8(4), uint8(2), uint8(0), "", "", "To=client%3Abob&From=%2B15550100000&Label=agent&Coaching=true&CallSidToCoach="+callSID)
	f.Add(uint8(0), uint8(4), uint8(1), uint8(0), "", "Hold=true&Muted=false&PageSize=1000", "")
	f.Add(uint8(1), uint8(5), uint8(1), uint8(4), "", "", "Hold=true&HoldUrl=https%3A%2F%2Fexample.com%2Fh&HoldMethod=POST&EndConferenceOnExit=true")
	f.Add(uint8(2), uint8(5), uint8(1), uint8(3), "", "", "")
	f.Add(uint8(1), uint8(5), uint8(1), uint8(5), "no%2Fbody", "", "Muted=true&Coaching=maybe")
	f.Add(uint8(3), uint8(0), uint8(5), uint8(0), "", "", "To=%zz")
	f.Add(uint8(1), uint8(7), uint8(5), uint8(0), "AC../../x", "", "")
	f.Add(uint8(0), uint8(8), uint8(5), uint8(0), "Recordings.json", "PageSize=-1", "")
	f.Add(uint8(1), uint8(4), uint8(5), uint8(0), strings.Repeat("r", 129), "", "To=client%3Ax&From=%2B1555")

	f.Fuzz(func(t *testing.T, method, route, pick, pick2 uint8, ref, query, body string) {
		choose := func(p uint8) string {
			if int(p) < len(refs) {
				return refs[p]
			}
			return ref
		}
		u := &url.URL{Path: fuzzPath(route, choose(pick), choose(pick2)), RawQuery: query}
		req, err := http.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "http://sim"+u.EscapedPath()+"?"+query, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(testAccount, testToken)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s = %d: %s", req.Method, req.URL, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			if problem := checkTwilioError(rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes()); problem != "" {
				t.Fatalf("%s %s = %d with a bad error body (%s): %s", req.Method, req.URL, rec.Code, problem, rec.Body)
			}
		}
	})
}
