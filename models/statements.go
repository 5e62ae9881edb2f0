package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
)

// Statements are the few statements that Twilio's webhooks run on every
// request, prepared instead of built by bun.
//
// bun writes a query's arguments into its SQL text, so SQLite sees every
// statement as new and parses it again: on the webhook routes that parsing
// cost as much as running the statement. A prepared statement is parsed
// once per pooled connection (database/sql prepares it on each connection
// the first time it runs there) and its arguments are bound. On PostgreSQL
// the same statements are server-side prepared statements.
//
// The zero value is not usable; NewStatements returns one for a database.
// A Statements is safe for concurrent use.
type Statements struct {
	db *bun.DB
	pg bool

	queuePosition preparedStmt
	insertCall    preparedStmt
	appendEvent   preparedStmt
	offerPossible preparedStmt
	insertLeg     preparedStmt
}

// NewStatements returns the statements for db; each is prepared the first
// time it runs, so a database that is down at start-up costs nothing here.
func NewStatements(db *bun.DB) *Statements {
	st := &Statements{db: db, pg: isPostgres(db)}
	st.queuePosition.query = st.placeholders(queuePositionSQL)
	st.insertCall.query = st.placeholders(insertCallSQL)
	st.appendEvent.query = st.placeholders(appendEventSQL)
	st.offerPossible.query = st.placeholders(offerPossibleSQL)
	st.insertLeg.query = st.placeholders(insertLegSQL)
	return st
}

