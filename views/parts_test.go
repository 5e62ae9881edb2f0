package views

import (
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

// The broker sends a part alone only if it renders exactly as it appears in
// its fragment, in order, as one element whose id is the part's: check that
// for every fragment that has parts.
func TestPartsAreTheirFragmentsElements(t *testing.T) {
	ctx := WithLiveRender(fragmentCtx())
	console := callflow.AgentView{Me: alice, Colleagues: colleagues(), Call: answeredCall()}
	for _, tc := range []struct {
		name  string
		frags []Fragment
		parts int // at least this many parts in all
	}{
		{"board", BoardFragments(sampleBoard()), 1 + 5 + 1 + 2*2},
		{"console", AgentFragments(console), 1 + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			for _, f := range tc.frags {
				html := render(t, ctx, f.Component)
				rest := html
				for _, p := range f.Parts {
					n++
					part := render(t, ctx, p.Component)
					i := strings.Index(rest, part)
					if i < 0 {
						t.Fatalf("%s: part %s is not in the fragment after the parts before it:\n%s", f.Event, p.ID, part)
					}
					rest = rest[i+len(part):]
					// In a template, as the patch sends it: a row parses
					// as a row.
					root := parse(t, "<template>"+part+"</template>").Find("template").Children()
					if root.Length() != 1 {
						t.Fatalf("%s: part %s is %d elements, not one", f.Event, p.ID, root.Length())
					}
					if id, _ := root.Attr("id"); id != p.ID {
						t.Fatalf("%s: part %s has id %q", f.Event, p.ID, id)
					}
					if !strings.HasPrefix(part, "<") {
						t.Fatalf("%s: part %s does not start with its element: %q", f.Event, p.ID, part[:min(20, len(part))])
					}
				}
			}
			if n < tc.parts {
				t.Fatalf("%d parts, want at least %d", n, tc.parts)
			}
		})
	}
}

// A live fragment renders the same a minute later when nothing it shows
// changed: running clocks carry no elapsed time (app.js fills them in), so
// the broker does not resend every fragment with a clock at every change.
func TestLiveFragmentsDoNotChangeWithTime(t *testing.T) {
	at := testNow
	ctx := withClock(WithLiveRender(fragmentCtx()), func() time.Time { return at })
	board := sampleBoard()
	before := []string{}
	for _, f := range BoardFragments(board) {
		before = append(before, render(t, ctx, f.Component))
	}
	at = at.Add(time.Minute)
	for i, f := range BoardFragments(board) {
		if got := render(t, ctx, f.Component); got != before[i] {
			t.Fatalf("%s changed with the time alone", f.Event)
		}
	}
	// A page, rendered for a request, shows the elapsed time itself.
	page := render(t, requestCtx(&alice, false), ActiveCalls(board))
	if !strings.Contains(page, ">2:00</time>") {
		t.Fatalf("the page's clock lacks the waiting caller's 2:00:\n%s", page)
	}
}
