package callflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// Inbound is a customer's call as Twilio announces it.
type Inbound struct {
	CallSID    string
	From       string
	To         string
	CallerName string
}

// Join is how a call enters its conference: the <Conference> attributes.
type Join struct {
	Conference     string
	StartOnEnter   bool
	EndOnExit      bool
	WaitURL        string
	Label          string
	StatusCallback string
	StatusEvents   []string
}

// Instructions tell Twilio what to do with a call: join a conference, or
// say something and hang up.
type Instructions struct {
	Join *Join
	Say  string
}

// conferenceEvents are the conference events the app follows.
var conferenceEvents = []string{"start", "end", "join", "leave", "hold", "modify", "mute"}

// Customer's label in the conference; agents are labelled by identity.
const customerLabel = "customer"

func agentLabel(identity string) string { return "agent-" + identity }

// IncomingCall records a customer's call and returns the TwiML that puts
// them in a conference of their own, waiting with music until an agent
// joins. A webhook Twilio retries gets the same answer and no second offer.
func (s *Service) IncomingCall(ctx context.Context, in Inbound) (Instructions, error) {
	name := "call-" + in.CallSID
	a := &admission{
		call: models.Call{
			CallSID: in.CallSID, ConferenceName: name, FromNumber: in.From, ToNumber: in.To,
			CallerName: in.CallerName, State: models.CallQueued,
		},
		done: make(chan error, 1),
	}
	if err := s.admit(ctx, a); err != nil {
		return Instructions{}, fmt.Errorf("callflow: incoming call %s: %w", in.CallSID, err)
	}
	s.dispatchSoon(ctx)
	return Instructions{Join: &Join{
		Conference:     name,
		StartOnEnter:   false,
		EndOnExit:      true, // the customer hanging up ends it for everyone
		WaitURL:        s.urls.Wait(),
		Label:          customerLabel,
		StatusCallback: s.urls.ConferenceStatus(),
		StatusEvents:   conferenceEvents,
	}}, nil
}

// admission is a new caller's call, to be stored with its event.
type admission struct {
	call models.Call
	// done receives the outcome once the transaction that stored the
	// call has ended.
	done chan error
}

// admissions are the callers waiting for the writer to store their calls.
type admissions struct {
	mu      sync.Mutex
	pending []*admission
}

// admit stores a new caller's call and its event, unless a retried
// webhook stored them already.
//
// On SQLite the callers that arrive while another transaction writes are
// stored together, in one transaction, by whichever of them gets the
// writer first (a group commit). Every caller is still answered only once
// its own call is committed. Each transaction costs a BEGIN and a COMMIT
// that writes the changed pages to the WAL, which cost more than the two
// inserts; a storm of callers shares them instead of queueing on them one
// by one.
func (s *Service) admit(ctx context.Context, a *admission) error {
	if s.writer == nil {
		return s.storeCallers(ctx, false, []*admission{a})
	}
	s.prepare(ctx)
	s.newCallers.mu.Lock()
	s.newCallers.pending = append(s.newCallers.pending, a)
	s.newCallers.mu.Unlock()
	select {
	case err := <-a.done: // stored in another caller's transaction
		return err
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		// Still pending: the next writer stores it, and the webhook
		// Twilio retries finds it.
		return ctx.Err()
	}
	// A writer signals the callers it stored before it lets go.
	select {
	case err := <-a.done:
		<-s.writer
		return err
	default:
	}
	s.newCallers.mu.Lock()
	batch := s.newCallers.pending
	s.newCallers.pending = nil
	s.newCallers.mu.Unlock()
	err := s.storeCallers(ctx, true, batch)
	if err != nil && len(batch) > 1 {
		// One bad call must not fail the others: each on its own.
		for _, b := range batch {
			b.done <- s.storeCallers(ctx, true, []*admission{b})
		}
	} else {
		for _, b := range batch {
			b.done <- err
		}
	}
	<-s.writer
	return <-a.done
}

// storeCallers stores the calls of batch and their events in one
// transaction; the caller holds the writer when held is set.
func (s *Service) storeCallers(ctx context.Context, held bool, batch []*admission) error {
	f := func(tx bun.Tx, rec *recorder) error {
		for _, a := range batch {
			// A retried webhook finds its call stored: no second event.
			added, err := s.stmts.InsertCall(ctx, tx, &a.call)
			if err != nil {
				return err
			}
			if added {
				rec.add(EventCallQueued, a.call.ID, 0, map[string]any{"from": a.call.FromNumber, "caller_name": a.call.CallerName})
			}
		}
		return nil
	}
	if held {
		return s.runTx(ctx, false, f)
	}
	return s.inTx(ctx, f)
}

// dispatchLimit bounds one round of offers.
const dispatchLimit = 30 * time.Second

