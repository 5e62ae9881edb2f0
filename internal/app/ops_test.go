package app_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// logBuffer collects the app's log; the app writes from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// accessLines are the access log's lines.
func (b *logBuffer) accessLines() []string {
	var lines []string
	for line := range strings.SplitSeq(b.String(), "\n") {
		if strings.Contains(line, " msg=request ") {
			lines = append(lines, line)
		}
	}
	return lines
}

// send does one request and returns the response with its body read.
func send(t *testing.T, client *http.Client, method, target string, header http.Header, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRequestID(t *testing.T) {
	var log logBuffer
	env := apptest.Start(t, apptest.Options{Log: &log})
	generated := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for _, tt := range []struct {
		name string
		sent string
		kept bool
	}{
		{name: "none sent: one is generated"},
		{name: "another without: a different one", sent: ""},
		{name: "a proxy's id is kept", sent: "lb-7f3a.req_01", kept: true},
		{name: "64 characters are kept", sent: strings.Repeat("a", 64), kept: true},
		{name: "65 characters are replaced", sent: strings.Repeat("a", 65)},
		{name: "a space is replaced", sent: "a b"},
		{name: "markup is replaced", sent: "<script>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.sent != "" {
				h.Set("X-Request-Id", tt.sent)
			}
			resp, _ := send(t, nil, http.MethodGet, env.URL+"/signin", h, nil)
			id := resp.Header.Get("X-Request-Id")
			switch {
			case tt.kept && id != tt.sent:
				t.Fatalf("X-Request-Id = %q, want the one sent, %q", id, tt.sent)
			case !tt.kept && (!generated.MatchString(id) || seen[id]):
				t.Fatalf("X-Request-Id = %q, want a new 16-hex-digit id", id)
			}
			seen[id] = true
			// The line is written once the response has been sent.
			env.WaitDB("a log line with request_id="+id, func(context.Context) (bool, error) {
				return strings.Contains(log.String(), " request_id="+id+" "), nil
			})
		})
	}
}

