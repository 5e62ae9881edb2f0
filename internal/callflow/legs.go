package callflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// followUp is Twilio work decided inside a transaction and done after it
// commits, so no transaction waits on the network.
type followUp struct {
	hangUp   []string // CallSids to hang up or stop ringing
	hold     *bool    // put the customer on hold (true) or take them off
	requeue  int64    // once the customer is on hold, queue them again (the owner who left)
	dispatch bool     // offer waiting calls to free agents
	owner    string   // CallSid of an agent whose leaving must now end the conference
}

func (f *followUp) reset() { *f = followUp{} }

func (s *Service) run(ctx context.Context, call *models.Call, f followUp) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dispatchLimit)
	defer cancel()
	s.endCalls(ctx, f.hangUp)
	if f.owner != "" && call != nil && call.ConferenceSID != "" {
		if err := s.tel.SetEndConferenceOnExit(ctx, call.ConferenceSID, f.owner, true); err != nil && !errors.Is(err, ErrGone) {
			s.log.Warn("callflow: making the colleague the call's owner", "call", call.ID, "err", err)
		}
	}
	if f.hold != nil && call != nil && call.ConferenceSID == "" {
		f.hold = nil
	}
	if f.hold != nil && call != nil {
		url := ""
		if *f.hold {
			url = s.urls.Wait()
		}
		err := s.tel.Hold(ctx, call.ConferenceSID, call.CallSID, *f.hold, url)
		switch {
		case errors.Is(err, ErrGone):
			// The caller left while the app thought them alone: callbacks
			// about different calls arrive in any order.
			s.callerGone(ctx, call.ID)
			f.requeue = 0
		case err != nil:
			s.log.Warn("callflow: changing the caller's hold", "call", call.ID, "hold", *f.hold, "err", err)
		}
	}
	if f.requeue != 0 && f.hold == nil && call != nil {
		// No hold confirmed the caller is still there (the conference is
		// not known yet, or they were on hold already): ask Twilio.
		if status, err := s.tel.CallStatus(ctx, call.CallSID); errors.Is(err, ErrGone) || isFinal(status) {
			s.callerGone(ctx, call.ID)
			f.requeue = 0
		}
	}
	if f.requeue != 0 {
		s.requeue(ctx, call.ID, f.requeue)
		f.dispatch = true
	}
	if f.dispatch {
		s.Dispatch(ctx)
	}
}

// callerGone ends a call whose caller is no longer in the conference.
func (s *Service) callerGone(ctx context.Context, callID int64) {
	var f followUp
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		f.reset()
		call, err := models.LockCall(ctx, tx, callID)
		if err != nil {
			return err
		}
		return s.endCall(ctx, tx, rec, &f, call, "caller hung up", endedBy(call))
	})
	if err != nil {
		s.log.Error("callflow: ending a call whose caller left", "call", callID, "err", err)
		return
	}
	s.endCalls(ctx, f.hangUp)
}

// requeue puts a call whose caller is alone (and now on hold) back in the
// queue for the next free agent, unless someone has taken it meanwhile.
func (s *Service) requeue(ctx context.Context, callID, formerOwner int64) {
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		call, err := models.LockCall(ctx, tx, callID)
		if err != nil {
			return err
		}
		if call.State == models.CallEnded || call.State == models.CallQueued || call.AgentID != formerOwner {
			return nil
		}
		call.State = models.CallQueued
		call.AgentID = 0
		rec.add(EventCallQueued, call.ID, 0, map[string]any{"requeued": true})
		return models.UpdateCall(ctx, tx, call, "state", "agent_id")
	})
	if err != nil {
		s.log.Error("callflow: requeueing a call", "call", callID, "err", err)
	}
}

