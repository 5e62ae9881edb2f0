package apptest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// Snapshot is the state a request could change, as lines that compare and
// print well: the state columns of every call, leg, transfer and agent, how
// many events and webhook receipts there are and the newest event's id, and
// what the simulator holds (its calls, how many requests it made for each,
// its conferences and participants, its debugger log). Row counts alone
// would miss a request that changes a row instead of adding one.
//
// Timestamps that only say when a row was last written (updated_at) are
// left out: they are bookkeeping, not state. What the simulator's calls are
// hearing, and their fetches of the wait URL, are left out too: they follow
// the audio's own course (a fetch still in flight, or cut short when the
// conference starts, is recorded late), and the app answers them without
// changing anything.
type Snapshot struct {
	Lines []string
}

// Snapshot reads the application's state: the database directly, the
// simulator over HTTP (GET /sim/state), as a test of the product would.
// Take it when nothing is in flight (see the callers' waits), or it may
// change under a test for reasons of its own.
func (e *Env) Snapshot(t testing.TB) Snapshot {
	t.Helper()
	ctx := context.Background()
	db := e.App.DB
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }

	var calls []models.Call
	if err := db.NewSelect().Model(&calls).Order("id").Scan(ctx); err != nil {
		t.Fatalf("snapshot: calls: %v", err)
	}
	for _, c := range calls {
		add("call %d sid=%s conference=%s/%s state=%s agent=%d seq=%d customer_on_hold=%t answered=%s ended=%s reason=%q by=%q",
			c.ID, c.CallSID, c.ConferenceName, c.ConferenceSID, c.State, c.AgentID, c.ConferenceSeq, c.CustomerOnHold,
			stamp(c.AnsweredAt), stamp(c.EndedAt), c.EndReason, c.EndedBy)
	}
	var legs []models.Leg
	if err := db.NewSelect().Model(&legs).Order("id").Scan(ctx); err != nil {
		t.Fatalf("snapshot: legs: %v", err)
	}
	for _, l := range legs {
		add("leg %d call=%d agent=%d sid=%s role=%s state=%s hold=%t muted=%t end_on_exit=%t joined=%s left=%s",
			l.ID, l.CallID, l.AgentID, l.CallSID, l.Role, l.State, l.Hold, l.Muted, l.EndConferenceOnExit, stamp(l.JoinedAt), stamp(l.LeftAt))
	}
	var transfers []models.Transfer
	if err := db.NewSelect().Model(&transfers).Order("id").Scan(ctx); err != nil {
		t.Fatalf("snapshot: transfers: %v", err)
	}
	for _, tr := range transfers {
		add("transfer %d call=%d from=%d to=%d to_leg=%d mode=%s state=%s ended=%s",
			tr.ID, tr.CallID, tr.FromAgentID, tr.ToAgentID, tr.ToLegID, tr.Mode, tr.State, stamp(tr.EndedAt))
	}
	var agents []models.Agent
	if err := db.NewSelect().Model(&agents).Order("id").Scan(ctx); err != nil {
		t.Fatalf("snapshot: agents: %v", err)
	}
	for _, a := range agents {
		// The hash stands for the password: a reset changes it.
		pw := sha256.Sum256([]byte(a.PasswordHash))
		add("agent %d %s name=%q role=%s disabled=%t presence=%s since=%s session_epoch=%d missed_offers=%d last_call_ended=%s password=%s",
			a.ID, a.Identity, a.Name, a.Role, a.Disabled, a.Presence, stamp(a.PresenceSince), a.SessionEpoch, a.MissedOffers,
			stamp(a.LastCallEndedAt), hex.EncodeToString(pw[:4]))
	}
	var events struct {
		N    int64 `bun:"n"`
		Last int64 `bun:"last"`
	}
	if err := db.NewSelect().Table("events").ColumnExpr("COUNT(*) AS n, COALESCE(MAX(id), 0) AS last").Scan(ctx, &events); err != nil {
		t.Fatalf("snapshot: events: %v", err)
	}
	add("events count=%d last=%d", events.N, events.Last)
	receipts, err := db.NewSelect().Table("webhook_receipts").Count(ctx)
	if err != nil {
		t.Fatalf("snapshot: webhook_receipts: %v", err)
	}
	add("webhook_receipts count=%d", receipts)

	if e.Sim != nil {
		st := e.SimState(t)
		for _, c := range st.Calls {
			requests := 0
			for _, w := range Requests(c) {
				if u, err := url.Parse(w.URL); err != nil || u.Path != handlers.PathVoiceWait {
					requests++
				}
			}
			add("sim call %s %s -> %s %s status=%s conference=%s/%s requests=%d",
				c.SID, c.From, c.To, c.Direction, c.Status, c.Conference, c.ConferenceSID, requests)
		}
		for _, conf := range st.Conferences {
			add("sim conference %s %s status=%s ended=%q by=%s", conf.SID, conf.FriendlyName, conf.Status, conf.ReasonConferenceEnded, conf.CallSIDEndingConference)
			parts := slices.Clone(conf.Participants)
			slices.SortFunc(parts, func(a, b twiliosim.ParticipantState) int { return strings.Compare(a.CallSID, b.CallSID) })
			for _, p := range parts {
				add("sim participant %s in %s label=%s status=%s hold=%t muted=%t coaching=%t coach=%s start_on_enter=%t end_on_exit=%t",
					p.CallSID, conf.FriendlyName, p.Label, p.Status, p.Hold, p.Muted, p.Coaching, p.CallSIDToCoach, p.StartConferenceOnEnter, p.EndConferenceOnExit)
			}
		}
		add("sim notifications count=%d", len(st.Notifications))
	}
	return Snapshot{Lines: lines}
}

// Diff describes how after differs from s, line by line ("-" what was,
// "+" what is); it is empty when they are the same.
func (s Snapshot) Diff(after Snapshot) string {
	var b strings.Builder
	for _, l := range s.Lines {
		if !slices.Contains(after.Lines, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range after.Lines {
		if !slices.Contains(s.Lines, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// SimState reads the simulator's state over HTTP, as a person or another
// program would (GET /sim/state).
func (e *Env) SimState(t testing.TB) twiliosim.State {
	t.Helper()
	resp, err := http.Get(e.URL + "/sim/state")
	if err != nil {
		t.Fatalf("GET /sim/state: %v", err)
	}
	defer resp.Body.Close()
	var st twiliosim.State
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /sim/state: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /sim/state: %v", err)
	}
	return st
}

// Requests are the HTTP requests the simulator made about a call (its
// record also holds notes about what happened to it).
func Requests(c twiliosim.CallState) []twiliosim.WebhookRecord {
	var out []twiliosim.WebhookRecord
	for _, w := range c.Webhooks {
		if w.URL != "" {
			out = append(out, w)
		}
	}
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
