package models

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// CallTiming is when a call arrived, was answered by an agent and ended:
// what a service level is computed from.
type CallTiming struct {
	CreatedAt  time.Time `bun:"created_at"`
	AnsweredAt time.Time `bun:"answered_at,nullzero"`
	EndedAt    time.Time `bun:"ended_at,nullzero"`
}

// CallTimingsSince returns the timings of the calls that arrived at or after
// since. The durations are worked out by the caller: the two engines share
// no spelling for time arithmetic, and since comes from the caller's clock
// so "today" means the same thing on both.
func CallTimingsSince(ctx context.Context, db bun.IDB, since time.Time) ([]CallTiming, error) {
	var rows []CallTiming
	err := db.NewSelect().Model((*Call)(nil)).
		Column("c.created_at", "c.answered_at", "c.ended_at").
		Where("c.created_at >= ?", since).
		Scan(ctx, &rows)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("call timings since %s", since.Format(time.RFC3339)), err)
	}
	return rows, nil
}

// CountTransfersSince counts the transfers started at or after since, by
// state: the final ones by outcome, the open ones as ringing or joined.
func CountTransfersSince(ctx context.Context, db bun.IDB, since time.Time) (map[TransferState]int, error) {
	var rows []struct {
		State TransferState `bun:"state"`
		N     int           `bun:"n"`
	}
	err := db.NewSelect().Model((*Transfer)(nil)).
		ColumnExpr("t.state AS state").
		ColumnExpr("COUNT(*) AS n").
		Where("t.created_at >= ?", since).
		Group("t.state").
		Scan(ctx, &rows)
	if err != nil {
		return nil, wrapErr(fmt.Sprintf("count transfers since %s", since.Format(time.RFC3339)), err)
	}
	counts := make(map[TransferState]int, len(rows))
	for _, r := range rows {
		counts[r.State] = r.N
	}
	return counts, nil
}
