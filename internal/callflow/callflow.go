// Package callflow is the contact center's domain logic: which agent a
// caller is offered to, what a transfer does, what ends a call, and how the
// database follows what Twilio reports. Handlers parse requests and call it;
// it talks to Twilio only through the Telephony interface.
package callflow

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/warmtransfer/warmtransfer/models"
)

// Telephony is what the call flow needs from Twilio.
type Telephony interface {
	// Ring calls a browser phone; answering it fetches req.URL.
	Ring(ctx context.Context, req RingRequest) (callSID string, err error)
	// EndCall hangs up one call leg (or stops it ringing).
	EndCall(ctx context.Context, callSID string) error
	// EndConference ends a conference for everyone in it.
	EndConference(ctx context.Context, conferenceSID string) error
	// SetEndConferenceOnExit changes whether a participant's leaving ends
	// the conference.
	SetEndConferenceOnExit(ctx context.Context, conferenceSID, callSID string, end bool) error
	// Hold puts a participant on hold (hearing holdURL) or takes them off.
	Hold(ctx context.Context, conferenceSID, callSID string, hold bool, holdURL string) error
	// CallStatus asks Twilio for a call's status (queued, ringing,
	// in-progress, completed, busy, no-answer, failed, canceled).
	CallStatus(ctx context.Context, callSID string) (string, error)
	// AddParticipant rings a browser phone into a conference (Twilio's
	// Participants API), as a listener (muted) or a coach.
	AddParticipant(ctx context.Context, req ParticipantRequest) (callSID string, err error)
}

// ParticipantRequest is a phone dialled into a conference by the API.
type ParticipantRequest struct {
	ConferenceSID  string
	Identity       string
	From           string
	Label          string
	Muted          bool
	CoachCallSID   string // coach this participant (heard by them alone)
	StatusCallback string
	Timeout        time.Duration
}

// RingRequest is one outbound call to an agent's browser phone.
type RingRequest struct {
	Identity       string
	From           string
	URL            string
	StatusCallback string
	Timeout        time.Duration
}

// URLs are the app's public addresses that Twilio calls.
type URLs interface {
	Wait() string
	AgentConnect(legID int64) string
	CallStatus(legID int64) string
	ConferenceStatus() string
}

// Publisher hears about every event once it is committed.
type Publisher interface {
	Publish(ev models.Event)
}

// Errors a caller of the service can cause; handlers turn them into 4xx.
var (
	ErrNotFound           = errors.New("no such call")
	ErrNotOnCall          = errors.New("you are not on this call")
	ErrCallEnded          = errors.New("the call has ended")
	ErrSelfTransfer       = errors.New("you cannot transfer a call to yourself")
	ErrUnknownAgent       = errors.New("no such colleague")
	ErrAgentUnavailable   = errors.New("that colleague is not available")
	ErrTransferInProgress = errors.New("a transfer is already in progress on this call")
	ErrColleagueNotJoined = errors.New("nobody else is on the call yet: the caller would be left alone")
	ErrOnCall             = errors.New("you are on a call")
	ErrBadPresence        = errors.New("presence must be available or away")
	// ErrTelephony wraps a failed request to Twilio.
	ErrTelephony = errors.New("the Twilio request failed")
	// ErrGone is what Telephony returns when the call or participant it
	// was asked to act on is no longer there.
	ErrGone = errors.New("the call is no longer there")
)

