package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestHangUpIsRecordedAsTheAgents: an agent who presses Hang up ends the
// call for everyone, and the record says so: ended by them, because an
// agent ended it, not because the caller hung up (whichever of Twilio's
// reports of the end arrives first).
func TestHangUpIsRecordedAsTheAgents(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	alice := env.SignIn("alice")
	customer := env.PlaceCall("+15556660006")
	env.SimAction(env.Ringing("alice"), "accept")
	var call *models.Call
	env.WaitDB("alice with the caller", func(ctx context.Context) (bool, error) {
		c, err := models.CallBySID(ctx, env.App.DB, customer)
		call = c
		return err == nil && c.State == models.CallWithAgent, nil
	})
	if status, body := alice.Post("/calls/"+strconv.FormatInt(call.ID, 10)+"/hangup", url.Values{}); status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("hang up: %d %s", status, body)
	}
	env.WaitSim("the caller's call over", func(st twiliosim.State) bool {
		c, _ := st.Call(customer)
		return c.Status == "completed"
	})
	env.WaitDB("the call ended", func(ctx context.Context) (bool, error) {
		c, err := models.CallByID(ctx, env.App.DB, call.ID)
		call = c
		return err == nil && c.State == models.CallEnded, err
	})
	if call.EndedBy != "alice" || call.EndReason != "agent ended the call" {
		t.Fatalf("call ended by %q because %q, want by alice because the agent ended it", call.EndedBy, call.EndReason)
	}
}
