package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/app"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "0123456789abcdef0123456789abcdef"
	apiKey     = "SK0123456789abcdef0123456789abcdef"
	apiSecret  = "fedcba9876543210fedcba9876543210"
	number     = "+15550100000"
	secret     = "a-session-secret-shared-by-every-instance-0123456789"
	waitLimit  = 20 * time.Second
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wt-faults-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "warmtransfer")
	build := exec.Command("go", "build", "-o", binary, "github.com/warmtransfer/warmtransfer/cmd/warmtransfer")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building warmtransfer:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// twilio is the simulated Twilio every instance talks to.
type twilio struct {
	sim *twiliosim.Sim
	srv *httptest.Server
}

func newTwilio(t *testing.T) *twilio {
	t.Helper()
	sim, err := twiliosim.New(twiliosim.Config{
		AccountSID: accountSID, AuthToken: authToken, APIKey: apiKey, APISecret: apiSecret,
		Number: number, VoiceURL: "http://127.0.0.1:1/unset", Speed: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return &twilio{sim: sim, srv: srv}
}

func (tw *twilio) waitState(t *testing.T, what string, cond func(twiliosim.State) bool) twiliosim.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := tw.sim.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
	return st
}

func (tw *twilio) ringing(t *testing.T, identity string) string {
	t.Helper()
	var sid string
	tw.waitState(t, identity+"'s phone ringing", func(st twiliosim.State) bool {
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

// instance is one warmtransfer process.
type instance struct {
	t      *testing.T
	name   string
	addr   string
	URL    string
	env    []string
	cmd    *exec.Cmd
	logs   *apptest.LockedBuffer
	exited chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newInstance prepares (but does not start) an instance on dbURL.
func newInstance(t *testing.T, name, dbURL string, tw *twilio) *instance {
	addr := freeAddr(t)
	in := &instance{t: t, name: name, addr: addr, URL: "http://" + addr, logs: &apptest.LockedBuffer{}}
	in.env = append(os.Environ(),
		"WT_ADDR="+addr, "WT_PUBLIC_URL="+in.URL, "WT_DATABASE_URL="+dbURL, "WT_SESSION_SECRET="+secret,
		"TWILIO_ACCOUNT_SID="+accountSID, "TWILIO_AUTH_TOKEN="+authToken, "TWILIO_API_KEY="+apiKey,
		"TWILIO_API_SECRET="+apiSecret, "TWILIO_NUMBER="+number, "TWILIO_API_URL="+tw.srv.URL,
	)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("WT_FAULTS_DUMP") != "" && in.cmd != nil {
			// A goroutine dump says where a stuck instance waits.
			_ = in.cmd.Process.Signal(syscall.SIGQUIT)
			<-in.exited
			in.cmd = nil
		}
		in.kill()
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, in.logs.String())
		}
	})
	return in
}

// start runs the process and waits until it answers /readyz.
func (in *instance) start() {
	in.t.Helper()
	in.cmd = exec.Command(binary)
	in.cmd.Env = in.env
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(in.cmd, in.exited)
	deadline := time.Now().Add(waitLimit)
	for {
		resp, err := http.Get(in.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("%s did not start:\n%s", in.name, in.logs.String())
		}
		select {
		case <-in.exited:
			in.t.Fatalf("%s exited at start:\n%s", in.name, in.logs.String())
		case <-time.After(50 * time.Millisecond): // polling with a deadline
		}
	}
}

// kill ends the process with SIGKILL: no shutdown, nothing flushed.
func (in *instance) kill() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	_ = in.cmd.Process.Kill()
	<-in.exited
	in.cmd = nil
}

func addAgents(t *testing.T, dbURL string, agents ...[3]string) {
	t.Helper()
	db, err := models.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := app.UpsertAgent(context.Background(), db, a[0], a[1], models.Role(a[2]), a[0]+"-password"); err != nil {
			t.Fatal(err)
		}
	}
}

