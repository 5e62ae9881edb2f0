package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	defer runListener(t, ctx, cancel, l)()

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

// A listener whose LISTEN connection is killed (a PostgreSQL restart, a
// proxy or an administrator cutting it) reconnects and catches up from the
// last event it published: what was committed while it was out, and what
// is committed after, reaches the broker once each, in id order.
//
// To make the outage last, the listener connects as a role of its own that
// is refused log-in while it is out: a listener that reconnected at once
// would leave nothing to catch up and the test would prove nothing.
func TestPGListenerCatchesUpAfterItsConnectionIsKilled(t *testing.T) {
	dbURL := testdb.Postgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := models.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the role is dropped with it
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var b8 [8]byte
	_, _ = rand.Read(b8[:])
	role := "wt_test_listener_" + hex.EncodeToString(b8[:])
	if _, err := db.ExecContext(ctx, "CREATE ROLE ? LOGIN", bun.Ident(role)); err != nil {
		t.Fatal(err)
	}
	// Roles belong to the whole server, which other tests share.
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP ROLE IF EXISTS ?", bun.Ident(role)); err != nil {
			t.Errorf("dropping role %s: %v", role, err)
		}
	})
	listenURL, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	listenURL.User = url.User(role)
	append1 := func(kind string) int64 {
		t.Helper()
		ev := &models.Event{Kind: kind, Payload: "{}"}
		if err := models.AppendEvent(ctx, db, ev); err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}
	// listening counts the listener's LISTEN connections on this test's
	// database (other tests on the server have their own).
	listening := func() int {
		t.Helper()
		var n int
		err := db.NewRaw(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND usename = ? AND query ILIKE 'LISTEN%'`, role).Scan(ctx, &n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitListening := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for listening() != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			poll := time.NewTimer(10 * time.Millisecond) // polling with a deadline
			<-poll.C
		}
	}
	before := append1("before")

	r := &scriptRenderer{}
	broker := NewBroker(r, nil)
	defer broker.Close()
	sub := broker.Subscribe(Audience{Board: true}) // the broker renders only what is watched
	defer broker.Unsubscribe(sub)
	warnings := make(chan string, 64)
	l := &PGListener{DatabaseURL: listenURL.String(), DB: db, Broker: broker, Log: slog.New(recordHandler(warnings))}
	defer runListener(t, ctx, cancel, l)()
	waitListening("the listener to LISTEN")

	// Before the outage: published through notifications.
	var last int64
	for range 5 {
		last = append1("before the kill")
	}
	r.renderedUpTo(t, last)
	published := len(r.rendered())

	// The outage: the listener may not log in again, and its connection is
	// cut the way an administrator (or a restart) cuts it.
	if _, err := db.ExecContext(ctx, "ALTER ROLE ? NOLOGIN", bun.Ident(role)); err != nil {
		t.Fatal(err)
	}
	var killed int
	err = db.NewRaw(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query ILIKE 'LISTEN%') AS k`).Scan(ctx, &killed)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d LISTEN connections, want the listener's one", killed)
	}
	// The listener reports the lost connection, then a reconnection refused:
	// it is out, and tries to come back.
	refused := false
	gaveUp := time.After(10 * time.Second)
	for !refused {
		select {
		case w := <-warnings:
			refused = strings.Contains(w, "not permitted to log in")
		case <-gaveUp:
			t.Fatal("the listener never tried to reconnect")
		}
	}
	// While it is out: single events, transactions of three, and
	// rolled-back transactions whose ids are left as gaps.
	st := models.NewStatements(db)
	for i := range 12 {
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			switch i % 4 {
			case 1:
				three := []models.Event{{Kind: "during", Payload: "{}"}, {Kind: "during", Payload: "{}"}, {Kind: "during", Payload: "{}"}}
				return st.AppendEvents(ctx, tx, three)
			case 2:
				if err := models.AppendEvent(ctx, tx, &models.Event{Kind: "rolled back", Payload: "{}"}); err != nil {
					return err
				}
				return errRollBack
			}
			return models.AppendEvent(ctx, tx, &models.Event{Kind: "during", Payload: "{}"})
		})
		if err != nil && !errors.Is(err, errRollBack) {
			t.Fatal(err)
		}
	}
	if n := listening(); n != 0 {
		t.Fatalf("%d LISTEN connections during the outage, want none", n)
	}
	if got := len(r.rendered()); got != published {
		t.Fatalf("%d events published while the listener was out, want none", got-published)
	}

	// Back: it reconnects by itself and catches up from the last it published.
	if _, err := db.ExecContext(ctx, "ALTER ROLE ? LOGIN", bun.Ident(role)); err != nil {
		t.Fatal(err)
	}
	waitListening("the listener to LISTEN again")
	duringLast, err := models.LatestEventID(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	r.renderedUpTo(t, duringLast)

	// After: notifications again, from writers at once.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			for range 10 {
				if err := models.AppendEvent(ctx, db, &models.Event{Kind: "after", Payload: "{}"}); err != nil {
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

	committed, err := models.EventsAfter(ctx, db, before, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	kinds := map[string]int{}
	for _, ev := range committed {
		want = append(want, ev.ID)
		kinds[ev.Kind]++
	}
	if kinds["before the kill"] != 5 || kinds["during"] != 3*2+3*3 || kinds["after"] != 30 || kinds["rolled back"] != 0 {
		t.Fatalf("committed events by kind: %v", kinds)
	}
	r.renderedUpTo(t, want[len(want)-1])
	if got := r.rendered(); !slices.Equal(got, want) {
		t.Fatalf("the broker got events %v, want %v: each committed event once, in order", got, want)
	}
}

// recordHandler sends each log record, with its attributes, to a channel
// the test reads; records that do not fit are dropped, not waited for.
type recordHandler chan string

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	select {
	case h <- b.String():
	default:
	}
	return nil
}

func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// runListener starts l as the app does (its start first, then listening in
// the background) and returns what stops it: cancel, then wait for it.
func runListener(t *testing.T, ctx context.Context, cancel context.CancelFunc, l *PGListener) (stop func()) {
	t.Helper()
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	running := make(chan struct{})
	go func() {
		defer close(running)
		l.Run(ctx)
	}()
	return func() {
		cancel()
		<-running
	}
}
