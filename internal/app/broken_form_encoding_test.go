package app_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/models"
)

// TestBrokenFormEncoding: a body that is not valid form encoding (what
// curl -d 'to=%zz' sends) is answered 400 with a message about the
// request's encoding, not about a field it seems to lack: a person
// debugging a script must learn what is wrong with what they sent.
func TestBrokenFormEncoding(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("carol", "Carol Chen", models.RoleAgent)
	alice := env.SignIn("alice")
	env.SignIn("bob")
	carol := env.SignIn("carol")
	customer := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitSettled(1)
	var call *models.Call
	env.WaitDB("alice's call stored", func(ctx context.Context) (bool, error) {
		var err error
		call, err = models.CallBySID(ctx, env.App.DB, customer)
		return err == nil, err
	})
	before := env.Snapshot(t)
	// The broken part after a good one: a request that is malformed as a
	// whole must not be half read and acted on.
	for _, tt := range []struct {
		name   string
		client *apptest.Client
		path   string
		body   string
	}{
		{"transfer", alice, "/calls/" + strconv.FormatInt(call.ID, 10) + "/transfer", "to=%zz"},
		{"transfer, the colleague before the broken part", alice, "/calls/" + strconv.FormatInt(call.ID, 10) + "/transfer", "to=bob&x=%zz"},
		{"presence before the broken part", carol, "/presence", "presence=away&%zz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.client.PostRaw(tt.path, "application/x-www-form-urlencoded", tt.body)
			lower := strings.ToLower(body)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d %q, want 400", status, body)
			}
			if !strings.Contains(lower, "malformed") && !strings.Contains(lower, "encod") && !strings.Contains(lower, "parse") {
				t.Fatalf("the answer %q does not say the request is malformed", body)
			}
		})
	}
	if diff := before.Diff(env.Snapshot(t)); diff != "" {
		t.Fatalf("malformed requests changed the state:\n%s", diff)
	}
}