// browser is one person's session against an instance's URL.
type browser struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func signIn(t *testing.T, base, identity string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: base, http: &http.Client{Jar: jar, Timeout: waitLimit}}
	token, _ := b.page("/signin").Find(`input[name="csrf"]`).Attr("value")
	resp, err := b.http.PostForm(base+"/signin", url.Values{"identity": {identity}, "password": {identity + "-password"}, "csrf": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b.loadCSRF()
	return b
}

// at returns the same session pointed at another instance (cookies are
// signed with the shared secret, so they work on every instance).
func (b *browser) at(base string) *browser {
	c := *b
	c.base = base
	c.http = &http.Client{Jar: b.http.Jar, Timeout: waitLimit}
	return &c
}

func (b *browser) page(path string) *goquery.Document {
	b.t.Helper()
	resp, err := b.http.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return doc
}

func (b *browser) loadCSRF() {
	raw, _ := b.page("/").Find("body").Attr("hx-headers")
	var h map[string]string
	_ = json.Unmarshal([]byte(raw), &h)
	b.csrf = h["X-CSRF-Token"]
	if b.csrf == "" {
		b.t.Fatal("no CSRF token after signing in")
	}
}

func (b *browser) post(path string, form url.Values) int {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", b.csrf)
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// sse is an open /events stream.
type sse struct {
	events chan sseEvent
	cancel context.CancelFunc
	last   int64
	mu     sync.Mutex
	// shown is each fragment as the test has read it last: what the page
	// shows at that point.
	shown map[string]string
}

type sseEvent struct {
	ID          int64
	Event, Data string
}

func (b *browser) stream(lastID int64) *sse {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/events", nil)
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := (&http.Client{Jar: b.http.Jar}).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		b.t.Fatalf("opening the event stream: %v", err)
	}
	s := &sse{events: make(chan sseEvent, 4096), cancel: cancel, last: lastID, shown: map[string]string{}}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		var ev sseEvent
		var data []string
		frags := map[string]string{} // the page's fragments, patched as htmx does
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					ev.Data = strings.Join(data, "\n")
					s.mu.Lock()
					if ev.ID > s.last {
						s.last = ev.ID
					}
					s.mu.Unlock()
					for _, e := range apptest.ApplyPatch(frags, apptest.SSEEvent(ev)) {
						s.events <- sseEvent(e)
					}
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "id: "):
				ev.ID, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[6:])
			}
		}
	}()
	b.t.Cleanup(cancel)
	return s
}

// until reads events until one satisfies cond.
func (s *sse) until(t *testing.T, what string, cond func(sseEvent) bool) []sseEvent {
	t.Helper()
	var got []sseEvent
	deadline := time.After(waitLimit)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended before %s", what)
			}
			got = append(got, ev)
			s.shown[ev.Event] = ev.Data
			if cond(ev) {
				return got
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// showing waits until the page shows the fragment of event as cond wants
// it: already, or after the events to come.
func (s *sse) showing(t *testing.T, what, event string, cond func(data string) bool) {
	t.Helper()
	if data, ok := s.shown[event]; ok && cond(data) {
		return
	}
	s.until(t, what, func(ev sseEvent) bool { return ev.Event == event && cond(ev.Data) })
}

func (s *sse) lastID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func openDB(t *testing.T, dbURL string) *bun.DB {
	t.Helper()
	db, err := models.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitDB polls the database with a deadline until cond holds.
func waitDB(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ok, err := cond(context.Background())
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, err)
		}
		poll := time.NewTimer(20 * time.Millisecond) // polling with a deadline
		<-poll.C
	}
}

// postSigned sends a webhook to sendURL signed, as Twilio signs, over
// signedURL (the address Twilio was given) and returns the status.
func postSigned(sendURL, signedURL string, form url.Values) (int, error) {
	req, err := http.NewRequest(http.MethodPost, sendURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twiliosig.Header, twiliosig.Sign(authToken, signedURL, form))
	resp, err := (&http.Client{Timeout: waitLimit}).Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// rings counts the calls Twilio placed to each browser phone: one per
// offer, so an agent rung twice for one offer shows as one ring too many.
func rings(st twiliosim.State) map[string]int {
	n := map[string]int{}
	for _, c := range st.Calls {
		if identity, ok := strings.CutPrefix(c.To, "client:"); ok {
			n[identity]++
		}
	}
	return n
}

// html parses a fragment an event carried.
func html(t *testing.T, data string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// presences reads each agent's presence from the board's agent rows.
func presences(doc *goquery.Document) map[string]string {
	got := map[string]string{}
	doc.Find(`tr[data-testid^="agent-row-"]`).Each(func(_ int, row *goquery.Selection) {
		id, _ := row.Attr("data-testid")
		p, _ := row.Attr("data-presence")
		got[strings.TrimPrefix(id, "agent-row-")] = p
	})
	return got
}

// logState logs what Twilio, the balancer (when there is one) and
// PostgreSQL (when db is on it) saw, for a failed test's reader.
func logState(t *testing.T, tw *twilio, lb *balancer, db *bun.DB) {
	st := tw.sim.State()
	for _, c := range st.Calls {
		t.Logf("sim call %s %s->%s %s conf=%s hearing=%q", c.SID, c.From, c.To, c.Status, c.Conference, c.Hearing)
	}
	for _, c := range st.Conferences {
		t.Logf("sim conference %s %s %d participants", c.FriendlyName, c.Status, len(c.Participants))
	}
	for _, n := range st.Notifications {
		t.Logf("sim notification %s %d %s %s", n.CallSID, n.ErrorCode, n.Message, n.URL)
	}
	if lb != nil {
		for _, s := range lb.requests() {
			t.Logf("balancer: %s %s call %s -> %d", s.Instance, s.Path, s.CallSID, s.Status)
		}
	}
	if db == nil || db.Dialect().Name().String() != "pg" {
		return
	}
	rows, err := db.QueryContext(context.Background(), `SELECT pid, coalesce(state,''), coalesce(wait_event_type,''), coalesce(wait_event,''), left(query, 160) FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		var state, wt, we, q string
		_ = rows.Scan(&pid, &state, &wt, &we, &q)
		t.Logf("pg %d %s %s/%s %s", pid, state, wt, we, q)
	}
}
