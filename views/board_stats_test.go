package views

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

func TestBoardServiceLevel(t *testing.T) {
	tests := []struct {
		name       string
		level      callflow.ServiceLevel
		wantValue  string
		wantDetail string
	}{
		{
			name:       "no call counted yet",
			level:      callflow.ServiceLevel{Target: 20 * time.Second, Calls: 1, ShortAbandoned: 1},
			wantValue:  "—",
			wantDetail: "0 of 0 within 20 s · 1 call today",
		},
		{
			name:       "rounded down",
			level:      callflow.ServiceLevel{Target: 90 * time.Second, Calls: 4, InTarget: 2, Abandoned: 1},
			wantValue:  "66%",
			wantDetail: "2 of 3 within 1 min 30 s · 4 calls today",
		},
		{
			name:       "all in time",
			level:      callflow.ServiceLevel{Target: time.Minute, Calls: 2, InTarget: 2},
			wantValue:  "100%",
			wantDetail: "2 of 2 within 1 min · 2 calls today",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := renderDoc(t, fragmentCtx(), BoardSummary(callflow.BoardView{ServiceLevel: tt.level}))
			if got := text(one(t, doc, "board-service-level")); got != tt.wantValue {
				t.Errorf("service level = %q, want %q", got, tt.wantValue)
			}
			if got := text(one(t, doc, "board-service-level-detail")); got != tt.wantDetail {
				t.Errorf("detail = %q, want %q", got, tt.wantDetail)
			}
			target := seconds(tt.level.Target)
			want := "within " + target + " ÷ (calls answered + callers who hung up after waiting more than " + target + ")"
			if got := attr(t, one(t, doc, "board-service-level-card"), "title"); !strings.Contains(got, want) {
				t.Errorf("tooltip = %q, want the definition %q", got, want)
			}
			if got := text(one(t, doc, "board-service-level-legend")); !strings.Contains(got, want) {
				t.Errorf("legend = %q, want the definition %q", got, want)
			}
		})
	}
}

