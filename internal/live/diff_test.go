package live

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// requestCtx is a request's context for rendering fragments, with every
// route at one fixed path.
func requestCtx() context.Context {
	return views.WithRequest(context.Background(), views.RequestData{Reverse: func(string, ...any) string { return "/x" }})
}

func boardMessages(t *testing.T, v callflow.BoardView) []Message {
	t.Helper()
	ctx := views.WithLiveRender(requestCtx())
	msgs, err := renderFragments(ctx, views.BoardFragments(v))
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// The board's own fragments, as the app renders them: a call arriving,
// answered and ended is sent as patches, not whole lists.
func TestBoardChangesArePatches(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	call := func(id int64, state models.CallState) callflow.CallSummary {
		return callflow.CallSummary{ID: id, From: "+1555000000" + string(rune('0'+id)), State: state, CreatedAt: at.Add(time.Duration(id) * time.Second)}
	}
	alice := callflow.AgentSummary{ID: 1, Identity: "alice", Name: "Alice", Role: models.RoleAgent, Presence: models.PresenceAvailable, PresenceSince: at}
	board := func(active, ended []callflow.CallSummary) callflow.BoardView {
		return callflow.BoardView{Active: active, EndedToday: ended, Agents: []callflow.AgentSummary{alice}}
	}
	// Lists never empty here: a list that becomes empty, or stops being
	// empty, changes its skeleton and is sent whole.
	eight := call(8, models.CallEnded)
	steps := []callflow.BoardView{
		board([]callflow.CallSummary{call(1, models.CallWithAgent)}, []callflow.CallSummary{eight}),
		board([]callflow.CallSummary{call(1, models.CallWithAgent), call(2, models.CallQueued)}, []callflow.CallSummary{eight}),
		board([]callflow.CallSummary{call(1, models.CallWithAgent), call(2, models.CallWithAgent)}, []callflow.CallSummary{eight}),
		board([]callflow.CallSummary{call(2, models.CallWithAgent), call(3, models.CallQueued)}, []callflow.CallSummary{call(1, models.CallEnded), eight}),
		board([]callflow.CallSummary{call(3, models.CallQueued)}, []callflow.CallSummary{call(2, models.CallEnded), call(1, models.CallEnded)}),
	}
	a := &audience{}
	a.apply(boardMessages(t, steps[0]), 1)
	for i, v := range steps[1:] {
		u := a.apply(boardMessages(t, v), int64(i+2))
		if u == nil {
			t.Fatalf("step %d sent nothing", i+1)
		}
		for _, f := range u.frames {
			if !strings.HasPrefix(string(f.wire[strings.Index(string(f.wire), "event: "):]), "event: patch") {
				t.Fatalf("step %d sent a whole fragment:\n%s", i+1, f.wire)
			}
		}
	}
}