// Config tunes the call flow.
type Config struct {
	// Number is the Twilio number, the caller ID when a caller's own
	// number cannot be shown.
	Number string
	// RingTimeout is how long an agent's phone rings before the offer
	// moves on.
	RingTimeout time.Duration
	// WrapUp is how long an agent stays in wrap-up after talking to a
	// caller, to finish their notes before the next call; zero means no
	// wrap-up. The agent can end it early by setting themselves available.
	WrapUp time.Duration
	// MaxMissedOffers is how many offers in a row an agent may leave
	// unanswered (or decline) before they are set away, so callers stop
	// ringing a desk nobody is at; zero means never.
	MaxMissedOffers int
	// DispatchInBackground answers a new caller's webhook before offering
	// the call to an agent: the offer (a REST request per agent rung)
	// is made by RunDispatcher, so the caller's TwiML never waits on
	// routing. Without it, IncomingCall dispatches before it returns.
	DispatchInBackground bool
	// Location is where the board's day begins at midnight (UTC when
	// nil).
	Location *time.Location
	// ServiceLevelTarget is the answer time the board's service level
	// measures against (DefaultServiceLevelTarget when zero).
	ServiceLevelTarget time.Duration
	// ObserveWrite, if set, is told of every write transaction how long
	// it waited for its turn and how long it then took (for the metrics).
	ObserveWrite func(wait, run time.Duration)
	// SlowWrite is how long a write transaction may take before it is
	// logged as slow (DefaultSlowWrite when zero): every other write waits
	// behind it (on SQLite, one writer at a time), so a commit held up by
	// a slow disk holds up the whole contact center.
	SlowWrite time.Duration
}

// DefaultSlowWrite is Config.SlowWrite's default.
const DefaultSlowWrite = 500 * time.Millisecond

// Service carries out the call flow.
type Service struct {
	db *bun.DB
	// stmts are the webhooks' hottest statements, prepared.
	stmts *models.Statements
	tel   Telephony
	urls  URLs
	pub   Publisher
	cfg   Config
	log   *slog.Logger
	// routing serializes offering waiting calls to agents in this process;
	// row locks do it across processes on PostgreSQL.
	routing sync.Mutex
	// dispatches asks RunDispatcher for a round of offers; one pending
	// request stands for any number.
	dispatches chan struct{}
	// writer lets one SQLite transaction run at a time, first come first
	// served (a channel's blocked senders go in order). SQLite has one
	// writer: transactions that queued on its lock instead slept in the
	// busy handler between retries, so the lock sat idle while they
	// slept, and they were served in no order, which made the connect
	// route's tail latency. Nil on PostgreSQL, whose row locks serialize
	// only what conflicts.
	writer chan struct{}
	// admitter is the turn of the transaction that stores new callers
	// (see admit): the writer on SQLite, a turn of its own on PostgreSQL.
	admitter chan struct{}
	// commits counts SQLite transactions since the last checkpoint of the
	// write-ahead log (see keepWALShort).
	commits atomic.Int64
	// newCallers are the callers waiting for their call to be stored
	// (see admit).
	newCallers admissions
	// queue answers QueuePosition (see queue.go).
	queue queueOrder
	now   func() time.Time
}

// New returns a Service.
func New(db *bun.DB, tel Telephony, urls URLs, pub Publisher, cfg Config, log *slog.Logger) *Service {
	if cfg.RingTimeout <= 0 {
		cfg.RingTimeout = 20 * time.Second
	}
	if cfg.SlowWrite <= 0 {
		cfg.SlowWrite = DefaultSlowWrite
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		db: db, stmts: models.NewStatements(db), tel: tel, urls: urls, pub: pub, cfg: cfg, log: log,
		now:        func() time.Time { return time.Now().UTC() },
		dispatches: make(chan struct{}, 1),
	}
	if db.Dialect().Name() == dialect.SQLite {
		s.writer = make(chan struct{}, 1)
		s.admitter = s.writer
	} else {
		s.admitter = make(chan struct{}, 1)
	}
	return s
}

