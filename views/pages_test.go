package views

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

func TestSignInPage(t *testing.T) {
	tests := []struct {
		name         string
		errorMessage string
		identity     string
	}{
		{name: "first visit"},
		{name: "wrong password", errorMessage: "Wrong identity or password.", identity: "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := renderDoc(t, requestCtx(nil, true), SignInPage(tt.errorMessage, tt.identity))
			form := one(t, doc, "signin-form")
			if attr(t, form, "method") != "post" || attr(t, form, "action") != "/signin" {
				t.Errorf("form method=%q action=%q, want post /signin", form.AttrOr("method", ""), form.AttrOr("action", ""))
			}
			if got := form.Find(`input[name="csrf"]`).AttrOr("value", ""); got != "csrf-token-123" {
				t.Errorf("csrf input = %q", got)
			}
			if got := attr(t, one(t, doc, "signin-identity"), "value"); got != tt.identity {
				t.Errorf("identity = %q, want %q", got, tt.identity)
			}
			if attr(t, one(t, doc, "signin-password"), "type") != "password" {
				t.Error("password input is not type=password")
			}
			errs := byTestID(doc, "signin-error")
			if tt.errorMessage == "" && errs.Length() != 0 {
				t.Errorf("error shown on first visit: %q", text(errs))
			}
			if tt.errorMessage != "" && text(errs) != tt.errorMessage {
				t.Errorf("error = %q, want %q", text(errs), tt.errorMessage)
			}
			if byTestID(doc, "signout-form").Length() != 0 {
				t.Error("sign-in page offers sign-out")
			}
		})
	}
}

func TestErrorPage(t *testing.T) {
	doc := renderDoc(t, requestCtx(&alice, false), ErrorPage(http.StatusNotFound, "No such call."))
	if got := text(one(t, doc, "error-status")); got != "404" {
		t.Errorf("status = %q", got)
	}
	if got := text(doc.Find("h1")); got != "Not Found" {
		t.Errorf("title = %q", got)
	}
	if got := text(one(t, doc, "error-message")); got != "No such call." {
		t.Errorf("message = %q", got)
	}
	if got := attr(t, one(t, doc, "error-home"), "href"); got != "/" {
		t.Errorf("home link = %q", got)
	}
}

func TestNav(t *testing.T) {
	tests := []struct {
		name      string
		agent     *callflow.AgentSummary
		simulator bool
		wantBoard bool
		wantSim   bool
		wantUser  string
	}{
		{name: "agent", agent: &alice, wantUser: "Alice Adams Agent"},
		{name: "manager", agent: &mia, wantBoard: true, wantUser: "Mia Moreno Manager"},
		{name: "agent in simulator mode", agent: &alice, simulator: true, wantSim: true, wantUser: "Alice Adams Agent"},
		{name: "signed out in simulator mode", simulator: true, wantSim: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := renderDoc(t, requestCtx(tt.agent, tt.simulator), ErrorPage(http.StatusForbidden, ""))
			if got := byTestID(doc, "nav-board").Length() == 1; got != tt.wantBoard {
				t.Errorf("board link shown = %v, want %v", got, tt.wantBoard)
			}
			sim := byTestID(doc, "nav-sim")
			if got := sim.Length() == 1; got != tt.wantSim {
				t.Errorf("simulator link shown = %v, want %v", got, tt.wantSim)
			}
			if tt.wantSim && (sim.AttrOr("href", "") != "/sim" || text(sim) != "Simulator: place a test call") {
				t.Errorf("simulator link = %q -> %q", text(sim), sim.AttrOr("href", ""))
			}
			if tt.agent == nil {
				if byTestID(doc, "nav-user").Length() != 0 || byTestID(doc, "nav-console").Length() != 0 {
					t.Error("signed-out nav shows a user or console link")
				}
				return
			}
			if got := text(one(t, doc, "nav-user-name")) + " " + text(one(t, doc, "nav-user-role")); got != tt.wantUser {
				t.Errorf("user = %q, want %q", got, tt.wantUser)
			}
			if got := attr(t, one(t, doc, "nav-console"), "href"); got != "/agent" {
				t.Errorf("console link = %q", got)
			}
			form := one(t, doc, "signout-form")
			if attr(t, form, "method") != "post" || attr(t, form, "action") != "/signout" {
				t.Errorf("sign-out form method=%q action=%q", form.AttrOr("method", ""), form.AttrOr("action", ""))
			}
			if got := form.Find(`input[type="hidden"][name="csrf"]`).AttrOr("value", ""); got != "csrf-token-123" {
				t.Errorf("sign-out csrf = %q", got)
			}
		})
	}
}

func TestBodyCarriesCSRFHeader(t *testing.T) {
	tokens := []string{"csrf-token-123", `quote"and<angle>&amp`}
	for _, token := range tokens {
		ctx := WithRequest(requestCtx(&alice, false), RequestData{Reverse: routes().Reverse, CSRF: token, Agent: &alice})
		doc := renderDoc(t, ctx, ErrorPage(http.StatusNotFound, ""))
		raw := attr(t, doc.Find("body"), "hx-headers")
		var headers map[string]string
		if err := json.Unmarshal([]byte(raw), &headers); err != nil {
			t.Fatalf("hx-headers %q is not JSON: %v", raw, err)
		}
		if headers["X-CSRF-Token"] != token || len(headers) != 1 {
			t.Errorf("hx-headers = %v, want X-CSRF-Token %q", headers, token)
		}
	}
}
