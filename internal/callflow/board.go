package callflow

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
)

// DefaultServiceLevelTarget is the answer time the service level measures
// against when Config.ServiceLevelTarget is not set: the industry's common
// "80% of calls answered within 20 seconds" uses 20 s.
const DefaultServiceLevelTarget = 20 * time.Second

// Bounds that keep one board render cheap: it runs after every event.
const (
	// boardEndedLimit is how many of today's ended calls the board lists.
	boardEndedLimit = 50
	// timelineLimit is how many steps of one call's history the board
	// shows; a longer history keeps its latest steps.
	timelineLimit = 40
)

// BoardView is everything the manager's board shows.
type BoardView struct {
	Active []CallSummary
	// EndedToday are the calls that ended since midnight, newest first
	// (the latest 50).
	EndedToday []CallSummary
	Agents     []AgentSummary
	Waiting    int
	// OldestWaitingSince is when the longest-waiting caller called.
	OldestWaitingSince time.Time
	// Today is when the board's day began: midnight in the contact
	// center's time zone.
	Today time.Time
	// ServiceLevel is how quickly today's callers were answered.
	ServiceLevel ServiceLevel
	// Transfers counts today's transfers by outcome.
	Transfers TransferOutcomes
}

// ServiceLevel is the share of today's callers answered by an agent within
// Target, by the standard contact-center definition:
//
//	service level = answered within T / (answered + abandoned after T)
//
// Callers who hung up within T are left out: they gave up before anyone
// could reasonably answer. A caller still waiting longer than T counts as
// missed already, since whatever happens next cannot be on time; one
// waiting less than T is not counted yet.
type ServiceLevel struct {
	Target time.Duration
	// Calls is every call that arrived today.
	Calls int
	// InTarget were answered within Target; Late after it.
	InTarget, Late int
	// Abandoned hung up unanswered after waiting longer than Target;
	// ShortAbandoned within it (not counted).
	Abandoned, ShortAbandoned int
	// WaitingLate are still waiting, longer than Target (counted as
	// missed); WaitingInTarget are still waiting, not yet counted.
	WaitingLate, WaitingInTarget int
}

// Counted is the denominator: every call that made or missed the target.
func (l ServiceLevel) Counted() int { return l.InTarget + l.Late + l.Abandoned + l.WaitingLate }

// Percent is the service level in whole percent, rounded down so that 99.6%
// never shows as a perfect 100; ok is false while no call counts yet.
func (l ServiceLevel) Percent() (pct int, ok bool) {
	n := l.Counted()
	if n == 0 {
		return 0, false
	}
	return l.InTarget * 100 / n, true
}

// serviceLevel works out the service level from today's call timings at the
// moment now.
func serviceLevel(target time.Duration, now time.Time, calls []models.CallTiming) ServiceLevel {
	l := ServiceLevel{Target: target, Calls: len(calls)}
	for _, c := range calls {
		switch {
		case !c.AnsweredAt.IsZero():
			if c.AnsweredAt.Sub(c.CreatedAt) <= target {
				l.InTarget++
			} else {
				l.Late++
			}
		case !c.EndedAt.IsZero():
			if c.EndedAt.Sub(c.CreatedAt) <= target {
				l.ShortAbandoned++
			} else {
				l.Abandoned++
			}
		case now.Sub(c.CreatedAt) > target:
			l.WaitingLate++
		default:
			l.WaitingInTarget++
		}
	}
	return l
}

// TransferOutcomes counts the transfers started today by how they ended,
// as the transfers table records it.
type TransferOutcomes struct {
	Completed int
	// Declined: the colleague refused the call.
	Declined int
	// NoAnswer: the colleague's phone rang out.
	NoAnswer int
	// Failed: the colleague could not be reached.
	Failed int
	// Canceled: the agent called it off, or the caller hung up first.
	Canceled int
	// InProgress are ringing or joined now.
	InProgress int
}

// Total is every transfer started today.
func (t TransferOutcomes) Total() int {
	return t.Completed + t.Declined + t.NoAnswer + t.Failed + t.Canceled + t.InProgress
}

func transferOutcomes(counts map[models.TransferState]int) TransferOutcomes {
	return TransferOutcomes{
		Completed:  counts[models.TransferCompleted],
		Declined:   counts[models.TransferDeclined],
		NoAnswer:   counts[models.TransferNoAnswer],
		Failed:     counts[models.TransferFailed],
		Canceled:   counts[models.TransferCanceled],
		InProgress: counts[models.TransferRinging] + counts[models.TransferJoined],
	}
}

// TimelineStep is what happened at one step of a call's history.
type TimelineStep string

