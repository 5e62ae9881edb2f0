package twiliosim

import "github.com/warmtransfer/warmtransfer/internal/twiml"

// Short names for the TwiML types the media player switches on.
type (
	twimlDoc      = twiml.Response
	twimlSay      = twiml.Say
	twimlPlay     = twiml.Play
	twimlPause    = twiml.Pause
	twimlRedirect = twiml.Redirect
)
