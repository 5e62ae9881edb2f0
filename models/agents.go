package models

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Role is what an agent may do in the app.
type Role string

// Roles.
const (
	RoleAgent   Role = "agent"
	RoleManager Role = "manager"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	return r == RoleAgent || r == RoleManager
}

// Presence is whether an agent can take a call now.
type Presence string

// Presences.
const (
	PresenceOffline   Presence = "offline"
	PresenceAvailable Presence = "available"
	PresenceBusy      Presence = "busy"
	PresenceAway      Presence = "away"
	PresenceWrapUp    Presence = "wrap_up"
)

// Valid reports whether p is one of the presences.
func (p Presence) Valid() bool {
	switch p {
	case PresenceOffline, PresenceAvailable, PresenceBusy, PresenceAway, PresenceWrapUp:
		return true
	}
	return false
}

// Agent is a person who signs in: an agent who takes calls or a manager.
type Agent struct {
	bun.BaseModel `bun:"table:agents,alias:a"`

	ID int64 `bun:"id,pk,autoincrement"`
	// Identity is the browser phone's Twilio client identity (e.g. "alice").
	Identity     string   `bun:"identity,notnull"`
	Name         string   `bun:"name,notnull"`
	Role         Role     `bun:"role,notnull"`
	PasswordHash string   `bun:"password_hash,notnull" json:"-"`
	Disabled     bool     `bun:"disabled,notnull"`
	Presence     Presence `bun:"presence,notnull"`
	// PresenceSince is when Presence last changed.
	PresenceSince time.Time `bun:"presence_since,notnull"`
	// LastCallEndedAt is zero until the agent's first call ends; routing
	// offers the next call to whoever has been idle longest.
	LastCallEndedAt time.Time `bun:"last_call_ended_at,nullzero"`
	// MissedOffers counts calls offered to the agent and not answered.
	MissedOffers int `bun:"missed_offers,notnull"`
	// SessionEpoch is part of every session cookie; bumping it signs the
	// agent out everywhere.
	SessionEpoch int64     `bun:"session_epoch,notnull"`
	CreatedAt    time.Time `bun:"created_at,notnull"`
	UpdatedAt    time.Time `bun:"updated_at,notnull"`
}

// CreateAgent inserts a and fills in its ID. An empty Role becomes
// RoleAgent, an empty Presence PresenceOffline, and zero timestamps now.
// A taken identity gives ErrDuplicate.
func CreateAgent(ctx context.Context, db bun.IDB, a *Agent) error {
	t := now()
	if a.Role == "" {
		a.Role = RoleAgent
	}
	if a.Presence == "" {
		a.Presence = PresenceOffline
	}
	if a.PresenceSince.IsZero() {
		a.PresenceSince = t
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = t
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	if _, err := db.NewInsert().Model(a).Exec(ctx); err != nil {
		return wrapErr(fmt.Sprintf("create agent %q", a.Identity), err)
	}
	return nil
}

// AgentByIdentity returns the agent with the given identity.
func AgentByIdentity(ctx context.Context, db bun.IDB, identity string) (*Agent, error) {
	a := new(Agent)
	if err := db.NewSelect().Model(a).Where("a.identity = ?", identity).Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("agent %q", identity), err)
	}
	return a, nil
}

// AgentByID returns the agent with the given id.
func AgentByID(ctx context.Context, db bun.IDB, id int64) (*Agent, error) {
	a := new(Agent)
	if err := db.NewSelect().Model(a).Where("a.id = ?", id).Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("agent %d", id), err)
	}
	return a, nil
}

// ListAgents returns every agent, disabled ones included, by identity.
func ListAgents(ctx context.Context, db bun.IDB) ([]Agent, error) {
	var agents []Agent
	if err := db.NewSelect().Model(&agents).Order("a.identity").Scan(ctx); err != nil {
		return nil, wrapErr("list agents", err)
	}
	return agents, nil
}

// UpdateAgent writes the given columns of a (by ID), plus updated_at, which
// is set to now unless "updated_at" is among the columns.
func UpdateAgent(ctx context.Context, db bun.IDB, a *Agent, columns ...string) error {
	columns = withUpdatedAt(columns, &a.UpdatedAt)
	res, err := db.NewUpdate().Model(a).Column(columns...).WherePK().Exec(ctx)
	if err != nil {
		return wrapErr(fmt.Sprintf("update agent %d", a.ID), err)
	}
	return checkAffected(fmt.Sprintf("update agent %d", a.ID), res)
}

// UpdateAgentPresence sets the presence of the agent with the given identity
// as of at and returns the agent as stored. PresenceSince moves to at only
// when the presence actually changes, so repeating "available" keeps the
// agent's place in the routing order.
func UpdateAgentPresence(ctx context.Context, db bun.IDB, identity string, presence Presence, at time.Time) (*Agent, error) {
	op := fmt.Sprintf("set presence of agent %q to %q", identity, presence)
	if !presence.Valid() {
		return nil, fmt.Errorf("models: %s: invalid presence", op)
	}
	a := new(Agent)
	err := db.NewUpdate().Model(a).
		Set("presence_since = CASE WHEN presence = ? THEN presence_since ELSE ? END", presence, at).
		Set("presence = ?", presence).
		Set("updated_at = ?", at).
		Where("identity = ?", identity).
		Returning("*").
		Scan(ctx)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return a, nil
}

