package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// replayLimit bounds how much history one reconnect replays; a stream that
// missed more is simply brought up to date by its fragments.
const replayLimit = 500

// Views renders the app's live fragments and activity lines from the
// call-flow service's snapshots.
type Views struct {
	Service *callflow.Service
	DB      bun.IDB
	// Reverse builds URLs from route names, for the fragments' links.
	Reverse func(name string, params ...any) string
}

var _ Renderer = (*Views)(nil)
var _ Replayer = (*Views)(nil)

func (v *Views) renderCtx(ctx context.Context) context.Context {
	return views.WithRequest(ctx, views.RequestData{Reverse: v.Reverse})
}

// Render renders, for each audience in turn, the lines of history of the
// batch it may see, then its fragments as they are now, and hands them to
// emit before going on to the next. The audiences share one render pass:
// the history is read once, the consoles' agents once, and what looks the
// same to everyone (a colleague's row, a line of history) is rendered once.
func (v *Views) Render(ctx context.Context, auds []Audience, batch []models.Event, emit func(Audience, []Message)) error {
	rctx := views.WithLiveRender(v.renderCtx(ctx))
	var h *history
	if len(batch) > 0 {
		var err error
		if h, err = v.history(ctx); err != nil {
			return err
		}
	}
	var consoles map[int64]callflow.AgentView // read when the first console is due
	for _, aud := range auds {
		var frags []views.Fragment
		if aud.Board {
			bv, err := v.Service.Board(ctx)
			if err != nil {
				return err
			}
			frags = views.BoardFragments(bv)
		} else {
			if consoles == nil {
				var ids []int64
				for _, a := range auds {
					if !a.Board {
						ids = append(ids, a.AgentID)
					}
				}
				var err error
				if consoles, err = v.Service.AgentViewsByID(ctx, ids); err != nil {
					return err
				}
			}
			av, ok := consoles[aud.AgentID]
			if !ok {
				// The agent is gone (deleted); their streams end with
				// their session.
				continue
			}
			frags = views.AgentFragments(av)
		}
		var msgs []Message
		if h != nil {
			var err error
			if msgs, err = h.activity(ctx, rctx, aud, batch); err != nil {
				return err
			}
		}
		fm, err := renderFragments(rctx, frags)
		if err != nil {
			return err
		}
		emit(aud, append(msgs, fm...))
	}
	return nil
}

