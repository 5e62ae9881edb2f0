package callflow

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestMatchOffers(t *testing.T) {
	agents := []models.Agent{{ID: 1, Identity: "ann"}, {ID: 2, Identity: "ben"}, {ID: 3, Identity: "cat"}}
	call := func(id int64) models.Call { return models.Call{ID: id} }
	leg := func(callID, agentID int64, state models.LegState) models.Leg {
		return models.Leg{CallID: callID, AgentID: agentID, State: state}
	}
	tests := []struct {
		name   string
		calls  []models.Call
		agents []models.Agent
		legs   []models.Leg
		want   [][2]int64 // call ID, agent ID, in order
	}{
		{
			name:   "oldest call to the longest idle agent, each agent once",
			calls:  []models.Call{call(10), call(11)},
			agents: agents,
			want:   [][2]int64{{10, 1}, {11, 2}},
		},
		{
			name:   "stops when the agents run out",
			calls:  []models.Call{call(10), call(11), call(12), call(13)},
			agents: agents[:2],
			want:   [][2]int64{{10, 1}, {11, 2}},
		},
		{
			name:   "skips agents who missed or declined the call",
			calls:  []models.Call{call(10), call(11)},
			agents: agents,
			legs:   []models.Leg{leg(10, 1, models.LegNoAnswer), leg(10, 2, models.LegDeclined)},
			want:   [][2]int64{{10, 3}, {11, 1}},
		},
		{
			name:   "an agent who missed it takes it when nobody else is left",
			calls:  []models.Call{call(10)},
			agents: agents[:1],
			legs:   []models.Leg{leg(10, 1, models.LegNoAnswer)},
			want:   [][2]int64{{10, 1}},
		},
		{
			name:   "a leg still ringing or joined is not a miss",
			calls:  []models.Call{call(10)},
			agents: agents,
			legs:   []models.Leg{leg(10, 1, models.LegJoined), leg(10, 2, models.LegRinging)},
			want:   [][2]int64{{10, 1}},
		},
		{
			name:  "nobody available",
			calls: []models.Call{call(10)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][2]int64
			for _, o := range matchOffers(tt.calls, tt.agents, tt.legs) {
				got = append(got, [2]int64{o.call.ID, o.agent.ID})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("matchOffers = %v, want %v", got, tt.want)
			}
		})
	}
}

// The dispatcher reads only the first agentsToMatch available agents: the
// offers must be those it would make seeing every one of them.
func TestAgentsToMatchIsEnough(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	states := []models.LegState{models.LegNoAnswer, models.LegDeclined, models.LegRinging, models.LegJoined, models.LegLeft}
	for round := range 2000 {
		agents := make([]models.Agent, rng.IntN(30))
		for i := range agents {
			agents[i] = models.Agent{ID: int64(i + 1)}
		}
		calls := make([]models.Call, 1+rng.IntN(16))
		var legs []models.Leg
		for i := range calls {
			calls[i] = models.Call{ID: int64(100 + i)}
			for range rng.IntN(4) {
				legs = append(legs, models.Leg{CallID: calls[i].ID, AgentID: int64(1 + rng.IntN(30)), State: states[rng.IntN(len(states))]})
			}
		}
		pairs := func(offers []*offer) [][2]int64 {
			var out [][2]int64
			for _, o := range offers {
				out = append(out, [2]int64{o.call.ID, o.agent.ID})
			}
			return out
		}
		all := pairs(matchOffers(calls, agents, legs))
		n := min(len(agents), agentsToMatch(calls, legs))
		if got := pairs(matchOffers(calls, agents[:n], legs)); !slices.Equal(got, all) {
			t.Fatalf("round %d: with the first %d of %d agents %v, with all %v", round, n, len(agents), got, all)
		}
	}
}
