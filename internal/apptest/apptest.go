// Package apptest runs the real application for tests: simulator mode, a
// database of its own (SQLite, or PostgreSQL when WT_TEST_POSTGRES names a
// server), on a loopback port, driven over real HTTP.
package apptest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/app"
	"github.com/warmtransfer/warmtransfer/internal/config"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// WaitLimit bounds every wait in these tests; nothing sleeps.
const WaitLimit = raceSlowdown * 15 * time.Second

// Env is one running application.
type Env struct {
	T   testing.TB
	App *app.App
	// URL is the public base URL (WT_PUBLIC_URL): what Twilio, the
	// simulator and the tests call. Behind the proxy it is the proxy's.
	URL string
	// ListenURL is the address the app itself listens on; it differs
	// from URL only behind the proxy.
	ListenURL string
	Sim       *twiliosim.Sim
	proxy     *proxy
	stop      context.CancelFunc
	done      chan error
}

// Options tune the environment.
type Options struct {
	// RingTimeout is how long agents' phones ring (default 20 s).
	RingTimeout time.Duration
	// DatabaseURL overrides the test database.
	DatabaseURL string
	// Log, when set, receives the app's log (text, debug level and up); it
	// must be safe for concurrent writes.
	Log io.Writer
	// SignInLimits overrides the sign-in rate limits and their clock.
	SignInLimits handlers.SignInLimits
	// WrapUp is the agents' wrap-up time after a call (default none).
	WrapUp time.Duration
	// MaxMissedOffers sets agents away after that many missed offers in a
	// row (default never, so tests that decline calls keep their agents).
	MaxMissedOffers int
	// Timezone is the contact center's time zone (WT_TIMEZONE; UTC when
	// empty).
	Timezone string
	// BehindProxy puts a reverse proxy in front of the app, as a
	// deployment does: WT_PUBLIC_URL is the proxy's address, the app
	// listens on another, and the proxy sends the app the Host header of
	// the app's own address. Every URL the app gives Twilio must then be
	// built from WT_PUBLIC_URL, since the Host header names the wrong
	// place. The proxy records the REST requests it passes to the
	// simulator (see ProxiedREST).
	BehindProxy bool
}