func TestBoardTransferOutcomes(t *testing.T) {
	v := callflow.BoardView{Transfers: callflow.TransferOutcomes{Completed: 3, Declined: 1, Canceled: 2, InProgress: 1}}
	doc := renderDoc(t, fragmentCtx(), BoardSummary(v))
	if got := text(one(t, doc, "board-transfers")); got != "7" {
		t.Errorf("transfers today = %q, want 7", got)
	}
	// Outcomes that did not happen are left out, to keep the card short.
	var got []string
	one(t, doc, "board-transfer-outcomes").Find("li").Each(func(_ int, li *goquery.Selection) {
		got = append(got, li.AttrOr("data-testid", "")+"="+text(li))
	})
	want := []string{"transfers-completed=3 completed", "transfers-declined=1 declined", "transfers-canceled=2 canceled", "transfers-in_progress=1 in progress"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
	none := renderDoc(t, fragmentCtx(), BoardSummary(callflow.BoardView{}))
	if n := none.Find(`[data-testid="board-transfer-outcomes"] li`).Length(); n != 0 || text(one(t, none, "board-transfers")) != "0" {
		t.Errorf("no transfers today: %d outcomes listed, total %q", n, text(one(t, none, "board-transfers")))
	}
}

func TestBoardTimeline(t *testing.T) {
	c := *answeredCall()
	at := func(s int) time.Time { return c.CreatedAt.Add(time.Duration(s) * time.Second) }
	c.Timeline = []callflow.TimelineEntry{
		{At: at(0), Step: callflow.StepQueued},
		{At: at(3), Step: callflow.StepOffered, Agent: "Alice Adams"},
		{At: at(9), Step: callflow.StepAnswered, Agent: "Alice Adams"},
		{At: at(75), Step: callflow.StepConsult, Agent: "Alice Adams", Other: "Bob Brown", Detail: "consult"},
	}
	c.TimelineOmitted = 2
	ended := c
	ended.ID = 5
	v := callflow.BoardView{Active: []callflow.CallSummary{c}, EndedToday: []callflow.CallSummary{ended}}

	active := renderDoc(t, fragmentCtx(), ActiveCalls(v))
	details := active.Find("details#timeline-7")
	if details.Length() != 1 {
		t.Fatalf("no details#timeline-7 under the call's row")
	}
	if _, keep := details.Attr("data-keep-open"); !keep {
		t.Errorf("the timeline is not kept open across pushes")
	}
	if row := active.Find(`[data-testid="call-row-7"] + tr`); row.AttrOr("data-testid", "") != "timeline-row-7" {
		t.Errorf("the row after the call's is %q, want its timeline", row.AttrOr("data-testid", ""))
	}
	var texts, offsets []string
	details.Find(`[data-testid="timeline-step"]`).Each(func(_ int, s *goquery.Selection) {
		texts = append(texts, text(s.Find(`[data-testid="timeline-text"]`)))
		offsets = append(offsets, text(s.Find("time")))
	})
	wantTexts := []string{"Called, waiting for an agent", "Rang Alice Adams", "Alice Adams answered", "Alice Adams consulting Bob Brown, caller on hold"}
	wantOffsets := []string{"+0:00", "+0:03", "+0:09", "+1:15"}
	if strings.Join(texts, "|") != strings.Join(wantTexts, "|") || strings.Join(offsets, "|") != strings.Join(wantOffsets, "|") {
		t.Errorf("timeline = %q at %q, want %q at %q", texts, offsets, wantTexts, wantOffsets)
	}
	if got := text(details.Find("summary")); got != "Timeline 6 steps" {
		t.Errorf("summary = %q", got)
	}
	if got := text(details.Find("li.muted")); got != "2 earlier steps not shown" {
		t.Errorf("omitted steps = %q", got)
	}

	endedDoc := renderDoc(t, fragmentCtx(), EndedCalls(v))
	if endedDoc.Find(`[data-testid="ended-row-5"] + tr details#timeline-5 [data-testid="timeline-step"]`).Length() != 4 {
		t.Errorf("the ended call has no timeline of 4 steps under its row")
	}
}

func TestTimelineText(t *testing.T) {
	tests := []struct {
		e    callflow.TimelineEntry
		want string
	}{
		{callflow.TimelineEntry{Step: callflow.StepRequeued}, "Waiting again for an agent"},
		{callflow.TimelineEntry{Step: callflow.StepMissed, Agent: "Bob", Detail: "declined"}, "Bob declined"},
		{callflow.TimelineEntry{Step: callflow.StepMissed, Agent: "Bob", Detail: "no_answer"}, "Bob did not answer"},
		{callflow.TimelineEntry{Step: callflow.StepMissed, Agent: "Bob", Detail: "failed"}, "Could not reach Bob"},
		{callflow.TimelineEntry{Step: callflow.StepJoined, Agent: "Bob"}, "Bob joined"},
		{callflow.TimelineEntry{Step: callflow.StepHold, Customer: true}, "Caller on hold"},
		{callflow.TimelineEntry{Step: callflow.StepUnhold, Customer: true}, "Caller off hold"},
		{callflow.TimelineEntry{Step: callflow.StepHold, Agent: "Bob"}, "Bob on hold"},
		{callflow.TimelineEntry{Step: callflow.StepThreeWay, Customer: true}, "Three-way: the caller joined both agents"},
		{callflow.TimelineEntry{Step: callflow.StepTransfer, Agent: "Ann", Other: "Bob", Detail: "direct"}, "Ann transferring to Bob"},
		{callflow.TimelineEntry{Step: callflow.StepTransfer, Agent: "Ann", Other: "Bob", Detail: "blind"}, "Ann blind-transferred to Bob"},
		{callflow.TimelineEntry{Step: callflow.StepHandedOn, Agent: "Bob", Other: "Ann"}, "Transferred from Ann to Bob"},
		{callflow.TimelineEntry{Step: callflow.StepNotHanded, Agent: "Ann", Other: "Bob", Detail: "declined"}, "Transfer to Bob declined"},
		{callflow.TimelineEntry{Step: callflow.StepNotHanded, Agent: "Ann", Other: "Bob", Detail: "no_answer"}, "Transfer to Bob not answered"},
		{callflow.TimelineEntry{Step: callflow.StepNotHanded, Agent: "Ann", Other: "Bob", Detail: "canceled"}, "Transfer to Bob canceled"},
		{callflow.TimelineEntry{Step: callflow.StepNotHanded, Agent: "Ann", Other: "Bob", Detail: "failed"}, "Transfer to Bob failed"},
		{callflow.TimelineEntry{Step: callflow.StepLeft, Agent: "Ann"}, "Ann left"},
		{callflow.TimelineEntry{Step: callflow.StepEnded, Customer: true, Detail: "caller hung up"}, "Caller hung up"},
		{callflow.TimelineEntry{Step: callflow.StepEnded, Agent: "Bob", Detail: "agent ended the call"}, "Bob ended the call"},
		{callflow.TimelineEntry{Step: callflow.StepEnded, Customer: true, Detail: "everyone left"}, "Call ended: Everyone left"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := timelineText(tt.e); got != tt.want {
				t.Errorf("timelineText(%+v) = %q, want %q", tt.e, got, tt.want)
			}
		})
	}
}
