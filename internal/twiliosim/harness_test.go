package twiliosim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"

	"github.com/warmtransfer/warmtransfer/internal/telephony"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

const (
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testToken   = "0123456789abcdef0123456789abcdef"
	testNumber  = "+15550100000"
	waitLimit   = 10 * time.Second
)

// hookRequest is one webhook the fake application received.
type hookRequest struct {
	Method string
	Path   string
	Query  url.Values
	Form   url.Values
	Header http.Header
	// ctx ends when the simulator gives up on the request, so a reply can
	// block until then to play a webhook that never answers.
	ctx context.Context
}

type reply struct {
	status      int
	contentType string
	body        string
}

// appServer stands in for the application Twilio calls: it answers each path
// with a configured reply, records every request, and checks every
// X-Twilio-Signature.
type appServer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	replies map[string]func(hookRequest) reply
	got     []hookRequest
	bad     []string
	changed chan struct{}
}

func newAppServer(t *testing.T) *appServer {
	a := &appServer{t: t, replies: map[string]func(hookRequest) reply{}, changed: make(chan struct{})}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(func() {
		a.srv.Close()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, b := range a.bad {
			t.Errorf("webhook with an invalid signature (%s)", b)
		}
	})
	return a
}

func (a *appServer) url(path string) string { return a.srv.URL + path }

func (a *appServer) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	full := "http://" + r.Host + r.URL.RequestURI()
	var signed url.Values
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		signed = r.PostForm
		form = r.PostForm
	}
	req := hookRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Form: form, Header: r.Header.Clone(), ctx: r.Context()}
	sig := r.Header.Get(twiliosig.Header)
	a.mu.Lock()
	if !twiliosig.Valid(testToken, full, signed, sig) {
		a.bad = append(a.bad, "twiliosig: "+r.Method+" "+full)
	}
	// Twilio's own validator as well, so the simulator's signing is checked
	// against an implementation other than the one it signs with.
	if problem := validateWithTwilioGo(full, signed, sig); problem != "" {
		a.bad = append(a.bad, "twilio-go: "+problem+": "+r.Method+" "+full)
	}
	a.got = append(a.got, req)
	close(a.changed)
	a.changed = make(chan struct{})
	reply := a.replies[r.URL.Path]
	a.mu.Unlock()
	if reply == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rep := reply(req)
	if rep.contentType != "" {
		w.Header().Set("Content-Type", rep.contentType)
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

// validateWithTwilioGo checks a webhook's signature with twilio-go's
// RequestValidator, and says what is wrong, or "". The validator takes one
// value per parameter, as Twilio's webhooks have.
func validateWithTwilioGo(fullURL string, form url.Values, sig string) string {
	params := make(map[string]string, len(form))
	for k, vs := range form {
		if len(vs) != 1 {
			return "parameter " + k + " is repeated"
		}
		params[k] = vs[0]
	}
	validator := twclient.NewRequestValidator(testToken)
	if !validator.Validate(fullURL, params, sig) {
		return "signature does not validate"
	}
	return ""
}

// twiml answers path with a TwiML document.
func (a *appServer) twiml(path, doc string) {
	a.handle(path, func(hookRequest) reply {
		return reply{contentType: "text/xml", body: `<?xml version="1.0" encoding="UTF-8"?>` + doc}
	})
}

func (a *appServer) handle(path string, f func(hookRequest) reply) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.replies[path] = f
}

// requests returns the requests received on path so far.
func (a *appServer) requests(path string) []hookRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []hookRequest
	for _, r := range a.got {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// paths returns the path of every request received so far, in order.
func (a *appServer) paths() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.got {
		out = append(out, r.Path)
	}
	return out
}

// waitRequests waits until cond holds for the requests received on path.
func (a *appServer) waitRequests(path string, cond func([]hookRequest) bool) []hookRequest {
	a.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		ch := a.changed
		a.mu.Unlock()
		got := a.requests(path)
		if cond(got) {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			a.t.Fatalf("timed out waiting for requests to %s; got %d: %+v", path, len(got), got)
		}
	}
}

type harness struct {
	t   *testing.T
	app *appServer
	sim *twiliosim.Sim
	api *httptest.Server
	tw  *twilio.RestClient
}

type harnessOption func(*twiliosim.Config)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	app := newAppServer(t)
	cfg := twiliosim.Config{
		AccountSID: testAccount, AuthToken: testToken, Number: testNumber,
		VoiceURL: app.url("/voice"), Speed: 1000, WebhookTimeout: 5 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	sim, err := twiliosim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(sim.Handler())
	tw, err := telephony.NewRestClient(api.URL, testAccount, testAccount, testToken, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		api.Close()
		sim.Close()
	})
	return &harness{t: t, app: app, sim: sim, api: api, tw: tw}
}

// placeInbound places a customer call from +15551230001 to the number.
func (h *harness) placeInbound() string {
	h.t.Helper()
	sid, err := h.sim.PlaceInbound("+15551230001", "", "")
	if err != nil {
		h.t.Fatal(err)
	}
	return sid
}

// must fails the test on an error from a simulated party's action.
func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// waitState waits until cond holds for the simulator's state.
func (h *harness) waitState(what string, cond func(twiliosim.State) bool) twiliosim.State {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := h.sim.WaitFor(ctx, cond)
	if err != nil {
		h.t.Fatalf("timed out waiting for %s; state: %+v", what, st)
	}
	return st
}

func (h *harness) waitCall(sid, what string, cond func(twiliosim.CallState) bool) twiliosim.CallState {
	h.t.Helper()
	st := h.waitState(what, func(st twiliosim.State) bool {
		c, ok := st.Call(sid)
		return ok && cond(c)
	})
	c, _ := st.Call(sid)
	return c
}

func (h *harness) waitStatus(sid, status string) twiliosim.CallState {
	h.t.Helper()
	return h.waitCall(sid, "call "+sid+" "+status, func(c twiliosim.CallState) bool { return c.Status == status })
}

func (h *harness) waitConference(name, what string, cond func(twiliosim.ConferenceState) bool) twiliosim.ConferenceState {
	h.t.Helper()
	st := h.waitState(what, func(st twiliosim.State) bool {
		c, ok := st.Conference(name)
		return ok && cond(c)
	})
	c, _ := st.Conference(name)
	return c
}

// ringingClient waits for a call ringing client:identity and returns its sid.
func (h *harness) ringingClient(identity string) string {
	h.t.Helper()
	var sid string
	h.waitState("a call ringing "+identity, func(st twiliosim.State) bool {
		for _, c := range st.Calls {
			if c.To == "client:"+identity && c.Status == twiliosim.StatusRinging {
				sid = c.SID
				return true
			}
		}
		return false
	})
	return sid
}

// control posts to the simulator's control API.
func (h *harness) control(path string, form url.Values) *http.Response {
	h.t.Helper()
	resp, err := http.Post(h.api.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// keepTalking is TwiML that answers a call and keeps it going until
// something else ends it.
const keepTalking = `<Response><Play loop="0">https://example.com/keep-talking.mp3</Play></Response>`

func hearingContains(c twiliosim.CallState, s string) bool { return strings.Contains(c.Hearing, s) }
