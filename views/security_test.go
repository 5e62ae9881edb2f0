package views

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

const attack = `<script>alert(1)</script>`

// hostileCall is a call whose caller ID, as Twilio passes it on, is markup.
func hostileCall(state models.CallState) callflow.CallSummary {
	c := *answeredCall()
	c.ID = 66
	c.State = state
	c.CallerName = attack
	c.From = `"><img src=x onerror=alert(2)>` + attack
	return c
}

func TestCallerIDIsEscaped(t *testing.T) {
	offer, call := hostileCall(models.CallRinging), hostileCall(models.CallWithAgent)
	ended := hostileCall(models.CallEnded)
	ended.EndedAt = testNow
	board := callflow.BoardView{Active: []callflow.CallSummary{call}, EndedToday: []callflow.CallSummary{ended}, Agents: []callflow.AgentSummary{{Identity: "alice", Name: "Alice Adams", Presence: models.PresenceBusy, CallID: call.ID}}}

	tests := []struct {
		name string
		c    templ.Component
	}{
		{name: "offer card", c: OfferCard(callflow.AgentView{Me: alice, Offer: &offer})},
		{name: "call panel", c: CallPanel(callflow.AgentView{Me: alice, Call: &call})},
		{name: "board calls", c: ActiveCalls(board)},
		{name: "board agents", c: AgentList(board)},
		{name: "board ended", c: EndedCalls(board)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := render(t, fragmentCtx(), tt.c)
			doc := parse(t, html)
			if n := doc.Find("script").Length(); n != 0 {
				t.Errorf("%d <script> elements in %s", n, html)
			}
			if n := doc.Find("img").Length(); n != 0 {
				t.Errorf("%d <img> elements in %s", n, html)
			}
			if !strings.Contains(doc.Text(), attack) {
				t.Errorf("the caller's name is not shown as text: %s", doc.Text())
			}
			if strings.Contains(html, attack) {
				t.Errorf("the caller's name is in the HTML unescaped: %s", html)
			}
		})
	}

	t.Run("whole pages", func(t *testing.T) {
		pages := map[string]templ.Component{
			"agent page": AgentPage(callflow.AgentView{Me: alice, Call: &call}, simPhone),
			"board page": BoardPage(board),
		}
		for name, c := range pages {
			doc := renderDoc(t, requestCtx(&mia, true), c)
			doc.Find("script").Each(func(_ int, s *goquery.Selection) {
				if _, ok := s.Attr("src"); !ok {
					t.Errorf("%s: a <script> without src: %s", name, s.Text())
				}
			})
			if !strings.Contains(doc.Find("main").Text(), attack) {
				t.Errorf("%s: the caller's name is not shown as text", name)
			}
		}
	})
}

// allPages renders every page in each situation it is served in.
func allPages(t *testing.T) map[string]string {
	t.Helper()
	board := sampleBoard()
	offered := callflow.AgentView{Me: alice, Offer: ringingCall(), Colleagues: colleagues()}
	onCall := callflow.AgentView{Me: alice, Call: transferringCall(models.TransferJoined, models.LegJoined), Colleagues: colleagues()}
	pages := []struct {
		name string
		ctx  context.Context
		c    templ.Component
	}{
		{name: "sign in", ctx: requestCtx(nil, false), c: SignInPage("", "")},
		{name: "sign in failed, simulator", ctx: requestCtx(nil, true), c: SignInPage("Wrong identity or password.", "alice")},
		{name: "console offered, twilio", ctx: requestCtx(&alice, false), c: AgentPage(offered, twilioPhone)},
		{name: "console on a call, simulator", ctx: requestCtx(&alice, true), c: AgentPage(onCall, simPhone)},
		{name: "board", ctx: requestCtx(&mia, true), c: BoardPage(board)},
		{name: "error", ctx: requestCtx(&alice, false), c: ErrorPage(http.StatusInternalServerError, "Something went wrong.")},
	}
	out := map[string]string{}
	for _, p := range pages {
		out[p.name] = render(t, p.ctx, p.c)
	}
	return out
}