// BumpSessionEpoch increments the session epoch of the agent with the given
// identity, invalidating its existing sessions, and returns the new epoch.
func BumpSessionEpoch(ctx context.Context, db bun.IDB, identity string) (int64, error) {
	var epoch int64
	err := db.NewUpdate().Model((*Agent)(nil)).
		Set("session_epoch = session_epoch + 1").
		Set("updated_at = ?", now()).
		Where("identity = ?", identity).
		Returning("session_epoch").
		Scan(ctx, &epoch)
	if err != nil {
		return 0, wrapErr(fmt.Sprintf("bump session epoch of agent %q", identity), err)
	}
	return epoch, nil
}

// farPast stands in for a NULL last_call_ended_at when ordering, so that the
// ordering reads the same on both engines (SQLite sorts NULLs first,
// PostgreSQL last).
var farPast = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// AvailableAgents returns the enabled, available agents, longest idle
// first: those who never had a call, then by earliest last call end, then
// by earliest PresenceSince; the first limit of them, or all when limit is
// not positive. Whoever matches calls with them skips, per call, the
// agents who already missed it.
//
// On PostgreSQL the rows are locked (FOR NO KEY UPDATE SKIP LOCKED), so when this
// runs inside a transaction that then marks agents busy, two concurrent
// transactions never pick the same agent. SQLite transactions here are
// immediate, so they are serialized anyway.
func AvailableAgents(ctx context.Context, db bun.IDB, limit int) ([]Agent, error) {
	var agents []Agent
	q := db.NewSelect().Model(&agents).
		Where("a.presence = ?", PresenceAvailable).
		Where("a.disabled = ?", false).
		OrderExpr("COALESCE(a.last_call_ended_at, ?) ASC", farPast).
		OrderExpr("a.presence_since ASC").
		OrderExpr("a.id ASC")
	if limit > 0 {
		q = q.Limit(int64(limit))
	}
	if isPostgres(db) {
		q = q.For(rowLock + " SKIP LOCKED")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, wrapErr("available agents", err)
	}
	return agents, nil
}

// SignOutAllAgents takes every agent off routing (offline as of at), for
// when every session has ended at once. A call an agent is on goes on; as
// they are offline already, its end does not make them available (only a
// busy agent is freed).
func SignOutAllAgents(ctx context.Context, db bun.IDB, at time.Time) error {
	_, err := db.NewUpdate().Model((*Agent)(nil)).
		Set("presence = ?", PresenceOffline).
		Set("presence_since = ?", at).
		Set("updated_at = ?", at).
		Where("presence <> ?", PresenceOffline).
		Exec(ctx)
	if err != nil {
		return wrapErr("sign out every agent", err)
	}
	return nil
}

// MarkAgentsBusy sets the agents with the given IDs busy as of at, in one
// statement.
func MarkAgentsBusy(ctx context.Context, db bun.IDB, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := db.NewUpdate().Model((*Agent)(nil)).
		Set("presence_since = CASE WHEN presence = ? THEN presence_since ELSE ? END", PresenceBusy, at).
		Set("presence = ?", PresenceBusy).
		Set("updated_at = ?", at).
		Where("id IN (?)", bun.In(ids)).
		Exec(ctx)
	if err != nil {
		return wrapErr(fmt.Sprintf("mark %d agents busy", len(ids)), err)
	}
	return nil
}

// AgentsInPresenceSince lists the agents whose presence has been p since
// at or earlier (for timers such as wrap-up).
func AgentsInPresenceSince(ctx context.Context, db bun.IDB, p Presence, at time.Time) ([]Agent, error) {
	var list []Agent
	err := db.NewSelect().Model(&list).
		Where("a.presence = ?", p).
		Where("a.presence_since <= ?", at).
		OrderExpr("a.id ASC").
		Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("agents %q since %s", p, at), err)
	}
	return list, nil
}

// withUpdatedAt adds "updated_at" to columns, stamping *updatedAt with now,
// unless the caller listed it and so chose the value.
func withUpdatedAt(columns []string, updatedAt *time.Time) []string {
	for _, c := range columns {
		if c == "updated_at" {
			return columns
		}
	}
	*updatedAt = now()
	return append(columns[:len(columns):len(columns)], "updated_at")
}

// LockAgent returns the agent with the given identity and, on PostgreSQL,
// locks its row until the transaction ends, so that changes read-modify-write
// it (the session epoch above all) one at a time. SQLite transactions here
// are immediate, which serializes them already.
func LockAgent(ctx context.Context, db bun.IDB, identity string) (*Agent, error) {
	a := new(Agent)
	q := db.NewSelect().Model(a).Where("a.identity = ?", identity)
	if isPostgres(db) {
		q = q.For(rowLock)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("lock agent %q", identity), err)
	}
	return a, nil
}

// AgentByIdentityFold returns the agent whose identity equals identity
// ignoring ASCII case (identities are ASCII), so that "Alice" can be refused
// where "alice" exists: two people told apart only by case would sign in
// as each other by mistake.
func AgentByIdentityFold(ctx context.Context, db bun.IDB, identity string) (*Agent, error) {
	a := new(Agent)
	err := db.NewSelect().Model(a).Where("LOWER(a.identity) = LOWER(?)", identity).OrderExpr("a.id").Limit(1).Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("agent %q (any case)", identity), err)
	}
	return a, nil
}
