package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestAPageRenderedBeforeAnyEventStillGetsTheFirst: on a new install the
// board is rendered when no event exists yet. A call arriving before its
// stream opens must still reach it: the page's stream resumes after event
// 0, not from whatever is current when it connects.
func TestAPageRenderedBeforeAnyEventStillGetsTheFirst(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	maria := env.SignIn("maria")
	page := maria.Page("/board")
	src, _ := page.Find(`[sse-connect]`).Attr("sse-connect")
	if src != "/events?last=0" {
		t.Fatalf("the board's stream is %q, want /events?last=0", src)
	}
	const number = "+15557770007"
	env.PlaceCall(number)
	env.WaitDB("the call's first event", func(ctx context.Context) (bool, error) {
		n, err := env.App.DB.NewSelect().Model((*models.Event)(nil)).Count(ctx)
		return n > 0, err
	})

	// The history replayed comes first, before the fragments of the state
	// as it is: the call's first line must be among it.
	got, ok := maria.StreamAt(src).Until(func(ev apptest.SSEEvent) bool { return ev.Event != "activity" })
	if !ok {
		t.Fatal("the stream never sent the board's state")
	}
	for _, ev := range got {
		if ev.Event == "activity" && strings.Contains(ev.Data, number) {
			return
		}
	}
	t.Fatalf("the stream opened with last=0 did not replay the call that came first; it began with %d events", len(got))
}
