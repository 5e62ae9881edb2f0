package views

import (
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

// Fragment is a live fragment and the SSE event that carries it.
type Fragment struct {
	Event     string
	Component templ.Component
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
		{Event: EventRoster, Component: Roster(v)},
	}
}

// BoardFragments are every live fragment of the manager's board, in page
// order.
func BoardFragments(v callflow.BoardView) []Fragment {
	return []Fragment{
		{Event: EventBoardSummary, Component: BoardSummary(v)},
		{Event: EventBoardCalls, Component: ActiveCalls(v)},
		{Event: EventBoardAgents, Component: AgentList(v)},
		{Event: EventBoardEnded, Component: EndedCalls(v)},
	}
}
