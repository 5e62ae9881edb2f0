package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/warmtransfer/warmtransfer/internal/app"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
)

// newCallSID is a fresh Twilio CallSid: CA and 32 hex digits.
func newCallSID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "CA" + hex.EncodeToString(b[:])
}

// customerNumber is the caller ID of simulated customer i: distinct per
// customer, so an agent's ringing phone tells whose call it is.
func customerNumber(i int) string { return fmt.Sprintf("+1555%07d", i%10_000_000) }

// voiceForm is what Twilio posts about a call (the simulator's
// voiceParams): the number's voice URL, the wait URL and status callbacks
// all carry these.
func voiceForm(callSID, status, from string) url.Values {
	return url.Values{
		"AccountSid": {app.SimAccountSID},
		"ApiVersion": {"2010-04-01"},
		"CallSid":    {callSID},
		"CallStatus": {status},
		"Direction":  {"inbound"},
		"From":       {from},
		"To":         {app.SimNumber},
		"Caller":     {from},
		"Called":     {app.SimNumber},
		"CallerName": {"Load Customer"},
	}
}

// signedRequest is a webhook as Twilio sends it: a form POST to sendURL
// with X-Twilio-Signature computed over signedURL (the public URL Twilio
// was given, which a proxy may rewrite before the app sees it) and the
// form's parameters.
func signedRequest(authToken, sendURL, signedURL string, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, sendURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twiliosig.Header, twiliosig.Sign(authToken, signedURL, form))
	return req
}
