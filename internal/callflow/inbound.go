package callflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c := &models.Call{
			CallSID: in.CallSID, ConferenceName: name, FromNumber: in.From, ToNumber: in.To,
			CallerName: in.CallerName, State: models.CallQueued,
		}
		// In a savepoint: on PostgreSQL the duplicate of a retried webhook
		// would otherwise abort the whole transaction.
		err := tx.RunInTx(ctx, nil, func(ctx context.Context, sp bun.Tx) error { return models.CreateCall(ctx, sp, c) })
		if errors.Is(err, models.ErrDuplicate) {
			rec.events = nil
			return nil
		}
		if err != nil {
			return err
		}
		rec.add(EventCallQueued, c.ID, 0, map[string]any{"from": in.From, "caller_name": in.CallerName})
		return nil
	})
	if err != nil {
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
		o, err := s.nextOffer(ctx)
		if err != nil {
			s.log.Error("callflow: choosing the next offer", "err", err)
			return
		}
		if o == nil {
			return
		}
		sid, err := s.tel.Ring(ctx, RingRequest{
			Identity:       o.agent.Identity,
			From:           s.callerID(o.call.FromNumber),
			URL:            s.urls.AgentConnect(o.leg.ID),
			StatusCallback: s.urls.CallStatus(o.leg.ID),
			Timeout:        s.cfg.RingTimeout,
		})
		if err != nil {
			s.log.Error("callflow: ringing an agent failed", "agent", o.agent.Identity, "call", o.call.ID, "err", err)
			s.ringFailed(ctx, o.leg.ID)
			// Twilio may be down; the periodic dispatch tries again.
			return
		}
		s.ringPlaced(ctx, o.leg.ID, sid)
	}
}

func (s *Service) nextOffer(ctx context.Context) (*offer, error) {
	var o *offer
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		o = nil
		call, err := models.OldestQueuedCall(ctx, tx)
		if errors.Is(err, models.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		legs, err := models.LegsForCall(ctx, tx, call.ID)
		if err != nil {
			return err
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
			return nil
		}
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := models.UpdateAgentPresence(ctx, tx, agent.Identity, models.PresenceBusy, now); err != nil {
			return err
		}
		call.State = models.CallRinging
		if err := models.UpdateCall(ctx, tx, call, "state"); err != nil {
			return err
		}
		leg := models.Leg{CallID: call.ID, AgentID: agent.ID, CallSID: pendingSID(), Role: models.LegPrimary, State: models.LegRinging}
		if err := models.CreateLeg(ctx, tx, &leg); err != nil {
			return err
		}
		rec.add(EventCallOffered, call.ID, agent.ID, map[string]any{"agent": agent.Identity})
		rec.add(EventPresence, 0, agent.ID, map[string]any{"presence": models.PresenceBusy})
		o = &offer{call: *call, agent: *agent, leg: leg}
		return nil
	})
	return o, err
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
	pos, err := models.QueuePosition(ctx, s.db, callSID)
	if err != nil {
		return 0, fmt.Errorf("callflow: queue position: %w", err)
	}
	return pos, nil
}