// AgentConnect answers Twilio when an agent accepts a call: the TwiML that
// joins them to the caller's conference. An offer that is no longer wanted
// (the caller hung up, another agent took it) is told so and hung up.
func (s *Service) AgentConnect(ctx context.Context, legID int64, callSID string) (Instructions, error) {
	var ins Instructions
	var call *models.Call
	var f followUp
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		f.reset()
		call = nil
		ins = Instructions{Say: "Sorry, this call is no longer available."}
		leg, err := lockedLeg(ctx, tx, legID)
		if errors.Is(err, models.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if isPending(leg.CallSID) {
			leg.CallSID = callSID
			if err := models.UpdateLeg(ctx, tx, leg, "call_sid"); err != nil {
				return err
			}
		} else if leg.CallSID != callSID {
			return nil
		}
		c, err := models.LockCall(ctx, tx, leg.CallID)
		if err != nil {
			return err
		}
		if c.State == models.CallEnded {
			ins.Say = "Sorry, the caller has already hung up."
			return nil
		}
		if leg.State != models.LegRinging && leg.State != models.LegJoined {
			return nil
		}
		agent, err := models.AgentByID(ctx, tx, leg.AgentID)
		if err != nil {
			return err
		}
		// The agent answered: from now on the call is theirs, even if
		// Twilio's participant-join is overtaken by other callbacks.
		if leg.State == models.LegRinging {
			if err := s.answered(ctx, tx, rec, &f, c, leg); err != nil {
				return err
			}
		}
		call = c
		ins = Instructions{Join: &Join{
			Conference:   c.ConferenceName,
			StartOnEnter: true,
			// An agent leaving never drops the caller, except one who was
			// handed the call before joining (see answered).
			EndOnExit:      leg.EndConferenceOnExit,
			Label:          agentLabel(agent.Identity),
			StatusCallback: s.urls.ConferenceStatus(),
			StatusEvents:   conferenceEvents,
		}}
		return nil
	})
	if err != nil {
		return Instructions{}, fmt.Errorf("callflow: agent connect for leg %d: %w", legID, err)
	}
	s.run(ctx, call, f)
	return ins, nil
}

// CallStatus is a call progress callback.
type CallStatus struct {
	CallSID  string
	Status   string
	Sequence string
	LegID    int64 // from the callback URL; zero when not an agent leg's
}

func isFinal(status string) bool {
	_, ok := finalStatuses[status]
	return ok
}

var finalStatuses = map[string]models.LegState{
	"busy":      models.LegDeclined, // a browser phone that rejects reports busy
	"no-answer": models.LegNoAnswer,
	"failed":    models.LegFailed,
	"canceled":  models.LegCanceled,
	"completed": models.LegLeft,
}

// CallStatus applies a call progress callback: an agent's phone that was
// not answered, or any leg that ended.
func (s *Service) CallStatus(ctx context.Context, st CallStatus) error {
	final, isFinal := finalStatuses[st.Status]
	if !isFinal {
		return nil
	}
	var call *models.Call
	var f followUp
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		f.reset()
		call = nil
		leg, err := s.legForStatus(ctx, tx, st)
		if err != nil {
			return err
		}
		if leg == nil {
			// Not an agent's leg: maybe the customer's own call, hung up
			// before the conference reported anything.
			c, err := models.CallBySID(ctx, tx, st.CallSID)
			if errors.Is(err, models.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if call, err = models.LockCall(ctx, tx, c.ID); err != nil {
				return err
			}
			if owned, err := s.handedOver(ctx, tx, call); err != nil || owned {
				// The call was handed to an agent whose leaving ends the
				// conference, so the caller was in it: their call may have
				// ended because that agent left, and the conference-end on
				// its way (the caller's leaving ends it too) says who.
				return err
			}
			return s.endCall(ctx, tx, rec, &f, call, "caller hung up", "customer")
		}
		if call, err = models.LockCall(ctx, tx, leg.CallID); err != nil {
			return err
		}
		switch leg.State {
		case models.LegRinging:
			if final == models.LegLeft {
				// Answered and hung up before joining the conference.
				final = models.LegCanceled
			}
			// The agent is free and the caller may be waiting again.
			f.dispatch = true
			return s.legEndedUnanswered(ctx, tx, rec, call, leg, final)
		case models.LegJoined:
			if err := s.legLeft(ctx, tx, rec, &f, call, leg); err != nil {
				return err
			}
		}
		// The agent's phone has hung up: only now are they free for the
		// next call (a conference can end a moment before its legs do).
		agent, err := models.AgentByID(ctx, tx, leg.AgentID)
		if err != nil {
			return err
		}
		f.dispatch = true
		// Listening in is not a call of the manager's own: no wrap-up.
		return s.freeAgent(ctx, tx, rec, agent, !leg.JoinedAt.IsZero() && leg.Role != models.LegMonitor)
	})
	if err != nil {
		return fmt.Errorf("callflow: call status %s %s: %w", st.CallSID, st.Status, err)
	}
	// A freed agent or a call back in the queue may make a new offer
	// possible: every branch that frees or requeues asks run to dispatch.
	s.run(ctx, call, f)
	return nil
}