func renderFragments(rctx context.Context, frags []views.Fragment) ([]Message, error) {
	msgs := make([]Message, 0, len(frags))
	for _, f := range frags {
		// The parts first: the fragment holds them all, so their size
		// sizes its buffer, which then grows at most once.
		m := Message{Event: f.Event}
		size := 1 << 10
		if len(f.Parts) > 0 {
			m.Parts = make([]Part, len(f.Parts))
			for i, p := range f.Parts {
				html, err := views.RenderString(rctx, p.Component, 0)
				if err != nil {
					return nil, fmt.Errorf("live: render %s of %s: %w", p.ID, f.Event, err)
				}
				m.Parts[i] = Part{ID: p.ID, HTML: html}
				size += len(html)
			}
		}
		html, err := views.RenderString(rctx, f.Component, size)
		if err != nil {
			return nil, fmt.Errorf("live: render %s: %w", f.Event, err)
		}
		m.Data = html
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// Audiences returns the agents an event concerns besides the board: a
// presence change shows in every colleague's roster (all); anything about
// a call concerns the agents who are or were on it.
func (v *Views) Audiences(ctx context.Context, ev models.Event) ([]Audience, bool, error) {
	set := map[int64]bool{}
	if ev.AgentID != 0 {
		set[ev.AgentID] = true
	}
	if ev.CallID != 0 {
		legs, err := models.LegsForCall(ctx, v.DB, ev.CallID)
		if err != nil {
			return nil, false, err
		}
		for _, l := range legs {
			if l.AgentID != 0 {
				set[l.AgentID] = true
			}
		}
	}
	out := make([]Audience, 0, len(set))
	for id := range set {
		out = append(out, Audience{AgentID: id})
	}
	return out, ev.Kind == callflow.EventPresence, nil
}

// history holds what rendering a batch of events needs to look up, each
// thing read once however many events refer to it.
type history struct {
	v     *Views
	names map[string]string // identity -> name
	byID  map[int64]string  // agent id -> name
	ids   map[string]int64  // identity -> agent id
	calls map[int64]*models.Call
	spans map[int64][]span // call id -> when each agent was on it
	lines map[int64]string // event id -> its rendered line
}

func (v *Views) history(ctx context.Context) (*history, error) {
	agents, err := models.ListAgents(ctx, v.DB)
	if err != nil {
		return nil, err
	}
	h := &history{v: v, names: map[string]string{}, byID: map[int64]string{}, ids: map[string]int64{}, calls: map[int64]*models.Call{}, spans: map[int64][]span{}, lines: map[int64]string{}}
	for _, a := range agents {
		h.names[a.Identity] = a.Name
		h.byID[a.ID] = a.Name
		h.ids[a.Identity] = a.ID
	}
	return h, nil
}

// span is a stretch of a call's history, in event ids, during which an
// agent took part in it: from the offer (or their joining) to their leaving
// it, the offer being missed, or the call ending. last is 0 while it lasts.
type span struct {
	agent       int64
	first, last int64
}

// loadCall reads a call, once.
func (h *history) loadCall(ctx context.Context, callID int64) error {
	if _, done := h.calls[callID]; done {
		return nil
	}
	c, err := models.CallByID(ctx, h.v.DB, callID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	h.calls[callID] = c
	return nil
}

// loadSpans reads when each agent took part in a call, once: only an
// agent's lines need it, never the board's.
func (h *history) loadSpans(ctx context.Context, callID int64) error {
	if _, done := h.spans[callID]; done {
		return nil
	}
	events, err := models.EventsForCall(ctx, h.v.DB, callID)
	if err != nil {
		return err
	}
	h.spans[callID] = spansOf(events, h.ids)
	return nil
}

// spansOf works out, from a call's events in id order, when each agent was
// part of it (ids maps identities to agent ids). An agent offered a call
// who declined it, or who left it, must not go on hearing about it: what
// happens next is another agent's call. A colleague a call is transferred
// to takes part from the transfer's start, and stops if it fails. An event
// that only names an agent out of a span (their own transfer failing after
// they left, say) is theirs to see, but opens nothing.
func spansOf(events []models.Event, ids map[string]int64) []span {
	spans := []span{}
	open := map[int64]int{} // agent -> index of their open span
	begin := func(agent, at int64) {
		if _, ok := open[agent]; !ok && agent != 0 {
			open[agent] = len(spans)
			spans = append(spans, span{agent: agent, first: at})
		}
	}
	end := func(agent, at int64) {
		if i, ok := open[agent]; ok {
			spans[i].last = at
			delete(open, agent)
		}
	}
	for _, ev := range events {
		switch ev.Kind {
		case callflow.EventCallOffered, callflow.EventCallAnswered, callflow.EventParticipantJoined, callflow.EventTransferCompleted:
			begin(ev.AgentID, ev.ID)
		case callflow.EventTransferStarted:
			var p struct {
				To string `json:"to"`
			}
			if json.Unmarshal([]byte(ev.Payload), &p) == nil {
				begin(ids[p.To], ev.ID)
			}
		case callflow.EventTransferFailed:
			var p struct {
				ToAgent int64 `json:"to_agent"`
			}
			if json.Unmarshal([]byte(ev.Payload), &p) == nil {
				end(p.ToAgent, ev.ID)
			}
		case callflow.EventOfferMissed, callflow.EventParticipantLeft:
			end(ev.AgentID, ev.ID)
		case callflow.EventCallEnded:
			for agent := range open {
				end(agent, ev.ID)
			}
		}
	}
	return spans
}

// visible says whether an audience may see an event's line of history: the
// board sees everything; an agent sees their own presence, and a call's
// history only while they took part in it, never another agent's calls.
func (h *history) visible(ctx context.Context, aud Audience, ev models.Event) (bool, error) {
	if aud.Board {
		return true, nil
	}
	if ev.Kind == callflow.EventPresence || ev.CallID == 0 {
		return ev.AgentID == aud.AgentID, nil
	}
	if ev.AgentID == aud.AgentID {
		return true, nil
	}
	if err := h.loadSpans(ctx, ev.CallID); err != nil {
		return false, err
	}
	for _, s := range h.spans[ev.CallID] {
		if s.agent == aud.AgentID && ev.ID >= s.first && (s.last == 0 || ev.ID <= s.last) {
			return true, nil
		}
	}
	return false, nil
}

func (h *history) name(identity string, id int64) string {
	if n := h.names[identity]; n != "" {
		return n
	}
	if n := h.byID[id]; n != "" {
		return n
	}
	if identity != "" {
		return identity
	}
	return "an agent"
}

func (h *history) caller(ctx context.Context, callID int64) (string, error) {
	if callID == 0 {
		return "A caller", nil
	}
	if err := h.loadCall(ctx, callID); err != nil {
		return "", err
	}
	c := h.calls[callID]
	switch {
	case c == nil:
		return "A caller", nil
	case c.CallerName != "":
		return c.CallerName + " (" + c.FromNumber + ")", nil
	default:
		return c.FromNumber, nil
	}
}

// Activity renders events as lines of history for an audience, leaving out
// those it may not see.
func (v *Views) Activity(ctx context.Context, aud Audience, events []models.Event) ([]Message, error) {
	if len(events) == 0 {
		return nil, nil
	}
	h, err := v.history(ctx)
	if err != nil {
		return nil, err
	}
	return h.activity(ctx, v.renderCtx(ctx), aud, events)
}

// activity renders the lines of events an audience may see; each line is
// rendered once, whoever else sees it.
func (h *history) activity(ctx, rctx context.Context, aud Audience, events []models.Event) ([]Message, error) {
	var msgs []Message
	for _, ev := range events {
		ok, err := h.visible(ctx, aud, ev)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		html, done := h.lines[ev.ID]
		if !done {
			caller, err := h.caller(ctx, ev.CallID)
			if err != nil {
				return nil, err
			}
			html, err = views.RenderString(rctx, views.ActivityItem(views.ActivityEntry{ID: ev.ID, At: ev.CreatedAt, Text: views.ActivityText(ev, caller, h.name)}), 0)
			if err != nil {
				return nil, err
			}
			h.lines[ev.ID] = html
		}
		msgs = append(msgs, Message{ID: ev.ID, Event: EventActivity, Data: html})
	}
	return msgs, nil
}

// Missed renders the activity an audience missed after afterID (at most
// the newest replayLimit events).
func (v *Views) Missed(ctx context.Context, aud Audience, afterID int64) ([]Message, error) {
	latest, err := models.LatestEventID(ctx, v.DB)
	if err != nil || afterID >= latest {
		return nil, err
	}
	if latest-afterID > replayLimit {
		afterID = latest - replayLimit
	}
	events, err := models.EventsAfter(ctx, v.DB, afterID, replayLimit)
	if err != nil {
		return nil, err
	}
	return v.Activity(ctx, aud, events)
}

// Current renders an audience's fragments as they are now, and the newest
// event they reflect (read first, so they reflect at least that one).
func (v *Views) Current(ctx context.Context, aud Audience) ([]Message, int64, error) {
	latest, err := models.LatestEventID(ctx, v.DB)
	if err != nil {
		return nil, 0, err
	}
	var msgs []Message
	err = v.Render(ctx, []Audience{aud}, nil, func(_ Audience, m []Message) { msgs = m })
	if err != nil {
		return nil, 0, err
	}
	return msgs, latest, nil
}
