package callflow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// ConferenceEvent is a conference status callback.
type ConferenceEvent struct {
	ConferenceSID string
	FriendlyName  string
	Event         string // conference-start, participant-join, ...
	Sequence      string
	CallSID       string
	Hold          bool
	EndOnExit     bool
	ReasonEnded   string
	CallSIDEnding string
	// ReasonLeft is why a participant left (ReasonParticipantLeft).
	ReasonLeft string
}

// ConferenceEvent keeps the database true to what happened in a call's
// conference: who joined, who left, who is on hold, when it ended. Twilio
// retries webhooks, so each event applies once.
func (s *Service) ConferenceEvent(ctx context.Context, ev ConferenceEvent) error {
	var call *models.Call
	var f followUp
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		f.reset()
		call = nil
		c, err := models.CallByConferenceName(ctx, tx, ev.FriendlyName)
		if errors.Is(err, models.ErrNotFound) {
			return nil // not a conference of ours
		}
		if err != nil {
			return err
		}
		first, err := models.ClaimReceipt(ctx, tx, "conf:"+ev.ConferenceSID+":"+ev.Sequence+":"+ev.Event)
		if err != nil || !first {
			return err
		}
		if call, err = models.LockCall(ctx, tx, c.ID); err != nil {
			return err
		}
		if call.ConferenceSID == "" && ev.ConferenceSID != "" {
			call.ConferenceSID = ev.ConferenceSID
			if err := models.UpdateCall(ctx, tx, call, "conference_sid"); err != nil {
				return err
			}
		}
		switch ev.Event {
		case "participant-join":
			return s.joined(ctx, tx, rec, &f, call, ev)
		case "participant-leave":
			if ev.CallSID == call.CallSID && ev.ReasonLeft != "" && ev.ReasonLeft != "participant_hung_up" {
				// The conference ended around the caller (an agent who owned
				// the call left, or it was ended): conference-end, next,
				// says who ended it.
				rec.add(EventParticipantLeft, call.ID, 0, map[string]any{"customer": true})
				return nil
			}
			if ev.CallSID == call.CallSID {
				// The caller has gone (their leaving ends the conference),
				// so the call is over before Twilio reports the end.
				rec.add(EventParticipantLeft, call.ID, 0, map[string]any{"customer": true})
				return s.endCall(ctx, tx, rec, &f, call, endReason(call, ev), endedBy(call))
			}
			leg, err := models.LegByCallSID(ctx, tx, ev.CallSID)
			if errors.Is(err, models.ErrNotFound) || (err == nil && leg.State != models.LegJoined) {
				return nil
			}
			if err != nil {
				return err
			}
			return s.legLeft(ctx, tx, rec, &f, call, leg)
		case "participant-hold", "participant-unhold":
			return s.holdChanged(ctx, tx, rec, call, ev)
		case "conference-end":
			by := endedBy(call)
			if call.EndedBy == "" && ev.CallSIDEnding != "" && ev.CallSIDEnding != call.CallSID {
				by = s.identityOfLeg(ctx, tx, ev.CallSIDEnding)
			}
			return s.endCall(ctx, tx, rec, &f, call, endReason(call, ev), by)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("callflow: conference event %s %s: %w", ev.FriendlyName, ev.Event, err)
	}
	s.run(ctx, call, f)
	return nil
}

// endedBy is who ended a call: the agent who pressed Hang up, or else the
// caller.
func endedBy(call *models.Call) string {
	if call.EndedBy != "" {
		return call.EndedBy
	}
	return "customer"
}

// agentEnded is the reason given for a call an agent ended with Hang up,
// whichever of Twilio's reports of its end comes first.
const agentEnded = "agent ended the call"

// endReason says in words why a call ended.
func endReason(call *models.Call, ev ConferenceEvent) string {
	switch {
	case ev.Event == "participant-leave" || ev.CallSIDEnding == call.CallSID:
		return "caller hung up"
	case ev.ReasonEnded == "last-participant-left":
		return "everyone left"
	case ev.ReasonEnded != "":
		return strings.ReplaceAll(ev.ReasonEnded, "-", " ")
	}
	return "ended"
}

func (s *Service) identityOfLeg(ctx context.Context, tx bun.Tx, callSID string) string {
	leg, err := models.LegByCallSID(ctx, tx, callSID)
	if err != nil {
		return "unknown"
	}
	a, err := models.AgentByID(ctx, tx, leg.AgentID)
	if err != nil {
		return "unknown"
	}
	return a.Identity
}

