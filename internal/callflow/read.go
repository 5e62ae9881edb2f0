package callflow

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// CallSummary is a call as the pages show it.
type CallSummary struct {
	ID             int64
	From           string
	CallerName     string
	State          models.CallState
	CustomerOnHold bool
	CreatedAt      time.Time
	AnsweredAt     time.Time
	EndedAt        time.Time
	EndReason      string
	EndedBy        string
	// Owner is the agent who has the call, if anyone.
	Owner *AgentSummary
	// Participants are the agents' legs, ringing or joined, oldest first.
	Participants []Participant
	// Transfer is the call's latest transfer while the call is live: in
	// progress, or how the last one ended (declined, not answered...).
	Transfer *TransferSummary
	// Timeline is the call's history, oldest first; only the board fills
	// it in.
	Timeline []TimelineEntry
	// TimelineOmitted counts the earliest steps left out of a long
	// Timeline.
	TimelineOmitted int
}

// Participant is an agent's leg on a call.
type Participant struct {
	LegID    int64
	Identity string
	Name     string
	Role     models.LegRole
	State    models.LegState
	Hold     bool
	// Muted is a manager listening in (a monitor leg that is not muted
	// is coaching).
	Muted    bool
	JoinedAt time.Time
}

// TransferSummary is a transfer in progress.
type TransferSummary struct {
	ID           int64
	FromIdentity string
	FromName     string
	ToIdentity   string
	ToName       string
	Mode         models.TransferMode
	State        models.TransferState
}

// AgentSummary is an agent and what they are doing.
type AgentSummary struct {
	ID            int64
	Identity      string
	Name          string
	Role          models.Role
	Presence      models.Presence
	PresenceSince time.Time
	Disabled      bool
	// CallID is the call the agent is ringing for or on, zero if none.
	CallID int64
	// MissedOffers counts the offers in a row the agent has not answered.
	MissedOffers int
	// WrapUpEnds is when the agent's wrap-up ends; zero when not in one.
	WrapUpEnds time.Time
}

// AgentView is everything an agent's console shows.
type AgentView struct {
	Me AgentSummary
	// Offer is a call ringing this agent (a new caller or a transfer).
	Offer *CallSummary
	// OfferIsTransfer says the offer is a colleague's transfer.
	OfferIsTransfer bool
	// Supervising is "listen" or "coach" when the offer or call is a
	// manager listening in or coaching, empty otherwise.
	Supervising string
	// Call is the call the agent is on.
	Call *CallSummary
	// Colleagues are the other agents, by name.
	Colleagues []AgentSummary
}

func (s *Service) loadAgents(ctx context.Context, db bun.IDB) (map[int64]*models.Agent, []models.Agent, error) {
	list, err := models.ListAgents(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[int64]*models.Agent, len(list))
	for i := range list {
		byID[list[i].ID] = &list[i]
	}
	return byID, list, nil
}

func summarizeAgent(a *models.Agent) AgentSummary {
	return AgentSummary{
		ID: a.ID, Identity: a.Identity, Name: a.Name, Role: a.Role, Presence: a.Presence, PresenceSince: a.PresenceSince,
		Disabled: a.Disabled, MissedOffers: a.MissedOffers,
	}
}

func (s *Service) summarize(ctx context.Context, db bun.IDB, agents map[int64]*models.Agent, c *models.Call) (CallSummary, error) {
	legs, err := models.LegsForCall(ctx, db, c.ID)
	if err != nil {
		return CallSummary{}, err
	}
	var latest *models.Transfer
	tr, err := models.LatestTransferForCall(ctx, db, c.ID)
	switch {
	case err == nil:
		latest = tr
	case !errors.Is(err, models.ErrNotFound):
		return CallSummary{}, err
	}
	return summarizeCall(agents, c, legs, latest), nil
}

