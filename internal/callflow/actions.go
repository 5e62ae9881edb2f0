package callflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// myCall loads a call that the agent is on (joined), for an action on it.
func (s *Service) myCall(ctx context.Context, tx bun.Tx, identity string, callID int64) (*models.Call, *models.Agent, *models.Leg, error) {
	call, err := models.LockCall(ctx, tx, callID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, nil, err
	}
	agent, err := models.AgentByIdentity(ctx, tx, identity)
	if err != nil {
		return nil, nil, nil, err
	}
	legs, err := models.LegsForCall(ctx, tx, call.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	for i := range legs {
		if legs[i].AgentID == agent.ID && legs[i].State == models.LegJoined && legs[i].Role != models.LegMonitor {
			if call.State == models.CallEnded {
				return nil, nil, nil, ErrCallEnded
			}
			return call, agent, &legs[i], nil
		}
	}
	if call.State == models.CallEnded {
		return nil, nil, nil, ErrCallEnded
	}
	return nil, nil, nil, ErrNotOnCall
}

// Transfer brings a colleague into the agent's call (a warm transfer): the
// colleague's phone rings and, once they accept, they join the caller's
// conference; the agent can then leave.
func (s *Service) Transfer(ctx context.Context, identity string, callID int64, toIdentity string) (*models.Transfer, error) {
	return s.startTransfer(ctx, identity, callID, toIdentity, models.TransferDirect)
}

// startTransfer rings a colleague into the agent's call. A consult first
// puts the caller on hold, so the agents talk privately.
func (s *Service) startTransfer(ctx context.Context, identity string, callID int64, toIdentity string, mode models.TransferMode) (*models.Transfer, error) {
	var tr models.Transfer
	var leg models.Leg
	var to models.Agent
	var call models.Call
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, me, _, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		if toIdentity == identity {
			return ErrSelfTransfer
		}
		// Locked before the check (after the call, the order every
		// transaction that takes both keeps): on PostgreSQL the dispatcher
		// could otherwise offer the colleague a call between the check
		// and the update, and the colleague would be rung twice.
		colleague, err := models.LockAgent(ctx, tx, toIdentity)
		if errors.Is(err, models.ErrNotFound) || (err == nil && colleague.Disabled) {
			return ErrUnknownAgent
		}
		if err != nil {
			return err
		}
		if colleague.Presence != models.PresenceAvailable {
			return ErrAgentUnavailable
		}
		if _, err := models.OpenTransferForCall(ctx, tx, c.ID); err == nil {
			return ErrTransferInProgress
		} else if !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if mode.HoldsCaller() && c.ConferenceSID == "" {
			return ErrConferenceNotReady
		}
		if _, err := models.UpdateAgentPresence(ctx, tx, colleague.Identity, models.PresenceBusy, s.now()); err != nil {
			return err
		}
		leg = models.Leg{CallID: c.ID, AgentID: colleague.ID, CallSID: pendingSID(), Role: models.LegColleague, State: models.LegRinging}
		if err := models.CreateLeg(ctx, tx, &leg); err != nil {
			return err
		}
		tr = models.Transfer{CallID: c.ID, FromAgentID: me.ID, ToAgentID: colleague.ID, ToLegID: leg.ID, Mode: mode, State: models.TransferRinging}
		if err := models.CreateTransfer(ctx, tx, &tr); err != nil {
			return err
		}
		c.State = models.CallTransferring
		cols := []string{"state"}
		if mode.HoldsCaller() {
			// Recorded before Twilio is asked, so the colleague's answer
			// does not take the caller off hold, whatever the order of
			// the callbacks.
			c.CustomerOnHold = true
			cols = append(cols, "customer_on_hold")
		}
		if err := models.UpdateCall(ctx, tx, c, cols...); err != nil {
			return err
		}
		rec.add(EventTransferStarted, c.ID, me.ID, map[string]any{"transfer": tr.ID, "from": me.Identity, "to": colleague.Identity})
		rec.add(EventPresence, 0, colleague.ID, map[string]any{"presence": models.PresenceBusy})
		to, call = *colleague, *c
		return nil
	})
	if err != nil {
		return nil, err
	}
	if mode.HoldsCaller() {
		if err := s.tel.Hold(ctx, call.ConferenceSID, call.CallSID, true, s.urls.Wait()); err != nil {
			s.ringFailed(ctx, leg.ID)
			s.consultUndone(ctx, call.ID)
			return nil, fmt.Errorf("callflow: holding the caller: %w: %w", ErrTelephony, err)
		}
	}
	sid, err := s.tel.Ring(ctx, RingRequest{
		Identity:       to.Identity,
		From:           s.callerID(call.FromNumber),
		URL:            s.urls.AgentConnect(leg.ID),
		StatusCallback: s.urls.CallStatus(leg.ID),
		Timeout:        s.cfg.RingTimeout,
	})
	if err != nil {
		s.ringFailed(ctx, leg.ID)
		if mode.HoldsCaller() {
			s.consultUndone(ctx, call.ID)
		}
		return nil, fmt.Errorf("callflow: ringing %s: %w: %w", to.Identity, ErrTelephony, err)
	}
	s.ringPlaced(ctx, &leg, sid)
	return &tr, nil
}

