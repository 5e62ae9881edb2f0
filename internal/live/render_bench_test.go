package live

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// BenchmarkConsolesPass is what a colleague's presence change costs the
// broker for the consoles of a team of 100 idle agents, before anything is
// written: each console's fragments rendered in one live pass (the
// colleague's row once for all), and each compared with what the console
// was last sent, to a patch of the one row that changed.
func BenchmarkConsolesPass(b *testing.B) {
	const team = 100
	at := time.Now()
	agents := make([]callflow.AgentSummary, team)
	for i := range agents {
		agents[i] = callflow.AgentSummary{
			ID: int64(i + 1), Identity: fmt.Sprintf("agent%03d", i), Name: fmt.Sprintf("Agent Number %d", i),
			Role: models.RoleAgent, Presence: models.PresenceAvailable, PresenceSince: at.Add(-time.Duration(i) * time.Second),
		}
	}
	consoles := func() []callflow.AgentView {
		out := make([]callflow.AgentView, team)
		for i := range out {
			others := make([]callflow.AgentSummary, 0, team-1)
			others = append(others, agents[:i]...)
			others = append(others, agents[i+1:]...)
			out[i] = callflow.AgentView{Me: agents[i], Colleagues: others}
		}
		return out
	}
	ctx := requestCtx()
	pass := func() ([][]Message, error) {
		rctx := views.WithLiveRender(ctx)
		var out [][]Message
		for _, v := range consoles() {
			msgs, err := renderFragments(rctx, views.AgentFragments(v))
			if err != nil {
				return nil, err
			}
			out = append(out, msgs)
		}
		return out, nil
	}
	auds := make([]*audience, team)
	first, err := pass()
	if err != nil {
		b.Fatal(err)
	}
	for i := range auds {
		auds[i] = &audience{}
		auds[i].apply(first[i], 1)
	}
	patched := 0
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		// The last agent toggles between available and away.
		agents[team-1].Presence = models.PresenceAway
		if n%2 == 1 {
			agents[team-1].Presence = models.PresenceAvailable
		}
		msgs, err := pass()
		if err != nil {
			b.Fatal(err)
		}
		for i, a := range auds {
			if u := a.apply(msgs[i], int64(n+2)); u != nil && i < team-1 {
				if len(u.frames) != 1 || !isPatch(u.frames[0]) {
					b.Fatalf("console %d was sent %d frames, want one patch", i, len(u.frames))
				}
				patched++
			}
		}
	}
	if patched == 0 {
		b.Fatal("no console was sent the change")
	}
}

func isPatch(f *frame) bool {
	return strings.Contains(string(f.wire), "\nevent: "+views.EventPatch+"\n")
}
