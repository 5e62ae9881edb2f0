package views

import (
	"strconv"

	"github.com/a-h/templ"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

// SSE event names. Each live fragment listens for one of them (its sse-swap
// attribute) and is replaced whole (hx-swap="outerHTML") by the fragment the
// event carries.
const (
	// Agent console, one audience per agent.
	EventAgentStatus = "agent-status"
	EventOffer       = "offer"
	EventCall        = "call"
	EventRoster      = "roster"
	// Manager board, one audience for all managers.
	EventBoardSummary = "board-summary"
	EventBoardCalls   = "board-calls"
	EventBoardAgents  = "board-agents"
	EventBoardEnded   = "board-ended"
)

// Fragment is a live fragment and the SSE event that carries it. Parts, in
// page order, are the pieces of it that may be sent on their own.
type Fragment struct {
	Event     string
	Component templ.Component
	Parts     []Part
}

// AgentFragments are every live fragment of an agent's console, in page
// order. Pushing all of them after any change keeps the console whole: a
// colleague's presence, for one, shows in both the roster and the transfer
// list of the call panel.
func AgentFragments(v callflow.AgentView) []Fragment {
	return []Fragment{
		{Event: EventAgentStatus, Component: AgentStatus(v)},
		{Event: EventOffer, Component: OfferCard(v)},
		{Event: EventCall, Component: CallPanel(v)},
		{Event: EventRoster, Component: Roster(v), Parts: rosterParts(v)},
	}
}

func rosterParts(v callflow.AgentView) []Part {
	if len(v.Colleagues) == 0 {
		return nil
	}
	parts := make([]Part, 0, len(v.Colleagues)+1)
	parts = append(parts, Part{ID: "roster-count", Component: rosterCount(v)})
	for i := range v.Colleagues {
		a := &v.Colleagues[i]
		id := rosterItemID(a)
		parts = append(parts, Part{ID: id, Component: shared(id, rosterItem(a))})
	}
	return parts
}

// BoardFragments are every live fragment of the manager's board, in page
// order.
func BoardFragments(v callflow.BoardView) []Fragment {
	return []Fragment{
		{Event: EventBoardSummary, Component: BoardSummary(v), Parts: summaryStats(v)},
		{Event: EventBoardCalls, Component: ActiveCalls(v), Parts: activeCallParts(v)},
		{Event: EventBoardAgents, Component: AgentList(v), Parts: agentListParts(v)},
		{Event: EventBoardEnded, Component: EndedCalls(v), Parts: endedParts(v)},
	}
}

// summaryStats are the board summary's figures, in page order.
func summaryStats(v callflow.BoardView) []Part {
	stat := func(id string, c templ.Component) Part { return Part{ID: id, Component: shared(id, c)} }
	return []Part{
		stat("board-stat-waiting", statWaiting(v)),
		stat("board-stat-longest-wait", statLongestWait(v)),
		stat("board-stat-active", statActive(v)),
		stat("board-stat-available", statAvailable(v)),
		stat("board-stat-service-level", statServiceLevel(v)),
		stat("board-stat-transfers", statTransfers(v)),
	}
}

// The board's rows, as its tables and its parts both render them: within a
// live render pass each is rendered once (shared), for the fragment and
// for the diff alike. A row's id is its key.

func activeCallRow(c *callflow.CallSummary) templ.Component {
	return shared(boardCallID(c), callRow(c))
}

func activeTimelineRow(c *callflow.CallSummary) templ.Component {
	id := boardTimelineID(c)
	return shared(id, timelineRow(id, c, activeCallColumns))
}

func boardAgentRow(v callflow.BoardView, a *callflow.AgentSummary) templ.Component {
	return shared(boardAgentID(a), agentRow(v, a))
}

func endedCallRow(v callflow.BoardView, c *callflow.CallSummary) templ.Component {
	return shared(endedRowID(c), endedRow(v, c))
}

func endedTimelineRow(c *callflow.CallSummary) templ.Component {
	id := endedTimelineID(c)
	return shared(id, timelineRow(id, c, endedCallColumns))
}

func activeCallParts(v callflow.BoardView) []Part {
	parts := []Part{{ID: "board-calls-count", Component: activeCount(v)}}
	for i := range v.Active {
		c := &v.Active[i]
		parts = append(parts,
			Part{ID: boardCallID(c), Component: activeCallRow(c)},
			Part{ID: boardTimelineID(c), Component: activeTimelineRow(c)})
	}
	return parts
}

func endedParts(v callflow.BoardView) []Part {
	parts := []Part{{ID: "board-ended-count", Component: endedCount(v)}}
	for i := range v.EndedToday {
		c := &v.EndedToday[i]
		parts = append(parts,
			Part{ID: endedRowID(c), Component: endedCallRow(v, c)},
			Part{ID: endedTimelineID(c), Component: endedTimelineRow(c)})
	}
	return parts
}

func agentListParts(v callflow.BoardView) []Part {
	if len(v.Agents) == 0 {
		return nil
	}
	parts := make([]Part, 0, len(v.Agents)+1)
	parts = append(parts, Part{ID: "board-agents-count", Component: agentsAvailable(v)})
	for i := range v.Agents {
		a := &v.Agents[i]
		parts = append(parts, Part{ID: boardAgentID(a), Component: boardAgentRow(v, a)})
	}
	return parts
}

// How many columns the active and the ended calls' tables have; a call's
// timeline row spans them.
const (
	activeCallColumns = 5
	endedCallColumns  = 5
)

// Element ids of the parts, unique on their page.

func rosterItemID(a *callflow.AgentSummary) string {
	return "roster-item-" + strconv.FormatInt(a.ID, 10)
}

func boardAgentID(a *callflow.AgentSummary) string {
	return "board-agent-" + strconv.FormatInt(a.ID, 10)
}

func boardCallID(c *callflow.CallSummary) string {
	return "board-call-" + strconv.FormatInt(c.ID, 10)
}

func boardTimelineID(c *callflow.CallSummary) string {
	return "board-timeline-" + strconv.FormatInt(c.ID, 10)
}

func endedRowID(c *callflow.CallSummary) string {
	return "board-ended-" + strconv.FormatInt(c.ID, 10)
}

func endedTimelineID(c *callflow.CallSummary) string {
	return "board-ended-timeline-" + strconv.FormatInt(c.ID, 10)
}