// offer is a waiting call matched with an agent, about to be rung.
type offer struct {
	call  models.Call
	agent models.Agent
	leg   models.Leg
}

// Dispatch offers waiting calls, oldest first, to available agents, longest
// idle first, until one or the other runs out. It is safe to call at any
// time: it only rings calls that are waiting.
func (s *Service) Dispatch(ctx context.Context) {
	// Offers are not the business of whoever triggered this dispatch: they
	// must not be abandoned because that request ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dispatchLimit)
	defer cancel()
	s.routing.Lock()
	defer s.routing.Unlock()
	for {
		offers, err := s.nextOffers(ctx, offersPerRound)
		if err != nil {
			s.log.Error("callflow: choosing the next offers", "err", err)
			return
		}
		if len(offers) == 0 {
			return
		}
		if !s.ringOffers(ctx, offers) {
			// Twilio may be down; the periodic dispatch tries again.
			return
		}
	}
}

// offersPerRound bounds how many waiting calls one transaction matches
// with agents. During a burst of new callers every transaction waits its
// turn behind the callers being stored: one offer per transaction fell far
// behind.
const offersPerRound = 16

// ringOffers rings the offers' agents, all at once, and records what
// Twilio answered; it reports false if any ring failed.
func (s *Service) ringOffers(ctx context.Context, offers []*offer) bool {
	sids := make([]string, len(offers))
	errs := make([]error, len(offers))
	ring := func(i int) {
		o := offers[i]
		sids[i], errs[i] = s.tel.Ring(ctx, RingRequest{
			Identity:       o.agent.Identity,
			From:           s.callerID(o.call.FromNumber),
			URL:            s.urls.AgentConnect(o.leg.ID),
			StatusCallback: s.urls.CallStatus(o.leg.ID),
			Timeout:        s.cfg.RingTimeout,
		})
	}
	if len(offers) == 1 {
		ring(0)
	} else {
		var wg sync.WaitGroup
		for i := range offers {
			wg.Go(func() { ring(i) })
		}
		wg.Wait()
	}
	ok := true
	for i, o := range offers {
		if errs[i] != nil {
			s.log.Error("callflow: ringing an agent failed", "agent", o.agent.Identity, "call", o.call.ID, "err", errs[i])
			s.ringFailed(ctx, o.leg.ID)
			ok = false
			continue
		}
		s.ringPlaced(ctx, o.leg.ID, sids[i])
	}
	return ok
}

// nextOffers matches waiting calls with available agents, oldest call
// first and longest idle agent first, up to max of them, in one
// transaction: each call is marked ringing and each agent busy, with a leg
// to ring.
func (s *Service) nextOffers(ctx context.Context, max int) ([]*offer, error) {
	// Most rounds (every new caller asks for one) find nobody free: they
	// learn it from a read, without taking SQLite's write lock.
	if possible, err := s.stmts.OfferPossible(ctx); err != nil || !possible {
		return nil, err
	}
	var offers []*offer
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		offers = offers[:0]
		for len(offers) < max {
			o, err := s.matchOne(ctx, tx, rec)
			if err != nil {
				return err
			}
			if o == nil {
				break
			}
			offers = append(offers, o)
		}
		return nil
	})
	return offers, err
}

// matchOne matches the oldest waiting call with an agent, or returns nil
// when no call waits or nobody can take it.
func (s *Service) matchOne(ctx context.Context, tx bun.Tx, rec *recorder) (*offer, error) {
	call, err := models.OldestQueuedCall(ctx, tx)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	legs, err := models.LegsForCall(ctx, tx, call.ID)
	if err != nil {
		return nil, err
	}
	// Offer the call to someone who has not had it yet, if anyone: not
	// an agent who missed it, declined it as a transfer, or sent it
	// back to the queue.
	var missed []int64
	for _, l := range legs {
		if l.State != models.LegJoined && l.State != models.LegRinging {
			missed = append(missed, l.AgentID)
		}
	}
	agent, err := models.NextAvailableAgent(ctx, tx, missed)
	if errors.Is(err, models.ErrNotFound) && len(missed) > 0 {
		agent, err = models.NextAvailableAgent(ctx, tx, nil)
	}
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if _, err := models.UpdateAgentPresence(ctx, tx, agent.Identity, models.PresenceBusy, now); err != nil {
		return nil, err
	}
	call.State = models.CallRinging
	if err := models.UpdateCall(ctx, tx, call, "state"); err != nil {
		return nil, err
	}
	leg := models.Leg{CallID: call.ID, AgentID: agent.ID, CallSID: pendingSID(), Role: models.LegPrimary, State: models.LegRinging}
	if err := models.CreateLeg(ctx, tx, &leg); err != nil {
		return nil, err
	}
	rec.add(EventCallOffered, call.ID, agent.ID, map[string]any{"agent": agent.Identity})
	rec.add(EventPresence, 0, agent.ID, map[string]any{"presence": models.PresenceBusy})
	return &offer{call: *call, agent: *agent, leg: leg}, nil
}

