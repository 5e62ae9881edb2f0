package views

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// benchSizes are the numbers of active calls (and, for the console, of
// colleagues in the roster) the fragments are rendered for.
var benchSizes = []int{10, 100, 1000}

// benchCtx is a context as the SSE broker builds it, with a Reverse that
// returns a fixed path so the cost measured is the templates'.
func benchCtx() context.Context {
	return WithRequest(context.Background(), RequestData{Reverse: func(string, ...any) string { return "/calls/1/transfer" }})
}

func benchAgent(i int, at time.Time) callflow.AgentSummary {
	p := models.PresenceBusy
	if i%3 == 0 {
		p = models.PresenceAvailable
	}
	return callflow.AgentSummary{
		ID: int64(i + 1), Identity: fmt.Sprintf("agent%04d", i), Name: fmt.Sprintf("Agent Number %d", i),
		Role: models.RoleAgent, Presence: p, PresenceSince: at.Add(-time.Duration(i) * time.Second), CallID: int64(i + 1),
	}
}

// benchCall is a live call: a third waiting, a third with an agent, a
// third in a transfer with two agents on it.
func benchCall(i int, at time.Time, agents []callflow.AgentSummary) callflow.CallSummary {
	c := callflow.CallSummary{
		ID: int64(i + 1), From: fmt.Sprintf("+1555%07d", i), CallerName: fmt.Sprintf("Caller %d", i),
		State: models.CallQueued, CreatedAt: at.Add(-time.Duration(i%600) * time.Second),
	}
	if i%3 == 0 {
		return c
	}
	owner := &agents[i%len(agents)]
	c.State = models.CallWithAgent
	c.AnsweredAt = c.CreatedAt.Add(20 * time.Second)
	c.Owner = owner
	c.Participants = []callflow.Participant{{LegID: int64(2 * i), Identity: owner.Identity, Name: owner.Name, Role: models.LegPrimary, State: models.LegJoined, JoinedAt: c.AnsweredAt}}
	if i%3 == 2 {
		to := &agents[(i+1)%len(agents)]
		c.State = models.CallTransferring
		c.Participants = append(c.Participants, callflow.Participant{LegID: int64(2*i + 1), Identity: to.Identity, Name: to.Name, Role: models.LegColleague, State: models.LegRinging})
		c.Transfer = &callflow.TransferSummary{ID: int64(i), FromIdentity: owner.Identity, FromName: owner.Name, ToIdentity: to.Identity, ToName: to.Name, State: models.TransferRinging}
	}
	return c
}

// benchBoard is a board with n active calls, as many agents, and n calls
// that ended today.
func benchBoard(n int) callflow.BoardView {
	at := time.Now()
	v := callflow.BoardView{}
	for i := range n {
		v.Agents = append(v.Agents, benchAgent(i, at))
	}
	for i := range n {
		c := benchCall(i, at, v.Agents)
		v.Active = append(v.Active, c)
		if c.State == models.CallQueued {
			v.Waiting++
			if v.OldestWaitingSince.IsZero() || c.CreatedAt.Before(v.OldestWaitingSince) {
				v.OldestWaitingSince = c.CreatedAt
			}
		}
		e := c
		e.ID += int64(n)
		e.State = models.CallEnded
		e.EndedAt = at.Add(-time.Minute)
		e.EndReason = "completed"
		e.EndedBy = "customer"
		e.Transfer = nil
		v.EndedToday = append(v.EndedToday, e)
	}
	return v
}

// benchAgentView is one agent's console during a transfer, with n
// colleagues in the roster and the transfer list.
func benchAgentView(n int) callflow.AgentView {
	at := time.Now()
	var colleagues []callflow.AgentSummary
	for i := range n + 1 {
		colleagues = append(colleagues, benchAgent(i, at))
	}
	call := benchCall(2, at, colleagues)
	me := colleagues[2]
	others := append(colleagues[:2:2], colleagues[3:]...)
	return callflow.AgentView{Me: me, Call: &call, Colleagues: others}
}

func renderAll(b *testing.B, ctx context.Context, frags []Fragment) {
	for _, f := range frags {
		if err := f.Component.Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoardFragments renders the four board fragments the broker
// pushes after every change, for boards of 10, 100 and 1,000 active calls.
func BenchmarkBoardFragments(b *testing.B) {
	ctx := benchCtx()
	for _, n := range benchSizes {
		v := benchBoard(n)
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cw := &countWriter{}
			for _, f := range BoardFragments(v) {
				_ = f.Component.Render(ctx, cw)
			}
			for b.Loop() {
				renderAll(b, ctx, BoardFragments(v))
			}
			b.ReportMetric(float64(cw.n), "html-bytes")
		})
	}
}

// BenchmarkAgentFragments renders the four console fragments for an agent
// on a call being transferred, with 10, 100 and 1,000 colleagues.
func BenchmarkAgentFragments(b *testing.B) {
	ctx := benchCtx()
	for _, n := range benchSizes {
		v := benchAgentView(n)
		b.Run(fmt.Sprintf("colleagues=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			cw := &countWriter{}
			for _, f := range AgentFragments(v) {
				_ = f.Component.Render(ctx, cw)
			}
			for b.Loop() {
				renderAll(b, ctx, AgentFragments(v))
			}
			b.ReportMetric(float64(cw.n), "html-bytes")
		})
	}
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkBoardLivePass is what the live renderer does for the board
// after a change: in one live render pass, each fragment and then each of
// its parts (which the broker diffs against what it last sent).
func BenchmarkBoardLivePass(b *testing.B) {
	for _, n := range benchSizes {
		v := benchBoard(n)
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx := WithLiveRender(benchCtx())
				for _, f := range BoardFragments(v) {
					if err := f.Component.Render(ctx, io.Discard); err != nil {
						b.Fatal(err)
					}
					for _, p := range f.Parts {
						if err := p.Component.Render(ctx, io.Discard); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		})
	}
}
