package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestClaimReceipt(t *testing.T) {
	steps := []struct {
		name string
		key  string
		want bool
	}{
		{"first delivery", "conf:CF1:1", true},
		{"retry of it", "conf:CF1:1", false},
		{"next sequence number", "conf:CF1:2", true},
		{"another retry", "conf:CF1:1", false},
		{"another conference", "conf:CF2:1", true},
	}
	eachDB(t, func(t *testing.T, db *bun.DB) {
		for _, s := range steps {
			got, err := models.ClaimReceipt(t.Context(), db, s.key)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got != s.want {
				t.Errorf("%s: ClaimReceipt(%q) = %v, want %v", s.name, s.key, got, s.want)
			}
		}
	})
}

func TestClaimReceiptInTransaction(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		// A handler that fails after claiming rolls the claim back, so the
		// retry is handled.
		errHandler := errors.New("handler failed")
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			first, err := models.ClaimReceipt(ctx, tx, "call:CA1:ringing")
			if err != nil {
				return err
			}
			if !first {
				t.Error("first claim in the transaction = false, want true")
			}
			again, err := models.ClaimReceipt(ctx, tx, "call:CA1:ringing")
			if err != nil {
				return err
			}
			if again {
				t.Error("second claim in the same transaction = true, want false")
			}
			return errHandler
		})
		if !errors.Is(err, errHandler) {
			t.Fatalf("RunInTx = %v, want the handler error", err)
		}
		got, err := models.ClaimReceipt(ctx, db, "call:CA1:ringing")
		if err != nil || !got {
			t.Fatalf("claim after rollback = %v, %v, want true", got, err)
		}
	})
}

func TestDeleteReceiptsBefore(t *testing.T) {
	eachDB(t, func(t *testing.T, db *bun.DB) {
		ctx := t.Context()
		for _, key := range []string{"a", "b"} {
			if _, err := models.ClaimReceipt(ctx, db, key); err != nil {
				t.Fatal(err)
			}
		}
		n, err := models.DeleteReceiptsBefore(ctx, db, time.Now().Add(-time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("DeleteReceiptsBefore(an hour ago) = %d, %v, want 0", n, err)
		}
		n, err = models.DeleteReceiptsBefore(ctx, db, time.Now().Add(time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("DeleteReceiptsBefore(soon) = %d, %v, want 2", n, err)
		}
		got, err := models.ClaimReceipt(ctx, db, "a")
		if err != nil || !got {
			t.Errorf("claim after delete = %v, %v, want true", got, err)
		}
	})
}