// Start runs the application until the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dbURL := opts.DatabaseURL
	if dbURL == "" {
		dbURL = testdb.URL(t)
	}
	args := []string{
		"-addr", ln.Addr().String(), "-database-url", dbURL,
		"-wrap-up", opts.WrapUp.String(), "-max-missed-offers", strconv.Itoa(opts.MaxMissedOffers),
	}
	if opts.Timezone != "" {
		args = append(args, "-timezone", opts.Timezone)
	}
	var px *proxy
	if opts.BehindProxy {
		if px, err = startProxy(ln.Addr().String()); err != nil {
			ln.Close()
			t.Fatal(err)
		}
		args = append(args, "-public-url", px.url)
	}
	cfg, err := config.Load(args, func(string) string { return "" })
	if err != nil {
		ln.Close()
		px.close()
		t.Fatal(err)
	}
	var appOpts []app.Option
	appOpts = append(appOpts, app.WithSimSpeed(200))
	if opts.RingTimeout > 0 {
		appOpts = append(appOpts, app.WithRingTimeout(opts.RingTimeout))
	}
	appOpts = append(appOpts, app.WithSignInLimits(opts.SignInLimits))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// WT_TEST_LOG=debug|info|warn|error shows the app's log.
	if lvl := os.Getenv("WT_TEST_LOG"); lvl != "" {
		var level slog.Level
		_ = level.UnmarshalText([]byte(lvl))
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	if opts.Log != nil {
		logger = slog.New(slog.NewTextHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := app.New(context.Background(), cfg, logger, appOpts...)
	if err != nil {
		ln.Close()
		px.close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	env := &Env{T: t, App: a, URL: cfg.PublicURL, ListenURL: "http://" + ln.Addr().String(), Sim: a.Sim, proxy: px, stop: stop, done: make(chan error, 1)}
	go func() { env.done <- a.Serve(ctx, ln) }()
	t.Cleanup(env.Stop)
	return env
}

// Stop shuts the application down and waits for it.
func (e *Env) Stop() {
	if e.stop == nil {
		return
	}
	e.stop()
	e.stop = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.T.Errorf("app.Serve: %v", err)
		}
	case <-time.After(WaitLimit):
		e.T.Errorf("the app did not shut down within %s", WaitLimit)
	}
	// After the app: its streams through the proxy have ended by now.
	if e.proxy != nil {
		e.proxy.close()
	}
	_ = e.App.Close()
}

// AddAgent creates an agent (or manager) with a known password.
func (e *Env) AddAgent(identity, name string, role models.Role) {
	e.T.Helper()
	if err := app.UpsertAgent(context.Background(), e.App.DB, identity, name, role, Password(identity)); err != nil {
		e.T.Fatal(err)
	}
}

// Password is the password AddAgent gives an identity.
func Password(identity string) string { return identity + "-password" }

// Client is one person's browser session: a cookie jar and the page's
// CSRF token.
type Client struct {
	env      *Env
	Identity string
	HTTP     *http.Client
	CSRF     string
}

// SignIn signs identity in through the sign-in form, as a browser would.
func (e *Env) SignIn(identity string) *Client {
	e.T.Helper()
	jar, _ := cookiejar.New(nil)
	c := &Client{env: e, Identity: identity, HTTP: &http.Client{Jar: jar, Timeout: WaitLimit}}
	doc := c.page("/signin")
	token, _ := doc.Find(`input[name="csrf"]`).Attr("value")
	resp, err := c.HTTP.PostForm(e.URL+"/signin", url.Values{"identity": {identity}, "password": {Password(identity)}, "csrf": {token}})
	if err != nil {
		e.T.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.HasSuffix(resp.Request.URL.Path, "/signin") {
		e.T.Fatalf("signing in %s: %d at %s", identity, resp.StatusCode, resp.Request.URL)
	}
	c.CSRF = CSRFFromPage(c.page("/"))
	if c.CSRF == "" {
		e.T.Fatalf("no CSRF token on %s's page", identity)
	}
	return c
}

// CSRFFromPage reads the token htmx sends with every request.
func CSRFFromPage(doc *goquery.Document) string {
	raw, _ := doc.Find("body").Attr("hx-headers")
	var h map[string]string
	_ = json.Unmarshal([]byte(raw), &h)
	return h["X-CSRF-Token"]
}

func (c *Client) page(path string) *goquery.Document {
	c.env.T.Helper()
	resp, err := c.HTTP.Get(c.env.URL + path)
	if err != nil {
		c.env.T.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		c.env.T.Fatal(err)
	}
	return doc
}

// Page fetches a page and parses it.
func (c *Client) Page(path string) *goquery.Document { return c.page(path) }

// Post sends an htmx-style form POST with the CSRF header and returns the
// status and body.
func (c *Client) Post(path string, form url.Values) (int, string) {
	c.env.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.env.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", c.CSRF)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.env.T.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// PlaceCall is a customer dialling the number, through the simulator's
// control API over HTTP. It returns the customer's CallSid.
func (e *Env) PlaceCall(from string) string {
	e.T.Helper()
	resp, err := http.PostForm(e.URL+"/sim/calls", url.Values{"From": {from}})
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ SID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		e.T.Fatalf("placing a call: %d %v", resp.StatusCode, err)
	}
	return out.SID
}

// SimAction is a phone or customer acting on a call: accept, reject,
// hangup, ring-out.
func (e *Env) SimAction(sid, action string) {
	e.T.Helper()
	resp, err := http.Post(e.URL+"/sim/calls/"+sid+"/"+action, "", nil)
	if err != nil {
		e.T.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.T.Fatalf("%s %s: status %d", action, sid, resp.StatusCode)
	}
}

// WaitSim waits until cond holds for the simulator's state.
func (e *Env) WaitSim(what string, cond func(twiliosim.State) bool) twiliosim.State {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	st, err := e.Sim.WaitFor(ctx, cond)
	if err != nil {
		e.T.Fatalf("timed out waiting for %s", what)
	}
	return st
}

// Ringing waits for a call ringing identity's phone and returns its sid.
func (e *Env) Ringing(identity string) string {
	e.T.Helper()
	var sid string
	e.WaitSim("a call ringing "+identity, func(st twiliosim.State) bool {
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

// WaitDB polls the database until cond holds; the app commits before it
// answers Twilio, so this settles quickly.
func (e *Env) WaitDB(what string, cond func(ctx context.Context) (bool, error)) {
	e.T.Helper()
	deadline := time.NewTimer(WaitLimit)
	defer deadline.Stop()
	// Polling with a deadline: the database has no change feed to wait on.
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		ok, err := cond(context.Background())
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			e.T.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-poll.C:
		case <-deadline.C:
			e.T.Fatalf("timed out waiting for %s", what)
		}
	}
}

// NewJar returns an empty cookie jar, a fresh browser's.
func NewJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}

// PostRaw sends body exactly as given, with the CSRF header, for requests
// a form encoder could not produce (a broken percent-encoding, say).
func (c *Client) PostRaw(path, contentType, body string) (int, string) {
	c.env.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.env.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", c.CSRF)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.env.T.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// WaitSettled waits until n conferences, each a customer and one agent
// who joined them, have had every status callback applied: the simulator
// has recorded the answer to both participant-join callbacks of each, and
// the database holds the three receipts of each (both joins and
// conference-start, which the simulator sends after them). The simulator
// records a request only once the app has answered it, so after this no
// callback of theirs is in flight and the state stays as it is until a
// test changes it. The customer's wait-URL fetch is not waited for: it
// never happens when the agent joined first, and is recorded late when the
// conference's start cuts it short; Snapshot leaves those fetches out.
func (e *Env) WaitSettled(n int) {
	e.T.Helper()
	// Polled: the simulator records a delivery without announcing a
	// change of state, so WaitSim would not wake up for it.
	e.WaitDB(strconv.Itoa(2*n)+" participant-join callbacks answered and "+strconv.Itoa(3*n)+" conference callbacks applied", func(ctx context.Context) (bool, error) {
		joins := 0
		for _, c := range e.Sim.State().Calls {
			for _, w := range Requests(c) {
				if w.Params["StatusCallbackEvent"] == "participant-join" {
					joins++
				}
			}
		}
		if joins != 2*n {
			return false, nil
		}
		receipts, err := e.App.DB.NewSelect().Table("webhook_receipts").Count(ctx)
		return receipts == int64(3*n), err
	})
}

// WaitRequest waits until the simulator has recorded a request it made
// for the call to path, and returns the first. Polled: the simulator
// records a request once the app has answered it, without announcing a
// change of state, so a test that saw what the answer caused (an agent
// rung) may still be ahead of the record.
func (e *Env) WaitRequest(callSID, path string) twiliosim.WebhookRecord {
	e.T.Helper()
	var rec twiliosim.WebhookRecord
	e.WaitDB("the simulator's record of "+path+" for "+callSID, func(context.Context) (bool, error) {
		c, _ := e.Sim.State().Call(callSID)
		for _, w := range Requests(c) {
			if u, err := url.Parse(w.URL); err == nil && u.Path == path {
				rec = w
				return true, nil
			}
		}
		return false, nil
	})
	return rec
}
