package browser_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/app"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/config"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
)

// appServer runs the application where apptest.Start cannot: with Twilio
// settings against a standalone simulator, or restarted on the same
// address and database (a page keeps talking to the address it came
// from). Its Env is an apptest.Env for the running instance.
type appServer struct {
	t      testing.TB
	addr   string
	args   []string
	getenv func(string) string
	log    *apptest.LockedBuffer

	Env  *apptest.Env
	stop context.CancelFunc
	done chan error
}

// sessionSecret is fixed, so sessions outlive a restart.
const sessionSecret = "a-session-secret-for-the-browser-tests-0123456789abcdef"

// startApp runs the application on its built-in simulator, on a new
// loopback address with a database of its own.
func startApp(t testing.TB) *appServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &appServer{t: t, addr: ln.Addr().String(), log: &apptest.LockedBuffer{}}
	s.args = []string{
		"-addr", s.addr, "-database-url", testdb.URL(t), "-session-secret", sessionSecret,
		"-max-missed-offers", "0",
	}
	s.getenv = func(string) string { return "" }
	t.Cleanup(func() {
		s.shutdown()
		if t.Failed() {
			t.Logf("the app's log:\n%s", s.log.String())
		}
	})
	s.serve(ln)
	return s
}

func (s *appServer) serve(ln net.Listener) {
	s.t.Helper()
	cfg, err := config.Load(s.args, s.getenv)
	if err != nil {
		ln.Close()
		s.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, logger, app.WithSimSpeed(200))
	if err != nil {
		ln.Close()
		s.t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan error, 1)
	go func() { s.done <- a.Serve(ctx, ln) }()
	s.Env = &apptest.Env{T: s.t, App: a, URL: cfg.PublicURL, Sim: a.Sim}
}

// shutdown stops the application as a deployment does (open event
// streams end) and waits for it.
func (s *appServer) shutdown() {
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("app.Serve: %v", err)
		}
	case <-time.After(apptest.WaitLimit):
		s.t.Errorf("the app did not shut down within %s", apptest.WaitLimit)
	}
	_ = s.Env.App.Close()
}

// restart stops the application and starts it again on the same address
// and database.
func (s *appServer) restart() {
	s.t.Helper()
	s.shutdown()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listening on %s again: %v", s.addr, err)
	}
	s.serve(ln)
}

// The Twilio account of the tests in Twilio mode.
const (
	twAccountSID = "AC0123456789abcdef0123456789abcdef"
	twAuthToken  = "0123456789abcdef0123456789abcdef"
	twAPIKey     = "SK0123456789abcdef0123456789abcdef"
	twAPISecret  = "fedcba9876543210fedcba9876543210"
	twNumber     = "+15550100000"
)

// startTwilioApp runs the application in Twilio mode, its TWILIO_API_URL
// pointed at a standalone simulator whose number calls the app. It
// returns the app and the simulator as an Env whose URL is the
// simulator's (for PlaceCall, SimAction, Ringing).
func startTwilioApp(t testing.TB) (*appServer, *apptest.Env) {
	t.Helper()
	// The app's address must be known to the simulator before the app
	// starts: take one, and give it back to the app.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + probe.Addr().String()
	sim, err := twiliosim.New(twiliosim.Config{
		AccountSID: twAccountSID, AuthToken: twAuthToken, APIKey: twAPIKey, APISecret: twAPISecret,
		Number: twNumber, VoiceURL: appURL + handlers.PathVoiceIncoming, VoiceStatusCallback: appURL + handlers.PathVoiceStatus,
		Speed: 200, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		probe.Close()
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { simSrv.Close(); sim.Close() })
	settings := map[string]string{
		"TWILIO_ACCOUNT_SID": twAccountSID, "TWILIO_AUTH_TOKEN": twAuthToken, "TWILIO_API_KEY": twAPIKey,
		"TWILIO_API_SECRET": twAPISecret, "TWILIO_NUMBER": twNumber, "TWILIO_API_URL": simSrv.URL,
	}
	s := &appServer{t: t, addr: probe.Addr().String(), log: &apptest.LockedBuffer{}}
	s.args = []string{
		"-addr", s.addr, "-public-url", appURL, "-database-url", testdb.URL(t),
		"-session-secret", sessionSecret, "-max-missed-offers", "0",
	}
	s.getenv = func(k string) string { return settings[k] }
	t.Cleanup(func() {
		s.shutdown()
		if t.Failed() {
			t.Logf("the app's log:\n%s", s.log.String())
		}
	})
	s.serve(probe)
	if s.Env.App.Sim != nil {
		t.Fatal("the app runs its own simulator despite the Twilio settings")
	}
	return s, &apptest.Env{T: t, URL: simSrv.URL, Sim: sim}
}
