package views

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
)

// Phone modes: which backend static/js/phone.js uses.
const (
	PhoneModeTwilio    = "twilio"
	PhoneModeSimulator = "simulator"
)

// PhoneConfig is what the browser phone needs; AgentPage renders it as
// data-* attributes of #phone, which static/js/phone.js reads.
type PhoneConfig struct {
	// Mode is PhoneModeTwilio or PhoneModeSimulator.
	Mode string
	// Identity is the agent's client identity (client:<identity>).
	Identity string
	// TokenURL answers POST with {token, identity, ttl} (Twilio mode).
	TokenURL string
	// SimEventsURL is the simulated phone's SSE stream (simulator mode).
	SimEventsURL string
	// SimCallURL is the simulator's call URL with a {sid} placeholder, e.g.
	// /sim/calls/{sid}; the phone posts to it + "/accept", "/reject",
	// "/hangup" (simulator mode).
	SimCallURL string
}

// timestamp is t as the data-since and datetime attributes carry it.
func timestamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// formatDuration matches static/js/app.js: m:ss under an hour, h:mm:ss
// above.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	h, m, sec := s/3600, (s/60)%60, s%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

// elapsed is the clock's text when first rendered: from since to until, or
// to now while until is zero. app.js keeps it ticking. A running clock in a
// live fragment has no text: the fragment must not change by itself every
// second, and app.js fills the clock in as it inserts it.
func elapsed(ctx context.Context, since, until time.Time) string {
	if until.IsZero() {
		if livePassOf(ctx) != nil {
			return ""
		}
		until = now(ctx)
	}
	return formatDuration(until.Sub(since))
}

// clockTime is the time of day of t, in UTC; app.js rewrites it in the
// viewer's time zone.
func clockTime(t time.Time) string {
	return t.UTC().Format("15:04 UTC")
}

// callerName is who is calling, as the caller ID names them.
func callerName(c *callflow.CallSummary) string {
	if strings.TrimSpace(c.CallerName) == "" {
		return "Unknown caller"
	}
	return c.CallerName
}

func callerNumber(c *callflow.CallSummary) string {
	if strings.TrimSpace(c.From) == "" {
		return "number withheld"
	}
	return c.From
}

func callStateLabel(s models.CallState) string {
	switch s {
	case models.CallQueued:
		return "waiting"
	case models.CallRinging:
		return "ringing"
	case models.CallWithAgent:
		return "with agent"
	case models.CallTransferring:
		return "transferring"
	case models.CallEnded:
		return "ended"
	}
	return string(s)
}

func callStateBadge(s models.CallState) string {
	switch s {
	case models.CallQueued:
		return "badge badge-waiting"
	case models.CallRinging:
		return "badge badge-ringing"
	case models.CallWithAgent:
		return "badge badge-with-agent"
	case models.CallTransferring:
		return "badge badge-transferring"
	}
	return "badge badge-ended"
}

func presenceLabel(p models.Presence) string {
	switch p {
	case models.PresenceAvailable:
		return "available"
	case models.PresenceBusy:
		return "busy"
	case models.PresenceAway:
		return "away"
	case models.PresenceWrapUp:
		return "wrap-up"
	case models.PresenceOffline:
		return "offline"
	}
	return string(p)
}

func presenceBadge(p models.Presence) string {
	switch p {
	case models.PresenceAvailable:
		return "badge badge-available"
	case models.PresenceBusy:
		return "badge badge-busy"
	case models.PresenceAway:
		return "badge badge-away"
	case models.PresenceWrapUp:
		return "badge badge-wrap-up"
	}
	return "badge badge-offline"
}

// presenceSettable says the agent may switch between available and away
// now; busy ends on its own when the call does. Choosing available in
// wrap-up ends it early.
func presenceSettable(p models.Presence) bool {
	return p == models.PresenceAvailable || p == models.PresenceAway || p == models.PresenceOffline || p == models.PresenceWrapUp
}

