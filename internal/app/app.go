// Package app builds the warm-transfer application from its configuration:
// database, Twilio client (or the built-in simulator), call-flow service,
// and the HTTP handlers, once, at start-up.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/config"
	"github.com/warmtransfer/warmtransfer/internal/live"
	"github.com/warmtransfer/warmtransfer/internal/metrics"
	"github.com/warmtransfer/warmtransfer/internal/telephony"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// Simulator mode's account: fixed identifiers, a fresh secret each start.
const (
	SimAccountSID = "AC00000000000000000000000000000000"
	SimAPIKey     = "SK00000000000000000000000000000000"
	SimNumber     = "+15550100000"
)

// App is the running application.
type App struct {
	Config  *config.Config
	DB      *bun.DB
	Sim     *twiliosim.Sim // nil with a real Twilio account
	Service *callflow.Service
	Echo    *echo.Echo
	Log     *slog.Logger
	// Tokens issues the Access Tokens browser phones register with.
	Tokens auth.AccessTokens
	// Broker pushes live fragments to open event streams.
	Broker *live.Broker
	// AuthToken signs and checks webhooks (in simulator mode, the
	// simulator's own).
	AuthToken string

	streams    context.Context
	stopStream context.CancelFunc
	background sync.WaitGroup
	stopBg     context.CancelFunc
}

// Option adjusts how the application is built.
type Option func(*options)

type options struct {
	simSpeed     float64
	ringTimeout  time.Duration
	signInLimits handlers.SignInLimits
}

// WithSimSpeed makes the built-in simulator play audio faster, so tests and
// load runs do not wait through greetings in real time.
func WithSimSpeed(speed float64) Option { return func(o *options) { o.simSpeed = speed } }

// WithSignInLimits sets the sign-in rate limits (and their clock, for
// tests); zero fields keep the defaults.
func WithSignInLimits(l handlers.SignInLimits) Option {
	return func(o *options) { o.signInLimits = l }
}

// WithRingTimeout sets how long an agent's phone rings before the offer
// moves on.
func WithRingTimeout(d time.Duration) Option { return func(o *options) { o.ringTimeout = d } }

