package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/app"
	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/config"
	"github.com/warmtransfer/warmtransfer/models"
)

// targetFlags are the flags every scenario shares: which app to load, and
// what the tool may know about it.
type targetFlags struct {
	url, publicURL, simURL     string
	databaseURL                string
	authToken, sessionSecret   string
	password                   string
	self                       bool
	simSpeed                   float64
	appLog                     string
	cpuProfile, memProfile     string
	selfDatabaseURL            string
	ringTimeout                time.Duration
	maxOpenConns, maxIdleConns int
	scenarioNeedsDB            bool
	scenarioNeedsToken         bool
}

func (f *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080", "base URL of the running app (ignored with -self)")
	fs.BoolVar(&f.self, "self", false, "start the app in this process: simulator mode, SQLite in a temporary folder, a known auth token")
	fs.StringVar(&f.publicURL, "public-url", "", "the app's WT_PUBLIC_URL, which webhook signatures cover (default: -url)")
	fs.StringVar(&f.simURL, "sim-url", "", "base URL of the simulator's control API /sim (default: -url, as in simulator mode)")
	fs.StringVar(&f.databaseURL, "database-url", "", "the app's database, to create the load's agents and check calls (implied with -self)")
	fs.StringVar(&f.authToken, "auth-token", "", "the app's Twilio auth token, to sign webhooks (implied with -self)")
	fs.StringVar(&f.sessionSecret, "session-secret", "", "the app's WT_SESSION_SECRET: sessions are then issued here instead of through the sign-in form (implied with -self)")
	fs.StringVar(&f.password, "password", "wtload-password", "password given to the agents the tool creates")
	fs.Float64Var(&f.simSpeed, "sim-speed", 1, "with -self: how much faster the simulator plays audio (1 = real time)")
	fs.StringVar(&f.appLog, "app-log", "", "with -self: show the app's log from this level (debug, info, warn, error); by default it is formatted at info and discarded, as a production log would cost")
	fs.StringVar(&f.selfDatabaseURL, "self-database-url", "", "with -self: use this database instead of a SQLite file in a temporary folder (e.g. a scratch PostgreSQL database)")
	fs.DurationVar(&f.ringTimeout, "ring-timeout", 0, "with -self: how long agents' phones ring (default: the app's)")
	fs.IntVar(&f.maxOpenConns, "max-open-conns", 0, "with -self: cap the app's database pool (an experiment, not the app's configuration; 0 leaves it)")
	fs.IntVar(&f.maxIdleConns, "max-idle-conns", 0, "with -self: keep this many idle database connections instead of database/sql's 2 (an experiment; 0 leaves it)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of this process, over the scenario's measured part, to the file (with -self it includes the app)")
	fs.StringVar(&f.memProfile, "memprofile", "", "write a heap profile of this process to the file (sse: with every stream open; otherwise at the end)")
}

// target is the app under load and what the tool knows about it.
type target struct {
	// URL is where the tool reaches the app.
	URL string
	// PublicURL is the base URL Twilio is told and signatures cover.
	PublicURL string
	// SimURL is the base of the simulator's control API.
	SimURL string
	// AuthToken signs webhooks; empty when unknown.
	AuthToken string
	// DB is the app's database; nil when not given.
	DB *bun.DB
	// Sessions issues session cookies the app accepts; nil when the
	// session secret is unknown (the tool then signs in through the form).
	Sessions *auth.Sessions
	// Password is the password of the agents the tool creates.
	Password string
	// Self is the in-process app, with -self.
	Self *app.App

	stop func()
	// cpuProfile is the file the CPU profile goes to; profiling runs
	// between startProfile and stopProfile, around the scenario's
	// measured part.
	cpuProfile string
	profiling  *os.File
}

// startProfile starts the CPU profile, if one was asked for.
func (t *target) startProfile() error {
	if t.cpuProfile == "" || t.profiling != nil {
		return nil
	}
	out, err := os.Create(t.cpuProfile)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return err
	}
	t.profiling = out
	return nil
}

// stopProfile ends the CPU profile and writes it out.
func (t *target) stopProfile() {
	if t.profiling == nil {
		return
	}
	pprof.StopCPUProfile()
	t.profiling.Close()
	t.profiling = nil
}

