package callflow

import (
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
)

func TestServiceLevel(t *testing.T) {
	const target = 20 * time.Second
	now := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(-time.Hour).Add(d) }
	answered := func(wait time.Duration) models.CallTiming {
		return models.CallTiming{CreatedAt: at(0), AnsweredAt: at(wait), EndedAt: at(wait + time.Minute)}
	}
	abandoned := func(wait time.Duration) models.CallTiming {
		return models.CallTiming{CreatedAt: at(0), EndedAt: at(wait)}
	}
	waiting := func(wait time.Duration) models.CallTiming {
		return models.CallTiming{CreatedAt: now.Add(-wait)}
	}
	tests := []struct {
		name    string
		calls   []models.CallTiming
		want    ServiceLevel
		wantPct int
		wantOK  bool
	}{
		{name: "no calls", want: ServiceLevel{Target: target}},
		{
			name:  "answered exactly at the target is in time",
			calls: []models.CallTiming{answered(target), answered(target + time.Millisecond)},
			want:  ServiceLevel{Target: target, Calls: 2, InTarget: 1, Late: 1}, wantPct: 50, wantOK: true,
		},
		{
			name:  "short abandons are left out, long ones missed",
			calls: []models.CallTiming{answered(5 * time.Second), abandoned(3 * time.Second), abandoned(45 * time.Second)},
			want:  ServiceLevel{Target: target, Calls: 3, InTarget: 1, Abandoned: 1, ShortAbandoned: 1}, wantPct: 50, wantOK: true,
		},
		{
			name:  "still waiting past the target is missed already, within it not yet counted",
			calls: []models.CallTiming{answered(time.Second), answered(2 * time.Second), waiting(time.Minute), waiting(time.Second)},
			want:  ServiceLevel{Target: target, Calls: 4, InTarget: 2, WaitingLate: 1, WaitingInTarget: 1}, wantPct: 66, wantOK: true,
		},
		{
			name:  "only short abandons: nothing counts yet",
			calls: []models.CallTiming{abandoned(time.Second)},
			want:  ServiceLevel{Target: target, Calls: 1, ShortAbandoned: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := serviceLevel(target, now, tt.calls)
			if got != tt.want {
				t.Errorf("serviceLevel = %+v, want %+v", got, tt.want)
			}
			pct, ok := got.Percent()
			if pct != tt.wantPct || ok != tt.wantOK {
				t.Errorf("Percent = %d, %v, want %d, %v", pct, ok, tt.wantPct, tt.wantOK)
			}
		})
	}
}

func TestStartOfDay(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   time.Time
		loc  *time.Location
		want time.Time
	}{
		{"UTC afternoon", time.Date(2026, 11, 21, 14, 30, 5, 9, time.UTC), nil, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)},
		{"midnight itself", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.UTC, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)},
		{"another zone, already the next day in UTC", time.Date(2026, 11, 21, 20, 0, 0, 0, time.FixedZone("UTC-8", -8*3600)), nil, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)},
		{"Paris, still the previous day in UTC", time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC), paris, time.Date(2026, 11, 22, 0, 0, 0, 0, paris)},
		{"Paris on the day summer time ends", time.Date(2026, 10, 25, 12, 0, 0, 0, time.UTC), paris, time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startOfDay(tt.in, tt.loc); !got.Equal(tt.want) {
				t.Errorf("startOfDay(%v, %v) = %v, want %v", tt.in, tt.loc, got, tt.want)
			}
		})
	}
}

