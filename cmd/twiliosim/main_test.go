package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/warmtransfer/warmtransfer/internal/telephony"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
)

const (
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testToken   = "0123456789abcdef0123456789abcdef"
	waitLimit   = 10 * time.Second
)

// syncBuffer collects output written while run serves.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHelpListsEveryFlagAndItsEnvironmentVariable(t *testing.T) {
	var out syncBuffer
	secretEnv := func(k string) string {
		if k == "TWILIO_AUTH_TOKEN" {
			return "supersecrettoken123"
		}
		return ""
	}
	err := run(context.Background(), []string{"-h"}, secretEnv, &out, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h = %v, want flag.ErrHelp (main exits 0)", err)
	}
	help := out.String()
	for _, want := range []string{
		"-addr", "TWILIOSIM_ADDR", "-account-sid", "TWILIO_ACCOUNT_SID", "-auth-token", "TWILIO_AUTH_TOKEN",
		"-number", "TWILIO_NUMBER", "-voice-url", "TWILIOSIM_VOICE_URL", "-voice-fallback-url", "TWILIOSIM_VOICE_FALLBACK_URL",
		"-status-callback", "TWILIOSIM_STATUS_CALLBACK",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("-h does not mention %s:\n%s", want, help)
		}
	}
	if strings.Contains(help, "supersecrettoken123") || !strings.Contains(help, "(secret)") {
		t.Errorf("-h shows the auth token:\n%s", help)
	}
	if strings.Contains(help, "listening") {
		t.Errorf("-h started the simulator:\n%s", help)
	}
}

func TestRunRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"number not E.164", []string{"-number", "5550100"}, nil, "-number"},
		{"number from the environment", nil, map[string]string{"TWILIO_NUMBER": "five"}, "-number"},
		{"voice URL not http", []string{"-voice-url", "ftp://example.com/voice"}, nil, "-voice-url"},
		{"fallback URL relative", []string{"-voice-fallback-url", "/fallback"}, nil, "-voice-fallback-url"},
		{"account SID with dashes", []string{"-account-sid", "AC-1"}, nil, "-account-sid"},
		{"empty auth token", []string{"-auth-token", ""}, nil, "-auth-token"},
		{"unknown flag", []string{"-port", "80"}, nil, "-port"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
		{"address that cannot be listened on", []string{"-addr", "256.0.0.1:0"}, nil, "256.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			var out syncBuffer
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tt.args...), getenv, &out, func(net.Addr) {
				t.Error("the simulator started with bad settings")
			})
			if err == nil || !strings.Contains(err.Error()+out.String(), tt.want) {
				t.Fatalf("run = %v (output %q), want an error naming %s", err, out.String(), tt.want)
			}
		})
	}
}

// app is the application the standalone simulator calls.
type app struct {
	srv      *httptest.Server
	voice    chan url.Values
	statuses chan url.Values
	bad      chan string
}

func newApp(t *testing.T) *app {
	a := &app{voice: make(chan url.Values, 4), statuses: make(chan url.Values, 4), bad: make(chan string, 4)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			a.bad <- r.URL.Path + ": " + err.Error()
			return
		}
		full, sig := "http://"+r.Host+r.URL.RequestURI(), r.Header.Get(twiliosig.Header)
		if !twiliosig.Valid(testToken, full, r.PostForm, sig) {
			a.bad <- r.URL.Path + " (twiliosig)"
		}
		// Twilio's own validator too, an implementation the simulator does
		// not sign with; it takes one value per parameter.
		params := map[string]string{}
		for k, vs := range r.PostForm {
			params[k] = strings.Join(vs, ",")
		}
		validator := twclient.NewRequestValidator(testToken)
		if !validator.Validate(full, params, sig) {
			a.bad <- r.URL.Path + " (twilio-go)"
		}
		switch r.URL.Path {
		case "/voice":
			a.voice <- r.PostForm
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, `<Response><Hangup/></Response>`)
		case "/status":
			a.statuses <- r.PostForm
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func receive(t *testing.T, a *app, ch chan url.Values, what string) url.Values {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case path := <-a.bad:
		t.Fatalf("a webhook to %s had an invalid signature", path)
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
	}
	return nil
}

func TestStandaloneSimulatorPlacesACall(t *testing.T) {
	a := newApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{"TWILIO_NUMBER": "+15550107777", "TWILIOSIM_STATUS_CALLBACK": a.srv.URL + "/status"}
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-account-sid", testAccount, "-auth-token", testToken, "-voice-url", a.srv.URL + "/voice"},
			func(k string) string { return env[k] }, &logs, func(addr net.Addr) { addrs <- addr })
	}()
	var base string
	select {
	case addr := <-addrs:
		base = "http://" + addr.String()
	case err := <-done:
		t.Fatalf("run ended before listening: %v\n%s", err, logs.String())
	case <-time.After(waitLimit):
		t.Fatal("the simulator never started listening")
	}

	// Exactly what `curl -X POST .../sim/calls -d From=+15551230001` sends:
	// the "+" unencoded.
	resp, err := http.Post(base+"/sim/calls", "application/x-www-form-urlencoded", strings.NewReader("From=+15551230001"))
	if err != nil {
		t.Fatal(err)
	}
	var placed struct{ SID string }
	_ = json.NewDecoder(resp.Body).Decode(&placed)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || placed.SID == "" {
		t.Fatalf("POST /sim/calls = %d %+v", resp.StatusCode, placed)
	}

	voice := receive(t, a, a.voice, "the voice webhook")
	if voice.Get("CallSid") != placed.SID || voice.Get("From") != "+15551230001" || voice.Get("To") != "+15550107777" || voice.Get("AccountSid") != testAccount {
		t.Fatalf("voice webhook = %v", voice)
	}
	status := receive(t, a, a.statuses, "the completed callback")
	if status.Get("CallSid") != placed.SID || status.Get("CallStatus") != "completed" {
		t.Fatalf("status callback = %v", status)
	}

	// twilio-go, pointed at the standalone simulator, reads the call back.
	tw, err := telephony.NewRestClient(base, testAccount, testAccount, testToken, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	call, err := tw.Api.FetchCall(placed.SID, nil)
	if err != nil || *call.Status != "completed" || *call.Direction != "inbound" {
		t.Fatalf("FetchCall = %+v, %v", call, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after shutdown = %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("run did not return after its context ended")
	}
	if !strings.Contains(logs.String(), "twilio simulator listening") {
		t.Errorf("logs = %s", logs.String())
	}
}
