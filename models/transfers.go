package models

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// TransferMode is how a call is handed to a colleague.
type TransferMode string

// Transfer modes.
const (
	// TransferDirect: the colleague joins the customer and the first agent,
	// then the first agent leaves.
	TransferDirect TransferMode = "direct"
	// TransferConsult: the customer is held while the agents talk.
	TransferConsult TransferMode = "consult"
	// TransferBlind: the first agent leaves as soon as the colleague is dialed.
	TransferBlind TransferMode = "blind"
)

// HoldsCaller reports whether the caller holds, hearing music, while the
// colleague is rung.
func (m TransferMode) HoldsCaller() bool {
	return m == TransferConsult || m == TransferBlind
}

// Valid reports whether m is one of the transfer modes.
func (m TransferMode) Valid() bool {
	return m == TransferDirect || m == TransferConsult || m == TransferBlind
}

// TransferState is where a transfer stands.
type TransferState string

// Transfer states. Ringing and joined are open; the others are final.
const (
	TransferRinging   TransferState = "ringing"
	TransferJoined    TransferState = "joined"
	TransferCompleted TransferState = "completed"
	TransferCanceled  TransferState = "canceled"
	TransferDeclined  TransferState = "declined"
	TransferNoAnswer  TransferState = "no_answer"
	TransferFailed    TransferState = "failed"
)

// Valid reports whether s is one of the transfer states.
func (s TransferState) Valid() bool {
	switch s {
	case TransferRinging, TransferJoined, TransferCompleted, TransferCanceled,
		TransferDeclined, TransferNoAnswer, TransferFailed:
		return true
	}
	return false
}

// Open reports whether the transfer is still under way.
func (s TransferState) Open() bool {
	return s == TransferRinging || s == TransferJoined
}

// Transfer is one attempt to hand a call from one agent to another.
type Transfer struct {
	bun.BaseModel `bun:"table:transfers,alias:t"`

	ID          int64 `bun:"id,pk,autoincrement"`
	CallID      int64 `bun:"call_id,notnull"`
	FromAgentID int64 `bun:"from_agent_id,notnull"`
	ToAgentID   int64 `bun:"to_agent_id,notnull"`
	// ToLegID is the colleague's leg, zero until it is dialed.
	ToLegID   int64         `bun:"to_leg_id,nullzero"`
	Mode      TransferMode  `bun:"mode,notnull"`
	State     TransferState `bun:"state,notnull"`
	CreatedAt time.Time     `bun:"created_at,notnull"`
	EndedAt   time.Time     `bun:"ended_at,nullzero"`
	UpdatedAt time.Time     `bun:"updated_at,notnull"`
}

// CreateTransfer inserts t and fills in its ID. An empty State becomes
// TransferRinging and zero timestamps now.
func CreateTransfer(ctx context.Context, db bun.IDB, t *Transfer) error {
	if t.State == "" {
		t.State = TransferRinging
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	if _, err := db.NewInsert().Model(t).Exec(ctx); err != nil {
		return wrapErr(fmt.Sprintf("create transfer of call %d", t.CallID), err)
	}
	return nil
}

// TransferByID returns the transfer with the given id.
func TransferByID(ctx context.Context, db bun.IDB, id int64) (*Transfer, error) {
	t := new(Transfer)
	if err := db.NewSelect().Model(t).Where("t.id = ?", id).Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("transfer %d", id), err)
	}
	return t, nil
}

// OpenTransferForCall returns the call's ringing or joined transfer (the
// newest, if there were ever more than one), or ErrNotFound.
func OpenTransferForCall(ctx context.Context, db bun.IDB, callID int64) (*Transfer, error) {
	t := new(Transfer)
	err := db.NewSelect().Model(t).
		Where("t.call_id = ?", callID).
		Where("t.state IN (?)", bun.In([]TransferState{TransferRinging, TransferJoined})).
		OrderExpr("t.id DESC").
		Limit(1).
		Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("open transfer of call %d", callID), err)
	}
	return t, nil
}

// UpdateTransfer writes the given columns of t (by ID), plus updated_at, which
// is set to now unless "updated_at" is among the columns.
func UpdateTransfer(ctx context.Context, db bun.IDB, t *Transfer, columns ...string) error {
	op := fmt.Sprintf("update transfer %d", t.ID)
	columns = withUpdatedAt(columns, &t.UpdatedAt)
	res, err := db.NewUpdate().Model(t).Column(columns...).WherePK().Exec(ctx)
	if err != nil {
		return wrapErr(op, err)
	}
	return checkAffected(op, res)
}

// LatestTransferForCall returns the call's most recent transfer, open or
// not, or ErrNotFound.
func LatestTransferForCall(ctx context.Context, db bun.IDB, callID int64) (*Transfer, error) {
	t := new(Transfer)
	err := db.NewSelect().Model(t).Where("t.call_id = ?", callID).OrderExpr("t.id DESC").Limit(1).Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("latest transfer of call %d", callID), err)
	}
	return t, nil
}

// TransfersForCalls returns every transfer of the given calls, oldest first.
func TransfersForCalls(ctx context.Context, db bun.IDB, callIDs []int64) ([]Transfer, error) {
	if len(callIDs) == 0 {
		return nil, nil
	}
	var transfers []Transfer
	if err := db.NewSelect().Model(&transfers).Where("t.call_id IN (?)", bun.In(callIDs)).Order("t.id").Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("transfers of %d calls", len(callIDs)), err)
	}
	return transfers, nil
}
