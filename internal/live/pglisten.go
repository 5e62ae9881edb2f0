package live

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// PGListener feeds the broker with the events of every instance sharing a
// PostgreSQL database: it LISTENs on the events channel and, when notified,
// reads the events committed since the last it published and publishes
// them, so an agent whose browser is on instance B sees a call that Twilio
// posted to instance A.
//
// With PostgreSQL every event, this instance's own included, reaches the
// broker this way; there is one path, so nothing is published twice.
type PGListener struct {
	DatabaseURL string
	DB          bun.IDB
	Broker      *Broker
	Log         *slog.Logger
	// last is the newest event published; after a reconnect the listener
	// catches up from it, so notifications lost meanwhile are not.
	last int64
	// started is set once last holds the newest event at the start.
	started bool
}

// Start takes the newest event committed so far as the start: it and
// those before it are history, which a stream replays, not news to
// publish. Call it before the instance writes anything, so that nothing
// it writes is taken for history; Run calls it (again, until it succeeds)
// if it has not succeeded.
func (l *PGListener) Start(ctx context.Context) error {
	id, err := models.LatestEventID(ctx, l.DB)
	if err != nil {
		return err
	}
	l.last, l.started = id, true
	return nil
}

// Run listens until ctx ends, reconnecting with a growing pause when the
// connection drops (PostgreSQL restarting, say).
func (l *PGListener) Run(ctx context.Context) {
	if l.Log == nil {
		l.Log = slog.New(slog.DiscardHandler)
	}
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if !l.started {
			// Without a start, the first catch-up would publish the
			// whole history.
			err = l.Start(ctx)
		}
		if err == nil {
			err = l.listen(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		l.Log.Warn("live: event listener lost its connection; reconnecting", "err", err, "in", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(pause*2, 5*time.Second)
	}
}

func (l *PGListener) listen(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.DatabaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{models.EventsChannel}.Sanitize()); err != nil {
		return err
	}
	// Whatever was committed while not listening is published now.
	if err := l.catchUp(ctx); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil || id <= l.last {
			continue
		}
		// One read takes every event committed since the last one
		// published: under load, the events of many notifications,
		// whose own notifications are then skipped above. (Ids are
		// committed in order, and a rolled-back transaction's gap is
		// read past.) A read per notification was a fifth of an
		// instance's CPU at 2,300 new callers a second.
		if err := l.catchUp(ctx); err != nil {
			return err
		}
	}
}

func (l *PGListener) catchUp(ctx context.Context) error {
	for {
		events, err := models.EventsAfter(ctx, l.DB, l.last, 500)
		if err != nil {
			return err
		}
		for _, ev := range events {
			l.publish(ev)
		}
		if len(events) < 500 {
			return nil
		}
	}
}

func (l *PGListener) publish(ev models.Event) {
	if ev.ID > l.last {
		l.last = ev.ID
	}
	l.Broker.Publish(ev)
}
