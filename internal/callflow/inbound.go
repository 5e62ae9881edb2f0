package callflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
// The callers that arrive while another transaction stores callers are
// stored together, in one transaction, by whichever of them gets the turn
// first (a group commit). Every caller is still answered only once its own
// call is committed. Each transaction costs a BEGIN and a COMMIT that
// writes the log (on PostgreSQL, waits for it to reach the disk, with the
// lock that orders events held), which cost more than the two inserts; a
// storm of callers shares them instead of queueing on them one by one. On
// SQLite the turn is the writer's (admitter is the writer); on PostgreSQL
// only callers take turns, and everything else writes beside them.
func (s *Service) admit(ctx context.Context, a *admission) error {
	s.prepare(ctx)
	start := time.Now()
	s.newCallers.mu.Lock()
	s.newCallers.pending = append(s.newCallers.pending, a)
	s.newCallers.mu.Unlock()
	select {
	case err := <-a.done: // stored in another caller's transaction
		return err
	case s.admitter <- struct{}{}:
	case <-ctx.Done():
		// Still pending: the next writer stores it, and the webhook
		// Twilio retries finds it.
		return ctx.Err()
	}
	// A writer signals the callers it stored before it lets go.
	select {
	case err := <-a.done:
		<-s.admitter
		return err
	default:
	}
	s.newCallers.mu.Lock()
	batch := s.newCallers.pending
	s.newCallers.pending = nil
	s.newCallers.mu.Unlock()
	// The batch holds other callers' calls: this request ending must not
	// fail them.
	bctx := context.WithoutCancel(ctx)
	err := s.storeCallers(bctx, batch, time.Since(start))
	if err != nil && len(batch) > 1 {
		// One bad call must not fail the others: each on its own.
		for _, b := range batch {
			b.done <- s.storeCallers(bctx, []*admission{b}, 0)
		}
	} else {
		for _, b := range batch {
			b.done <- err
		}
	}
	<-s.admitter
	return <-a.done
}

// storeCallers stores the calls of batch and their events in one
// transaction; the caller holds the admitter's turn, after waiting for it
// for waited.
func (s *Service) storeCallers(ctx context.Context, batch []*admission, waited time.Duration) error {
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
	return s.runTx(ctx, false, waited, f)
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
	placed := make([]placedRing, 0, len(offers))
	for i, o := range offers {
		if errs[i] != nil {
			s.log.Error("callflow: ringing an agent failed", "agent", o.agent.Identity, "call", o.call.ID, "err", errs[i])
			s.ringFailed(ctx, o.leg.ID)
			ok = false
			continue
		}
		placed = append(placed, placedRing{legID: o.leg.ID, callID: o.call.ID, sid: sids[i]})
	}
	s.ringsPlaced(ctx, placed)
	return ok
}

// nextOffers matches waiting calls with available agents, oldest call
// first and longest idle agent first, up to max of them, in one
// transaction: each call is marked ringing and each agent busy, with a leg
// to ring. The calls, the agents and the calls' earlier legs are read once
// for the round, and the calls and agents updated together: a round costs
// a few statements, not a few per offer.
func (s *Service) nextOffers(ctx context.Context, max int) ([]*offer, error) {
	// Most rounds (every new caller asks for one) find nobody free: they
	// learn it from a read, without taking SQLite's write lock.
	if possible, err := s.stmts.OfferPossible(ctx); err != nil || !possible {
		return nil, err
	}
	var offers []*offer
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		offers = offers[:0]
		// The agents first: no more calls are read (and, on PostgreSQL,
		// locked) than there are agents to take them. No more agents are
		// read than calls can take, either: a team may have a hundred
		// free, and reading them all cost the round more than the rest.
		agents, err := models.AvailableAgents(ctx, tx, max)
		if err != nil || len(agents) == 0 {
			return err
		}
		calls, err := models.OldestQueuedCalls(ctx, tx, min(max, len(agents)))
		if err != nil || len(calls) == 0 {
			return err
		}
		callIDs := make([]int64, len(calls))
		for i := range calls {
			callIDs[i] = calls[i].ID
		}
		legs, err := models.LegsForCalls(ctx, tx, callIDs)
		if err != nil {
			return err
		}
		if n := agentsToMatch(calls, legs); len(agents) == max && n > max {
			// Agents who missed these calls are skipped: read past them.
			if agents, err = models.AvailableAgents(ctx, tx, n); err != nil {
				return err
			}
		}
		offers = matchOffers(calls, agents, legs)
		if len(offers) == 0 {
			return nil
		}
		now := s.now()
		callIDs, agentIDs := callIDs[:0], make([]int64, 0, len(offers))
		for _, o := range offers {
			callIDs = append(callIDs, o.call.ID)
			agentIDs = append(agentIDs, o.agent.ID)
		}
		if err := models.MarkAgentsBusy(ctx, tx, agentIDs, now); err != nil {
			return err
		}
		if err := models.SetCallsState(ctx, tx, callIDs, models.CallRinging); err != nil {
			return err
		}
		for _, o := range offers {
			o.agent.Presence, o.agent.PresenceSince = models.PresenceBusy, now
			o.call.State = models.CallRinging
			o.leg = models.Leg{CallID: o.call.ID, AgentID: o.agent.ID, CallSID: pendingSID(), Role: models.LegPrimary, State: models.LegRinging}
			if err := s.stmts.InsertLeg(ctx, tx, &o.leg); err != nil {
				return err
			}
			rec.add(EventCallOffered, o.call.ID, o.agent.ID, map[string]any{"agent": o.agent.Identity})
			rec.add(EventPresence, 0, o.agent.ID, map[string]any{"presence": models.PresenceBusy})
		}
		return nil
	})
	return offers, err
}

