package models

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// CallState is where a customer call stands.
type CallState string

// Call states.
const (
	// CallQueued: the customer waits in the conference and no agent is ringing.
	CallQueued CallState = "queued"
	// CallRinging: an agent is being offered the call.
	CallRinging CallState = "ringing"
	// CallWithAgent: an agent is in the conference with the customer.
	CallWithAgent CallState = "with_agent"
	// CallTransferring: a transfer to a colleague is under way.
	CallTransferring CallState = "transferring"
	// CallEnded: the conference is over.
	CallEnded CallState = "ended"
)

// Valid reports whether s is one of the call states.
func (s CallState) Valid() bool {
	switch s {
	case CallQueued, CallRinging, CallWithAgent, CallTransferring, CallEnded:
		return true
	}
	return false
}

// Call is one customer call, from the voice webhook to the end of its
// conference.
type Call struct {
	bun.BaseModel `bun:"table:calls,alias:c"`

	ID int64 `bun:"id,pk,autoincrement"`
	// CallSID is the customer's CallSid.
	CallSID string `bun:"call_sid,notnull"`
	// ConferenceName is named after the call, never after a phone number.
	ConferenceName string `bun:"conference_name,notnull"`
	// ConferenceSID is empty until Twilio reports the conference.
	ConferenceSID string    `bun:"conference_sid,nullzero"`
	FromNumber    string    `bun:"from_number,notnull"`
	CallerName    string    `bun:"caller_name,notnull"`
	ToNumber      string    `bun:"to_number,notnull"`
	State         CallState `bun:"state,notnull"`
	// AgentID is the owning agent, zero while nobody has the call.
	AgentID int64 `bun:"agent_id,nullzero"`
	// ConferenceSeq is the last conference SequenceNumber applied.
	ConferenceSeq int64 `bun:"conference_seq,notnull"`
	// CustomerOnHold is true while the caller hears hold music because no
	// agent is with them.
	CustomerOnHold bool      `bun:"customer_on_hold,notnull"`
	CreatedAt      time.Time `bun:"created_at,notnull"`
	AnsweredAt     time.Time `bun:"answered_at,nullzero"`
	EndedAt        time.Time `bun:"ended_at,nullzero"`
	EndReason      string    `bun:"end_reason,notnull"`
	EndedBy        string    `bun:"ended_by,notnull"`
	UpdatedAt      time.Time `bun:"updated_at,notnull"`
}

// CreateCall inserts c and fills in its ID. An empty State becomes CallQueued
// and zero timestamps now. A CallSid or conference name that is already
// stored (a retried webhook) gives ErrDuplicate.
func CreateCall(ctx context.Context, db bun.IDB, c *Call) error {
	if c.State == "" {
		c.State = CallQueued
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	if _, err := db.NewInsert().Model(c).Exec(ctx); err != nil {
		return wrapErr(fmt.Sprintf("create call %q", c.CallSID), err)
	}
	return nil
}

// CallBySID returns the call whose customer CallSid is callSID.
func CallBySID(ctx context.Context, db bun.IDB, callSID string) (*Call, error) {
	return callWhere(ctx, db, fmt.Sprintf("call %q", callSID), "c.call_sid = ?", callSID)
}

// CallByID returns the call with the given id.
func CallByID(ctx context.Context, db bun.IDB, id int64) (*Call, error) {
	return callWhere(ctx, db, fmt.Sprintf("call %d", id), "c.id = ?", id)
}

// CallByConferenceName returns the call whose conference has the given name.
func CallByConferenceName(ctx context.Context, db bun.IDB, name string) (*Call, error) {
	return callWhere(ctx, db, fmt.Sprintf("call with conference %q", name), "c.conference_name = ?", name)
}

// CallByConferenceSID returns the call whose conference has the given SID.
func CallByConferenceSID(ctx context.Context, db bun.IDB, conferenceSID string) (*Call, error) {
	return callWhere(ctx, db, fmt.Sprintf("call with conference %q", conferenceSID), "c.conference_sid = ?", conferenceSID)
}

func callWhere(ctx context.Context, db bun.IDB, op, where string, arg any) (*Call, error) {
	c := new(Call)
	if err := db.NewSelect().Model(c).Where(where, arg).Scan(ctx); err != nil {
		return nil, wrapErr(op, err)
	}
	return c, nil
}

// ListActiveCalls returns the calls that have not ended, oldest first.
func ListActiveCalls(ctx context.Context, db bun.IDB) ([]Call, error) {
	var calls []Call
	err := db.NewSelect().Model(&calls).
		Where("c.state <> ?", CallEnded).
		Order("c.created_at", "c.id").
		Scan(ctx)
	if err != nil {
		return nil, wrapErr("list active calls", err)
	}
	return calls, nil
}

// ListEndedCallsSince returns up to limit calls (all when limit <= 0) that
// ended at or after since, the most recently ended first.
func ListEndedCallsSince(ctx context.Context, db bun.IDB, since time.Time, limit int) ([]Call, error) {
	var calls []Call
	err := db.NewSelect().Model(&calls).
		Where("c.state = ?", CallEnded).
		Where("c.ended_at >= ?", since).
		OrderExpr("c.ended_at DESC, c.id DESC").
		Limit(int64(limit)).
		Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("list calls ended since %s", since.Format(time.RFC3339)), err)
	}
	return calls, nil
}

