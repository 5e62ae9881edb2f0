package views

import (
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

func TestCallPanelConsult(t *testing.T) {
	tests := []struct {
		name        string
		me          callflow.AgentSummary
		transfer    models.TransferState
		leg         models.LegState
		onHold      bool
		wantText    string
		wantActions bool            // Complete, Three-way and Cancel shown
		wantEnabled map[string]bool // button testid -> enabled
	}{
		{name: "ringing the consulted colleague", me: alice, transfer: models.TransferRinging, leg: models.LegRinging, onHold: true,
			wantText: "Consulting Bob Brown — the caller is on hold", wantActions: true,
			wantEnabled: map[string]bool{"complete-button": false, "threeway-button": false, "cancel-button": true, "consult-button": false, "transfer-button": false}},
		{name: "consulting the colleague who joined", me: alice, transfer: models.TransferJoined, leg: models.LegJoined, onHold: true,
			wantText: "Consulting Bob Brown — the caller is on hold", wantActions: true,
			wantEnabled: map[string]bool{"complete-button": true, "threeway-button": true, "cancel-button": true, "leave-button": true}},
		{name: "three-way", me: alice, transfer: models.TransferJoined, leg: models.LegJoined,
			wantText: "Three-way with Bob Brown", wantActions: true,
			wantEnabled: map[string]bool{"complete-button": true, "threeway-button": false, "cancel-button": true}},
		{name: "seen by the consulted colleague", me: bob, transfer: models.TransferJoined, leg: models.LegJoined, onHold: true,
			wantText: "Alice Adams is consulting you — the caller is on hold"},
		{name: "three-way seen by the colleague", me: bob, transfer: models.TransferJoined, leg: models.LegJoined,
			wantText: "Three-way with Alice Adams"},
		{name: "consult canceled", me: alice, transfer: models.TransferCanceled, leg: models.LegCanceled,
			wantText:    "Consult with Bob Brown canceled",
			wantEnabled: map[string]bool{"consult-button": true, "transfer-button": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := transferringCall(tt.transfer, tt.leg)
			c.Transfer.Mode = models.TransferConsult
			c.CustomerOnHold = tt.onHold
			doc := renderDoc(t, fragmentCtx(), CallPanel(callflow.AgentView{Me: tt.me, Call: c, Colleagues: colleagues()}))
			if got := text(one(t, doc, "transfer-progress")); got != tt.wantText {
				t.Errorf("progress = %q, want %q", got, tt.wantText)
			}
			if got := byTestID(doc, "consult-actions").Length() == 1; got != tt.wantActions {
				t.Errorf("consult actions shown = %v, want %v", got, tt.wantActions)
			}
			if got := attr(t, one(t, doc, "participant-customer"), "data-hold"); got != map[bool]string{true: "true", false: "false"}[tt.onHold] {
				t.Errorf("customer data-hold = %q", got)
			}
			for id, enabled := range tt.wantEnabled {
				_, disabled := one(t, doc, id).Attr("disabled")
				if disabled == enabled {
					t.Errorf("%s disabled = %v, want %v", id, disabled, !enabled)
				}
			}
		})
	}
}
