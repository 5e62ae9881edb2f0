package app_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

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

	ctx, cancel := context.WithTimeout(context.Background(), apptest.WaitLimit)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+src, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := maria.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", src, resp.StatusCode)
	}
	// Read up to the fragments of the current state, which follow the
	// replayed history: the call's first line must be among what came
	// before them.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var event string
	replayed := false
	started := time.Now()
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "event: ") {
			event = strings.TrimPrefix(line, "event: ")
			if event != "activity" {
				break
			}
		}
		if event == "activity" && strings.Contains(line, number) {
			replayed = true
		}
	}
	if !replayed {
		t.Fatalf("the stream opened with last=0 did not replay the call that came first (read for %s)", time.Since(started).Round(time.Millisecond))
	}
}
