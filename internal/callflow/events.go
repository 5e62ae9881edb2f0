package callflow

import (
	"context"
	"encoding/json"

	"github.com/warmtransfer/warmtransfer/models"
)

// Event kinds, the history the board shows and the SSE streams replay.
const (
	EventCallQueued        = "call.queued"
	EventCallOffered       = "call.offered"
	EventCallAnswered      = "call.answered"
	EventCallEnded         = "call.ended"
	EventOfferMissed       = "call.offer_missed"
	EventParticipantJoined = "participant.joined"
	EventParticipantLeft   = "participant.left"
	EventParticipantHold   = "participant.hold"
	EventTransferStarted   = "transfer.started"
	EventTransferJoined    = "transfer.joined"
	EventTransferCompleted = "transfer.completed"
	EventTransferFailed    = "transfer.failed"
	EventPresence          = "agent.presence"
)

// recorder collects the events of one transaction, and the Twilio requests
// to make once it has committed.
type recorder struct {
	events []models.Event
	after  []func(ctx context.Context)
}

// afterCommit schedules a request to Twilio for when the transaction has
// committed, so no transaction waits on the network.
func (r *recorder) afterCommit(f func(ctx context.Context)) { r.after = append(r.after, f) }

func (r *recorder) add(kind string, callID, agentID int64, payload map[string]any) {
	data, _ := json.Marshal(payload)
	if payload == nil {
		data = []byte("{}")
	}
	r.events = append(r.events, models.Event{Kind: kind, CallID: callID, AgentID: agentID, Payload: string(data)})
}
