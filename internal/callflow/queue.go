package callflow

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
)

// queueOrder is where each waiting caller stands, read from the database
// once and reused until the next write. Every caller on hold asks for
// their place each time the wait music ends; counting the calls ahead of
// them in the database costs time in proportion to their place, on every
// request.
//
// Only on SQLite: there every write goes through this service, one
// transaction at a time, so counting the transactions that ended tells
// whether the queue may have changed. On PostgreSQL other instances write
// too, and the count is made in the database every time.
type queueOrder struct {
	// writes counts write transactions that have ended, committed or not.
	writes atomic.Uint64
	snap   atomic.Pointer[queueSnapshot]
	// reading is held while a snapshot is read; a request that finds it
	// held counts its own place instead of waiting.
	reading sync.Mutex
	// lastRead is when the last snapshot was read (guarded by reading).
	lastRead time.Time
}

// queueSnapshot is the queue after the writes-th write transaction.
type queueSnapshot struct {
	writes uint64
	place  map[string]int // CallSid -> place, 1 for next
}

// queueReadInterval is how soon a stale snapshot may be read again. While
// callers arrive or leave every few milliseconds, every snapshot is stale
// at once: reading the whole queue for each would cost more than counting
// each caller's place, so in between, places are counted.
const queueReadInterval = 100 * time.Millisecond

// QueuePosition is where the caller on callSID stands in the queue (1 when
// next), or 0 when they are not waiting for an agent: being rung to one,
// talking, on hold during a transfer, or unknown.
func (s *Service) QueuePosition(ctx context.Context, callSID string) (int, error) {
	if s.writer == nil {
		return s.countPlace(ctx, callSID)
	}
	q := &s.queue
	if snap := q.snap.Load(); snap != nil && snap.writes == q.writes.Load() {
		return snap.place[callSID], nil
	}
	if !q.reading.TryLock() {
		return s.countPlace(ctx, callSID)
	}
	defer q.reading.Unlock()
	if snap := q.snap.Load(); snap != nil && snap.writes == q.writes.Load() {
		return snap.place[callSID], nil // read by the request before
	}
	if time.Since(q.lastRead) < queueReadInterval {
		return s.countPlace(ctx, callSID)
	}
	q.lastRead = time.Now()
	// Taken before the read: a write that ends during it makes the
	// snapshot stale, never the other way round.
	writes := q.writes.Load()
	sids, err := models.QueuedCallSIDs(ctx, s.db)
	if err != nil {
		return 0, fmt.Errorf("callflow: queue position: %w", err)
	}
	place := make(map[string]int, len(sids))
	for i, sid := range sids {
		place[sid] = i + 1
	}
	q.snap.Store(&queueSnapshot{writes: writes, place: place})
	return place[callSID], nil
}

func (s *Service) countPlace(ctx context.Context, callSID string) (int, error) {
	pos, err := s.stmts.QueuePosition(ctx, callSID)
	if err != nil {
		return 0, fmt.Errorf("callflow: queue position: %w", err)
	}
	return pos, nil
}