// missedOffersNotice tells an agent why they were set away.
func missedOffersNotice(n int) string {
	if n == 1 {
		return "You were set away after missing a call. Choose Available to take calls again."
	}
	return fmt.Sprintf("You were set away after missing %d calls in a row. Choose Available to take calls again.", n)
}

func roleLabel(r models.Role) string {
	if r == models.RoleManager {
		return "Manager"
	}
	return "Agent"
}

func legStateLabel(s models.LegState) string {
	switch s {
	case models.LegRinging:
		return "ringing"
	case models.LegJoined:
		return "on the call"
	case models.LegLeft:
		return "left"
	case models.LegNoAnswer:
		return "did not answer"
	case models.LegDeclined:
		return "declined"
	case models.LegFailed:
		return "could not be reached"
	case models.LegCanceled:
		return "canceled"
	}
	return string(s)
}

// legText is a participant's leg in words, hold included.
func legText(p callflow.Participant) string {
	if p.Hold {
		return legStateLabel(p.State) + ", on hold"
	}
	return legStateLabel(p.State)
}

func legStateClass(p callflow.Participant) string {
	switch {
	case p.Hold:
		return "leg leg-hold"
	case p.State == models.LegJoined:
		return "leg leg-joined"
	case p.State == models.LegRinging:
		return "leg leg-ringing"
	}
	return "leg leg-gone"
}

// colleagueJoined says another agent is in the conference, so the agent can
// leave without leaving the caller alone.
func colleagueJoined(me string, c *callflow.CallSummary) bool {
	for _, p := range c.Participants {
		if p.Identity != me && p.State == models.LegJoined {
			return true
		}
	}
	return false
}

// transferOpen says a transfer is under way, so no second one can start.
func transferOpen(c *callflow.CallSummary) bool {
	return c.Transfer != nil && c.Transfer.State.Open()
}

func nameOr(name, identity string) string {
	if name != "" {
		return name
	}
	return identity
}

// transferProgress is the transfer in words, as the agent me sees it.
func transferProgress(me string, t *callflow.TransferSummary) string {
	if t == nil {
		return ""
	}
	to, from := nameOr(t.ToName, t.ToIdentity), nameOr(t.FromName, t.FromIdentity)
	if me == t.ToIdentity {
		switch t.State {
		case models.TransferRinging:
			return "Transfer from " + from + " ringing"
		case models.TransferJoined:
			return "You joined " + from + "'s call — " + from + " can leave now"
		case models.TransferCompleted:
			return "Transferred to you by " + from
		}
		return ""
	}
	switch t.State {
	case models.TransferRinging:
		return "Ringing " + to + "…"
	case models.TransferJoined:
		if me == t.FromIdentity {
			return to + " joined — you may leave now"
		}
		return to + " joined"
	case models.TransferCompleted:
		return "Transferred to " + to
	case models.TransferCanceled:
		return "Transfer to " + to + " canceled"
	case models.TransferDeclined:
		return to + " declined"
	case models.TransferNoAnswer:
		return to + " did not answer"
	case models.TransferFailed:
		return "Could not reach " + to
	}
	return ""
}

func transferClass(t *callflow.TransferSummary) string {
	switch t.State {
	case models.TransferRinging:
		return "progress progress-ringing"
	case models.TransferJoined, models.TransferCompleted:
		return "progress progress-ok"
	}
	return "progress progress-failed"
}

// agentName finds an agent's name on the board by identity.
func agentName(v callflow.BoardView, identity string) string {
	for _, a := range v.Agents {
		if a.Identity == identity {
			return a.Name
		}
	}
	return identity
}

// endedBy says who ended a call: the caller, an agent, or the system.
func endedBy(v callflow.BoardView, by string) string {
	switch by {
	case "":
		return "—"
	case "customer":
		return "Caller"
	case "agent":
		return "An agent"
	}
	return agentName(v, by)
}

