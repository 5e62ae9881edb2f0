package models

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// LegRole is why an agent's call is in the conference.
type LegRole string

// Leg roles.
const (
	// LegPrimary: the agent who answered the customer.
	LegPrimary LegRole = "primary"
	// LegColleague: an agent brought in by a transfer.
	LegColleague LegRole = "colleague"
	// LegMonitor: a manager listening in.
	LegMonitor LegRole = "monitor"
)

// Valid reports whether r is one of the leg roles.
func (r LegRole) Valid() bool {
	return r == LegPrimary || r == LegColleague || r == LegMonitor
}

// LegState is where an agent's call into the conference stands.
type LegState string

// Leg states. Ringing and joined are active; the others are final.
const (
	LegRinging  LegState = "ringing"
	LegJoined   LegState = "joined"
	LegLeft     LegState = "left"
	LegNoAnswer LegState = "no_answer"
	LegDeclined LegState = "declined"
	LegFailed   LegState = "failed"
	LegCanceled LegState = "canceled"
)

// Valid reports whether s is one of the leg states.
func (s LegState) Valid() bool {
	switch s {
	case LegRinging, LegJoined, LegLeft, LegNoAnswer, LegDeclined, LegFailed, LegCanceled:
		return true
	}
	return false
}

// Active reports whether the leg is ringing or in the conference.
func (s LegState) Active() bool {
	return s == LegRinging || s == LegJoined
}

// Leg is one agent's call into a customer's conference.
type Leg struct {
	bun.BaseModel `bun:"table:legs,alias:l"`

	ID     int64 `bun:"id,pk,autoincrement"`
	CallID int64 `bun:"call_id,notnull"`
	// AgentID is zero for a leg that is not an agent's (e.g. a dialed number).
	AgentID int64 `bun:"agent_id,nullzero"`
	// CallSID is the agent's call into the conference.
	CallSID             string    `bun:"call_sid,notnull"`
	Role                LegRole   `bun:"role,notnull"`
	State               LegState  `bun:"state,notnull"`
	Hold                bool      `bun:"hold,notnull"`
	Muted               bool      `bun:"muted,notnull"`
	EndConferenceOnExit bool      `bun:"end_conference_on_exit,notnull"`
	CreatedAt           time.Time `bun:"created_at,notnull"`
	JoinedAt            time.Time `bun:"joined_at,nullzero"`
	LeftAt              time.Time `bun:"left_at,nullzero"`
	UpdatedAt           time.Time `bun:"updated_at,notnull"`
}

// fillDefaults is what a new leg defaults to: an empty State becomes
// LegRinging, zero timestamps now.
func (l *Leg) fillDefaults() {
	if l.State == "" {
		l.State = LegRinging
	}
	if l.CreatedAt.IsZero() {
		l.CreatedAt = now()
	}
	if l.UpdatedAt.IsZero() {
		l.UpdatedAt = l.CreatedAt
	}
}

// CreateLeg inserts l and fills in its ID. An empty State becomes LegRinging
// and zero timestamps now. A CallSid already stored gives ErrDuplicate.
func CreateLeg(ctx context.Context, db bun.IDB, l *Leg) error {
	l.fillDefaults()
	if _, err := db.NewInsert().Model(l).Exec(ctx); err != nil {
		return wrapErr(fmt.Sprintf("create leg %q", l.CallSID), err)
	}
	return nil
}

// LegByCallSID returns the leg whose CallSid is callSID.
func LegByCallSID(ctx context.Context, db bun.IDB, callSID string) (*Leg, error) {
	l := new(Leg)
	if err := db.NewSelect().Model(l).Where("l.call_sid = ?", callSID).Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("leg %q", callSID), err)
	}
	return l, nil
}

// LegsForCall returns every leg of a call, in the order they were created.
func LegsForCall(ctx context.Context, db bun.IDB, callID int64) ([]Leg, error) {
	var legs []Leg
	if err := db.NewSelect().Model(&legs).Where("l.call_id = ?", callID).Order("l.id").Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("legs of call %d", callID), err)
	}
	return legs, nil
}