// joined records a participant joining. An agent's leg normally counts as
// joined already (it answered when it fetched its TwiML); the event
// confirms it. A leg that joined a conference the call no longer has (the
// caller hung up a moment before) is hung up.
func (s *Service) joined(ctx context.Context, tx bun.Tx, rec *recorder, f *followUp, call *models.Call, ev ConferenceEvent) error {
	if ev.CallSID == call.CallSID {
		rec.add(EventParticipantJoined, call.ID, 0, map[string]any{"customer": true})
		return nil
	}
	leg, err := models.LegByCallSID(ctx, tx, ev.CallSID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	stale := call.State == models.CallEnded || (call.ConferenceSID != "" && ev.ConferenceSID != call.ConferenceSID)
	if stale {
		f.hangUp = append(f.hangUp, leg.CallSID)
		return nil
	}
	switch leg.State {
	case models.LegRinging:
		return s.answered(ctx, tx, rec, f, call, leg)
	case models.LegJoined:
		// Only ever raised: a participant-join reports the flag the agent
		// joined with, and may arrive after a hand-over raised it.
		if ev.EndOnExit && !leg.EndConferenceOnExit {
			leg.EndConferenceOnExit = true
			return models.UpdateLeg(ctx, tx, leg, "end_conference_on_exit")
		}
		if leg.EndConferenceOnExit && !ev.EndOnExit {
			// The call was handed to them before they were in the
			// conference, too early for Twilio to set the flag.
			f.owner = leg.CallSID
		}
	}
	return nil
}

// answered records an agent's leg answering: a new caller's offer is now
// the agent's call; a colleague's answer makes a transfer ready.
func (s *Service) answered(ctx context.Context, tx bun.Tx, rec *recorder, f *followUp, call *models.Call, leg *models.Leg) error {
	now := s.now()
	leg.State = models.LegJoined
	leg.JoinedAt = now
	if err := models.UpdateLeg(ctx, tx, leg, "state", "joined_at"); err != nil {
		return err
	}
	agent, err := models.AgentByID(ctx, tx, leg.AgentID)
	if err != nil {
		return err
	}
	if agent.MissedOffers != 0 {
		agent.MissedOffers = 0
		if err := models.UpdateAgent(ctx, tx, agent, "missed_offers"); err != nil {
			return err
		}
	}
	rec.add(EventParticipantJoined, call.ID, agent.ID, map[string]any{"agent": agent.Identity, "role": leg.Role})
	if leg.Role == models.LegMonitor {
		return nil // a manager listening or coaching: the call is as it was
	}
	cols := []string{}
	consulting, err := s.consultAnswered(ctx, tx, call, leg)
	if err != nil {
		return err
	}
	if call.CustomerOnHold && !consulting {
		call.CustomerOnHold = false
		hold := false
		f.hold = &hold
		cols = append(cols, "customer_on_hold")
	}
	switch leg.Role {
	case models.LegPrimary:
		call.AgentID = agent.ID
		call.State = models.CallWithAgent
		if call.AnsweredAt.IsZero() {
			call.AnsweredAt = now
			cols = append(cols, "answered_at")
		}
		cols = append(cols, "agent_id", "state")
		rec.add(EventCallAnswered, call.ID, agent.ID, map[string]any{"agent": agent.Identity})
	case models.LegColleague:
		tr, err := models.OpenTransferForCall(ctx, tx, call.ID)
		if err == nil && tr.ToLegID == leg.ID {
			tr.State = models.TransferJoined
			if err := models.UpdateTransfer(ctx, tx, tr, "state"); err != nil {
				return err
			}
			rec.add(EventTransferJoined, call.ID, tr.FromAgentID, map[string]any{"transfer": tr.ID, "agent": agent.Identity})
			if call.AgentID == 0 {
				// The first agent left before the colleague answered (a
				// blind transfer, or they dropped): the colleague owns the
				// call, and their leaving ends it. They join with
				// endConferenceOnExit set (see AgentConnect).
				leg.EndConferenceOnExit = true
				if err := models.UpdateLeg(ctx, tx, leg, "end_conference_on_exit"); err != nil {
					return err
				}
				call.AgentID = agent.ID
				call.State = models.CallWithAgent
				tr.State = models.TransferCompleted
				tr.EndedAt = now
				if err := models.UpdateTransfer(ctx, tx, tr, "state", "ended_at"); err != nil {
					return err
				}
				rec.add(EventTransferCompleted, call.ID, agent.ID, map[string]any{"transfer": tr.ID})
				cols = append(cols, "agent_id", "state")
			}
		} else if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
	}
	if len(cols) == 0 {
		return nil
	}
	return models.UpdateCall(ctx, tx, call, cols...)
}

func (s *Service) holdChanged(ctx context.Context, tx bun.Tx, rec *recorder, call *models.Call, ev ConferenceEvent) error {
	hold := ev.Event == "participant-hold"
	if ev.CallSID == call.CallSID {
		// The app alone holds the caller, and records that it does before
		// asking Twilio; a report that disagrees was overtaken by a later
		// request (a consult's unhold arriving after the next transfer's
		// hold), so it must not undo it.
		return nil
	}
	leg, err := models.LegByCallSID(ctx, tx, ev.CallSID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	leg.Hold = hold
	rec.add(EventParticipantHold, call.ID, leg.AgentID, map[string]any{"hold": hold})
	return models.UpdateLeg(ctx, tx, leg, "hold")
}
