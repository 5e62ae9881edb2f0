package live

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

// The listener reads the events of many notifications at once under load,
// and a transaction of several events sends one notification. Every
// event committed after the listener's start still reaches the broker
// once, in id order, and a rolled-back transaction's id is passed over,
// not waited for; what was committed before the start is not published.
func TestPGListenerPublishesEveryEventOnceInOrder(t *testing.T) {
	dbURL := testdb.Postgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := models.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	before := &models.Event{Kind: "before", Payload: "{}"}
	if err := models.AppendEvent(ctx, db, before); err != nil {
		t.Fatal(err)
	}

	r := &scriptRenderer{}
	b := NewBroker(r, nil)
	defer b.Close()
	sub := b.Subscribe(Audience{Board: true}) // the broker renders only what is watched
	defer b.Unsubscribe(sub)
	// As the app does: the start first, then the writes and the listening,
	// at once.
	l := &PGListener{DatabaseURL: dbURL, DB: db, Broker: b}
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		l.Run(ctx)
	}()
	defer func() {
		cancel()
		<-listening
	}()

	// Four writers, each committing its events one transaction at a time,
	// so notifications arrive while the listener is reading. Every tenth
	// transaction of the first writer rolls back; the second appends three
	// events in each, as the app's transactions do.
	const writers, each = 4, 60
	st := models.NewStatements(db)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rollBack := w == 0 && i%10 == 0
				err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					if w == 1 {
						three := []models.Event{{Kind: "test", Payload: "{}"}, {Kind: "test", Payload: "{}"}, {Kind: "test", Payload: "{}"}}
						return st.AppendEvents(ctx, tx, three)
					}
					if err := models.AppendEvent(ctx, tx, &models.Event{Kind: "test", Payload: "{}"}); err != nil {
						return err
					}
					if rollBack {
						return errRollBack
					}
					return nil
				})
				if err != nil && !errors.Is(err, errRollBack) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	committed, err := models.EventsAfter(ctx, db, before.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, ev := range committed {
		want = append(want, ev.ID)
	}
	if wantWrites := (each - each/10) + 3*each + 2*each; len(want) != wantWrites {
		t.Fatalf("%d events committed, want %d", len(want), wantWrites)
	}
	r.renderedUpTo(t, want[len(want)-1])
	got := r.rendered()
	if len(got) != len(want) {
		t.Fatalf("the broker got %d events, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d published is id %d, want %d (got %v)", i, got[i], want[i], got)
		}
	}
}

var errRollBack = errors.New("roll back")