// pendingSID stands in for a leg's CallSid until Twilio returns it.
func pendingSID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "pending-" + hex.EncodeToString(b[:])
}

func isPending(sid string) bool { return strings.HasPrefix(sid, "pending-") }

// callerID is what the agent's phone shows: the caller's number when it is
// one Twilio accepts as a caller ID, the account's number otherwise.
func (s *Service) callerID(from string) string {
	if strings.HasPrefix(from, "+") && len(from) > 2 {
		return from
	}
	return s.cfg.Number
}

// ringPlaced stores the CallSid of a leg Twilio is now ringing. If the call
// ended meanwhile, the ringing is stopped.
func (s *Service) ringPlaced(ctx context.Context, legID int64, sid string) {
	stop := false
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		leg, err := lockedLeg(ctx, tx, legID)
		if err != nil {
			return err
		}
		if isPending(leg.CallSID) {
			leg.CallSID = sid
			if err := models.UpdateLeg(ctx, tx, leg, "call_sid"); err != nil {
				return err
			}
		}
		stop = leg.State != models.LegRinging && leg.State != models.LegJoined
		return nil
	})
	if err != nil {
		s.log.Error("callflow: storing a ringing leg", "leg", legID, "err", err)
	}
	if stop {
		s.endCalls(ctx, []string{sid})
	}
}

// ringFailed undoes an offer that Twilio would not place.
func (s *Service) ringFailed(ctx context.Context, legID int64) {
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		leg, err := models.LegByID(ctx, tx, legID)
		if err != nil {
			return err
		}
		call, err := models.LockCall(ctx, tx, leg.CallID)
		if err != nil {
			return err
		}
		return s.legEndedUnanswered(ctx, tx, rec, call, leg, models.LegFailed)
	})
	if err != nil {
		s.log.Error("callflow: undoing a failed offer", "leg", legID, "err", err)
	}
}

func (s *Service) endCalls(ctx context.Context, sids []string) {
	for _, sid := range sids {
		if isPending(sid) {
			continue
		}
		if err := s.tel.EndCall(ctx, sid); err != nil {
			s.log.Warn("callflow: hanging up a leg", "call_sid", sid, "err", err)
		}
	}
}

// lostCallbackGrace is how long an agent stays busy after their last leg
// left the conference without Twilio reporting that their phone hung up.
const lostCallbackGrace = time.Minute

// ReleaseStrandedAgents frees agents left busy by a status callback that
// never arrived, so nobody is kept from calls for good. It runs with the
// periodic dispatch.
func (s *Service) ReleaseStrandedAgents(ctx context.Context) {
	agents, err := models.ListAgents(ctx, s.db)
	if err != nil {
		s.log.Error("callflow: listing agents", "err", err)
		return
	}
	for i := range agents {
		a := agents[i]
		if a.Presence != models.PresenceBusy {
			continue
		}
		err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
			leg, err := models.LatestLegForAgent(ctx, tx, a.ID)
			if err != nil && !errors.Is(err, models.ErrNotFound) {
				return err
			}
			if leg != nil && (leg.State.Active() || s.now().Sub(leg.LeftAt) < lostCallbackGrace) {
				return nil
			}
			s.log.Warn("callflow: freeing an agent whose call ended without a status callback", "agent", a.Identity)
			return s.freeAgent(ctx, tx, rec, &a, leg != nil && !leg.JoinedAt.IsZero())
		})
		if err != nil {
			s.log.Error("callflow: freeing a stranded agent", "agent", a.Identity, "err", err)
		}
	}
}

// lockedLeg locks the call a leg belongs to, then reads the leg. Everything
// that changes a leg holds its call's lock, so the leg read is current (on
// PostgreSQL a leg read before the lock may predate a commit that was
// waiting for it).
func lockedLeg(ctx context.Context, tx bun.Tx, legID int64) (*models.Leg, error) {
	leg, err := models.LegByID(ctx, tx, legID)
	if err != nil {
		return nil, err
	}
	if _, err := models.LockCall(ctx, tx, leg.CallID); err != nil {
		return nil, err
	}
	return models.LegByID(ctx, tx, legID)
}

// QueuePosition is where the caller on callSID stands in the queue (1 when
// next), or 0 when they are not waiting for an agent: being rung to one,
// talking, on hold during a transfer, or unknown.
func (s *Service) QueuePosition(ctx context.Context, callSID string) (int, error) {
	pos, err := s.stmts.QueuePosition(ctx, callSID)
	if err != nil {
		return 0, fmt.Errorf("callflow: queue position: %w", err)
	}
	return pos, nil
}