var absoluteURL = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`)

// urlAttrs are the attributes that make the browser fetch or go somewhere.
var urlAttrs = []string{"href", "src", "action", "hx-get", "hx-post", "sse-connect", "data-token-url", "data-sim-events-url", "data-sim-call-url"}

func TestPagesAreSelfContained(t *testing.T) {
	for name, html := range allPages(t) {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, html)
			doc.Find("script").Each(func(_ int, s *goquery.Selection) {
				src, ok := s.Attr("src")
				if !ok || strings.TrimSpace(s.Text()) != "" {
					t.Errorf("inline <script>: %s", s.Text())
				}
				if !strings.HasPrefix(src, "/static/") {
					t.Errorf("script from %q, want /static/...", src)
				}
			})
			if n := doc.Find("style").Length(); n != 0 {
				t.Errorf("%d <style> elements", n)
			}
			doc.Find("[style]").Each(func(_ int, s *goquery.Selection) {
				t.Errorf("style attribute on <%s>: %q", goquery.NodeName(s), s.AttrOr("style", ""))
			})
			doc.Find("*").Each(func(_ int, s *goquery.Selection) {
				for _, a := range s.Nodes[0].Attr {
					if strings.HasPrefix(a.Key, "on") || strings.HasPrefix(a.Key, "hx-on") {
						t.Errorf("inline handler %s=%q on <%s>", a.Key, a.Val, goquery.NodeName(s))
					}
				}
				for _, name := range urlAttrs {
					v, ok := s.Attr(name)
					if !ok || v == "" && strings.HasPrefix(name, "data-") {
						continue
					}
					if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") {
						t.Errorf("<%s %s=%q>: want a path on this host", goquery.NodeName(s), name, v)
					}
				}
			})
			if m := absoluteURL.FindString(html); m != "" {
				t.Errorf("page refers to another host: %q", m)
			}

			var cfg map[string]any
			meta := doc.Find(`meta[name="htmx-config"]`)
			if err := json.Unmarshal([]byte(meta.AttrOr("content", "")), &cfg); err != nil {
				t.Fatalf("htmx-config is not JSON: %v", err)
			}
			want := map[string]any{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false}
			for k, v := range want {
				if cfg[k] != v {
					t.Errorf("htmx-config %s = %v, want %v", k, cfg[k], v)
				}
			}
			if got := doc.Find(`link[rel="stylesheet"]`).AttrOr("href", ""); got != "/static/css/app.css" {
				t.Errorf("stylesheet = %q", got)
			}
		})
	}
}

// The SSE broker renders a fragment once per audience, with only URL
// reversal in its context; what it sends must match what the page showed.
func TestFragmentsDependOnlyOnTheirView(t *testing.T) {
	agent := callflow.AgentView{Me: alice, Call: transferringCall(models.TransferJoined, models.LegJoined), Colleagues: colleagues()}
	frags := append(AgentFragments(agent), BoardFragments(sampleBoard())...)
	for _, f := range frags {
		inPage := render(t, requestCtx(&mia, true), f.Component)
		pushed := render(t, fragmentCtx(), f.Component)
		if inPage != pushed {
			t.Errorf("fragment %q differs between the page and the broker:\npage:   %s\npushed: %s", f.Event, inPage, pushed)
		}
	}
}

// The console's buttons drive the phone only through the actions phone.js
// knows.
func TestPhoneActions(t *testing.T) {
	for name, html := range allPages(t) {
		parse(t, html).Find("[data-phone-action]").Each(func(_ int, s *goquery.Selection) {
			switch a := s.AttrOr("data-phone-action", ""); a {
			case "accept", "reject", "hangup":
			default:
				t.Errorf("%s: unknown data-phone-action %q", name, a)
			}
		})
	}
}
