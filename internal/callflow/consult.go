package callflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// Errors of a consult that handlers turn into 409.
var (
	ErrNoConsult          = errors.New("you have no consultation in progress on this call")
	ErrConferenceNotReady = errors.New("the call is still connecting; try again in a moment")
)

// Consult puts the caller on hold (hearing the wait music) and rings a
// colleague, who joins the call to talk to the agent privately. The agent
// then completes the transfer, makes it three-way, or cancels it.
func (s *Service) Consult(ctx context.Context, identity string, callID int64, toIdentity string) (*models.Transfer, error) {
	return s.startTransfer(ctx, identity, callID, toIdentity, models.TransferConsult)
}

// Complete hands a consulted call to the colleague who joined: the caller
// comes off hold, the colleague's leaving now ends the call, and the agent
// leaves.
func (s *Service) Complete(ctx context.Context, identity string, callID int64) error {
	return s.handOver(ctx, identity, callID, true)
}

// ThreeWay takes the caller off hold during a consult, so the caller and
// both agents hear each other. Complete or Leave still hand the call over.
func (s *Service) ThreeWay(ctx context.Context, identity string, callID int64) error {
	var call models.Call
	unhold := false
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, me, _, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		tr, err := s.myConsult(ctx, tx, c, me)
		if err != nil {
			return err
		}
		if tr.State != models.TransferJoined {
			return ErrColleagueNotJoined
		}
		call = *c
		if !c.CustomerOnHold {
			return nil // three-way already
		}
		unhold = true
		c.CustomerOnHold = false
		rec.add(EventParticipantHold, c.ID, me.ID, map[string]any{"customer": true, "hold": false, "three_way": true})
		return models.UpdateCall(ctx, tx, c, "customer_on_hold")
	})
	if err != nil || !unhold {
		return err
	}
	if err := s.tel.Hold(ctx, call.ConferenceSID, call.CallSID, false, ""); err != nil {
		return fmt.Errorf("callflow: three-way: %w: %w", ErrTelephony, err)
	}
	return nil
}

// Cancel ends the agent's consult: the colleague is dropped (or stops
// ringing) and the caller comes off hold, back with the agent.
func (s *Service) Cancel(ctx context.Context, identity string, callID int64) error {
	var call models.Call
	var theirs models.Leg
	unhold := false
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, me, _, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		tr, err := s.myConsult(ctx, tx, c, me)
		if err != nil {
			return err
		}
		leg, err := models.LegByID(ctx, tx, tr.ToLegID)
		if err != nil {
			return err
		}
		now := s.now()
		// The colleague is off the call now, whatever order Twilio's
		// reports arrive in; they are freed when their phone hangs up.
		switch leg.State {
		case models.LegRinging:
			leg.State = models.LegCanceled
		case models.LegJoined:
			leg.State = models.LegLeft
			colleague, err := models.AgentByID(ctx, tx, leg.AgentID)
			if err != nil {
				return err
			}
			rec.add(EventParticipantLeft, c.ID, colleague.ID, map[string]any{"agent": colleague.Identity})
		}
		leg.LeftAt = now
		if err := models.UpdateLeg(ctx, tx, leg, "state", "left_at"); err != nil {
			return err
		}
		tr.State = models.TransferCanceled
		tr.EndedAt = now
		if err := models.UpdateTransfer(ctx, tx, tr, "state", "ended_at"); err != nil {
			return err
		}
		rec.add(EventTransferFailed, c.ID, tr.FromAgentID, map[string]any{"transfer": tr.ID, "state": tr.State, "to_agent": tr.ToAgentID})
		unhold = c.CustomerOnHold
		c.State = models.CallWithAgent
		c.CustomerOnHold = false
		if unhold {
			rec.add(EventParticipantHold, c.ID, me.ID, map[string]any{"customer": true, "hold": false})
		}
		call, theirs = *c, *leg
		return models.UpdateCall(ctx, tx, c, "state", "customer_on_hold")
	})
	if err != nil {
		return err
	}
	// The colleague goes first, so the caller never hears the agents.
	if !isPending(theirs.CallSID) {
		if err := s.tel.EndCall(ctx, theirs.CallSID); err != nil {
			return fmt.Errorf("callflow: cancel: %w: %w", ErrTelephony, err)
		}
	}
	if unhold {
		if err := s.tel.Hold(ctx, call.ConferenceSID, call.CallSID, false, ""); err != nil {
			return fmt.Errorf("callflow: cancel: %w: %w", ErrTelephony, err)
		}
	}
	return nil
}

// myConsult is the open consult the agent started on the call.
func (s *Service) myConsult(ctx context.Context, tx bun.Tx, c *models.Call, me *models.Agent) (*models.Transfer, error) {
	tr, err := models.OpenTransferForCall(ctx, tx, c.ID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNoConsult
	}
	if err != nil {
		return nil, err
	}
	if tr.Mode != models.TransferConsult || tr.FromAgentID != me.ID {
		return nil, ErrNoConsult
	}
	return tr, nil
}

// consultAnswered says a colleague's answer is to a consult whose agent is
// still on the call: the caller stays on hold while the agents talk.
func (s *Service) consultAnswered(ctx context.Context, tx bun.Tx, call *models.Call, leg *models.Leg) (bool, error) {
	if leg.Role != models.LegColleague || call.AgentID == 0 {
		return false, nil
	}
	tr, err := models.OpenTransferForCall(ctx, tx, call.ID)
	if errors.Is(err, models.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return tr.ToLegID == leg.ID && tr.Mode == models.TransferConsult, nil
}

// consultUndone takes the caller off hold after a consult that could not
// start, if an agent is still with them.
func (s *Service) consultUndone(ctx context.Context, callID int64) {
	var call models.Call
	unhold := false
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, err := models.LockCall(ctx, tx, callID)
		if err != nil {
			return err
		}
		if !c.CustomerOnHold || c.AgentID == 0 || c.State == models.CallEnded {
			return nil
		}
		unhold = true
		c.CustomerOnHold = false
		call = *c
		rec.add(EventParticipantHold, c.ID, c.AgentID, map[string]any{"customer": true, "hold": false})
		return models.UpdateCall(ctx, tx, c, "customer_on_hold")
	})
	if err != nil {
		s.log.Error("callflow: undoing a consult's hold", "call", callID, "err", err)
		return
	}
	if unhold {
		if err := s.tel.Hold(ctx, call.ConferenceSID, call.CallSID, false, ""); err != nil && !errors.Is(err, ErrGone) {
			s.log.Warn("callflow: taking the caller off hold", "call", callID, "err", err)
		}
	}
}
