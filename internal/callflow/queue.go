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
// once and reused until the queue may have changed. Every caller on hold
// asks for their place each time the wait music ends; counting the calls
// ahead of them in the database costs time in proportion to their place,
// on every request.
//
// The service counts its write transactions as they end: any of them may
// have changed the queue. Writes the service does not see (another
// instance's, on PostgreSQL) are caught by an age limit: a snapshot
// serves for queueSnapshotAge at most. A place may lag such a write by
// that long; a caller hears it once per loop of the wait music.
type queueOrder struct {
	// writes counts this service's write transactions that have ended,
	// committed or not.
	writes atomic.Uint64
	snap   atomic.Pointer[queueSnapshot]
	// reading is held while a snapshot is read; a request that finds it
	// held counts its own place instead of waiting.
	reading sync.Mutex
	// lastRead is when the last snapshot was read (guarded by reading).
	lastRead time.Time
}

// queueSnapshot is the queue after the writes-th write transaction, read
// at read.
type queueSnapshot struct {
	writes uint64
	read   time.Time
	place  map[string]int // CallSid -> place, 1 for next
}

// queueSnapshotAge is how long a snapshot serves at most, for the writes
// this service does not see.
const queueSnapshotAge = time.Second

// current reports whether snap may answer: no write has ended since it was
// read, and it is not too old.
func (q *queueOrder) current(snap *queueSnapshot) bool {
	return snap != nil && snap.writes == q.writes.Load() && time.Since(snap.read) < queueSnapshotAge
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
	q := &s.queue
	if snap := q.snap.Load(); q.current(snap) {
		return snap.place[callSID], nil
	}
	if !q.reading.TryLock() {
		return s.countPlace(ctx, callSID)
	}
	defer q.reading.Unlock()
	if snap := q.snap.Load(); q.current(snap) {
		return snap.place[callSID], nil // read by the request before
	}
	if time.Since(q.lastRead) < queueReadInterval {
		return s.countPlace(ctx, callSID)
	}
	read := time.Now()
	q.lastRead = read
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
	q.snap.Store(&queueSnapshot{writes: writes, read: read, place: place})
	return place[callSID], nil
}

func (s *Service) countPlace(ctx context.Context, callSID string) (int, error) {
	pos, err := s.stmts.QueuePosition(ctx, callSID)
	if err != nil {
		return 0, fmt.Errorf("callflow: queue position: %w", err)
	}
	return pos, nil
}