// endReason puts Twilio's and the app's end reasons in words.
func endReason(reason string) string {
	switch reason {
	case "":
		return "—"
	case "caller-hung-up":
		return "Caller hung up"
	case "conference-ended-via-api":
		return "Hung up by an agent"
	case "participant-with-end-conference-on-exit-left":
		return "Last agent left"
	case "participant-with-end-conference-on-exit-kicked":
		return "Agent removed"
	case "last-participant-left":
		return "Everyone left"
	case "last-participant-kicked":
		return "Everyone removed"
	}
	r := strings.NewReplacer("-", " ", "_", " ").Replace(reason)
	return strings.ToUpper(r[:1]) + r[1:]
}

// callOf finds an active call on the board by id.
func callOf(v callflow.BoardView, id int64) *callflow.CallSummary {
	for i := range v.Active {
		if v.Active[i].ID == id {
			return &v.Active[i]
		}
	}
	return nil
}

func availableCount(agents []callflow.AgentSummary) int {
	n := 0
	for _, a := range agents {
		if a.Presence == models.PresenceAvailable && !a.Disabled {
			n++
		}
	}
	return n
}

// agentsOnCall names the agents on a call, ringing ones marked so.
func agentsOnCall(c *callflow.CallSummary) string {
	var names []string
	for _, p := range c.Participants {
		n := nameOr(p.Name, p.Identity)
		switch {
		case p.State == models.LegRinging:
			n += " (ringing)"
		case p.Role == models.LegMonitor && p.Muted:
			n += " (listening)"
		case p.Role == models.LegMonitor:
			n += " (coaching)"
		case p.Hold:
			n += " (on hold)"
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return "—"
	}
	return strings.Join(names, ", ")
}

// initials are up to two letters of a name, for an avatar.
func initials(name string) string {
	var out []rune
	for _, w := range strings.Fields(name) {
		r := []rune(w)
		out = append(out, unicode.ToUpper(r[0]))
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}

// waitEnd is when a caller stopped waiting: answered, or gone unanswered.
func waitEnd(c *callflow.CallSummary) time.Time {
	if !c.AnsweredAt.IsZero() {
		return c.AnsweredAt
	}
	return c.EndedAt
}

// callDuration is how long an ended call lasted, from the caller's first
// ring to the end.
func callDuration(c *callflow.CallSummary) string {
	if c.EndedAt.IsZero() || c.CreatedAt.IsZero() {
		return "—"
	}
	return formatDuration(c.EndedAt.Sub(c.CreatedAt))
}

// supervisable says a manager may listen in on or coach a call: an agent
// has it.
func supervisable(c *callflow.CallSummary) bool {
	return c.Owner != nil && (c.State == models.CallWithAgent || c.State == models.CallTransferring)
}

// supervised says a manager is listening to or coaching the call.
func supervised(c *callflow.CallSummary) bool {
	for _, p := range c.Participants {
		if p.Role == models.LegMonitor {
			return true
		}
	}
	return false
}

// supervisorLabel is how an agent's console names a manager on their call.
func supervisorLabel(p callflow.Participant) string {
	switch {
	case p.State == models.LegRinging:
		return "manager, joining"
	case p.Muted:
		return "manager, listening"
	default:
		return "manager, coaching (only the agent hears them)"
	}
}

// supervisingVerb is the manager's own activity, for the Stop button.
func supervisingVerb(mode string) string {
	if mode == "coach" {
		return "coaching"
	}
	return "listening"
}

// supervisingText tells a manager what they are doing on the call.
func supervisingText(v callflow.AgentView) string {
	c := v.Call
	agent := "the agent"
	if c.Owner != nil {
		agent = c.Owner.Name
	}
	if v.Supervising == "coach" {
		return "You are coaching " + agent + " on " + callerName(c) + "'s call: only " + agent + " hears you."
	}
	return "You are listening to " + agent + " and " + callerName(c) + ", muted."
}
