package callflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// Errors of supervision that handlers turn into 4xx.
var (
	ErrNotManager    = errors.New("only managers may listen in or coach")
	ErrNobodyToCoach = errors.New("no agent is talking to this caller yet")
	ErrNotListening  = errors.New("you are not listening to this call")
)

// Event kinds of supervision.
const (
	EventSupervisorStarted = "supervisor.started"
)

// Supervise rings a manager's browser phone into a call's conference: to
// listen (muted: nobody hears them) or to coach the agent who has the call
// (only that agent hears them, Twilio's coaching). The agent's console
// says so. Hanging up the phone, or StopSupervising, ends it.
func (s *Service) Supervise(ctx context.Context, identity string, callID int64, coach bool) error {
	var leg models.Leg
	var call models.Call
	var agentLeg models.Leg
	var manager models.Agent
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		m, err := models.AgentByIdentity(ctx, tx, identity)
		if err != nil {
			return err
		}
		if m.Role != models.RoleManager || m.Disabled {
			return ErrNotManager
		}
		c, err := models.LockCall(ctx, tx, callID)
		if errors.Is(err, models.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if c.State == models.CallEnded {
			return ErrCallEnded
		}
		if _, err := models.ActiveLegForAgent(ctx, tx, m.ID); err == nil {
			return ErrOnCall
		} else if !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if c.ConferenceSID == "" {
			return ErrConferenceNotReady
		}
		legs, err := models.LegsForCall(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		found := false
		for _, l := range legs {
			if l.AgentID == c.AgentID && l.State == models.LegJoined && l.Role != models.LegMonitor && !isPending(l.CallSID) {
				agentLeg, found = l, true
			}
		}
		if !found {
			return ErrNobodyToCoach
		}
		if m.Presence == models.PresenceAvailable {
			// Not offered callers while on someone else's call.
			if _, err := models.UpdateAgentPresence(ctx, tx, m.Identity, models.PresenceBusy, s.now()); err != nil {
				return err
			}
			rec.add(EventPresence, 0, m.ID, map[string]any{"presence": models.PresenceBusy})
		}
		leg = models.Leg{CallID: c.ID, AgentID: m.ID, CallSID: pendingSID(), Role: models.LegMonitor, State: models.LegRinging, Muted: !coach}
		if err := models.CreateLeg(ctx, tx, &leg); err != nil {
			return err
		}
		mode := "listen"
		if coach {
			mode = "coach"
		}
		agent, err := models.AgentByID(ctx, tx, c.AgentID)
		if err != nil {
			return err
		}
		rec.add(EventSupervisorStarted, c.ID, c.AgentID, map[string]any{"manager": m.Identity, "mode": mode, "agent": agent.Identity})
		call, manager = *c, *m
		return nil
	})
	if err != nil {
		return err
	}
	req := ParticipantRequest{
		ConferenceSID:  call.ConferenceSID,
		Identity:       manager.Identity,
		From:           s.callerID(call.FromNumber),
		Label:          "supervisor-" + manager.Identity,
		Muted:          !coach,
		StatusCallback: s.urls.CallStatus(leg.ID),
		Timeout:        s.cfg.RingTimeout,
	}
	if coach {
		req.CoachCallSID = agentLeg.CallSID
	}
	sid, err := s.tel.AddParticipant(ctx, req)
	if err != nil {
		s.ringFailed(ctx, leg.ID)
		if errors.Is(err, ErrGone) {
			return ErrCallEnded
		}
		return fmt.Errorf("callflow: supervise: %w: %w", ErrTelephony, err)
	}
	s.ringPlaced(ctx, &leg, sid)
	return nil
}

// StopSupervising takes the manager off the call they listen to or coach.
func (s *Service) StopSupervising(ctx context.Context, identity string, callID int64) error {
	var sid string
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		m, err := models.AgentByIdentity(ctx, tx, identity)
		if err != nil {
			return err
		}
		if m.Role != models.RoleManager {
			return ErrNotManager
		}
		if _, err := models.LockCall(ctx, tx, callID); errors.Is(err, models.ErrNotFound) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		legs, err := models.LegsForCall(ctx, tx, callID)
		if err != nil {
			return err
		}
		for _, l := range legs {
			if l.AgentID == m.ID && l.Role == models.LegMonitor && l.State.Active() {
				sid = l.CallSID
				return nil
			}
		}
		return ErrNotListening
	})
	if err != nil {
		return err
	}
	// The leg is recorded as ended when Twilio reports the phone hung up.
	if isPending(sid) {
		return nil
	}
	if err := s.tel.EndCall(ctx, sid); err != nil {
		return fmt.Errorf("callflow: stop supervising: %w: %w", ErrTelephony, err)
	}
	return nil
}