// open connects to (or, with -self, starts) the app the flags name.
func (f *targetFlags) open(ctx context.Context) (*target, error) {
	t := &target{Password: f.password, stop: func() {}, cpuProfile: f.cpuProfile}
	if f.self {
		if err := t.startSelf(ctx, f); err != nil {
			t.Close()
			return nil, err
		}
		return t, nil
	}
	t.URL = strings.TrimRight(f.url, "/")
	t.PublicURL = strings.TrimRight(orDefault(f.publicURL, t.URL), "/")
	t.SimURL = strings.TrimRight(orDefault(f.simURL, t.URL), "/")
	t.AuthToken = f.authToken
	if f.scenarioNeedsToken && t.AuthToken == "" {
		return nil, errors.New("this scenario signs webhooks: give -auth-token (the app's TWILIO_AUTH_TOKEN), or use -self")
	}
	if f.databaseURL != "" {
		db, err := models.Open(ctx, f.databaseURL)
		if err != nil {
			return nil, err
		}
		t.DB = db
	} else if f.scenarioNeedsDB {
		return nil, errors.New("this scenario creates agents and checks calls in the app's database: give -database-url (the app's WT_DATABASE_URL), or use -self")
	}
	if f.sessionSecret != "" {
		s, err := auth.NewSessions([]byte(f.sessionSecret), 12*time.Hour, strings.HasPrefix(t.PublicURL, "https://"))
		if err != nil {
			t.Close()
			return nil, err
		}
		t.Sessions = s
	}
	return t, nil
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// startSelf runs the real app in this process, built by internal/app from
// a configuration the tool chose, so it knows the auth token the app signs
// with and the session secret, and can read the database directly.
func (t *target) startSelf(ctx context.Context, f *targetFlags) error {
	dir, err := os.MkdirTemp("", "wtload-")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	secret := randomHex(32)
	dbURL := orDefault(f.selfDatabaseURL, "sqlite:"+filepath.Join(dir, "warmtransfer.db"))
	args := []string{"-addr", ln.Addr().String(), "-database-url", dbURL, "-session-secret", secret}
	if f.ringTimeout > 0 {
		args = append(args, "-ring-timeout", f.ringTimeout.String())
	}
	// No environment: whatever TWILIO_* the shell has, this is simulator mode.
	cfg, err := config.Load(args, func(string) string { return "" })
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return err
	}
	a, err := app.New(ctx, cfg, appLogger(f.appLog), app.WithSimSpeed(f.simSpeed))
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return err
	}
	if f.maxOpenConns > 0 {
		a.DB.SetMaxOpenConns(f.maxOpenConns)
	}
	if f.maxIdleConns > 0 {
		a.DB.SetMaxIdleConns(f.maxIdleConns)
	}
	serveCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(serveCtx, ln) }()
	t.Self, t.DB = a, a.DB
	t.URL, t.PublicURL, t.SimURL = cfg.PublicURL, cfg.PublicURL, cfg.PublicURL
	t.AuthToken = a.AuthToken
	t.Sessions, err = auth.NewSessions([]byte(secret), cfg.SessionTTL, false)
	if err != nil {
		cancel()
		return err
	}
	t.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "wtload: the app did not shut down within 30 s")
		}
		_ = a.Close()
		os.RemoveAll(dir)
	}
	return nil
}

// appLogger formats the in-process app's log as the server binary does, at
// info level, and discards it unless asked: formatting the access log is
// part of what a request costs in production.
func appLogger(level string) *slog.Logger {
	if level == "" {
		return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// Close stops the in-process app, closes the database and writes the
// profiles.
func (t *target) Close() {
	t.stopProfile()
	if t.Self != nil {
		t.stop()
		t.Self = nil
		return
	}
	if t.DB != nil {
		t.DB.Close()
	}
}

// writeHeapProfile writes the heap profile, after a GC so it shows what is
// live rather than what is garbage.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	runtime.GC()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	return pprof.WriteHeapProfile(out)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ready waits until the app answers /readyz.
func (t *target) ready(ctx context.Context, client *http.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			return fmt.Errorf("the app at %s is not ready: %w", t.URL, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
