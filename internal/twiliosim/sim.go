// Package twiliosim is a local stand-in for Twilio Programmable Voice: the
// REST API (Calls, Conferences, Participants), TwiML interpretation,
// conference rules, signed webhooks and status callbacks, as Twilio
// documents them. Nothing on a development or CI machine can reach Twilio,
// so the app is demonstrated, tested and measured against this package; it
// is also how a newcomer tries the product with no Twilio account.
//
// Simulated people act through a control API of its own under /sim:
// customers place and hang up calls, browser phones ring and are accepted or
// rejected.
package twiliosim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"
)

// APIVersion is the only REST API version the simulator speaks.
const APIVersion = "2010-04-01"

// Config describes the simulated Twilio account and the phone number its
// customers call.
type Config struct {
	AccountSID string
	AuthToken  string
	// APIKey and APISecret, when set, are also accepted as REST credentials,
	// as Twilio accepts API keys.
	APIKey    string
	APISecret string

	// Number is the account's phone number; VoiceURL is its voice webhook.
	Number              string
	VoiceURL            string
	VoiceMethod         string // default POST
	VoiceFallbackURL    string
	VoiceStatusCallback string

	// WebhookTimeout bounds every webhook request; Twilio's is 15 s.
	WebhookTimeout time.Duration
	// Speed divides the time that simulated audio takes (Say, Play,
	// Pause); 1 is real time. Tests raise it so calls move quickly.
	Speed float64
	// HTTPClient sends webhooks and status callbacks; its transport may be
	// replaced, for example to keep a fuzzer off the network.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

func (c *Config) setDefaults() {
	if c.VoiceMethod == "" {
		c.VoiceMethod = http.MethodPost
	}
	if c.WebhookTimeout <= 0 {
		c.WebhookTimeout = 15 * time.Second
	}
	if c.Speed <= 0 {
		c.Speed = 1
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Sim is one simulated Twilio account. Its zero value is not usable; call New.
type Sim struct {
	cfg Config

	mu            sync.Mutex
	calls         map[string]*call
	callOrder     []*call
	confs         map[string]*conference // by ConferenceSid
	liveConfs     map[string]*conference // by FriendlyName, while not completed
	confOrder     []*conference
	notifications []Notification
	numbers       map[string]NumberBehavior
	phones        map[string]map[chan PhoneEvent]struct{}
	version       uint64
	changed       chan struct{}

	hooks  *dispatcher
	ctx    context.Context
	cancel context.CancelFunc

	// trackMu guards closing and orders every wg.Add before Close's
	// wg.Wait; it is taken after mu, never before.
	trackMu sync.Mutex
	closing bool
	wg      sync.WaitGroup
}

// New returns a simulator for cfg. Close stops its calls and webhooks.
func New(cfg Config) (*Sim, error) {
	if cfg.AccountSID == "" || cfg.AuthToken == "" {
		return nil, errors.New("twiliosim: account SID and auth token are required")
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		cfg:       cfg,
		calls:     map[string]*call{},
		confs:     map[string]*conference{},
		liveConfs: map[string]*conference{},
		numbers:   map[string]NumberBehavior{},
		phones:    map[string]map[chan PhoneEvent]struct{}{},
		changed:   make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
	}
	s.hooks = newDispatcher(ctx)
	return s, nil
}

// Config returns the configuration the simulator runs with.
func (s *Sim) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SetVoiceURL changes the number's voice webhook; the app calls it once it
// knows the address it listens on.
func (s *Sim) SetVoiceURL(voiceURL string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.VoiceURL = voiceURL
}

// SetVoiceStatusCallback changes the number's call status callback, which
// tells the application when a caller's own call ends.
func (s *Sim) SetVoiceStatusCallback(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.VoiceStatusCallback = url
}

// Close hangs up every call, stops webhook delivery and waits for the
// simulator's goroutines to end. It may be called more than once.
func (s *Sim) Close() {
	s.mu.Lock()
	for _, c := range s.callOrder {
		if !c.ended() {
			s.endCallLocked(c, StatusCompleted, "simulator closed")
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.trackMu.Lock()
	s.closing = true
	s.trackMu.Unlock()
	s.wg.Wait()
	s.hooks.close()
	s.mu.Lock()
	for _, subs := range s.phones {
		for ch := range subs {
			close(ch)
		}
	}
	s.phones = map[string]map[chan PhoneEvent]struct{}{}
	s.mu.Unlock()
}

// changedLocked wakes everyone waiting for the state to change.
func (s *Sim) changedLocked() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitFor blocks until cond holds for the simulator's state or ctx ends. It
// re-checks on every state change, so tests wait on events, not on time.
func (s *Sim) WaitFor(ctx context.Context, cond func(State) bool) (State, error) {
	for {
		s.mu.Lock()
		st := s.stateLocked()
		ch := s.changed
		s.mu.Unlock()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// goTracked runs f on a goroutine that Close waits for. Once Close has
// begun, f does not run at all: a WaitGroup must not grow while it is being
// waited on, and nothing started after Close would be stopped.
func (s *Sim) goTracked(f func()) {
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	if s.closing {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// newSID returns a Twilio-style identifier: a two-letter prefix and 32 hex digits.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// rfc2822 formats t as Twilio formats every date: RFC 2822 in GMT.
func rfc2822(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC1123Z)
}

// mediaDuration scales a length of simulated audio by the configured speed.
func (s *Sim) mediaDuration(d time.Duration) time.Duration {
	scaled := float64(d) / s.cfg.Speed
	// Converting a float beyond int64's range is undefined in Go (it comes
	// out negative on amd64, which would end a very long Pause at once).
	if scaled >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(scaled)
}
