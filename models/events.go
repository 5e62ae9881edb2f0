package models

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"
)

// Event is one entry of the append-only history: what the board shows, what
// SSE replays after Last-Event-ID, and what other instances pick up.
type Event struct {
	bun.BaseModel `bun:"table:events,alias:e"`

	// ID increases with every event; it is the SSE event id.
	ID int64 `bun:"id,pk,autoincrement"`
	// CallID is zero for an event that concerns no call.
	CallID int64 `bun:"call_id,nullzero"`
	// AgentID is the agent the event concerns, zero if none.
	AgentID int64  `bun:"agent_id,nullzero"`
	Kind    string `bun:"kind,notnull"`
	// Payload is JSON.
	Payload   string    `bun:"payload,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// EventsChannel is the PostgreSQL NOTIFY channel that tells instances of
// new events: each transaction that appends some sends its newest id.
const EventsChannel = "wt_events"

// eventsLockKey is the PostgreSQL advisory lock that orders event inserts.
const eventsLockKey int64 = 0x77745f6576656e74 // "wt_event"

// AppendEvent inserts e and fills in its ID (and CreatedAt, when zero).
//
// Readers resume after the last id they saw, so an event must never become
// visible after one with a higher id. SQLite serializes writers, so that holds
// there. On PostgreSQL ids come from a sequence and transactions commit in any
// order, so AppendEvent takes a transaction-scoped advisory lock first: event
// writers then commit in id order. The lock lasts until the caller's
// transaction ends, so append events last in a transaction.
func AppendEvent(ctx context.Context, db bun.IDB, e *Event) error {
	insert := func(ctx context.Context, db bun.IDB, e *Event) error {
		_, err := db.NewInsert().Model(e).Exec(ctx)
		return err
	}
	events := []Event{*e}
	defer func() { *e = events[0] }()
	if !isPostgres(db) {
		return appendEvents(ctx, db, events, insert)
	}
	switch db.(type) {
	case bun.Tx, *bun.Tx:
		return appendEvents(ctx, db, events, insert)
	}
	// The lock needs a transaction to last until.
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return appendEvents(ctx, tx, events, insert)
	})
}

// appendEvents stamps events and has insert store each (and fill in its
// ID) in db, in order, and in id order among transactions on PostgreSQL,
// where db must be a transaction. There a transaction's events take the
// lock once and send one notification, with the newest id: listeners read
// every event after the last they published, so one is enough, and the
// lock, which every event writer waits for, is held for one round trip
// fewer per event.
func appendEvents(ctx context.Context, db bun.IDB, events []Event, insert func(ctx context.Context, db bun.IDB, e *Event) error) error {
	if len(events) == 0 {
		return nil
	}
	for i := range events {
		if events[i].CreatedAt.IsZero() {
			events[i].CreatedAt = now()
		}
	}
	pg := isPostgres(db)
	if pg {
		if _, err := db.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", eventsLockKey); err != nil {
			return wrapErr("append events", err)
		}
	}
	for i := range events {
		if err := insert(ctx, db, &events[i]); err != nil {
			return wrapErr(fmt.Sprintf("append event %q", events[i].Kind), err)
		}
	}
	if pg {
		// Every instance learns of the events when this transaction
		// commits (NOTIFY is transactional), and reads the rows after
		// the last it published.
		last := strconv.FormatInt(events[len(events)-1].ID, 10)
		if _, err := db.ExecContext(ctx, "SELECT pg_notify(?, ?)", EventsChannel, last); err != nil {
			return wrapErr("append events", err)
		}
	}
	return nil
}

// EventsAfter returns up to limit events (all when limit <= 0) with an id
// greater than afterID, in id order.
func EventsAfter(ctx context.Context, db bun.IDB, afterID int64, limit int) ([]Event, error) {
	var events []Event
	err := db.NewSelect().Model(&events).
		Where("e.id > ?", afterID).
		Order("e.id").
		Limit(int64(limit)).
		Scan(ctx)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("events after %d", afterID), err)
	}
	return events, nil
}

// EventsForCall returns a call's events in id order: its history.
func EventsForCall(ctx context.Context, db bun.IDB, callID int64) ([]Event, error) {
	var events []Event
	if err := db.NewSelect().Model(&events).Where("e.call_id = ?", callID).Order("e.id").Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("events of call %d", callID), err)
	}
	return events, nil
}

// LatestEventID returns the highest event id, or 0 when there are no events.
func LatestEventID(ctx context.Context, db bun.IDB) (int64, error) {
	var id int64
	err := db.NewSelect().Model((*Event)(nil)).ColumnExpr("COALESCE(MAX(e.id), 0)").Scan(ctx, &id)
	if err != nil {
		return 0, wrapErr("latest event id", err)
	}
	return id, nil
}

// EventsForCalls returns the events of the given calls, in id order: their
// histories in one query.
func EventsForCalls(ctx context.Context, db bun.IDB, callIDs []int64) ([]Event, error) {
	if len(callIDs) == 0 {
		return nil, nil
	}
	var events []Event
	if err := db.NewSelect().Model(&events).Where("e.call_id IN (?)", bun.In(callIDs)).Order("e.id").Scan(ctx); err != nil {
		return nil, wrapErr(fmt.Sprintf("events of %d calls", len(callIDs)), err)
	}
	return events, nil
}
