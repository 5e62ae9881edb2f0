package telephony

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

// Twilio implements callflow.Telephony with twilio-go.
type Twilio struct {
	client *twilio.RestClient
}

// NewTwilio wraps a REST client.
func NewTwilio(client *twilio.RestClient) *Twilio { return &Twilio{client: client} }

var _ callflow.Telephony = (*Twilio)(nil)

// endOnly asks for the one call progress event the app acts on: the call's
// end, whatever its status (completed, busy, no-answer, failed, canceled).
// Twilio would also post initiated, ringing and answered if asked; nothing
// reads them, and during a storm of callers each is a webhook the app must
// take while it stores callers.
var endOnly = []string{"completed"}

// Ring places an outbound call to client:<identity>.
func (t *Twilio) Ring(_ context.Context, req callflow.RingRequest) (string, error) {
	params := (&api.CreateCallParams{}).
		SetTo("client:" + req.Identity).
		SetFrom(req.From).
		SetUrl(req.URL).
		SetMethod(http.MethodPost).
		SetStatusCallback(req.StatusCallback).
		SetStatusCallbackMethod(http.MethodPost).
		SetStatusCallbackEvent(endOnly).
		SetTimeout(int(req.Timeout.Seconds()))
	call, err := t.client.Api.CreateCall(params)
	if err != nil {
		return "", fmt.Errorf("telephony: ring %s: %w", req.Identity, err)
	}
	if call.Sid == nil {
		return "", errors.New("telephony: ring: Twilio returned no CallSid")
	}
	return *call.Sid, nil
}

// AddParticipant dials a browser phone into a conference with the
// Participants API: muted to listen, or coaching one participant.
func (t *Twilio) AddParticipant(_ context.Context, req callflow.ParticipantRequest) (string, error) {
	params := (&api.CreateParticipantParams{}).
		SetFrom(req.From).
		SetTo("client:" + req.Identity).
		SetLabel(req.Label).
		SetMuted(req.Muted).
		SetStartConferenceOnEnter(false).
		SetEndConferenceOnExit(false).
		SetBeep("false").
		SetStatusCallback(req.StatusCallback).
		SetStatusCallbackMethod(http.MethodPost).
		SetStatusCallbackEvent(endOnly).
		SetTimeout(int(req.Timeout.Seconds()))
	if req.CoachCallSID != "" {
		params.SetCoaching(true).SetCallSidToCoach(req.CoachCallSID)
	}
	p, err := t.client.Api.CreateParticipant(req.ConferenceSID, params)
	if isCode(err, 20404) {
		return "", fmt.Errorf("telephony: add %s to %s: %w", req.Identity, req.ConferenceSID, callflow.ErrGone)
	}
	if err != nil {
		return "", fmt.Errorf("telephony: add %s to %s: %w", req.Identity, req.ConferenceSID, err)
	}
	if p.CallSid == nil {
		return "", errors.New("telephony: add participant: Twilio returned no CallSid")
	}
	return *p.CallSid, nil
}

// EndCall hangs a call up, or stops it ringing. A call that has already
// ended is not an error: the outcome is the one wanted.
func (t *Twilio) EndCall(_ context.Context, callSID string) error {
	_, err := t.client.Api.UpdateCall(callSID, (&api.UpdateCallParams{}).SetStatus("completed"))
	if isCode(err, 21220) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("telephony: end call %s: %w", callSID, err)
	}
	return nil
}

// EndConference ends a conference for everyone in it.
func (t *Twilio) EndConference(_ context.Context, conferenceSID string) error {
	_, err := t.client.Api.UpdateConference(conferenceSID, (&api.UpdateConferenceParams{}).SetStatus("completed"))
	if err != nil {
		return fmt.Errorf("telephony: end conference %s: %w", conferenceSID, err)
	}
	return nil
}

// SetEndConferenceOnExit changes who ends the conference by leaving.
func (t *Twilio) SetEndConferenceOnExit(_ context.Context, conferenceSID, callSID string, end bool) error {
	_, err := t.client.Api.UpdateParticipant(conferenceSID, callSID, (&api.UpdateParticipantParams{}).SetEndConferenceOnExit(end))
	if isCode(err, 20404) {
		return fmt.Errorf("telephony: set endConferenceOnExit of %s: %w", callSID, callflow.ErrGone)
	}
	if err != nil {
		return fmt.Errorf("telephony: set endConferenceOnExit of %s: %w", callSID, err)
	}
	return nil
}

// Hold puts a participant on hold with music from holdURL, or takes them off.
func (t *Twilio) Hold(_ context.Context, conferenceSID, callSID string, hold bool, holdURL string) error {
	params := (&api.UpdateParticipantParams{}).SetHold(hold)
	if hold && holdURL != "" {
		params.SetHoldUrl(holdURL).SetHoldMethod(http.MethodPost)
	}
	_, err := t.client.Api.UpdateParticipant(conferenceSID, callSID, params)
	if isCode(err, 20404) {
		return fmt.Errorf("telephony: hold %s: %w", callSID, callflow.ErrGone)
	}
	if err != nil {
		return fmt.Errorf("telephony: hold %s: %w", callSID, err)
	}
	return nil
}

func isCode(err error, code int) bool {
	var te *twclient.TwilioRestError
	return errors.As(err, &te) && te.Code == code
}

// CallStatus fetches a call's current status.
func (t *Twilio) CallStatus(_ context.Context, callSID string) (string, error) {
	call, err := t.client.Api.FetchCall(callSID, nil)
	if isCode(err, 20404) {
		return "", fmt.Errorf("telephony: fetch call %s: %w", callSID, callflow.ErrGone)
	}
	if err != nil {
		return "", fmt.Errorf("telephony: fetch call %s: %w", callSID, err)
	}
	if call.Status == nil {
		return "", errors.New("telephony: fetch call: Twilio returned no status")
	}
	return *call.Status, nil
}