// TestTimeline reads a consult's events as the call flow records them.
func TestTimeline(t *testing.T) {
	alice := &models.Agent{ID: 1, Identity: "alice", Name: "Alice Archer"}
	bob := &models.Agent{ID: 2, Identity: "bob", Name: "Bob Baker"}
	n := names{byID: map[int64]*models.Agent{1: alice, 2: bob}, byIdentity: map[string]*models.Agent{"alice": alice, "bob": bob}}
	transfers := map[int64]*models.Transfer{7: {ID: 7, FromAgentID: 1, ToAgentID: 2, Mode: models.TransferConsult}}
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	events := []models.Event{
		{Kind: EventCallQueued, Payload: `{"from":"+15551230001"}`},
		{Kind: EventParticipantJoined, Payload: `{"customer":true}`},
		{Kind: EventCallOffered, AgentID: 2, Payload: `{"agent":"bob"}`},
		{Kind: EventOfferMissed, AgentID: 2, Payload: `{"agent":"bob","reason":"no_answer"}`},
		{Kind: EventCallQueued, Payload: `{"requeued":true}`},
		{Kind: EventCallOffered, AgentID: 1, Payload: `{"agent":"alice"}`},
		{Kind: EventParticipantJoined, AgentID: 1, Payload: `{"agent":"alice","role":"primary"}`},
		{Kind: EventCallAnswered, AgentID: 1, Payload: `{"agent":"alice"}`},
		{Kind: EventTransferStarted, AgentID: 1, Payload: `{"transfer":7,"from":"alice","to":"bob"}`},
		{Kind: EventParticipantJoined, AgentID: 2, Payload: `{"agent":"bob","role":"colleague"}`},
		{Kind: EventTransferJoined, AgentID: 1, Payload: `{"transfer":7,"agent":"bob"}`},
		{Kind: EventParticipantHold, AgentID: 1, Payload: `{"customer":true,"hold":false,"three_way":true}`},
		{Kind: EventParticipantHold, AgentID: 2, Payload: `{"hold":true}`},
		{Kind: EventParticipantHold, AgentID: 2, Payload: `{"hold":false}`},
		{Kind: EventTransferCompleted, AgentID: 2, Payload: `{"transfer":7,"from_agent":1}`},
		{Kind: EventParticipantLeft, AgentID: 1, Payload: `{"agent":"alice"}`},
		{Kind: EventParticipantLeft, Payload: `{"customer":true}`},
		{Kind: EventCallEnded, AgentID: 2, Payload: `{"reason":"caller hung up","ended_by":"customer"}`},
	}
	for i := range events {
		events[i].ID = int64(i + 1)
		events[i].CreatedAt = t0.Add(time.Duration(i) * time.Second)
	}
	want := []TimelineEntry{
		{Step: StepQueued},
		{Step: StepOffered, Agent: "Bob Baker"},
		{Step: StepMissed, Agent: "Bob Baker", Detail: "no_answer"},
		{Step: StepRequeued},
		{Step: StepOffered, Agent: "Alice Archer"},
		{Step: StepAnswered, Agent: "Alice Archer"},
		{Step: StepConsult, Agent: "Alice Archer", Other: "Bob Baker", Detail: "consult"},
		{Step: StepJoined, Agent: "Bob Baker"},
		{Step: StepThreeWay, Customer: true},
		{Step: StepHold, Agent: "Bob Baker"},
		{Step: StepUnhold, Agent: "Bob Baker"},
		{Step: StepHandedOn, Agent: "Bob Baker", Other: "Alice Archer"},
		{Step: StepLeft, Agent: "Alice Archer"},
		{Step: StepEnded, Customer: true, Detail: "caller hung up"},
	}
	got := timeline(events, n, transfers)
	if len(got) != len(want) {
		t.Fatalf("timeline has %d steps, want %d: %+v", len(got), len(want), got)
	}
	last := time.Time{}
	for i := range want {
		g := got[i]
		if g.At.Before(last) || g.EventID == 0 {
			t.Errorf("step %d: at %v (event %d), after a step at %v", i, g.At, g.EventID, last)
		}
		last = g.At
		g.At, g.EventID = time.Time{}, 0
		if g != want[i] {
			t.Errorf("step %d = %+v, want %+v", i, g, want[i])
		}
	}
}
