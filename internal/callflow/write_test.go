package callflow_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

// Every write transaction is reported with how long it waited for its turn
// and ran, and one slower than Config.SlowWrite is logged, on either
// engine: only SQLite's transactions queue for one writer, but PostgreSQL's
// can be slow too, and the operator must hear of it.
func TestWritesAreTimed(t *testing.T) {
	ctx := t.Context()
	db, err := models.Open(ctx, testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		slow     time.Duration
		wantWarn bool
	}{
		{name: "quick writes are not logged", slow: 0, wantWarn: false},
		{name: "a write past the threshold is logged", slow: time.Nanosecond, wantWarn: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var runs []time.Duration
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logged}, nil))
			svc := callflow.New(db, nil, urls{}, nopPublisher{}, callflow.Config{
				SlowWrite: tt.slow,
				ObserveWrite: func(wait, run time.Duration) {
					mu.Lock()
					defer mu.Unlock()
					runs = append(runs, run)
				},
			}, log)
			err := svc.Write(ctx, func(ctx context.Context, tx bun.Tx) error {
				_, err := tx.NewSelect().Model((*models.Agent)(nil)).Count(ctx)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(runs) != 1 || runs[0] <= 0 {
				t.Fatalf("observed runs %v, want one positive", runs)
			}
			warned := strings.Contains(logged.String(), "write transaction was slow")
			if warned != tt.wantWarn {
				t.Errorf("slow-write warning logged: %v, want %v; log:\n%s", warned, tt.wantWarn, logged.String())
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
