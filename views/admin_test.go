package views

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// sampleAdmin is mia (the manager looking), alice on a call, a disabled
// dave, and a second manager.
func sampleAdmin() AdminView {
	onCall := alice
	onCall.CallID = 7
	off := dave
	off.Disabled, off.Presence = true, models.PresenceOffline
	return AdminView{
		Me: mia.Identity,
		Agents: []callflow.AdminAgent{
			{AgentSummary: onCall, Call: answeredCall(), CallLeg: models.LegJoined},
			{AgentSummary: bob},
			{AgentSummary: off},
			{AgentSummary: mia},
			{AgentSummary: callflow.AgentSummary{ID: 6, Identity: "max.m@hq", Name: "Max Manager", Role: models.RoleManager, Presence: models.PresenceOffline}},
		},
	}
}

func TestAdminPageTable(t *testing.T) {
	doc := renderDoc(t, requestCtx(&mia, false), AdminAgentsPage(sampleAdmin()))
	if got := text(one(t, doc, "admin-count")); got != "3 agents · 2 managers" {
		t.Errorf("head count = %q", got)
	}
	if n := doc.Find(`[data-testid^="admin-row-"]`).Length(); n != 5 {
		t.Fatalf("%d rows, want 5", n)
	}
	tests := []struct {
		name, identity         string
		role, presence, status string
		call                   string
		// action is the row's own action form: disable, enable or none
		// (the manager's own row).
		action string
	}{
		{"agent on a call", "alice", "Agent", "busy", "Active", "Jane Doe +15551230001 (on the call)", "disable"},
		{"available agent", "bob", "Agent", "available", "Active", "—", "disable"},
		{"disabled agent", "dave", "Agent", "offline", "Disabled", "—", "enable"},
		{"the manager looking", "mia", "Manager", "offline", "Active", "—", ""},
		{"another manager", "max.m@hq", "Manager", "offline", "Active", "—", "disable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := one(t, doc, "admin-row-"+tt.identity)
			cell := func(id string) string { return text(row.Find(`[data-testid="` + id + `"]`)) }
			if cell("admin-identity") != tt.identity || cell("admin-role") != tt.role || cell("admin-presence") != tt.presence ||
				cell("admin-status") != tt.status || cell("admin-call") != tt.call {
				t.Errorf("row = %q", text(row))
			}
			disable := row.Find(`[data-testid="admin-disable-form"]`)
			enable := row.Find(`[data-testid="admin-enable-form"]`)
			switch tt.action {
			case "disable":
				if disable.Length() != 1 || enable.Length() != 0 {
					t.Fatalf("want a Disable form only: %d disable, %d enable", disable.Length(), enable.Length())
				}
				form := disable
				if a, hx := attr(t, form, "action"), attr(t, form, "hx-post"); a != "/admin/agents/"+tt.identity+"/disable" || hx != a {
					t.Errorf("disable posts to %q (htmx %q)", a, hx)
				}
			case "enable":
				if enable.Length() != 1 || disable.Length() != 0 {
					t.Fatalf("want an Enable form only: %d disable, %d enable", disable.Length(), enable.Length())
				}
				if a := attr(t, enable, "action"); a != "/admin/agents/"+tt.identity+"/enable" {
					t.Errorf("enable posts to %q", a)
				}
			default:
				if disable.Length()+enable.Length() != 0 || row.Find(`[data-testid="admin-you"]`).Length() != 1 {
					t.Errorf("the manager's own row offers to disable them: %q", text(row))
				}
			}
			reset := row.Find(`[data-testid="admin-reset-form"]`)
			if attr(t, reset, "action") != "/admin/agents/"+tt.identity+"/reset" {
				t.Errorf("reset posts to %q", attr(t, reset, "action"))
			}
			row.Find("form").Each(func(_ int, f *goquery.Selection) {
				if f.AttrOr("method", "") != "post" || f.Find(`input[name="csrf"]`).AttrOr("value", "") != "csrf-token-123" {
					t.Errorf("form %s is not a POST with the CSRF token", f.AttrOr("data-testid", "?"))
				}
				if f.AttrOr("hx-target", "") != "#admin-agents" || f.AttrOr("hx-swap", "") != "outerHTML" {
					t.Errorf("form %s does not swap #admin-agents", f.AttrOr("data-testid", "?"))
				}
			})
		})
	}
	add := one(t, doc, "admin-add-form")
	if attr(t, add, "action") != "/admin/agents" || attr(t, add, "hx-post") != "/admin/agents" {
		t.Errorf("the add form posts to %q", attr(t, add, "action"))
	}
	for _, name := range []string{"csrf", "identity", "name", "role", "password"} {
		if add.Find(`[name="`+name+`"]`).Length() != 1 {
			t.Errorf("the add form has no %s field", name)
		}
	}
	if attr(t, one(t, doc, "nav-admin"), "aria-current") != "page" {
		t.Error("the nav does not mark Agents as the current page")
	}
	if byTestID(doc, "admin-new-password").Length() != 0 || byTestID(doc, "admin-notice").Length() != 0 {
		t.Error("a notice or a password on a page nobody acted on")
	}
}

