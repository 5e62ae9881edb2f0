package twiliosim

import "errors"

// Errors of the control API (not Twilio's REST errors, which are apiError).
var (
	errUnknownCall = errors.New("no such call")
	errCallEnded   = errors.New("the call has already ended")
	errNotRinging  = errors.New("the call is not ringing")
	errNotAPhone   = errors.New("the call is not to a browser phone (client:identity)")
	errBadBehavior = errors.New("behavior must be answer, busy, no-answer or failed")
	errNoVoiceURL  = errors.New("the number has no voice URL configured")
	// errNotOurNumber refuses an inbound call to any number but the
	// account's: the simulator has no other number, so no voice URL to fetch.
	errNotOurNumber = errors.New("To is not a number of this account; inbound calls can only reach the configured number")
)
