package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// callsBySID reads the app's rows for the CallSids, a few hundred per
// query.
func callsBySID(ctx context.Context, db bun.IDB, sids []string) (map[string]models.Call, error) {
	out := make(map[string]models.Call, len(sids))
	for start := 0; start < len(sids); start += 500 {
		var rows []models.Call
		err := db.NewSelect().Model(&rows).Where("call_sid IN (?)", bun.List(sids[start:min(start+500, len(sids))])).Scan(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range rows {
			out[c.CallSID] = c
		}
	}
	return out, nil
}

// settledWith says whether the app shows the call with agent alone: the
// agent owns it, the caller is off hold, the conference is known.
func settledWith(call models.Call, a *simAgent) bool {
	return a != nil && call.AgentID == a.s.AgentID && call.State == models.CallWithAgent &&
		call.ConferenceSID != "" && !call.CustomerOnHold
}

// customersJoined reports which of the calls' callers the app has seen
// join their conference (a participant.joined event without an agent).
func customersJoined(ctx context.Context, db bun.IDB, callIDs []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	for start := 0; start < len(callIDs); start += 500 {
		var ids []int64
		err := db.NewSelect().Model((*models.Event)(nil)).ColumnExpr("DISTINCT call_id").
			Where("kind = ?", callflow.EventParticipantJoined).Where("agent_id IS NULL").
			Where("call_id IN (?)", bun.List(callIDs[start:min(start+500, len(callIDs))])).Scan(ctx, &ids)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			out[id] = true
		}
	}
	return out, nil
}