// Leave takes the agent out of a call that a colleague has joined. The
// colleague becomes the one whose leaving ends the call; the caller stays.
func (s *Service) Leave(ctx context.Context, identity string, callID int64) error {
	return s.handOver(ctx, identity, callID, false)
}

// handOver takes the agent out of the call and leaves the caller with the
// colleague who joined, off hold. With consultOnly it completes the agent's
// consult and nothing else.
func (s *Service) handOver(ctx context.Context, identity string, callID int64, consultOnly bool) error {
	op := "leave"
	if consultOnly {
		op = "complete"
	}
	var call models.Call
	var mine, theirs models.Leg
	var unhold bool
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, me, myLeg, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		if consultOnly {
			tr, err := s.myConsult(ctx, tx, c, me)
			if err != nil {
				return err
			}
			if tr.State != models.TransferJoined {
				return ErrColleagueNotJoined
			}
		}
		legs, err := models.LegsForCall(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		var target *models.Leg
		if tr, err := models.OpenTransferForCall(ctx, tx, c.ID); err == nil {
			for i := range legs {
				if legs[i].ID == tr.ToLegID && legs[i].State == models.LegJoined && legs[i].AgentID != me.ID && legs[i].Role != models.LegMonitor {
					target = &legs[i]
				}
			}
		}
		for i := range legs {
			if target == nil && legs[i].State == models.LegJoined && legs[i].AgentID != me.ID && legs[i].AgentID != 0 && legs[i].Role != models.LegMonitor {
				target = &legs[i]
			}
		}
		if target == nil {
			return ErrColleagueNotJoined
		}
		if c.CustomerOnHold {
			// A consult: the caller comes back to the colleague.
			unhold = true
			c.CustomerOnHold = false
			if err := models.UpdateCall(ctx, tx, c, "customer_on_hold"); err != nil {
				return err
			}
			rec.add(EventParticipantHold, c.ID, target.AgentID, map[string]any{"customer": true, "hold": false})
		}
		target.EndConferenceOnExit = true
		if err := models.UpdateLeg(ctx, tx, target, "end_conference_on_exit"); err != nil {
			return err
		}
		// The colleague has the caller from now on. Recording it here, not
		// when Twilio reports the agent gone, keeps the outcome right
		// whatever order the callbacks arrive in.
		if c.AgentID == me.ID {
			c.AgentID = target.AgentID
			c.State = models.CallWithAgent
			if err := models.UpdateCall(ctx, tx, c, "agent_id", "state"); err != nil {
				return err
			}
			if tr, err := models.OpenTransferForCall(ctx, tx, c.ID); err == nil && tr.ToLegID == target.ID {
				tr.State = models.TransferCompleted
				tr.EndedAt = s.now()
				if err := models.UpdateTransfer(ctx, tx, tr, "state", "ended_at"); err != nil {
					return err
				}
				rec.add(EventTransferCompleted, c.ID, target.AgentID, map[string]any{"transfer": tr.ID, "from_agent": me.ID})
			} else if err != nil && !errors.Is(err, models.ErrNotFound) {
				return err
			}
		}
		// The agent is leaving: they are off the call now, whatever order
		// Twilio's reports of it arrive in. Their phone hangs up below; they
		// are free for the next call when Twilio says it has.
		myLeg.State = models.LegLeft
		myLeg.LeftAt = s.now()
		if err := models.UpdateLeg(ctx, tx, myLeg, "state", "left_at"); err != nil {
			return err
		}
		rec.add(EventParticipantLeft, c.ID, me.ID, map[string]any{"agent": me.Identity})
		call, mine, theirs = *c, *myLeg, *target
		return nil
	})
	if err != nil {
		return err
	}
	if unhold {
		if err := s.tel.Hold(ctx, call.ConferenceSID, call.CallSID, false, ""); err != nil {
			return fmt.Errorf("callflow: %s: %w: %w", op, ErrTelephony, err)
		}
	}
	// Twilio ignores an endConferenceOnExit change on a held participant.
	if theirs.Hold {
		if err := s.tel.Hold(ctx, call.ConferenceSID, theirs.CallSID, false, ""); err != nil {
			return fmt.Errorf("callflow: %s: %w: %w", op, ErrTelephony, err)
		}
	}
	// The one staying ends the call by leaving from now on. A colleague
	// who has accepted but is not in the conference yet (Twilio has their
	// TwiML, not their participant) gets the flag when their
	// participant-join arrives (see joined).
	if err := s.tel.SetEndConferenceOnExit(ctx, call.ConferenceSID, theirs.CallSID, true); err != nil && !errors.Is(err, ErrGone) {
		return fmt.Errorf("callflow: %s: %w: %w", op, ErrTelephony, err)
	}
	return s.hangUpLeavingAgent(ctx, &call, &mine, op)
}