func TestAdminOutcome(t *testing.T) {
	v := sampleAdmin()
	v.Notice = "The password of bob is reset."
	v.NewPassword, v.NewPasswordFor = "abcd-efgh-jkmn-pqrs", "bob"
	v.Form = AdminForm{Identity: "erin", Name: "Erin Evans", Role: models.RoleManager}
	doc := renderDoc(t, fragmentCtx(), AdminAgents(v))
	if got := text(one(t, doc, "admin-new-password-value")); got != v.NewPassword {
		t.Errorf("new password shown as %q", got)
	}
	if got := text(one(t, doc, "admin-new-password-for")); got != "bob" {
		t.Errorf("new password for %q", got)
	}
	if got := text(one(t, doc, "admin-notice")); got != v.Notice {
		t.Errorf("notice = %q", got)
	}
	if attr(t, one(t, doc, "admin-add-identity"), "value") != "erin" || attr(t, one(t, doc, "admin-add-name"), "value") != "Erin Evans" {
		t.Error("the add form is not refilled")
	}
	if doc.Find(`[data-testid="admin-add-role"] option[selected]`).AttrOr("value", "") != "manager" {
		t.Error("the role is not refilled")
	}
	if _, ok := one(t, doc, "admin-add-password").Attr("value"); ok {
		t.Error("the password field is refilled")
	}
}

func TestNavShowsAgentsToManagersOnly(t *testing.T) {
	for _, tt := range []struct {
		name  string
		agent *callflow.AgentSummary
		want  int
	}{
		{"manager", &mia, 1},
		{"agent", &alice, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := renderDoc(t, requestCtx(tt.agent, false), ErrorPage(404, "page not found"))
			links := byTestID(doc, "nav-admin")
			if links.Length() != tt.want {
				t.Fatalf("%d Agents links, want %d", links.Length(), tt.want)
			}
			if tt.want == 1 && attr(t, links, "href") != "/admin/agents" {
				t.Errorf("Agents links to %q", attr(t, links, "href"))
			}
		})
	}
}

// The page is held to the same rules as the others: nothing inline, no
// other host, and names shown as text.
func TestAdminPageIsSafe(t *testing.T) {
	v := sampleAdmin()
	v.Agents[1].Name = attack
	v.Agents[2].Name = `"><img src=x onerror=alert(2)>`
	v.Error = attack
	v.Form.Name = attack
	html := render(t, requestCtx(&mia, true), AdminAgentsPage(v))
	doc := parse(t, html)
	if strings.Contains(html, attack) {
		t.Error("a name is in the HTML unescaped")
	}
	if n := doc.Find("img").Length(); n != 0 {
		t.Errorf("%d <img> elements", n)
	}
	if n := doc.Find("style, [style]").Length(); n != 0 {
		t.Errorf("%d inline styles", n)
	}
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if src := s.AttrOr("src", ""); !strings.HasPrefix(src, "/static/") || strings.TrimSpace(s.Text()) != "" {
			t.Errorf("script %q %q", src, s.Text())
		}
	})
	doc.Find("*").Each(func(_ int, s *goquery.Selection) {
		for _, a := range s.Nodes[0].Attr {
			if strings.HasPrefix(a.Key, "on") || strings.HasPrefix(a.Key, "hx-on") {
				t.Errorf("inline handler %s=%q", a.Key, a.Val)
			}
		}
		for _, name := range urlAttrs {
			if v, ok := s.Attr(name); ok && (!strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//")) {
				t.Errorf("<%s %s=%q>: want a path on this host", goquery.NodeName(s), name, v)
			}
		}
	})
	if m := absoluteURL.FindString(html); m != "" {
		t.Errorf("page refers to another host: %q", m)
	}
}