// waitSettled waits until every placed call is with the agent who
// answered it, and returns how many are not after limit.
func (r *callsRun) waitSettled(ctx context.Context, placing <-chan struct{}, limit time.Duration) int {
	var deadline time.Time // limit after the last call was placed
	for {
		if deadline.IsZero() {
			select {
			case <-placing:
				deadline = time.Now().Add(limit)
			default:
			}
		}
		r.mu.Lock()
		var sids []string
		for _, c := range r.customers {
			if c.sid != "" && !c.settled {
				sids = append(sids, c.sid)
			}
		}
		r.mu.Unlock()
		rows, err := callsBySID(ctx, r.t.DB, sids)
		if err != nil {
			r.fail("database", "reading calls: %v", err)
			return len(sids)
		}
		var ids []int64
		for _, c := range rows {
			ids = append(ids, c.ID)
		}
		joined, err := customersJoined(ctx, r.t.DB, ids)
		if err != nil {
			r.fail("database", "reading events: %v", err)
			return len(sids)
		}
		now := time.Now()
		left := 0
		r.mu.Lock()
		for _, c := range r.customers {
			if c.sid == "" || c.settled {
				continue
			}
			call, ok := rows[c.sid]
			if ok {
				c.callID = call.ID
			}
			// The agent can be in the conference before the caller
			// (the caller's own webhook answers after the agent's):
			// the call is not settled until the caller has joined too.
			if ok && settledWith(call, c.owner) && joined[call.ID] {
				c.settled = true
				r.answerLat = append(r.answerLat, now.Sub(c.placedAt))
				continue
			}
			left++
			if !deadline.IsZero() && now.After(deadline) {
				owner := "nobody answered"
				if c.owner != nil {
					owner = c.owner.s.Identity + " answered"
				}
				r.failLocked("call not answered", "%s (%s): %s; the app has it %s, agent id %d, on hold %v, caller joined %v",
					c.from, c.sid, owner, call.State, call.AgentID, call.CustomerOnHold, joined[call.ID])
			}
		}
		r.mu.Unlock()
		done := !deadline.IsZero() && (left == 0 || now.After(deadline))
		if done || ctx.Err() != nil {
			return left
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkOwners checks, before anyone hangs up, that each call is with the
// agent it was last handed to, in the app and in the simulated Twilio, and
// that no agent is on two calls.
func (r *callsRun) checkOwners(ctx context.Context) {
	r.mu.Lock()
	var sids []string
	for _, c := range r.customers {
		if c.sid != "" {
			sids = append(sids, c.sid)
		}
	}
	r.mu.Unlock()
	rows, err := callsBySID(ctx, r.t.DB, sids)
	if err != nil {
		r.fail("database", "reading calls: %v", err)
		return
	}
	st, err := r.simState(ctx)
	if err != nil {
		r.fail("simulator", "reading its state: %v", err)
		return
	}
	calls := map[string]twiliosim.CallState{}
	live := map[string]int{} // client identity -> calls in progress
	for _, c := range st.Calls {
		calls[c.SID] = c
		if id, ok := strings.CutPrefix(c.To, "client:"); ok && c.Status == twiliosim.StatusInProgress {
			live[id]++
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.customers {
		if c.sid == "" || c.owner == nil || !c.settled {
			continue
		}
		call := rows[c.sid]
		if !settledWith(call, c.owner) {
			r.failLocked("misrouted", "%s: expected with %s, the app has it %s with agent id %d (on hold %v)",
				c.from, c.owner.s.Identity, call.State, call.AgentID, call.CustomerOnHold)
			continue
		}
		conf, ok := st.Conference(call.ConferenceName)
		if !ok {
			r.failLocked("misrouted", "%s: the simulator has no conference %s", c.from, call.ConferenceName)
			continue
		}
		var in []string
		ownerIn := false
		for _, p := range conf.Participants {
			if p.Status != "connected" {
				continue
			}
			in = append(in, p.CallSID)
			// The agent who answered leaves without ending the call (the
			// caller would go back to the queue); whoever a call was
			// handed to ends it by leaving.
			if leg := calls[p.CallSID]; leg.To == "client:"+c.owner.s.Identity && !p.Hold && (c.transfers == 0 || p.EndConferenceOnExit) {
				ownerIn = true
			}
		}
		if len(in) != 2 || !ownerIn {
			r.failLocked("misrouted", "%s: in the simulator's conference, want the caller and %s (off hold; ending it on leaving after a transfer), got %d participant(s) %v",
				c.from, c.owner.s.Identity, len(in), in)
		}
	}
	for id, n := range live {
		if n > 1 {
			r.failLocked("agent on two calls", "%s has %d calls in progress in the simulator", id, n)
		}
	}
	var doubled []struct {
		AgentID int64 `bun:"agent_id"`
		N       int   `bun:"n"`
	}
	err = r.t.DB.NewSelect().Model((*models.Leg)(nil)).Column("agent_id").ColumnExpr("count(*) AS n").
		Where("state = ?", models.LegJoined).Where("agent_id IS NOT NULL").
		Group("agent_id").Having("count(*) > 1").Scan(ctx, &doubled)
	if err != nil {
		r.failLocked("database", "reading legs: %v", err)
	}
	for _, d := range doubled {
		r.failLocked("agent on two calls", "agent id %d has %d joined legs in the app", d.AgentID, d.N)
	}
}

// milestone is when, after the hang-ups began, one part of the app or the
// simulator was through with every call.
type milestone struct {
	what  string
	after time.Duration
}

// waitEnded waits until every call has ended in the app's database, every
// agent is free, the simulator has no call or conference left, and the
// board shows none of the calls, in that order, and says when each was
// reached. The simulator's state is large, so it is read last and seldom.
func (r *callsRun) waitEnded(ctx context.Context, limit time.Duration, manager *session) []milestone {
	start := time.Now()
	deadline := start.Add(limit)
	r.mu.Lock()
	var sids []string
	for _, c := range r.customers {
		if c.sid != "" {
			sids = append(sids, c.sid)
		}
	}
	r.mu.Unlock()
	var out []milestone
	steps := []struct {
		what  string
		every time.Duration
		check func() []string
	}{
		{"every call ended in the app's database", 200 * time.Millisecond, func() []string { return r.callsNotEnded(ctx, sids) }},
		{"every agent available again", 200 * time.Millisecond, func() []string { return r.agentsNotFree(ctx) }},
		{"no call or conference left in the simulator", 2 * time.Second, func() []string { return r.simNotEnded(ctx, sids) }},
		{"the board shows none of the calls", time.Second, func() []string { return r.boardNotClear(ctx, sids, manager) }},
	}
	for _, step := range steps {
		var problems []string
		for {
			problems = step.check()
			if len(problems) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(step.every)
		}
		if len(problems) > 0 {
			for _, p := range problems {
				kind, detail, _ := strings.Cut(p, ": ")
				r.fail(kind, "%s", detail)
			}
			return out
		}
		out = append(out, milestone{step.what, time.Since(start)})
	}
	return out
}

// callsNotEnded lists the calls the app's database has not ended, each as
// "kind: detail".
func (r *callsRun) callsNotEnded(ctx context.Context, sids []string) []string {
	rows, err := callsBySID(ctx, r.t.DB, sids)
	if err != nil {
		return []string{"database: reading calls: " + err.Error()}
	}
	var out []string
	for _, sid := range sids {
		c, ok := rows[sid]
		switch {
		case !ok:
			out = append(out, "lost: "+sid+" is not in the app's database")
		case c.State != models.CallEnded:
			out = append(out, fmt.Sprintf("not ended in the app: %s (%s) is %s with agent id %d", c.FromNumber, sid, c.State, c.AgentID))
		}
	}
	return out
}

// agentsNotFree lists the load's agents the app has not made available
// again.
func (r *callsRun) agentsNotFree(ctx context.Context) []string {
	var busy []models.Agent
	if err := r.t.DB.NewSelect().Model(&busy).Where("identity LIKE ?", "wtload-agent-%").
		Where("presence <> ?", models.PresenceAvailable).Scan(ctx); err != nil {
		return []string{"database: reading agents: " + err.Error()}
	}
	var out []string
	for _, a := range busy {
		out = append(out, fmt.Sprintf("agent not freed: %s is %s after every call ended", a.Identity, a.Presence))
	}
	return out
}

// simNotEnded lists the customers' calls and conferences, and the agents'
// phone calls, the simulator still has going.
func (r *callsRun) simNotEnded(ctx context.Context, sids []string) []string {
	st, err := r.simState(ctx)
	if err != nil {
		return []string{"simulator: reading its state: " + err.Error()}
	}
	mine := map[string]bool{}
	for _, sid := range sids {
		mine[sid] = true
	}
	var out []string
	for _, c := range st.Calls {
		id, isAgent := strings.CutPrefix(c.To, "client:")
		ourAgent := isAgent && r.byIdentity[id] != nil
		if (mine[c.SID] || ourAgent) && (c.Status == twiliosim.StatusInProgress || c.Status == twiliosim.StatusRinging || c.Status == twiliosim.StatusQueued) {
			out = append(out, fmt.Sprintf("not ended in the simulator: call %s (%s → %s) is %s", c.SID, c.From, c.To, c.Status))
		}
	}
	for _, conf := range st.Conferences {
		sid, ok := strings.CutPrefix(conf.FriendlyName, "call-")
		if ok && mine[sid] && conf.Status != "completed" {
			out = append(out, fmt.Sprintf("not ended in the simulator: conference %s is %s", conf.FriendlyName, conf.Status))
		}
	}
	return out
}

// boardNotClear lists the calls a manager opening the board now would
// still see among the active ones.
func (r *callsRun) boardNotClear(ctx context.Context, sids []string, manager *session) []string {
	rows, err := callsBySID(ctx, r.t.DB, sids)
	if err != nil {
		return []string{"database: reading calls: " + err.Error()}
	}
	doc, err := manager.get(ctx, r.ctl, r.t.URL+"/board")
	if err != nil {
		return []string{"board: " + err.Error()}
	}
	var out []string
	for _, c := range rows {
		if doc.Find(`[data-testid="call-row-`+strconv.FormatInt(c.ID, 10)+`"]`).Length() > 0 {
			out = append(out, fmt.Sprintf("not ended on the board: call %d is still among the active calls", c.ID))
		}
	}
	return out
}

// simState reads the simulator's whole state.
func (r *callsRun) simState(ctx context.Context) (twiliosim.State, error) {
	var st twiliosim.State
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.t.SimURL+"/sim/state", nil)
	resp, err := r.ctl.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /sim/state: status %d", resp.StatusCode)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}