// inTx runs f in a transaction and publishes the events it recorded once the
// transaction has committed.
func (s *Service) inTx(ctx context.Context, f func(tx bun.Tx, rec *recorder) error) error {
	s.prepare(ctx)
	start := time.Now()
	if s.writer != nil {
		select {
		case s.writer <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.runTx(ctx, true, time.Since(start), f)
}

// Write runs fn in a transaction taken in turn with the service's own: on
// SQLite one writer goes at a time, queued in Go, so a tool that changes
// the database beside the app (a benchmark freeing agents, an import)
// does not fight the app for SQLite's write lock, whose busy handler
// sleeps for milliseconds at a time. Nothing is published.
func (s *Service) Write(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return s.inTx(ctx, func(tx bun.Tx, _ *recorder) error { return fn(ctx, tx) })
}

// prepare prepares the hot statements before a transaction needs them
// (models.Statements.Prepare); if the database will not, the transaction
// prepares its own.
func (s *Service) prepare(ctx context.Context) {
	if err := s.stmts.Prepare(ctx); err != nil {
		s.log.Debug("callflow: preparing statements", "err", err)
	}
}

// runTx is inTx for a caller that holds the writer already, after waiting
// for it for waited; it lets go of it once the transaction has ended, when
// release is set.
func (s *Service) runTx(ctx context.Context, release bool, waited time.Duration, f func(tx bun.Tx, rec *recorder) error) error {
	rec := &recorder{}
	start := time.Now()
	defer func() { s.observeWrite(waited, time.Since(start)) }()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		rec.events, rec.after = rec.events[:0], rec.after[:0]
		if err := f(tx, rec); err != nil {
			return err
		}
		// Events go last: on PostgreSQL appending them holds a lock until
		// the transaction ends.
		return s.stmts.AppendEvents(ctx, tx, rec.events)
	})
	if s.writer != nil && err == nil {
		s.commits.Add(1)
	}
	// After the commit (or the rollback), so that a snapshot of the queue
	// read before it is never taken for current.
	s.queue.writes.Add(1)
	if release && s.writer != nil {
		<-s.writer
	}
	if err != nil {
		return err
	}
	for _, ev := range rec.events {
		s.pub.Publish(ev)
	}
	if len(rec.after) > 0 {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dispatchLimit)
		defer cancel()
		for _, f := range rec.after {
			f(actx)
		}
	}
	return nil
}

// observeWrite reports a write transaction's timing, and logs one that
// held the writer for long.
func (s *Service) observeWrite(waited, ran time.Duration) {
	if s.cfg.ObserveWrite != nil {
		s.cfg.ObserveWrite(waited, ran)
	}
	if ran >= s.cfg.SlowWrite {
		s.log.Warn("callflow: a write transaction was slow; the others waited behind it (a slow disk, or an overloaded database)",
			"took", ran.Round(time.Millisecond), "waited_for_its_turn", waited.Round(time.Millisecond))
	}
}

// walCheckpointInterval is how often the write-ahead log is checkpointed
// while transactions commit. SQLite's own checkpoint runs inside the
// commit that takes the log past its threshold, while that transaction
// still holds the writer, and waits for the disk twice: under load every
// writer stalled behind it, for up to hundreds of milliseconds, many times
// a second. In the background it runs beside the writer (see
// models.CheckpointWAL), and SQLite's own, at a higher threshold, is only
// the fallback. Often is better than seldom: each checkpoint then has
// little to copy and the log stays short for readers. Under 64 new callers
// at a time, a checkpoint every 1 s gave the connect route a p99 of 40 ms,
// every 250 ms 28 ms, and every 50 ms 21 ms (20 ms was no better).
const walCheckpointInterval = 50 * time.Millisecond

// keepWALShort checkpoints SQLite's write-ahead log in the background,
// every walCheckpointInterval that saw a commit, until ctx ends.
func (s *Service) keepWALShort(ctx context.Context) {
	t := time.NewTicker(walCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.commits.Swap(0) == 0 {
				continue
			}
			if err := models.CheckpointWAL(ctx, s.db); err != nil && ctx.Err() == nil {
				s.log.Warn("callflow: checkpoint", "err", err)
			}
		}
	}
}

// RunDispatcher makes the offers IncomingCall asks for when
// DispatchInBackground is set, and on SQLite checkpoints the write-ahead
// log in the background (keepWALShort), until ctx ends.
func (s *Service) RunDispatcher(ctx context.Context) {
	if s.writer != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.keepWALShort(ctx)
		}()
		defer func() { <-done }()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dispatches:
			s.Dispatch(ctx)
		}
	}
}

// dispatchSoon asks for a round of offers: in the background when so
// configured, now otherwise.
func (s *Service) dispatchSoon(ctx context.Context) {
	if !s.cfg.DispatchInBackground {
		s.Dispatch(ctx)
		return
	}
	select {
	case s.dispatches <- struct{}{}:
	default: // a round is already due, and will see this call
	}
}