// TestLogsHideNumbersQueriesAndSecrets runs a call from a phone number,
// adds a number and a token to a URL's path and query, and reads the whole
// log: no number, query string or secret is in it, and every request has
// an access line naming its route.
func TestLogsHideNumbersQueriesAndSecrets(t *testing.T) {
	var log logBuffer
	env := apptest.Start(t, apptest.Options{Log: &log})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")

	customer := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "accept")
	call := callBySID(t, env, customer)
	env.WaitDB("the call with alice", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, call.ID)
		return err == nil && c.State == models.CallWithAgent, err
	})
	send(t, nil, http.MethodGet, env.URL+"/signin?phone=%2B15559876543&token=secret-in-query", nil, nil)
	send(t, nil, http.MethodGet, env.URL+"/static/css/app.css?v=%2B15559876543", nil, nil)
	send(t, alice.HTTP, http.MethodGet, env.URL+"/calls/+15559876543?caller=%2B15559876543", nil, nil)
	env.SimAction(customer, "hangup")
	env.WaitDB("the call ended", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, call.ID)
		return err == nil && c.State == models.CallEnded, err
	})
	// An access line is written once its response has been sent, so the
	// simulator can move on before the line exists: wait for the webhooks'.
	env.WaitDB("the webhooks' access lines", func(context.Context) (bool, error) {
		all := strings.Join(log.accessLines(), "\n")
		return strings.Contains(all, "route=/conference/connect/client status=200") &&
			strings.Contains(all, "route=/conference/connect/agent status=200"), nil
	})

	all := log.String()
	for _, secret := range []struct{ name, value string }{
		{"the caller's number", "5551230001"},
		{"a number in a URL", "5559876543"},
		{"a query string's token", "secret-in-query"},
		{"alice's password", apptest.Password("alice")},
		{"the Twilio auth token", env.App.AuthToken},
		{"the session secret", env.App.Config.SessionSecret},
	} {
		if strings.Contains(all, secret.value) {
			t.Errorf("the log contains %s (%s)", secret.name, secret.value)
		}
	}
	lines := log.accessLines()
	for _, line := range lines {
		if strings.Contains(line, "?") {
			t.Errorf("an access line has a query string: %s", line)
		}
		for _, field := range []string{" method=", " route=", " status=", " duration=", " bytes=", " request_id=", " remote_ip=127.0.0.1"} {
			if !strings.Contains(line, field) {
				t.Errorf("access line lacks %q: %s", field, line)
			}
		}
	}
	for _, want := range []string{
		"level=INFO msg=request method=POST route=/conference/connect/client status=200",
		"level=INFO msg=request method=POST route=/conference/connect/agent status=200",
		"level=INFO msg=request method=GET route=/signin status=200",
		"level=INFO msg=request method=GET route=/* status=404",
		"level=DEBUG msg=request method=GET route=/static/* status=200",
	} {
		if !strings.Contains(strings.Join(lines, "\n"), want) {
			t.Errorf("no access line %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

// strictCSP is the policy of every response in simulator mode but the
// simulator console's.
const strictCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"media-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func TestSecurityHeaders(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")
	htmx := http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {alice.CSRF}}
	browser := http.Header{"Accept": {"text/html"}}
	simConsoleCSP := strings.Replace(strictCSP, "style-src 'self'", "style-src 'self' 'unsafe-inline'", 1)

	for _, tt := range []struct {
		name       string
		client     *http.Client
		method     string
		path       string
		header     http.Header
		wantStatus int
		wantType   string
		wantCSP    string
	}{
		{name: "sign-in page", method: "GET", path: "/signin", wantStatus: 200, wantType: "text/html", wantCSP: strictCSP},
		{name: "agent console", client: alice.HTTP, method: "GET", path: "/agent", wantStatus: 200, wantType: "text/html", wantCSP: strictCSP},
		{name: "htmx fragment", client: alice.HTTP, method: "POST", path: "/presence?presence=away", header: htmx, wantStatus: 200, wantType: "text/html", wantCSP: strictCSP},
		{name: "JSON", client: alice.HTTP, method: "POST", path: "/token", header: htmx, wantStatus: 200, wantType: "application/json", wantCSP: strictCSP},
		{name: "error page", method: "GET", path: "/no-such-page", header: browser, wantStatus: 404, wantType: "text/html", wantCSP: strictCSP},
		{name: "htmx error", client: alice.HTTP, method: "POST", path: "/calls/999999/leave", header: htmx, wantStatus: 404, wantType: "text/plain", wantCSP: strictCSP},
		{name: "refused without CSRF", client: alice.HTTP, method: "POST", path: "/presence", wantStatus: 403, wantType: "text/plain", wantCSP: strictCSP},
		{name: "static file", method: "GET", path: "/static/css/app.css", wantStatus: 200, wantType: "text/css", wantCSP: strictCSP},
		{name: "health", method: "GET", path: "/healthz", wantStatus: 200, wantType: "text/plain", wantCSP: strictCSP},
		{name: "unsigned webhook", method: "POST", path: "/conference/connect/client", wantStatus: 403, wantType: "text/plain", wantCSP: strictCSP},
		{name: "simulated Twilio REST API", method: "GET", path: "/2010-04-01/Accounts/AC00000000000000000000000000000000/Calls.json", wantStatus: 401, wantType: "application/json", wantCSP: strictCSP},
		{name: "simulator console", method: "GET", path: "/sim", wantStatus: 200, wantType: "text/html", wantCSP: simConsoleCSP},
		{name: "simulator state", method: "GET", path: "/sim/state", wantStatus: 200, wantType: "application/json", wantCSP: simConsoleCSP},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := send(t, tt.client, tt.method, env.URL+tt.path, tt.header, nil)
			if resp.StatusCode != tt.wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) {
				t.Fatalf("%s %s: %d %s, want %d %s: %.200s", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantStatus, tt.wantType, body)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != tt.wantCSP {
				t.Errorf("Content-Security-Policy = %q, want %q", got, tt.wantCSP)
			}
			for name, want := range map[string]string{
				"X-Content-Type-Options":    "nosniff",
				"Referrer-Policy":           "same-origin",
				"X-Frame-Options":           "DENY",
				"Permissions-Policy":        "microphone=(self), camera=(), geolocation=(), payment=()",
				"Strict-Transport-Security": "", // the test app is served over http
			} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// signInAttempt posts the sign-in form as a browser would (the form first,
// for its CSRF token) and returns the answer without following redirects.
func signInAttempt(t *testing.T, env *apptest.Env, client *http.Client, identity, password string) (*http.Response, string) {
	t.Helper()
	_, page := send(t, client, http.MethodGet, env.URL+"/signin", nil, nil)
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	token, _ := doc.Find(`input[name="csrf"]`).Attr("value")
	form := url.Values{"identity": {identity}, "password": {password}, "csrf": {token}}
	return send(t, client, http.MethodPost, env.URL+"/signin",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode()))
}

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestSignInRateLimit guesses passwords over HTTP, with limits of 3
// failures per identity per 15 minutes and 6 per address per minute on a
// clock the test moves: of six guesses at one identity sent at once, three
// are checked and three refused with 429; then even the right password is
// refused (unchecked), other identities are not, failures from one address
// lock the address, and each lock ends with its window.
func TestSignInRateLimit(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	env := apptest.Start(t, apptest.Options{SignInLimits: handlers.SignInLimits{
		IdentityFailures: 3, IdentityWindow: 15 * time.Minute,
		IPFailures: 6, IPWindow: time.Minute,
		Now: clock.Now,
	}})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	tooMany := regexp.MustCompile(`Too many attempts, try again in (\d+) seconds`)

	// attempt is one browser signing in; it returns the status and reports
	// a 429 without the right Retry-After or the page's message.
	attempt := func(t *testing.T, identity, password string, wantRetry int) (int, *http.Client) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, Timeout: apptest.WaitLimit, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, body := signInAttempt(t, env, browser, identity, password)
		retry := resp.Header.Get("Retry-After")
		if resp.StatusCode != http.StatusTooManyRequests {
			if retry != "" {
				t.Errorf("Retry-After %q on a %d", retry, resp.StatusCode)
			}
			return resp.StatusCode, browser
		}
		if want := strconv.Itoa(wantRetry); retry != want {
			t.Errorf("Retry-After = %q, want %s", retry, want)
		}
		if m := tooMany.FindStringSubmatch(body); m == nil || m[1] != retry {
			t.Errorf("the page does not say to retry in %s seconds: %.300s", retry, body)
		}
		return resp.StatusCode, browser
	}
	want := func(t *testing.T, identity, password string, wantStatus, wantRetry int) *http.Client {
		t.Helper()
		status, browser := attempt(t, identity, password, wantRetry)
		if status != wantStatus {
			t.Fatalf("signing in %s: status %d, want %d", identity, status, wantStatus)
		}
		return browser
	}
	signedIn := func(t *testing.T, browser *http.Client) bool {
		t.Helper()
		resp, _ := send(t, browser, http.MethodGet, env.URL+"/agent", nil, nil)
		return resp.StatusCode == http.StatusOK
	}
	const identityLock, ipLock = 15 * 60, 60

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"six guesses at once: three checked, three limited", func(t *testing.T) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			got := map[int]int{}
			for range 6 {
				wg.Go(func() {
					status, _ := attempt(t, "alice", "wrong", identityLock)
					mu.Lock()
					got[status]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if got[http.StatusUnauthorized] != 3 || got[http.StatusTooManyRequests] != 3 {
				t.Fatalf("statuses %v, want three 401 and three 429", got)
			}
		}},
		{"the right password is limited too", func(t *testing.T) {
			if browser := want(t, "alice", apptest.Password("alice"), http.StatusTooManyRequests, identityLock); signedIn(t, browser) {
				t.Fatal("a limited sign-in opened a session")
			}
		}},
		{"the identity's case does not matter", func(t *testing.T) {
			want(t, "ALICE", "wrong", http.StatusTooManyRequests, identityLock)
		}},
		{"another identity signs in from the same address", func(t *testing.T) {
			if browser := want(t, "bob", apptest.Password("bob"), http.StatusSeeOther, 0); !signedIn(t, browser) {
				t.Fatal("bob is not signed in")
			}
		}},
		{"three failures on made-up identities lock the address", func(t *testing.T) {
			for _, id := range []string{"guess1", "guess2", "guess3"} {
				want(t, id, "wrong", http.StatusUnauthorized, 0)
			}
			want(t, "bob", apptest.Password("bob"), http.StatusTooManyRequests, ipLock)
			want(t, "carol", "anything", http.StatusTooManyRequests, ipLock)
		}},
		{"a minute later the address may try again, alice may not", func(t *testing.T) {
			clock.Advance(time.Minute)
			want(t, "alice", apptest.Password("alice"), http.StatusTooManyRequests, identityLock-ipLock)
			want(t, "bob", apptest.Password("bob"), http.StatusSeeOther, 0)
		}},
		{"fifteen minutes later alice signs in", func(t *testing.T) {
			clock.Advance(14 * time.Minute)
			if browser := want(t, "alice", apptest.Password("alice"), http.StatusSeeOther, 0); !signedIn(t, browser) {
				t.Fatal("alice is not signed in")
			}
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			return
		}
	}
}

func TestReadyz(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	steps := []struct {
		name       string
		do         func(t *testing.T)
		wantStatus int
		wantBody   string
	}{
		{name: "migrated and reachable", do: func(*testing.T) {}, wantStatus: 200, wantBody: "ready"},
		{name: "a migration not applied", do: func(t *testing.T) {
			if _, err := env.App.DB.NewDelete().Table("bun_migrations").Where("1 = 1").Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, wantStatus: 503, wantBody: "not ready: database migrations not applied"},
		{name: "database closed", do: func(t *testing.T) {
			if err := env.App.DB.Close(); err != nil {
				t.Fatal(err)
			}
		}, wantStatus: 503, wantBody: "not ready: database unreachable"},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.do(t)
			resp, body := send(t, nil, http.MethodGet, env.URL+"/readyz", nil, nil)
			if resp.StatusCode != step.wantStatus || body != step.wantBody {
				t.Fatalf("/readyz: %d %q, want %d %q", resp.StatusCode, body, step.wantStatus, step.wantBody)
			}
			if resp, body := send(t, nil, http.MethodGet, env.URL+"/healthz", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("/healthz: %d %q; the process is up", resp.StatusCode, body)
			}
		})
	}
}