// placeholders numbers the ? of query as $1, $2, … for PostgreSQL, which
// has no ? placeholder; SQLite takes ? as it is. The statements below have
// no ? anywhere else.
func (st *Statements) placeholders(query string) string {
	if !st.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

// preparedStmt is one statement, prepared on first use. A failed prepare
// (the database briefly down) is tried again on the next use.
type preparedStmt struct {
	query string
	stmt  atomic.Pointer[sql.Stmt]
	mu    sync.Mutex
}

func (p *preparedStmt) get(ctx context.Context, db *sql.DB) (*sql.Stmt, error) {
	if s := p.stmt.Load(); s != nil {
		return s, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.stmt.Load(); s != nil {
		return s, nil
	}
	s, err := db.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	p.stmt.Store(s)
	return s, nil
}

// Prepare prepares every statement that is not prepared yet (otherwise
// done on first use). Call it outside transactions: preparing takes a
// connection of its own, which a transaction holding the pool's last one
// would wait for forever. Inside a transaction, a statement not prepared
// yet is prepared for that transaction alone.
func (st *Statements) Prepare(ctx context.Context) error {
	for _, p := range []*preparedStmt{&st.queuePosition, &st.insertCall, &st.appendEvent, &st.offerPossible, &st.insertLeg} {
		if _, err := p.get(ctx, st.db.DB); err != nil {
			return wrapErr("prepare statements", err)
		}
	}
	return nil
}

// in returns p for the database, or for tx when tx is not nil.
func (st *Statements) in(ctx context.Context, tx *bun.Tx, p *preparedStmt) (*sql.Stmt, error) {
	if tx == nil {
		return p.get(ctx, st.db.DB)
	}
	if s := p.stmt.Load(); s != nil {
		return tx.StmtContext(ctx, s), nil
	}
	return tx.PrepareContext(ctx, p.query)
}

// timeArg is how a time is bound: SQLite stores it as the text bun writes
// (so that rows compare and read back the same whichever wrote them),
// PostgreSQL as a timestamptz. A zero time is NULL (bun's nullzero).
func (st *Statements) timeArg(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case st.pg:
		return t.UTC()
	default:
		return t.UTC().Format(sqliteTimeLayout)
	}
}

// sqliteTimeLayout is how bun's SQLite dialect writes a time.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999-07:00"

// nullString binds an empty string as NULL (bun's nullzero).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullID binds a zero id as NULL (bun's nullzero).
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// queuePositionSQL counts the waiting calls offered before the caller's:
// older, or as old with a lower id. Each count is a range of the index on
// calls (state, created_at, id), counted without reading a row. (One
// row-value comparison, (created_at, id) < (…), is tested on every row of
// the range instead, and SQLite tries to read each created_at as a number
// first: twice the cost.)
const queuePositionSQL = `SELECT 1
	+ (SELECT COUNT(*) FROM calls AS q WHERE q.state = m.state AND q.created_at < m.created_at)
	+ (SELECT COUNT(*) FROM calls AS q WHERE q.state = m.state AND q.created_at = m.created_at AND q.id < m.id)
	FROM calls AS m WHERE m.call_sid = ? AND m.state = ?`

// QueuePosition is where the call on callSID stands in the queue: 1 when
// it is next, 0 when it is not waiting (or unknown). Calls wait in the
// order dispatch offers them (oldest first). The wait music asks for it on
// every waiting caller, every few seconds.
func (st *Statements) QueuePosition(ctx context.Context, callSID string) (int, error) {
	// Without the caller's deadline: for a statement whose context can
	// end, modernc.org/sqlite starts a goroutine to interrupt it, which
	// costs more than this read of a few index pages (a reader never
	// waits for a lock in WAL mode).
	ctx = context.WithoutCancel(ctx)
	var pos int
	s, err := st.in(ctx, nil, &st.queuePosition)
	if err == nil {
		err = s.QueryRowContext(ctx, callSID, string(CallQueued)).Scan(&pos)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, wrapErr("queue position of call "+strconv.Quote(callSID), err)
	}
	return pos, nil
}

// insertCallSQL stores a call unless its CallSid or conference name is
// stored already (a webhook Twilio retried). Unlike a failed insert, doing
// nothing leaves a PostgreSQL transaction usable, so no savepoint is
// needed around it.
const insertCallSQL = `INSERT INTO calls (call_sid, conference_name, conference_sid,
	from_number, caller_name, to_number, state, agent_id, conference_seq, customer_on_hold,
	created_at, answered_at, ended_at, end_reason, ended_by, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT DO NOTHING RETURNING id`

// InsertCall stores c in tx and fills in its ID, as CreateCall does, and
// reports true; when a call with the same CallSid or conference name is
// stored already it changes nothing and reports false.
func (st *Statements) InsertCall(ctx context.Context, tx bun.Tx, c *Call) (bool, error) {
	if c.State == "" {
		c.State = CallQueued
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	s, err := st.in(ctx, &tx, &st.insertCall)
	if err != nil {
		return false, wrapErr("insert call "+strconv.Quote(c.CallSID), err)
	}
	err = s.QueryRowContext(ctx,
		c.CallSID, c.ConferenceName, nullString(c.ConferenceSID),
		c.FromNumber, c.CallerName, c.ToNumber, string(c.State), nullID(c.AgentID), c.ConferenceSeq, c.CustomerOnHold,
		st.timeArg(c.CreatedAt), st.timeArg(c.AnsweredAt), st.timeArg(c.EndedAt), c.EndReason, c.EndedBy, st.timeArg(c.UpdatedAt),
	).Scan(&c.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrapErr("insert call "+strconv.Quote(c.CallSID), err)
	}
	return true, nil
}

const appendEventSQL = `INSERT INTO events (call_id, agent_id, kind, payload, created_at)
	VALUES (?, ?, ?, ?, ?) RETURNING id`

// AppendEvents appends events, in order, as models.AppendEvent does each,
// inside tx, with the insert prepared; on PostgreSQL the lock and the
// notification are taken and sent once for all of them.
func (st *Statements) AppendEvents(ctx context.Context, tx bun.Tx, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	// Once, before the lock is taken: not once per event under it.
	s, err := st.in(ctx, &tx, &st.appendEvent)
	if err != nil {
		return wrapErr("append events", err)
	}
	return appendEvents(ctx, tx, events, func(ctx context.Context, _ bun.IDB, e *Event) error {
		return s.QueryRowContext(ctx, nullID(e.CallID), nullID(e.AgentID), e.Kind, e.Payload, st.timeArg(e.CreatedAt)).Scan(&e.ID)
	})
}

const insertLegSQL = `INSERT INTO legs (call_id, agent_id, call_sid, role, state, hold, muted,
	end_conference_on_exit, created_at, joined_at, left_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`

// InsertLeg is CreateLeg inside tx, with the insert prepared: a round of
// offers inserts one leg per offer.
func (st *Statements) InsertLeg(ctx context.Context, tx bun.Tx, l *Leg) error {
	l.fillDefaults()
	op := "insert leg " + strconv.Quote(l.CallSID)
	s, err := st.in(ctx, &tx, &st.insertLeg)
	if err != nil {
		return wrapErr(op, err)
	}
	err = s.QueryRowContext(ctx,
		l.CallID, nullID(l.AgentID), l.CallSID, string(l.Role), string(l.State), l.Hold, l.Muted,
		l.EndConferenceOnExit, st.timeArg(l.CreatedAt), st.timeArg(l.JoinedAt), st.timeArg(l.LeftAt), st.timeArg(l.UpdatedAt),
	).Scan(&l.ID)
	if err != nil {
		return wrapErr(op, err)
	}
	return nil
}

// offerPossibleSQL: someone waits and someone could take the call.
const offerPossibleSQL = `SELECT EXISTS (SELECT 1 FROM calls WHERE state = ?)
	AND EXISTS (SELECT 1 FROM agents WHERE presence = ? AND disabled = ?)`

// OfferPossible reports whether a call is waiting and an agent is
// available, without locking anything: when it reports false, a round of
// offers has nothing to do. Whatever makes an offer possible (a call
// queued, an agent made available) asks for a round once it has committed,
// and that round reads it.
func (st *Statements) OfferPossible(ctx context.Context) (bool, error) {
	s, err := st.in(ctx, nil, &st.offerPossible)
	if err != nil {
		return false, wrapErr("offer possible", err)
	}
	var ok bool
	if err := s.QueryRowContext(ctx, string(CallQueued), string(PresenceAvailable), false).Scan(&ok); err != nil {
		return false, wrapErr("offer possible", err)
	}
	return ok, nil
}