// agentsToMatch is how many of the available agents, longest idle first,
// matchOffers needs to see to match calls as it would with all of them:
// one per call, and one more for each agent it might skip (one who
// missed one of the calls). Each call takes the first agent not yet taken
// who did not miss it, and among that many there always is one.
func agentsToMatch(calls []models.Call, legs []models.Leg) int {
	skipped := map[int64]bool{}
	for _, l := range legs {
		if missedBy(l) {
			skipped[l.AgentID] = true
		}
	}
	return len(calls) + len(skipped)
}

// missedBy says the leg's agent had the call and did not keep it: missed
// it, declined it, or sent it back; the call goes to someone else first.
func missedBy(l models.Leg) bool {
	return l.State != models.LegJoined && l.State != models.LegRinging
}

// matchOffers pairs waiting calls (oldest first) with available agents
// (longest idle first), each agent at most once. A call goes to the first
// agent who has not had it yet: not one who missed it, declined it as a
// transfer, or sent it back to the queue; if only such agents are left, to
// the first of them. Matching stops when no agent is left.
func matchOffers(calls []models.Call, agents []models.Agent, legs []models.Leg) []*offer {
	missed := make(map[int64]map[int64]bool) // call ID -> agent IDs
	for _, l := range legs {
		if !missedBy(l) {
			continue
		}
		if missed[l.CallID] == nil {
			missed[l.CallID] = make(map[int64]bool)
		}
		missed[l.CallID][l.AgentID] = true
	}
	taken := make([]bool, len(agents))
	var offers []*offer
	for _, c := range calls {
		pick := -1
		for i := range agents {
			if taken[i] {
				continue
			}
			if pick < 0 {
				pick = i // someone who missed it, failing anyone else
			}
			if !missed[c.ID][agents[i].ID] {
				pick = i
				break
			}
		}
		if pick < 0 {
			break
		}
		taken[pick] = true
		offers = append(offers, &offer{call: c, agent: agents[pick]})
	}
	return offers
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

// placedRing is a leg Twilio is now ringing, with its call and the CallSid
// Twilio gave it.
type placedRing struct {
	legID, callID int64
	sid           string
}

// ringPlaced stores the CallSid of a leg Twilio is now ringing. If the call
// ended meanwhile, the ringing is stopped.
func (s *Service) ringPlaced(ctx context.Context, leg *models.Leg, sid string) {
	s.ringsPlaced(ctx, []placedRing{{legID: leg.ID, callID: leg.CallID, sid: sid}})
}

// ringsPlaced is ringPlaced for a round of offers, in one transaction: a
// storm of callers keeps the writer busy, and each transaction waits its
// turn behind them.
func (s *Service) ringsPlaced(ctx context.Context, rings []placedRing) {
	if len(rings) == 0 {
		return
	}
	var stop []string
	ids := make([]int64, len(rings))
	callIDs := make([]int64, len(rings))
	for i, r := range rings {
		ids[i], callIDs[i] = r.legID, r.callID
	}
	slices.Sort(callIDs)
	callIDs = slices.Compact(callIDs)
	err := s.inTx(ctx, func(tx bun.Tx, rec *recorder) error {
		stop = stop[:0]
		// A leg's call never changes: its lock is taken without reading
		// the legs first (see lockedLeg).
		if err := models.LockCallRows(ctx, tx, callIDs); err != nil {
			return err
		}
		legs, err := models.LegsByIDs(ctx, tx, ids)
		if err != nil {
			return err
		}
		for _, r := range rings {
			leg := legs[r.legID]
			if leg == nil {
				return fmt.Errorf("leg %d: %w", r.legID, models.ErrNotFound)
			}
			if isPending(leg.CallSID) {
				leg.CallSID = r.sid
				if err := models.UpdateLeg(ctx, tx, leg, "call_sid"); err != nil {
					return err
				}
			}
			if leg.State != models.LegRinging && leg.State != models.LegJoined {
				stop = append(stop, r.sid)
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("callflow: storing ringing legs", "legs", len(rings), "err", err)
		return
	}
	s.endCalls(ctx, stop)
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