// ActiveLegForAgent returns the agent's ringing or joined leg (the newest, if
// there were ever more than one), or ErrNotFound when the agent is on no call.
func ActiveLegForAgent(ctx context.Context, db bun.IDB, agentID int64) (*Leg, error) {
	l := new(Leg)
	err := db.NewSelect().Model(l).
		Where("l.agent_id = ?", agentID).
		Where("l.state IN (?)", bun.In([]LegState{LegRinging, LegJoined})).
		OrderExpr("l.id DESC").
		Limit(1).
		Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("active leg of agent %d", agentID), err)
	}
	return l, nil
}

// ActiveLegsForAgents is ActiveLegForAgent for several agents in one query:
// each agent's newest ringing or joined leg, by agent id; agents on no call
// are absent.
func ActiveLegsForAgents(ctx context.Context, db bun.IDB, agentIDs []int64) (map[int64]*Leg, error) {
	out := make(map[int64]*Leg)
	if len(agentIDs) == 0 {
		return out, nil
	}
	var legs []Leg
	err := db.NewSelect().Model(&legs).
		Where("l.agent_id IN (?)", bun.In(agentIDs)).
		Where("l.state IN (?)", bun.In([]LegState{LegRinging, LegJoined})).
		Order("l.id").
		Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("active legs of %d agents", len(agentIDs)), err)
	}
	for i := range legs {
		out[legs[i].AgentID] = &legs[i]
	}
	return out, nil
}

// UpdateLeg writes the given columns of l (by ID), plus updated_at, which is
// set to now unless "updated_at" is among the columns.
func UpdateLeg(ctx context.Context, db bun.IDB, l *Leg, columns ...string) error {
	op := fmt.Sprintf("update leg %d", l.ID)
	columns = withUpdatedAt(columns, &l.UpdatedAt)
	res, err := db.NewUpdate().Model(l).Column(columns...).WherePK().Exec(ctx)
	if err != nil {
		return wrapErr(op, err)
	}
	return checkAffected(op, res)
}

// LegByID returns one leg.
func LegByID(ctx context.Context, db bun.IDB, id int64) (*Leg, error) {
	l := new(Leg)
	if err := db.NewSelect().Model(l).Where("l.id = ?", id).Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("leg %d", id), err)
	}
	return l, nil
}

// LegsByIDs returns the legs with the given IDs, by ID.
func LegsByIDs(ctx context.Context, db bun.IDB, ids []int64) (map[int64]*Leg, error) {
	var legs []Leg
	if len(ids) > 0 {
		if err := db.NewSelect().Model(&legs).Where("l.id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
			return nil, wrapErr(fmt.Sprintf("%d legs", len(ids)), err)
		}
	}
	byID := make(map[int64]*Leg, len(legs))
	for i := range legs {
		byID[legs[i].ID] = &legs[i]
	}
	return byID, nil
}

// LatestLegForAgent returns the agent's most recent leg, or ErrNotFound.
func LatestLegForAgent(ctx context.Context, db bun.IDB, agentID int64) (*Leg, error) {
	l := new(Leg)
	err := db.NewSelect().Model(l).Where("l.agent_id = ?", agentID).OrderExpr("l.id DESC").Limit(1).Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("latest leg of agent %d", agentID), err)
	}
	return l, nil
}

// LegsForCalls returns every leg of the given calls, in the order they were
// created.
func LegsForCalls(ctx context.Context, db bun.IDB, callIDs []int64) ([]Leg, error) {
	if len(callIDs) == 0 {
		return nil, nil
	}
	var legs []Leg
	if err := db.NewSelect().Model(&legs).Where("l.call_id IN (?)", bun.In(callIDs)).Order("l.id").Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("legs of %d calls", len(callIDs)), err)
	}
	return legs, nil
}
