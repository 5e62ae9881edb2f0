package testdb_test

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

// Empty leaves a migrated database with no rows and ids that start at 1
// again, whatever refers to what: the next scenario must not see the last
// one's rows, and one that names a row by id must find its own.
func TestEmpty(t *testing.T) {
	for _, engine := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", testdb.SQLite},
		{"postgres", testdb.Postgres},
	} {
		t.Run(engine.name, func(t *testing.T) {
			ctx := t.Context()
			db, err := models.Open(ctx, engine.url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			if err := models.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			for round := range 2 {
				fill(t, db)
				if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					return testdb.Empty(ctx, tx)
				}); err != nil {
					t.Fatalf("round %d: Empty: %v", round, err)
				}
				for _, table := range []string{"agents", "calls", "legs", "transfers", "events", "webhook_receipts"} {
					n, err := db.NewSelect().TableExpr("?", bun.Ident(table)).Count(ctx)
					if err != nil || n != 0 {
						t.Errorf("round %d: %s has %d rows (%v), want none", round, table, n, err)
					}
				}
				if ok, err := models.MigrationsApplied(ctx, db); err != nil || !ok {
					t.Fatalf("round %d: migrations applied = %v, %v: Empty must keep bun/migrate's tables", round, ok, err)
				}
			}
			a := &models.Agent{Identity: "again"}
			if err := models.CreateAgent(ctx, db, a); err != nil {
				t.Fatal(err)
			}
			if a.ID != 1 {
				t.Errorf("the first agent after Empty has id %d, want 1", a.ID)
			}
		})
	}
}

// fill puts a row in every table, each referring to the others as a call
// does: a call owned by an agent, its legs, a transfer between them, an
// event and a webhook receipt.
func fill(t *testing.T, db *bun.DB) {
	t.Helper()
	ctx := t.Context()
	alice := &models.Agent{Identity: "alice"}
	bob := &models.Agent{Identity: "bob"}
	for _, a := range []*models.Agent{alice, bob} {
		if err := models.CreateAgent(ctx, db, a); err != nil {
			t.Fatal(err)
		}
	}
	call := &models.Call{CallSID: "CA01", ConferenceName: "call-CA01", AgentID: alice.ID}
	if err := models.CreateCall(ctx, db, call); err != nil {
		t.Fatal(err)
	}
	first := &models.Leg{CallID: call.ID, AgentID: alice.ID, CallSID: "CA02", Role: models.LegPrimary}
	second := &models.Leg{CallID: call.ID, AgentID: bob.ID, CallSID: "CA03", Role: models.LegPrimary}
	for _, l := range []*models.Leg{first, second} {
		if err := models.CreateLeg(ctx, db, l); err != nil {
			t.Fatal(err)
		}
	}
	tr := &models.Transfer{CallID: call.ID, FromAgentID: alice.ID, ToAgentID: bob.ID, ToLegID: second.ID, Mode: models.TransferDirect}
	if err := models.CreateTransfer(ctx, db, tr); err != nil {
		t.Fatal(err)
	}
	if err := models.AppendEvent(ctx, db, &models.Event{CallID: call.ID, AgentID: alice.ID, Kind: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := models.ClaimReceipt(ctx, db, "test"); err != nil {
		t.Fatal(err)
	}
}