// Timeline steps.
const (
	StepQueued    TimelineStep = "queued"    // the caller called and waits
	StepRequeued  TimelineStep = "requeued"  // the caller waits again
	StepOffered   TimelineStep = "offered"   // Agent's phone rang
	StepMissed    TimelineStep = "missed"    // Agent did not take it (Detail: declined, no_answer...)
	StepAnswered  TimelineStep = "answered"  // Agent answered the caller
	StepJoined    TimelineStep = "joined"    // Agent, a colleague, joined
	StepHold      TimelineStep = "hold"      // the caller (Customer) or Agent went on hold
	StepUnhold    TimelineStep = "unhold"    // ... and came off it
	StepThreeWay  TimelineStep = "three_way" // the consulted caller joined both agents
	StepTransfer  TimelineStep = "transfer"  // Agent rang Other to hand the call over (Detail: the mode)
	StepConsult   TimelineStep = "consult"   // Agent held the caller and rang Other
	StepHandedOn  TimelineStep = "handed_on" // Agent has the call now, from Other
	StepNotHanded TimelineStep = "not_handed_on"
	StepLeft      TimelineStep = "left"  // Agent left the call
	StepEnded     TimelineStep = "ended" // the call ended (Detail: why), by Agent or the caller (Customer)
)

// TimelineEntry is one step of a call's history, read from its events.
// StepNotHanded is a transfer from Agent to Other that did not complete;
// Detail is its outcome (canceled, declined, no_answer, failed).
type TimelineEntry struct {
	// EventID is the event the step comes from.
	EventID int64
	At      time.Time
	Step    TimelineStep
	// Customer says the step is the caller's.
	Customer bool
	// Agent is the name of the agent the step is about, if any.
	Agent string
	// Other is the second agent of a transfer.
	Other  string
	Detail string
}

// eventPayload is the union of what the call flow records in events.
type eventPayload struct {
	Agent     string `json:"agent"`
	Customer  bool   `json:"customer"`
	Requeued  bool   `json:"requeued"`
	Reason    string `json:"reason"`
	Role      string `json:"role"`
	Hold      bool   `json:"hold"`
	ThreeWay  bool   `json:"three_way"`
	Transfer  int64  `json:"transfer"`
	From      string `json:"from"`
	To        string `json:"to"`
	FromAgent int64  `json:"from_agent"`
	ToAgent   int64  `json:"to_agent"`
	State     string `json:"state"`
	EndedBy   string `json:"ended_by"`
}

// names resolves agents' names by id and by identity.
type names struct {
	byID       map[int64]*models.Agent
	byIdentity map[string]*models.Agent
}

func (n names) of(identity string, id int64) string {
	if a := n.byIdentity[identity]; identity != "" && a != nil {
		return a.Name
	}
	if a := n.byID[id]; a != nil {
		return a.Name
	}
	return identity
}

// timeline turns a call's events (in order) into its history. transfers
// are the call's transfers by id, for their modes.
func timeline(events []models.Event, n names, transfers map[int64]*models.Transfer) []TimelineEntry {
	var out []TimelineEntry
	for _, ev := range events {
		var p eventPayload
		_ = json.Unmarshal([]byte(ev.Payload), &p)
		e := TimelineEntry{EventID: ev.ID, At: ev.CreatedAt}
		switch ev.Kind {
		case EventCallQueued:
			e.Step = StepQueued
			if p.Requeued {
				e.Step = StepRequeued
			}
		case EventCallOffered:
			e.Step, e.Agent = StepOffered, n.of(p.Agent, ev.AgentID)
		case EventOfferMissed:
			e.Step, e.Agent, e.Detail = StepMissed, n.of(p.Agent, ev.AgentID), p.Reason
		case EventCallAnswered:
			e.Step, e.Agent = StepAnswered, n.of(p.Agent, ev.AgentID)
		case EventParticipantJoined:
			// The caller is in the conference from the start, and an
			// answering agent's join comes with call.answered: neither
			// adds a step.
			if p.Customer || p.Role == string(models.LegPrimary) {
				continue
			}
			e.Step, e.Agent = StepJoined, n.of(p.Agent, ev.AgentID)
		case EventParticipantLeft:
			// The caller's leaving ends the call: call.ended says it.
			if p.Customer {
				continue
			}
			e.Step, e.Agent = StepLeft, n.of(p.Agent, ev.AgentID)
		case EventParticipantHold:
			e.Step, e.Customer = StepUnhold, p.Customer
			switch {
			case p.Hold:
				e.Step = StepHold
			case p.ThreeWay:
				e.Step = StepThreeWay
			}
			if !p.Customer {
				e.Agent = n.of("", ev.AgentID)
			}
		case EventTransferStarted:
			e.Step, e.Agent, e.Other = StepTransfer, n.of(p.From, ev.AgentID), n.of(p.To, 0)
			if tr := transfers[p.Transfer]; tr != nil {
				e.Detail = string(tr.Mode)
				if tr.Mode == models.TransferConsult {
					e.Step = StepConsult
				}
			}
		case EventTransferJoined:
			continue // the colleague's participant.joined says it
		case EventTransferCompleted:
			from := p.FromAgent
			if tr := transfers[p.Transfer]; tr != nil && from == 0 {
				from = tr.FromAgentID
			}
			e.Step, e.Agent, e.Other = StepHandedOn, n.of("", ev.AgentID), n.of("", from)
		case EventTransferFailed:
			e.Step, e.Agent, e.Other, e.Detail = StepNotHanded, n.of("", ev.AgentID), n.of("", p.ToAgent), p.State
		case EventCallEnded:
			e.Step, e.Detail = StepEnded, p.Reason
			switch p.EndedBy {
			case "customer":
				e.Customer = true
			case "", "agent":
			default:
				e.Agent = n.of(p.EndedBy, 0)
			}
		default:
			continue
		}
		out = append(out, e)
	}
	return out
}

