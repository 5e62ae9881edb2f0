package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

func noEnv(string) string { return "" }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestSimulatorModeRingsTheSignedInAgent is the README's promise: run the
// app with no Twilio settings, sign in, place a call with curl, and the
// signed-in agent's simulated phone rings.
func TestSimulatorModeRingsTheSignedInAgent(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	args := []string{"-addr", addr, "-database-url", testdb.URL(t)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, stdout := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, noEnv, strings.NewReader(""), stdout, io.Discard)
		stdout.Close()
	}()

	// Read the printed demo accounts.
	passwords := map[string]string{}
	account := regexp.MustCompile(`^\s+(\w+)\s+(agent|manager)\s+password (\S+)`)
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if m := account.FindStringSubmatch(lines.Text()); m != nil {
			passwords[m[1]] = m[3]
		}
		if len(passwords) == 4 {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if passwords["alice"] == "" || passwords["maria"] == "" {
		t.Fatalf("demo accounts not printed: %v", passwords)
	}

	signInAlice(t, base, passwords["alice"])

	// curl -X POST localhost:8080/sim/calls -d From=+15551230001
	resp, err := http.PostForm(base+"/sim/calls", url.Values{"From": {"+15551230001"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("placing the call: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st struct {
			Calls []struct{ To, Status string } `json:"calls"`
		}
		resp, err := http.Get(base + "/sim/state")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		ringing := false
		for _, c := range st.Calls {
			ringing = ringing || (c.To == "client:alice" && c.Status == "ringing")
		}
		if ringing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's phone never rang: %+v", st.Calls)
		}
		poll := time.NewTimer(20 * time.Millisecond) // polling with a deadline
		<-poll.C
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the app did not shut down on cancel")
	}
}

func TestAgentAdd(t *testing.T) {
	dbURL := testdb.URL(t)
	var out strings.Builder
	err := run(context.Background(), []string{"agent", "add", "-identity", "dana", "-name", "Dana Director", "-role", "manager", "-database-url", dbURL},
		noEnv, strings.NewReader("correct horse battery\n"), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	db, err := models.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := models.AgentByIdentity(context.Background(), db, "dana")
	if err != nil {
		t.Fatal(err)
	}
	if a.Role != models.RoleManager || a.Name != "Dana Director" || !auth.CheckPassword(a.PasswordHash, "correct horse battery") {
		t.Fatalf("agent = %+v", a)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"no identity", []string{"agent", "add", "-name", "X", "-password", "longenough", "-database-url", dbURL}},
		{"bad identity", []string{"agent", "add", "-identity", "no spaces", "-name", "X", "-password", "longenough", "-database-url", dbURL}},
		{"bad role", []string{"agent", "add", "-identity", "x", "-name", "X", "-role", "admin", "-password", "longenough", "-database-url", dbURL}},
		{"short password", []string{"agent", "add", "-identity", "x", "-name", "X", "-password", "short", "-database-url", dbURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(context.Background(), tt.args, noEnv, strings.NewReader(""), io.Discard, io.Discard); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestHelpAndHalfConfiguration(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"-h"}, noEnv, nil, &out, io.Discard); err == nil {
		t.Fatal("-h did not return ErrHelp")
	}
	for _, want := range []string{"WT_ADDR", "WT_PUBLIC_URL", "WT_DATABASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_API_URL", "agent add"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %s", want)
		}
	}
	env := map[string]string{"TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TWILIO_AUTH_TOKEN") || !strings.Contains(err.Error(), "TWILIO_NUMBER") {
		t.Fatalf("half a Twilio configuration: %v", err)
	}
}

// environWithout is the test's environment minus every variable with one
// of the prefixes, so the binary's configuration is the test's alone.
func environWithout(prefixes ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// sseStream reads a Server-Sent Events stream: each event's name and data
// go to events, and ended is closed when the stream ends.
type sseStream struct {
	events chan [2]string
	ended  chan struct{}
}

func openSSE(t *testing.T, client *http.Client, target string) *sseStream {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", target, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{events: make(chan [2]string, 256), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		var name string
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if name != "" || len(data) > 0 {
					select {
					case s.events <- [2]string{name, strings.Join(data, "\n")}:
					default: // nobody reads this stream's events
					}
				}
				name, data = "", nil
			case strings.HasPrefix(line, "event: "):
				name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[6:])
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// TestBinaryShutsDownWithStreamsOpen runs the real binary as a newcomer
// would: built, started with no Twilio settings (simulator mode), an agent
// signed in with the printed demo account, their console and their
// simulated phone streaming, a call placed exactly as the README's curl
// command sends it. The phone rings; then SIGTERM, with the streams still
// open, ends the process cleanly (exit 0) and promptly: the app must end
// its streams itself, or http.Server.Shutdown waits for them until its
// 10 s timeout and the process exits with an error.
func TestBinaryShutsDownWithStreamsOpen(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "warmtransfer")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	cmd := exec.Command(bin)
	// No TWILIO_* at all: simulator mode. The SQLite file is the test's.
	cmd.Env = append(environWithout("TWILIO_", "WT_"),
		"WT_ADDR="+addr, "WT_DATABASE_URL=sqlite:"+filepath.Join(t.TempDir(), "wt.db"))
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Only if the test failed before the process ended.
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("the binary's log:\n%s", stderr.String())
		}
	})

	// The printed demo accounts; the server is up once they are printed
	// (it listens before it prints).
	passwords := map[string]string{}
	account := regexp.MustCompile(`^\s+(\w+)\s+(agent|manager)\s+password (\S+)`)
	lines := bufio.NewScanner(stdout)
	for len(passwords) < 4 && lines.Scan() {
		if m := account.FindStringSubmatch(lines.Text()); m != nil {
			passwords[m[1]] = m[3]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if passwords["alice"] == "" {
		t.Fatalf("no demo account printed for alice: %v", passwords)
	}

	jar := signInAlice(t, base, passwords["alice"])

	// Streams have no time limit: they stay open until the server ends them.
	console := openSSE(t, &http.Client{Jar: jar}, base+"/events")
	phone := openSSE(t, &http.Client{}, base+"/sim/phones/alice/events")

	// curl -X POST localhost:8080/sim/calls -d From=+15551230001 sends the
	// body as it is: the '+' is not encoded, and form decoding reads it as
	// a space.
	resp, err := http.Post(base+"/sim/calls", "application/x-www-form-urlencoded", strings.NewReader("From=+15551230001"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("placing the call as curl -d From=+15551230001 does: %d %s", resp.StatusCode, body)
	}
	deadline := time.After(apptest.WaitLimit)
	for rang := false; !rang; {
		select {
		case ev := <-phone.events:
			var pe struct{ Type, To string }
			_ = json.Unmarshal([]byte(ev[1]), &pe)
			rang = ev[0] == "incoming" && pe.To == "client:alice"
		case <-phone.ended:
			t.Fatal("alice's phone stream ended before it rang")
		case <-deadline:
			t.Fatal("alice's phone never rang")
		}
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Logf("the binary exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("the binary exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(apptest.WaitLimit):
		t.Fatalf("the binary still ran %s after SIGTERM", apptest.WaitLimit)
	}
	for name, s := range map[string]*sseStream{"console": console, "phone": phone} {
		select {
		case <-s.ended:
		case <-time.After(apptest.WaitLimit):
			t.Errorf("alice's %s stream was still open after the process exited", name)
		}
	}
}

// lockedWriter makes a writer safe for the process's output copier and the
// test reading it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// signInAlice signs alice in through the sign-in form with the password
// the app printed, as a browser would, and returns her cookies.
func signInAlice(t *testing.T, base, password string) http.CookieJar {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: apptest.WaitLimit}
	resp, err := browser.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	token, _ := doc.Find(`input[name="csrf"]`).Attr("value")
	resp, err = browser.PostForm(base+"/signin", url.Values{"identity": {"alice"}, "password": {password}, "csrf": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/agent" {
		t.Fatalf("signing in landed on %s", resp.Request.URL)
	}
	return jar
}