// New builds the application. The database is migrated before it returns.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	o := options{simSpeed: 1, ringTimeout: cfg.RingTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// No log line of the app carries a phone number, whichever component
	// writes it (Twilio's error texts quote numbers).
	log = slog.New(handlers.MaskPhoneNumbers(log.Handler()))
	db, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := models.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if cfg.SessionSecretGenerated {
		// The sessions of an earlier run were signed with another secret
		// and cannot be read any more: nobody is signed in, so nobody may
		// be offered a call until they sign in again.
		if err := models.SignOutAllAgents(ctx, db, time.Now()); err != nil {
			db.Close()
			return nil, err
		}
	}
	a := &App{Config: cfg, DB: db, Log: log}
	if err := a.build(o); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(o options) error {
	cfg := a.Config
	accountSID, authToken, apiKey, apiSecret, number, apiURL := cfg.AccountSID, cfg.AuthToken, cfg.APIKey, cfg.APISecret, cfg.Number, cfg.APIURL
	if cfg.Simulator {
		accountSID, apiKey, number = SimAccountSID, SimAPIKey, SimNumber
		authToken, apiSecret = randomHex(16), randomHex(16)
		sim, err := twiliosim.New(twiliosim.Config{
			AccountSID: accountSID, AuthToken: authToken, APIKey: apiKey, APISecret: apiSecret,
			Number: number, VoiceURL: cfg.PublicURL + handlers.PathVoiceIncoming,
			VoiceStatusCallback: cfg.PublicURL + handlers.PathVoiceStatus,
			Speed:               o.simSpeed,
			Logger:              a.Log.With("component", "twiliosim"),
		})
		if err != nil {
			return err
		}
		a.Sim = sim
		// The simulator's REST API is served by this app, on its own address.
		apiURL = cfg.PublicURL
	}
	a.AuthToken = authToken
	client, err := telephony.NewRestClient(apiURL, accountSID, accountSID, authToken, 10*time.Second)
	if err != nil {
		return err
	}
	sessions, err := auth.NewSessions([]byte(cfg.SessionSecret), cfg.SessionTTL, strings.HasPrefix(cfg.PublicURL, "https://"))
	if err != nil {
		return err
	}
	a.streams, a.stopStream = context.WithCancel(context.Background())
	a.Tokens = auth.AccessTokens{AccountSID: accountSID, APIKey: apiKey, APISecret: apiSecret, TTL: cfg.TokenTTL}
	pub := &lateBroker{}
	// The broker is made after the service it renders from; the metrics,
	// which the service reports to, count its streams once it is there.
	m := metrics.New(metrics.Sources{DB: a.DB, Logger: a.Log.With("component", "metrics"), SSEClients: func() int {
		if a.Broker == nil {
			return 0
		}
		return a.Broker.Subscribers()
	}})
	a.Service = callflow.New(a.DB, telephony.NewTwilio(client), publicURLs(cfg.PublicURL), pub,
		callflow.Config{
			Number: number, RingTimeout: o.ringTimeout, WrapUp: cfg.WrapUp, MaxMissedOffers: cfg.MaxMissedOffers,
			DispatchInBackground: true, ServiceLevelTarget: cfg.ServiceLevelTarget, Location: cfg.Location,
			ObserveWrite: m.ObserveWrite},
		a.Log.With("component", "callflow"))

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	renderer := &live.Views{Service: a.Service, DB: a.DB, Reverse: e.Reverse}
	a.Broker = live.NewBroker(renderer, a.Log.With("component", "live"))
	if a.sharedDB() {
		// Events reach the broker through LISTEN/NOTIFY, from every
		// instance this one included; see Serve.
		pub.b = nil
	} else {
		pub.b = a.Broker
	}
	deps := handlers.Deps{
		Service: a.Service, DB: a.DB, Sessions: sessions,
		Tokens:    a.Tokens,
		AuthToken: authToken, PublicURL: cfg.PublicURL, Simulator: cfg.Simulator,
		Streams: a.streams, Logger: a.Log,
		Broker: a.Broker, Replayer: renderer, Metrics: m,
	}
	if a.Sim != nil {
		deps.SimHandler = a.Sim.Handler()
	}
	deps.SignInLimiter = handlers.NewSignInLimiter(o.signInLimits)
	handlers.Register(e, handlers.New(e, deps))
	a.Echo = e
	return nil
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// open event streams are told to end first, since http.Server.Shutdown
// would otherwise wait for them forever.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Echo,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
	bg, stop := context.WithCancel(context.Background())
	a.stopBg = stop
	var listener *live.PGListener
	if a.sharedDB() {
		listener = &live.PGListener{DatabaseURL: a.Config.DatabaseURL, DB: a.DB, Broker: a.Broker, Log: a.Log.With("component", "live")}
		// Before anything here writes: an event written first would be
		// taken for history, and its streams would not hear of it. If
		// it fails, Run tries again.
		if err := listener.Start(ctx); err != nil {
			a.Log.Warn("live: reading the newest event failed; the listener will retry", "err", err)
		}
	}
	a.background.Add(2)
	go func() {
		defer a.background.Done()
		a.redispatch(bg)
	}()
	go func() {
		defer a.background.Done()
		a.Service.RunDispatcher(bg)
	}()
	if listener != nil {
		a.background.Add(1)
		go func() {
			defer a.background.Done()
			listener.Run(bg)
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		a.shutdownStreams()
		return err
	case <-ctx.Done():
	}
	a.shutdownStreams()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (a *App) shutdownStreams() {
	a.stopStream()
	a.Broker.Close()
	if a.stopBg != nil {
		a.stopBg()
	}
	if a.Sim != nil {
		a.Sim.Close()
	}
	a.background.Wait()
}

// redispatch offers waiting calls every few seconds, so a caller is never
// forgotten if an offer could not be placed (Twilio briefly unreachable).
func (a *App) redispatch(ctx context.Context) {
	// After a restart, callbacks sent while the app was down are lost:
	// ask Twilio about every live call once, then about stale ones.
	a.Service.Reconcile(ctx, true)
	a.Service.Dispatch(ctx)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	reconcile := time.NewTicker(15 * time.Second)
	defer reconcile.Stop()
	// Wrap-ups end to within a fifth of their length (and a second at
	// most); a sweep is one small query.
	var wrapUps <-chan time.Time
	if w := a.Config.WrapUp; w > 0 {
		wt := time.NewTicker(min(max(w/5, 50*time.Millisecond), time.Second))
		defer wt.Stop()
		wrapUps = wt.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-wrapUps:
			a.Service.EndWrapUps(ctx)
		case <-t.C:
			a.Service.ReleaseStrandedAgents(ctx)
			a.Service.Dispatch(ctx)
		case <-reconcile.C:
			a.Service.Reconcile(ctx, false)
		}
	}
}

// Close releases the database.
func (a *App) Close() error {
	a.stopStream()
	a.Broker.Close()
	if a.Sim != nil {
		a.Sim.Close()
	}
	return a.DB.Close()
}

// DemoAccount is an account simulator mode creates so a newcomer can sign in.
type DemoAccount struct {
	Identity, Name, Password string
	Role                     models.Role
}

// SeedDemoAccounts creates (or resets the passwords of) the simulator's
// demo agents and manager, with fresh random passwords.
func (a *App) SeedDemoAccounts(ctx context.Context) ([]DemoAccount, error) {
	accounts := []DemoAccount{
		{Identity: "alice", Name: "Alice Archer", Role: models.RoleAgent},
		{Identity: "bob", Name: "Bob Baker", Role: models.RoleAgent},
		{Identity: "carol", Name: "Carol Chen", Role: models.RoleAgent},
		{Identity: "maria", Name: "Maria Manager", Role: models.RoleManager},
	}
	for i := range accounts {
		acc := &accounts[i]
		acc.Password = randomHex(6)
		if err := UpsertAgent(ctx, a.DB, acc.Identity, acc.Name, acc.Role, acc.Password); err != nil {
			return nil, err
		}
	}
	return accounts, nil
}

// UpsertAgent creates an agent, or resets the name, role and password of an
// existing one (which also signs them out everywhere, and so takes them off
// routing: a call they are on goes on, and its end leaves them offline).
func UpsertAgent(ctx context.Context, db bun.IDB, identity, name string, role models.Role, password string) error {
	if !auth.ValidClientIdentity(identity) {
		return fmt.Errorf("app: %q is not a valid identity (letters, digits, _ . - @)", identity)
	}
	if !role.Valid() {
		return fmt.Errorf("app: role must be agent or manager, not %q", role)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	existing, err := models.AgentByIdentity(ctx, db, identity)
	if errors.Is(err, models.ErrNotFound) {
		return models.CreateAgent(ctx, db, &models.Agent{Identity: identity, Name: name, Role: role, PasswordHash: hash, Presence: models.PresenceOffline})
	}
	if err != nil {
		return err
	}
	existing.Name, existing.Role, existing.PasswordHash, existing.Disabled = name, role, hash, false
	existing.SessionEpoch++
	columns := []string{"name", "role", "password_hash", "disabled", "session_epoch"}
	if existing.Presence != models.PresenceOffline {
		existing.Presence, existing.PresenceSince = models.PresenceOffline, time.Now()
		columns = append(columns, "presence", "presence_since")
	}
	return models.UpdateAgent(ctx, db, existing, columns...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// publicURLs are the addresses Twilio is given, built from WT_PUBLIC_URL.
type publicURLs string

func (u publicURLs) Wait() string { return string(u) + handlers.PathVoiceWait }
func (u publicURLs) AgentConnect(legID int64) string {
	return string(u) + handlers.PathVoiceAgent + "?leg=" + strconv.FormatInt(legID, 10)
}
func (u publicURLs) CallStatus(legID int64) string {
	return string(u) + handlers.PathVoiceStatus + "?leg=" + strconv.FormatInt(legID, 10)
}
func (u publicURLs) ConferenceStatus() string { return string(u) + handlers.PathVoiceConf }

// lateBroker lets the service be built before the broker it publishes to,
// which needs the service to render.
type lateBroker struct{ b *live.Broker }

func (l *lateBroker) Publish(ev models.Event) {
	if l.b != nil {
		l.b.Publish(ev)
	}
}

// sharedDB reports a PostgreSQL database, which several instances may share.
func (a *App) sharedDB() bool {
	return a.DB.Dialect().Name() == dialect.PG
}