// startOfDay is midnight of t's day in loc (UTC when nil): where the
// board's "today" begins.
func startOfDay(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func (s *Service) serviceLevelTarget() time.Duration {
	if s.cfg.ServiceLevelTarget > 0 {
		return s.cfg.ServiceLevelTarget
	}
	return DefaultServiceLevelTarget
}

// Board returns what the manager's board shows. It runs after every event,
// so its number of queries does not grow with the number of calls: each
// kind of row is read once for all the calls shown.
func (s *Service) Board(ctx context.Context) (BoardView, error) {
	v, err := s.board(ctx)
	if err != nil {
		return v, fmt.Errorf("callflow: board: %w", err)
	}
	return v, nil
}

func (s *Service) board(ctx context.Context) (BoardView, error) {
	now := s.now()
	v := BoardView{Today: startOfDay(now, s.cfg.Location)}
	agents, list, err := s.loadAgents(ctx, s.db)
	if err != nil {
		return v, err
	}
	active, err := models.ListActiveCalls(ctx, s.db)
	if err != nil {
		return v, err
	}
	ended, err := models.ListEndedCallsSince(ctx, s.db, v.Today, boardEndedLimit)
	if err != nil {
		return v, err
	}
	ids := make([]int64, 0, len(active)+len(ended))
	for _, c := range active {
		ids = append(ids, c.ID)
	}
	for _, c := range ended {
		ids = append(ids, c.ID)
	}
	legList, err := models.LegsForCalls(ctx, s.db, ids)
	if err != nil {
		return v, err
	}
	legs := map[int64][]models.Leg{}
	for _, l := range legList {
		legs[l.CallID] = append(legs[l.CallID], l)
	}
	trList, err := models.TransfersForCalls(ctx, s.db, ids)
	if err != nil {
		return v, err
	}
	transfers := map[int64]*models.Transfer{}
	latest := map[int64]*models.Transfer{}
	for i := range trList {
		tr := &trList[i]
		transfers[tr.ID] = tr
		latest[tr.CallID] = tr // oldest first: the last one wins
	}
	evList, err := models.EventsForCalls(ctx, s.db, ids)
	if err != nil {
		return v, err
	}
	events := map[int64][]models.Event{}
	for _, ev := range evList {
		events[ev.CallID] = append(events[ev.CallID], ev)
	}
	n := names{byID: agents, byIdentity: make(map[string]*models.Agent, len(list))}
	for i := range list {
		n.byIdentity[list[i].Identity] = &list[i]
	}
	summarize := func(c *models.Call) CallSummary {
		sum := summarizeCall(agents, c, legs[c.ID], latest[c.ID])
		sum.Timeline = timeline(events[c.ID], n, transfers)
		if extra := len(sum.Timeline) - timelineLimit; extra > 0 {
			sum.Timeline, sum.TimelineOmitted = sum.Timeline[extra:], extra
		}
		return sum
	}

	onCall := map[int64]int64{}
	for i := range active {
		sum := summarize(&active[i])
		if sum.State == models.CallQueued || sum.State == models.CallRinging {
			v.Waiting++
			if v.OldestWaitingSince.IsZero() || sum.CreatedAt.Before(v.OldestWaitingSince) {
				v.OldestWaitingSince = sum.CreatedAt
			}
		}
		for _, p := range sum.Participants {
			if a := n.byIdentity[p.Identity]; a != nil {
				onCall[a.ID] = sum.ID
			}
		}
		v.Active = append(v.Active, sum)
	}
	for i := range ended {
		v.EndedToday = append(v.EndedToday, summarize(&ended[i]))
	}
	for i := range list {
		a := summarizeAgent(&list[i])
		a.CallID = onCall[a.ID]
		v.Agents = append(v.Agents, a)
	}
	sort.Slice(v.Agents, func(i, j int) bool { return v.Agents[i].Name < v.Agents[j].Name })

	timings, err := models.CallTimingsSince(ctx, s.db, v.Today)
	if err != nil {
		return v, err
	}
	v.ServiceLevel = serviceLevel(s.serviceLevelTarget(), now, timings)
	counts, err := models.CountTransfersSince(ctx, s.db, v.Today)
	if err != nil {
		return v, err
	}
	v.Transfers = transferOutcomes(counts)
	return v, nil
}
