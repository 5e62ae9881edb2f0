package models_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// t0 is the clock the tests start from, at the microsecond precision the
// databases keep.
var t0 = time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)

func mustAgent(t *testing.T, db bun.IDB, a models.Agent) *models.Agent {
	t.Helper()
	if a.Name == "" {
		a.Name = a.Identity
	}
	if err := models.CreateAgent(t.Context(), db, &a); err != nil {
		t.Fatalf("CreateAgent(%q): %v", a.Identity, err)
	}
	return &a
}

func mustCall(t *testing.T, db bun.IDB, c models.Call) *models.Call {
	t.Helper()
	if c.ConferenceName == "" {
		c.ConferenceName = "wt-" + c.CallSID
	}
	if err := models.CreateCall(t.Context(), db, &c); err != nil {
		t.Fatalf("CreateCall(%q): %v", c.CallSID, err)
	}
	return &c
}

func mustLeg(t *testing.T, db bun.IDB, l models.Leg) *models.Leg {
	t.Helper()
	if l.Role == "" {
		l.Role = models.LegPrimary
	}
	if err := models.CreateLeg(t.Context(), db, &l); err != nil {
		t.Fatalf("CreateLeg(%q): %v", l.CallSID, err)
	}
	return &l
}

// wantNotFound fails unless err is a not-found error from models.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, models.ErrNotFound) || !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("%s: error = %v, want models.ErrNotFound (and sql.ErrNoRows)", what, err)
	}
}

// wantTime fails unless got and want are the same instant.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// inTx runs fn in a transaction of db and fails the test on error.
func inTx(t *testing.T, db *bun.DB, fn func(ctx context.Context, tx bun.Tx) error) {
	t.Helper()
	if err := db.RunInTx(t.Context(), nil, fn); err != nil {
		t.Fatalf("RunInTx: %v", err)
	}
}