// hangUpLeavingAgent hangs up the leg of an agent who is off the call. Their
// leaving must not end the call: a chained transfer may have made them the
// owner, so that is undone first. A leg already gone is what was wanted.
func (s *Service) hangUpLeavingAgent(ctx context.Context, call *models.Call, leg *models.Leg, op string) error {
	if leg.EndConferenceOnExit {
		if err := s.tel.SetEndConferenceOnExit(ctx, call.ConferenceSID, leg.CallSID, false); err != nil && !errors.Is(err, ErrGone) {
			return fmt.Errorf("callflow: %s: %w: %w", op, ErrTelephony, err)
		}
	}
	if leg.CallSID == "" || isPending(leg.CallSID) {
		return nil
	}
	if err := s.tel.EndCall(ctx, leg.CallSID); err != nil && !errors.Is(err, ErrGone) {
		return fmt.Errorf("callflow: %s: %w: %w", op, ErrTelephony, err)
	}
	return nil
}

// Hangup ends the call for everyone on it, the caller included.
func (s *Service) Hangup(ctx context.Context, identity string, callID int64) error {
	var call models.Call
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		c, me, _, err := s.myCall(ctx, tx, identity, callID)
		if err != nil {
			return err
		}
		c.EndedBy = me.Identity
		call = *c
		return models.UpdateCall(ctx, tx, c, "ended_by")
	})
	if err != nil {
		return err
	}
	if call.ConferenceSID != "" {
		err = s.tel.EndConference(ctx, call.ConferenceSID)
	} else {
		err = s.tel.EndCall(ctx, call.CallSID)
	}
	if err != nil {
		return fmt.Errorf("callflow: hang up: %w: %w", ErrTelephony, err)
	}
	return nil
}

// SetPresence sets an agent available (offered calls) or away (not).
// Offline is for signing out.
func (s *Service) SetPresence(ctx context.Context, identity string, p models.Presence) error {
	if p != models.PresenceAvailable && p != models.PresenceAway && p != models.PresenceOffline {
		return ErrBadPresence
	}
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		// Locked, so that on PostgreSQL no offer is made to the agent
		// between the check for a call below and the update.
		agent, err := models.LockAgent(ctx, tx, identity)
		if err != nil {
			return err
		}
		if _, err := models.ActiveLegForAgent(ctx, tx, agent.ID); err == nil {
			switch {
			case p == models.PresenceOffline:
				return nil // going offline mid-call leaves the call alone
			case p == models.PresenceAvailable && agent.Presence == models.PresenceOffline:
				// Signed out during a call and back before it ended: busy
				// with it, and free for the next once it is over.
				if _, err := models.UpdateAgentPresence(ctx, tx, identity, models.PresenceBusy, s.now()); err != nil {
					return err
				}
				rec.add(EventPresence, 0, agent.ID, map[string]any{"presence": models.PresenceBusy})
				return nil
			}
			return ErrOnCall
		} else if !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if p == models.PresenceAvailable && agent.MissedOffers != 0 {
			// Back at their desk: missed offers count from here.
			agent.MissedOffers = 0
			if err := models.UpdateAgent(ctx, tx, agent, "missed_offers"); err != nil {
				return err
			}
		}
		if agent.Presence == p {
			return nil
		}
		if _, err := models.UpdateAgentPresence(ctx, tx, identity, p, s.now()); err != nil {
			return err
		}
		rec.add(EventPresence, 0, agent.ID, map[string]any{"presence": p})
		return nil
	})
	if err != nil {
		return err
	}
	if p == models.PresenceAvailable {
		s.Dispatch(ctx)
	}
	return nil
}

// SignOut ends every session of the agent (their cookies carry the old
// epoch) and takes them off routing, as disabling them does: a call ringing
// them is taken back, and a call they are on goes on, with their presence
// offline already, so its end does not make them available again (only a
// busy agent is freed). The write goes in turn with the service's others,
// like every write the app makes while it serves.
func (s *Service) SignOut(ctx context.Context, identity string) error {
	var stopRinging []string
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		a, offer, err := s.lockAgentAndOffer(ctx, tx, identity)
		if err != nil {
			return err
		}
		was := a.Presence
		if stopRinging, err = s.signOutEverywhere(ctx, tx, rec, a, offer); err != nil {
			return err
		}
		if was != a.Presence {
			rec.add(EventPresence, 0, a.ID, map[string]any{"presence": a.Presence})
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.takeBackOffers(ctx, stopRinging)
	return nil
}
