package callflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// BlindTransfer hands the call to a colleague without talking to them
// first: the caller holds with music, the colleague's phone rings, and the
// agent is off the call at once, free for the next one. When the colleague
// answers, the caller comes off hold with them, and the colleague's leaving
// ends the call. If they do not answer, the caller goes back to the queue.
func (s *Service) BlindTransfer(ctx context.Context, identity string, callID int64, toIdentity string) (*models.Transfer, error) {
	tr, err := s.startTransfer(ctx, identity, callID, toIdentity, models.TransferBlind)
	if err != nil {
		return nil, err
	}
	err = s.leaveHeldCaller(ctx, identity, callID, "blind transfer")
	if errors.Is(err, errColleagueAnswered) {
		// The colleague answered before the agent was off the call: an
		// ordinary hand-over.
		err = s.Leave(ctx, identity, callID)
	}
	if err != nil {
		return tr, err
	}
	return tr, nil
}

// errColleagueAnswered stops leaveHeldCaller when the colleague being rung
// has already joined.
var errColleagueAnswered = errors.New("the colleague has answered")

// ToQueue sends the caller back to the queue: they hold with music (and
// hear their place in line), the agent is off the call at once, and the
// next free agent, someone else if anyone is free, is offered the call.
func (s *Service) ToQueue(ctx context.Context, identity string, callID int64) error {
	var call models.Call
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, me, _, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		if _, err := models.OpenTransferForCall(ctx, tx, c.ID); err == nil {
			return ErrTransferInProgress
		} else if !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if c.ConferenceSID == "" {
			return ErrConferenceNotReady
		}
		// Queued before the hold, so the hold music tells the caller
		// their place.
		c.State = models.CallQueued
		c.CustomerOnHold = true
		if err := models.UpdateCall(ctx, tx, c, "state", "customer_on_hold"); err != nil {
			return err
		}
		rec.add(EventCallQueued, c.ID, me.ID, map[string]any{"requeued": true, "by": me.Identity})
		call = *c
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.tel.Hold(ctx, call.ConferenceSID, call.CallSID, true, s.urls.Wait()); err != nil {
		if errors.Is(err, ErrGone) {
			s.callerGone(ctx, call.ID)
			return ErrCallEnded
		}
		// The caller is still with the agent, who can try again.
		s.backFromQueue(ctx, call.ID, identity)
		return fmt.Errorf("callflow: to queue: %w: %w", ErrTelephony, err)
	}
	if err := s.leaveHeldCaller(ctx, identity, callID, "to queue"); err != nil {
		return err
	}
	s.Dispatch(ctx)
	return nil
}

// backFromQueue undoes ToQueue when the caller could not be put on hold.
func (s *Service) backFromQueue(ctx context.Context, callID int64, identity string) {
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, _, _, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		if c.State != models.CallQueued {
			return nil
		}
		c.State, c.CustomerOnHold = models.CallWithAgent, false
		return models.UpdateCall(ctx, tx, c, "state", "customer_on_hold")
	})
	if err != nil {
		s.log.Error("callflow: undoing a send to the queue", "call", callID, "err", err)
	}
}

// leaveHeldCaller takes the agent off a call whose caller is on hold and
// now someone else's business (a colleague being rung, or the queue). The
// call stays with whoever has it if that is no longer the agent (the next
// agent may have taken a requeued caller already). A caller whose
// colleague has already declined goes back to the queue.
func (s *Service) leaveHeldCaller(ctx context.Context, identity string, callID int64, op string) error {
	var call models.Call
	var mine models.Leg
	requeued := false
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		requeued = false
		c, me, myLeg, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		tr, err := models.OpenTransferForCall(ctx, tx, c.ID)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if tr != nil && tr.State == models.TransferJoined {
			return errColleagueAnswered
		}
		myLeg.State = models.LegLeft
		myLeg.LeftAt = s.now()
		if err := models.UpdateLeg(ctx, tx, myLeg, "state", "left_at"); err != nil {
			return err
		}
		rec.add(EventParticipantLeft, c.ID, me.ID, map[string]any{"agent": me.Identity})
		if c.AgentID == me.ID {
			c.AgentID = 0
			if tr == nil && c.State != models.CallQueued {
				// The colleague already said no: the caller waits for
				// the next free agent.
				c.State = models.CallQueued
				requeued = true
				rec.add(EventCallQueued, c.ID, 0, map[string]any{"requeued": true})
			}
			if err := models.UpdateCall(ctx, tx, c, "agent_id", "state"); err != nil {
				return err
			}
		}
		call, mine = *c, *myLeg
		return nil
	})
	if err != nil {
		return err
	}
	if requeued {
		defer s.Dispatch(ctx)
	}
	return s.hangUpLeavingAgent(ctx, &call, &mine, op)
}