func (s *Service) legForStatus(ctx context.Context, tx bun.Tx, st CallStatus) (*models.Leg, error) {
	if st.LegID != 0 {
		leg, err := lockedLeg(ctx, tx, st.LegID)
		if errors.Is(err, models.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if isPending(leg.CallSID) {
			leg.CallSID = st.CallSID
			if err := models.UpdateLeg(ctx, tx, leg, "call_sid"); err != nil {
				return nil, err
			}
		}
		if leg.CallSID != st.CallSID {
			return nil, nil
		}
		return leg, nil
	}
	leg, err := models.LegByCallSID(ctx, tx, st.CallSID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return lockedLeg(ctx, tx, leg.ID)
}

// legEndedUnanswered records an agent's phone that stopped ringing without
// joining: the agent is free again, and the offer or transfer moves on.
func (s *Service) legEndedUnanswered(ctx context.Context, tx bun.Tx, rec *recorder, call *models.Call, leg *models.Leg, state models.LegState) error {
	now := s.now()
	leg.State = state
	leg.LeftAt = now
	if err := models.UpdateLeg(ctx, tx, leg, "state", "left_at"); err != nil {
		return err
	}
	agent, err := models.AgentByID(ctx, tx, leg.AgentID)
	if err != nil {
		return err
	}
	// A colleague who does not take a transfer is busy with something
	// else; only new callers' offers count as missed.
	if leg.Role == models.LegPrimary && (state == models.LegNoAnswer || state == models.LegDeclined) {
		agent.MissedOffers++
		if err := models.UpdateAgent(ctx, tx, agent, "missed_offers"); err != nil {
			return err
		}
		if s.cfg.MaxMissedOffers > 0 && agent.MissedOffers >= s.cfg.MaxMissedOffers && agent.Presence == models.PresenceBusy {
			if _, err := models.ActiveLegForAgent(ctx, tx, agent.ID); errors.Is(err, models.ErrNotFound) {
				if _, err := models.UpdateAgentPresence(ctx, tx, agent.Identity, models.PresenceAway, now); err != nil {
					return err
				}
				agent.Presence = models.PresenceAway
				rec.add(EventPresence, 0, agent.ID, map[string]any{"presence": models.PresenceAway, "missed_offers": agent.MissedOffers})
			} else if err != nil {
				return err
			}
		}
	}
	if err := s.freeAgent(ctx, tx, rec, agent, false); err != nil {
		return err
	}
	switch leg.Role {
	case models.LegPrimary:
		rec.add(EventOfferMissed, call.ID, agent.ID, map[string]any{"agent": agent.Identity, "reason": string(state)})
		if call.State == models.CallRinging {
			call.State = models.CallQueued
			if err := models.UpdateCall(ctx, tx, call, "state"); err != nil {
				return err
			}
			rec.add(EventCallQueued, call.ID, 0, map[string]any{"requeued": true})
		}
	case models.LegColleague:
		return s.transferFailed(ctx, tx, rec, call, leg, state)
	}
	return nil
}

// transferFailed closes the transfer whose colleague never joined.
func (s *Service) transferFailed(ctx context.Context, tx bun.Tx, rec *recorder, call *models.Call, leg *models.Leg, state models.LegState) error {
	tr, err := models.OpenTransferForCall(ctx, tx, call.ID)
	if errors.Is(err, models.ErrNotFound) || (err == nil && tr.ToLegID != leg.ID) {
		return nil
	}
	if err != nil {
		return err
	}
	tr.State = map[models.LegState]models.TransferState{
		models.LegDeclined: models.TransferDeclined, models.LegNoAnswer: models.TransferNoAnswer,
		models.LegFailed: models.TransferFailed, models.LegCanceled: models.TransferCanceled,
	}[state]
	if tr.State == "" {
		tr.State = models.TransferFailed
	}
	tr.EndedAt = s.now()
	if err := models.UpdateTransfer(ctx, tx, tr, "state", "ended_at"); err != nil {
		return err
	}
	rec.add(EventTransferFailed, call.ID, tr.FromAgentID, map[string]any{"transfer": tr.ID, "state": tr.State, "to_agent": tr.ToAgentID})
	if tr.Mode == models.TransferConsult && call.CustomerOnHold && call.AgentID != 0 && call.ConferenceSID != "" {
		// The colleague never came: the caller comes back to the agent who
		// put them on hold, instead of waiting on hold for nobody.
		call.CustomerOnHold = false
		if err := models.UpdateCall(ctx, tx, call, "customer_on_hold"); err != nil {
			return err
		}
		confSID, callSID := call.ConferenceSID, call.CallSID
		rec.afterCommit(func(ctx context.Context) {
			if err := s.tel.Hold(ctx, confSID, callSID, false, ""); err != nil && !errors.Is(err, ErrGone) {
				s.log.Warn("callflow: taking the caller off hold after a failed consult", "call", call.ID, "err", err)
			}
		})
	}
	if call.State == models.CallTransferring {
		call.State = models.CallWithAgent
		if call.AgentID == 0 {
			// The first agent had already gone: the caller waits again.
			call.State = models.CallQueued
		}
		if err := models.UpdateCall(ctx, tx, call, "state"); err != nil {
			return err
		}
	}
	return nil
}

// freeAgent makes an agent available again once they have no active leg.
func (s *Service) freeAgent(ctx context.Context, tx bun.Tx, rec *recorder, agent *models.Agent, talked bool) error {
	if _, err := models.ActiveLegForAgent(ctx, tx, agent.ID); err == nil {
		return nil
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	now := s.now()
	if talked {
		agent.LastCallEndedAt = now
		if err := models.UpdateAgent(ctx, tx, agent, "last_call_ended_at"); err != nil {
			return err
		}
	}
	if agent.Presence != models.PresenceBusy {
		return nil
	}
	next := models.PresenceAvailable
	if talked && s.cfg.WrapUp > 0 {
		next = models.PresenceWrapUp
	}
	if _, err := models.UpdateAgentPresence(ctx, tx, agent.Identity, next, now); err != nil {
		return err
	}
	agent.Presence = next
	rec.add(EventPresence, 0, agent.ID, map[string]any{"presence": next})
	return nil
}

// EndWrapUps makes agents whose wrap-up time is over available, and offers
// them waiting calls. The app runs it often enough for the timer to be
// felt to the second.
func (s *Service) EndWrapUps(ctx context.Context) {
	if s.cfg.WrapUp <= 0 {
		return
	}
	due, err := models.AgentsInPresenceSince(ctx, s.db, models.PresenceWrapUp, s.now().Add(-s.cfg.WrapUp))
	if err != nil {
		s.log.Error("callflow: listing agents in wrap-up", "err", err)
		return
	}
	freed := false
	for _, a := range due {
		err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
			agent, err := models.LockAgent(ctx, tx, a.Identity)
			if err != nil {
				return err
			}
			// Re-checked under the lock: the agent may have ended their
			// wrap-up themselves, or started another meanwhile.
			if agent.Presence != models.PresenceWrapUp || s.now().Sub(agent.PresenceSince) < s.cfg.WrapUp {
				return nil
			}
			if _, err := models.UpdateAgentPresence(ctx, tx, agent.Identity, models.PresenceAvailable, s.now()); err != nil {
				return err
			}
			rec.add(EventPresence, 0, agent.ID, map[string]any{"presence": models.PresenceAvailable, "wrap_up_over": true})
			freed = true
			return nil
		})
		if err != nil {
			s.log.Error("callflow: ending a wrap-up", "agent", a.Identity, "err", err)
		}
	}
	if freed {
		s.Dispatch(ctx)
	}
}

// WrapUpEnds is when an agent in wrap-up becomes available by themselves.
func (s *Service) WrapUpEnds(a *models.Agent) time.Time {
	if a.Presence != models.PresenceWrapUp || s.cfg.WrapUp <= 0 {
		return time.Time{}
	}
	return a.PresenceSince.Add(s.cfg.WrapUp)
}

// legLeft records an agent leaving the conference and decides who has the
// caller now: the colleague a transfer brought in, another agent on the
// call, or nobody, in which case the caller holds and waits for the next
// free agent.
func (s *Service) legLeft(ctx context.Context, tx bun.Tx, rec *recorder, f *followUp, call *models.Call, leg *models.Leg) error {
	now := s.now()
	leg.State = models.LegLeft
	leg.LeftAt = now
	if err := models.UpdateLeg(ctx, tx, leg, "state", "left_at"); err != nil {
		return err
	}
	agent, err := models.AgentByID(ctx, tx, leg.AgentID)
	if err != nil {
		return err
	}
	rec.add(EventParticipantLeft, call.ID, agent.ID, map[string]any{"agent": agent.Identity})
	if call.State == models.CallEnded || leg.Role == models.LegMonitor {
		return nil
	}
	if leg.EndConferenceOnExit {
		// The agent owned the call (it was handed to them): the conference
		// is ending, because they left or because it ended and took them
		// with it. Its conference-end says which; nothing to hold or
		// requeue.
		return nil
	}
	legs, err := models.LegsForCall(ctx, tx, call.ID)
	if err != nil {
		return err
	}
	var joined []models.Leg
	for _, l := range legs {
		if l.State == models.LegJoined && l.AgentID != 0 && l.Role != models.LegMonitor {
			joined = append(joined, l)
		}
	}
	tr, err := models.OpenTransferForCall(ctx, tx, call.ID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	if tr != nil && tr.ToLegID == leg.ID {
		// The colleague left before the transfer completed.
		return s.transferFailed(ctx, tx, rec, call, leg, models.LegCanceled)
	}
	if call.AgentID != leg.AgentID {
		return nil
	}
	if tr != nil && tr.State == models.TransferJoined {
		// The agent dropped after the colleague joined: the colleague has
		// the caller, and their leaving ends the call.
		for i := range joined {
			if joined[i].ID == tr.ToLegID && !joined[i].EndConferenceOnExit {
				joined[i].EndConferenceOnExit = true
				if err := models.UpdateLeg(ctx, tx, &joined[i], "end_conference_on_exit"); err != nil {
					return err
				}
				f.owner = joined[i].CallSID
			}
		}
		call.AgentID = tr.ToAgentID
		call.State = models.CallWithAgent
		tr.State = models.TransferCompleted
		tr.EndedAt = now
		if err := models.UpdateTransfer(ctx, tx, tr, "state", "ended_at"); err != nil {
			return err
		}
		rec.add(EventTransferCompleted, call.ID, tr.ToAgentID, map[string]any{"transfer": tr.ID, "from_agent": tr.FromAgentID})
		if call.CustomerOnHold {
			// The agent hung up during a consult: the caller comes back to
			// the colleague.
			call.CustomerOnHold = false
			hold := false
			f.hold = &hold
		}
		return models.UpdateCall(ctx, tx, call, "agent_id", "state", "customer_on_hold")
	}
	if len(joined) > 0 {
		call.AgentID = joined[0].AgentID
		return models.UpdateCall(ctx, tx, call, "agent_id")
	}
	// Nobody is with the caller. Hold them with music, and either wait for
	// the colleague still being rung or, once the hold shows the caller is
	// still there, queue them for the next agent.
	if tr == nil {
		f.requeue = leg.AgentID
	} else {
		call.AgentID = 0
	}
	if !call.CustomerOnHold {
		call.CustomerOnHold = true
		hold := true
		f.hold = &hold
	}
	return models.UpdateCall(ctx, tx, call, "agent_id", "customer_on_hold")
}

// endCall records the end of a customer's call: every leg still ringing
// stops, every agent is freed, an open transfer is closed.
func (s *Service) endCall(ctx context.Context, tx bun.Tx, rec *recorder, f *followUp, call *models.Call, reason, endedBy string) error {
	if call.State == models.CallEnded {
		return nil
	}
	now := s.now()
	call.State = models.CallEnded
	call.EndedAt = now
	if call.EndedBy != "" && call.EndedBy != "customer" {
		// Set before the end was reported: an agent pressed Hang up, and
		// that is why, whichever report of the end came first.
		reason = agentEnded
	} else if call.EndedBy == "" {
		call.EndedBy = endedBy
	}
	call.EndReason = reason
	call.CustomerOnHold = false
	if err := models.UpdateCall(ctx, tx, call, "state", "ended_at", "end_reason", "ended_by", "customer_on_hold"); err != nil {
		return err
	}
	legs, err := models.LegsForCall(ctx, tx, call.ID)
	if err != nil {
		return err
	}
	for i := range legs {
		l := &legs[i]
		switch l.State {
		case models.LegRinging:
			f.hangUp = append(f.hangUp, l.CallSID)
			l.State = models.LegCanceled
		case models.LegJoined:
			// Twilio ends the agent's leg with the conference, unless the
			// agent joined a moment too late and is alone in a new one.
			f.hangUp = append(f.hangUp, l.CallSID)
			l.State = models.LegLeft
		default:
			continue
		}
		l.LeftAt = now
		if err := models.UpdateLeg(ctx, tx, l, "state", "left_at"); err != nil {
			return err
		}
		// The agent is freed when their phone's call completes.
	}
	if tr, err := models.OpenTransferForCall(ctx, tx, call.ID); err == nil {
		tr.State = models.TransferCanceled
		tr.EndedAt = now
		if err := models.UpdateTransfer(ctx, tx, tr, "state", "ended_at"); err != nil {
			return err
		}
		rec.add(EventTransferFailed, call.ID, tr.FromAgentID, map[string]any{"transfer": tr.ID, "state": tr.State, "to_agent": tr.ToAgentID})
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	rec.add(EventCallEnded, call.ID, call.AgentID, map[string]any{"reason": reason, "ended_by": call.EndedBy, "duration": int(now.Sub(call.CreatedAt) / time.Second)})
	f.dispatch = true
	return nil
}

// handedOver reports whether the call was ever handed to an agent whose
// leaving ends its conference.
func (s *Service) handedOver(ctx context.Context, tx bun.Tx, call *models.Call) (bool, error) {
	if call.ConferenceSID == "" {
		return false, nil
	}
	legs, err := models.LegsForCall(ctx, tx, call.ID)
	if err != nil {
		return false, err
	}
	for _, l := range legs {
		if l.EndConferenceOnExit {
			return true, nil
		}
	}
	return false, nil
}