// summarizeCall puts a call, its legs (oldest first) and its latest
// transfer (nil if none) together as the pages show them.
func summarizeCall(agents map[int64]*models.Agent, c *models.Call, legs []models.Leg, latest *models.Transfer) CallSummary {
	sum := CallSummary{
		ID: c.ID, From: c.FromNumber, CallerName: c.CallerName, State: c.State, CustomerOnHold: c.CustomerOnHold,
		CreatedAt: c.CreatedAt, AnsweredAt: c.AnsweredAt, EndedAt: c.EndedAt, EndReason: c.EndReason, EndedBy: c.EndedBy,
	}
	if a := agents[c.AgentID]; a != nil {
		o := summarizeAgent(a)
		sum.Owner = &o
	}
	for _, l := range legs {
		if !l.State.Active() && c.State != models.CallEnded {
			continue
		}
		a := agents[l.AgentID]
		if a == nil {
			continue
		}
		if c.State == models.CallEnded && l.State != models.LegLeft {
			continue
		}
		sum.Participants = append(sum.Participants, Participant{LegID: l.ID, Identity: a.Identity, Name: a.Name, Role: l.Role, State: l.State, Hold: l.Hold, Muted: l.Muted, JoinedAt: l.JoinedAt})
	}
	if tr := latest; tr != nil && c.State != models.CallEnded {
		ts := &TransferSummary{ID: tr.ID, Mode: tr.Mode, State: tr.State}
		if a := agents[tr.FromAgentID]; a != nil {
			ts.FromIdentity, ts.FromName = a.Identity, a.Name
		}
		if a := agents[tr.ToAgentID]; a != nil {
			ts.ToIdentity, ts.ToName = a.Identity, a.Name
		}
		sum.Transfer = ts
	}
	return sum
}

// AgentView returns what an agent's console shows.
func (s *Service) AgentView(ctx context.Context, identity string) (AgentView, error) {
	agents, list, err := s.loadAgents(ctx, s.db)
	if err != nil {
		return AgentView{}, fmt.Errorf("callflow: agent view: %w", err)
	}
	for i := range list {
		if list[i].Identity != identity {
			continue
		}
		leg, err := models.ActiveLegForAgent(ctx, s.db, list[i].ID)
		if errors.Is(err, models.ErrNotFound) {
			leg, err = nil, nil
		}
		if err != nil {
			return AgentView{}, fmt.Errorf("callflow: agent view: %w", err)
		}
		return s.agentView(ctx, agents, list, &list[i], leg)
	}
	return AgentView{}, ErrUnknownAgent
}

// AgentViewsByID is AgentView for several agents at once, by id, reading
// the agents once: what the live consoles of a team need after a change.
// Agents that do not exist are left out.
func (s *Service) AgentViewsByID(ctx context.Context, ids []int64) (map[int64]AgentView, error) {
	out := make(map[int64]AgentView, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	agents, list, err := s.loadAgents(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("callflow: agent views: %w", err)
	}
	legs, err := models.ActiveLegsForAgents(ctx, s.db, ids)
	if err != nil {
		return nil, fmt.Errorf("callflow: agent views: %w", err)
	}
	for _, id := range ids {
		me := agents[id]
		if me == nil {
			continue
		}
		v, err := s.agentView(ctx, agents, list, me, legs[id])
		if err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, nil
}

// agentView builds an agent's view from the agents read once and the
// agent's active leg (nil when on no call).
func (s *Service) agentView(ctx context.Context, agents map[int64]*models.Agent, list []models.Agent, me *models.Agent, leg *models.Leg) (AgentView, error) {
	var v AgentView
	v.Me = summarizeAgent(me)
	v.Me.WrapUpEnds = s.WrapUpEnds(me)
	if leg != nil {
		call, err := models.CallByID(ctx, s.db, leg.CallID)
		if err != nil {
			return v, fmt.Errorf("callflow: agent view: %w", err)
		}
		sum, err := s.summarize(ctx, s.db, agents, call)
		if err != nil {
			return v, fmt.Errorf("callflow: agent view: %w", err)
		}
		v.Me.CallID = call.ID
		if leg.Role == models.LegMonitor {
			v.Supervising = "coach"
			if leg.Muted {
				v.Supervising = "listen"
			}
		}
		if leg.State == models.LegJoined {
			v.Call = &sum
		} else {
			v.Offer = &sum
			v.OfferIsTransfer = leg.Role == models.LegColleague
		}
	}
	for i := range list {
		if list[i].ID != me.ID && !list[i].Disabled && list[i].Role == models.RoleAgent {
			v.Colleagues = append(v.Colleagues, summarizeAgent(&list[i]))
		}
	}
	sort.Slice(v.Colleagues, func(i, j int) bool { return v.Colleagues[i].Name < v.Colleagues[j].Name })
	return v, nil
}