// UpdateCall writes the given columns of c (by ID), plus updated_at, which is
// set to now unless "updated_at" is among the columns.
func UpdateCall(ctx context.Context, db bun.IDB, c *Call, columns ...string) error {
	op := fmt.Sprintf("update call %d", c.ID)
	columns = withUpdatedAt(columns, &c.UpdatedAt)
	res, err := db.NewUpdate().Model(c).Column(columns...).WherePK().Exec(ctx)
	if err != nil {
		return wrapErr(op, err)
	}
	return checkAffected(op, res)
}

// AdvanceConferenceSeq records seq as the call's last applied conference
// SequenceNumber if it is newer than the stored one, and reports whether it
// was. Status callbacks arrive out of order; one that reports false is stale.
func AdvanceConferenceSeq(ctx context.Context, db bun.IDB, callID, seq int64) (bool, error) {
	op := fmt.Sprintf("advance conference sequence of call %d to %d", callID, seq)
	res, err := db.NewUpdate().Model((*Call)(nil)).
		Set("conference_seq = ?", seq).
		Set("updated_at = ?", now()).
		Where("id = ?", callID).
		Where("conference_seq < ?", seq).
		Exec(ctx)
	if err != nil {
		return false, wrapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrapErr(op, err)
	}
	if n > 0 {
		return true, nil
	}
	exists, err := db.NewSelect().Model((*Call)(nil)).Where("c.id = ?", callID).Exists(ctx)
	if err != nil {
		return false, wrapErr(op, err)
	}
	if !exists {
		return false, fmt.Errorf("models: %s: %w", op, ErrNotFound)
	}
	return false, nil
}

// OldestQueuedCalls returns up to limit calls waiting for an agent, the
// one that has waited longest first. On PostgreSQL the rows are locked
// (FOR NO KEY UPDATE SKIP LOCKED), so two instances never offer the same call.
func OldestQueuedCalls(ctx context.Context, db bun.IDB, limit int) ([]Call, error) {
	var calls []Call
	q := db.NewSelect().Model(&calls).
		Where("c.state = ?", CallQueued).
		Order("c.created_at", "c.id").
		Limit(int64(limit))
	if isPostgres(db) {
		q = q.For(rowLock + " SKIP LOCKED")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, wrapErr("oldest queued calls", err)
	}
	return calls, nil
}

// QueuedCallSIDs returns the CallSids of the calls waiting for an agent,
// in the order they are offered (models.Statements.QueuePosition's order).
func QueuedCallSIDs(ctx context.Context, db bun.IDB) ([]string, error) {
	var sids []string
	err := db.NewSelect().Model((*Call)(nil)).Column("call_sid").
		Where("state = ?", CallQueued).
		Order("created_at", "id").
		Scan(ctx, &sids)
	if err != nil {
		return nil, wrapErr("queued calls", err)
	}
	return sids, nil
}

// SetCallsState moves the calls with the given IDs to state, in one
// statement.
func SetCallsState(ctx context.Context, db bun.IDB, ids []int64, state CallState) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := db.NewUpdate().Model((*Call)(nil)).
		Set("state = ?", state).
		Set("updated_at = ?", now()).
		Where("id IN (?)", bun.In(ids)).
		Exec(ctx)
	if err != nil {
		return wrapErr(fmt.Sprintf("set %d calls %s", len(ids), state), err)
	}
	return nil
}

// LockCallRows locks several calls' rows until the transaction ends, on
// PostgreSQL, in the order of their IDs (as every transaction that locks
// more than one does, so two never wait for each other); it returns no
// rows. On SQLite, whose transactions here are immediate and so one at a
// time, it reads nothing.
func LockCallRows(ctx context.Context, db bun.IDB, ids []int64) error {
	if len(ids) == 0 || !isPostgres(db) {
		return nil
	}
	var locked []int64
	err := db.NewSelect().Model((*Call)(nil)).Column("c.id").Where("c.id IN (?)", bun.In(ids)).
		Order("c.id").For(rowLock).Scan(ctx, &locked)
	if err != nil {
		return wrapErr(fmt.Sprintf("lock %d calls", len(ids)), err)
	}
	return nil
}

// LockCall returns a call and, on PostgreSQL, locks its row until the
// transaction ends, so webhooks about one call apply one at a time. SQLite
// transactions here are immediate, which serializes them already.
func LockCall(ctx context.Context, db bun.IDB, id int64) (*Call, error) {
	c := new(Call)
	q := db.NewSelect().Model(c).Where("c.id = ?", id)
	if isPostgres(db) {
		q = q.For(rowLock)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("lock call %d", id), err)
	}
	return c, nil
}
