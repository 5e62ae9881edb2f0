package callflow

import (
	"context"
	"errors"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
)

// staleAfter is how long a call may go without news before the app asks
// Twilio how it stands. Twilio does not retry status callbacks, so one lost
// to a restart or the network would otherwise leave a call open forever.
const staleAfter = 30 * time.Second

// Reconcile asks Twilio about calls and legs the database still thinks are
// live but that have not changed for a while (all of them when force is
// true, as at start-up after a restart), and applies what it learns as if
// the lost status callbacks had arrived.
func (s *Service) Reconcile(ctx context.Context, force bool) {
	calls, err := models.ListActiveCalls(ctx, s.db)
	if err != nil {
		s.log.Error("callflow: reconcile: listing calls", "err", err)
		return
	}
	now := s.now()
	for _, c := range calls {
		if ctx.Err() != nil {
			return
		}
		if !force && now.Sub(c.UpdatedAt) < staleAfter {
			continue
		}
		legs, err := models.LegsForCall(ctx, s.db, c.ID)
		if err != nil {
			s.log.Error("callflow: reconcile: listing legs", "call", c.ID, "err", err)
			continue
		}
		for _, l := range legs {
			if !l.State.Active() || isPending(l.CallSID) {
				continue
			}
			s.reconcileLeg(ctx, l)
		}
		status, err := s.tel.CallStatus(ctx, c.CallSID)
		if errors.Is(err, ErrGone) {
			status = "completed"
		} else if err != nil {
			s.log.Warn("callflow: reconcile: asking Twilio about a call", "call", c.ID, "err", err)
			continue
		}
		if _, final := finalStatuses[status]; final {
			s.log.Info("callflow: reconcile: the caller's call ended without a callback", "call", c.ID, "status", status)
			s.callerGone(ctx, c.ID)
			s.Dispatch(ctx)
		}
	}
	s.ReleaseStrandedAgents(ctx)
}

func (s *Service) reconcileLeg(ctx context.Context, l models.Leg) {
	status, err := s.tel.CallStatus(ctx, l.CallSID)
	if errors.Is(err, ErrGone) {
		status = "completed"
	} else if err != nil {
		s.log.Warn("callflow: reconcile: asking Twilio about a leg", "leg", l.ID, "err", err)
		return
	}
	if _, final := finalStatuses[status]; !final {
		return
	}
	if err := s.CallStatus(ctx, CallStatus{CallSID: l.CallSID, Status: status, LegID: l.ID}); err != nil {
		s.log.Error("callflow: reconcile: applying a leg's status", "leg", l.ID, "err", err)
	}
}