// scrapeMetrics reads /metrics (no session) into series -> value.
func scrapeMetrics(t *testing.T, env *apptest.Env) (map[string]float64, string) {
	t.Helper()
	resp, body := send(t, nil, http.MethodGet, env.URL+"/metrics", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series, body
}

// waitMetrics scrapes until want holds, polling with a deadline (the
// figures are read at scrape time; there is nothing to wait on).
func waitMetrics(t *testing.T, env *apptest.Env, what string, want map[string]float64) {
	t.Helper()
	deadline := time.NewTimer(apptest.WaitLimit)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		got, _ := scrapeMetrics(t, env)
		missing := ""
		for name, v := range want {
			if g, ok := got[name]; !ok || g != v {
				missing += "\n  " + name + " = " + strconv.FormatFloat(g, 'g', -1, 64) + ", want " + strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
		if missing == "" {
			return
		}
		select {
		case <-poll.C:
		case <-deadline.C:
			t.Fatalf("%s:%s", what, missing)
		}
	}
}

func TestMetrics(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)

	series, _ := scrapeMetrics(t, env)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := series[name]; !ok {
			t.Errorf("no %s: the runtime and process collectors are missing", name)
		}
	}
	waitMetrics(t, env, "an idle contact center", map[string]float64{
		"wt_active_calls": 0, "wt_waiting_calls": 0, "wt_sse_clients": 0,
		`wt_agents{presence="offline"}`: 2, `wt_agents{presence="available"}`: 0,
		`wt_transfers_total{outcome="completed"}`: 0, `wt_transfers_total{outcome="declined"}`: 0,
	})

	// Nobody is signed in: the caller waits in the queue.
	customer := env.PlaceCall("+15551230001")
	waitMetrics(t, env, "a queued call", map[string]float64{
		"wt_waiting_calls": 1, "wt_active_calls": 0,
		`wt_webhook_duration_seconds_count{route="/conference/connect/client"}`: 1,
	})
	call := callBySID(t, env, customer)

	// Alice signs in and is rung: still waiting, until she answers.
	alice := env.SignIn("alice")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitDB("the call with alice", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, call.ID)
		return err == nil && c.State == models.CallWithAgent, err
	})
	waitMetrics(t, env, "a call with an agent", map[string]float64{
		"wt_waiting_calls": 0, "wt_active_calls": 1,
		`wt_agents{presence="busy"}`: 1, `wt_agents{presence="offline"}`: 1,
		`wt_webhook_duration_seconds_count{route="/conference/connect/agent"}`: 1,
	})

	// Bob declines a transfer: one declined transfer.
	env.SignIn("bob")
	if status, body := alice.Post("/calls/"+strconv.FormatInt(call.ID, 10)+"/transfer", url.Values{"to": {"bob"}}); status != http.StatusOK {
		t.Fatalf("transfer: %d %s", status, body)
	}
	env.SimAction(env.Ringing("bob"), "reject")
	waitMetrics(t, env, "a declined transfer", map[string]float64{
		`wt_transfers_total{outcome="declined"}`: 1, `wt_transfers_total{outcome="completed"}`: 0, "wt_active_calls": 1,
	})

	// An open event stream counts while it is open.
	stream := alice.Stream(0)
	waitMetrics(t, env, "an open stream", map[string]float64{"wt_sse_clients": 1})
	stream.Close()
	waitMetrics(t, env, "the stream closed", map[string]float64{"wt_sse_clients": 0})

	series, body := scrapeMetrics(t, env)
	if series[`wt_webhook_duration_seconds_bucket{route="/conference/connect/client",le="+Inf"}`] != 1 {
		t.Errorf("the webhook histogram has no bucket for the customer's call:\n%s", body)
	}
	// The call, its offers, the transfer and the presence changes were
	// all written: every write is timed, its wait and its run.
	if runs, waits := series[`wt_db_write_seconds_count{phase="run"}`], series[`wt_db_write_seconds_count{phase="wait"}`]; runs < 5 || runs != waits {
		t.Errorf("write transactions timed: %v runs, %v waits; want the same number, at least 5:\n%s", runs, waits, body)
	}
	for _, secret := range []string{"5551230001", "alice", "Alice", "bob", customer, call.ConferenceName} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
}
