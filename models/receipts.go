package models

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// webhookReceipt marks one webhook delivery as handled.
type webhookReceipt struct {
	bun.BaseModel `bun:"table:webhook_receipts,alias:r"`

	Key       string    `bun:"key,pk"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// ClaimReceipt records that the webhook delivery identified by key (e.g.
// "conf:<ConferenceSid>:<SequenceNumber>") is being handled. It reports true
// the first time a key is claimed and false for every retry, so a handler
// that runs it in its transaction applies a retried webhook exactly once.
func ClaimReceipt(ctx context.Context, db bun.IDB, key string) (bool, error) {
	op := fmt.Sprintf("claim receipt %q", key)
	res, err := db.NewInsert().
		Model(&webhookReceipt{Key: key, CreatedAt: now()}).
		On("CONFLICT DO NOTHING").
		Exec(ctx)
	if err != nil {
		return false, wrapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrapErr(op, err)
	}
	return n == 1, nil
}

// DeleteReceiptsBefore deletes the receipts claimed before t (Twilio stops
// retrying long before) and returns how many it deleted.
func DeleteReceiptsBefore(ctx context.Context, db bun.IDB, t time.Time) (int64, error) {
	op := fmt.Sprintf("delete receipts before %s", t.Format(time.RFC3339))
	res, err := db.NewDelete().Model((*webhookReceipt)(nil)).Where("created_at < ?", t).Exec(ctx)
	if err != nil {
		return 0, wrapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapErr(op, err)
	}
	return n, nil
}
