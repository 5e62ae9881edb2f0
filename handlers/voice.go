package handlers

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/twilio/twilio-go/twiml"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
)

// waitMusic is what callers hear while they wait: the music the seeds use,
// hosted by Twilio.
const (
	waitGreeting = "Thank you for calling. Please wait while we connect you to an agent."
	waitMusic    = "https://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
)

// maxWebhookBody bounds what a Twilio webhook may send.
const maxWebhookBody = 64 << 10

// webhookWorkLimit bounds the work one webhook may do.
const webhookWorkLimit = 15 * time.Second

var callSIDPattern = regexp.MustCompile(`^CA[0-9a-fA-F]{32}$`)

// twilioSigned lets through only requests that carry a valid
// X-Twilio-Signature for the public URL Twilio was given, form-encoded or
// JSON. Anything else is 403 and changes nothing.
func (h *Handlers) twilioSigned(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxWebhookBody))
		if err != nil {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		fullURL := h.PublicURL + r.URL.RequestURI()
		sig := r.Header.Get(twiliosig.Header)
		mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
		valid := false
		switch mt {
		case "application/x-www-form-urlencoded", "":
			form, perr := url.ParseQuery(string(body))
			valid = perr == nil && twiliosig.Valid(h.AuthToken, fullURL, form, sig)
		default:
			valid = twiliosig.ValidJSON(h.AuthToken, fullURL, body, sig)
		}
		if !valid {
			return echo.NewHTTPError(http.StatusForbidden, "invalid Twilio signature")
		}
		// Once a genuine webhook is being applied it is finished even if
		// Twilio hangs up on the request: a half-applied callback is worse
		// than a late answer. Twilio's own limit is 15 s.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), webhookWorkLimit)
		defer cancel()
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// twimlResponse writes TwiML with the content type Twilio expects.
func twimlResponse(c echo.Context, verbs []twiml.Element) error {
	doc, err := twiml.Voice(verbs)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/xml; charset=utf-8", []byte(doc))
}

// instructions renders the service's decision as TwiML.
func instructions(c echo.Context, ins callflow.Instructions) error {
	if ins.Join == nil {
		return twimlResponse(c, []twiml.Element{&twiml.VoiceSay{Message: ins.Say}, &twiml.VoiceHangup{}})
	}
	j := ins.Join
	conf := &twiml.VoiceConference{
		Name:                   j.Conference,
		StartConferenceOnEnter: strconv.FormatBool(j.StartOnEnter),
		EndConferenceOnExit:    strconv.FormatBool(j.EndOnExit),
		ParticipantLabel:       j.Label,
		StatusCallback:         j.StatusCallback,
		StatusCallbackMethod:   http.MethodPost,
		StatusCallbackEvent:    strings.Join(j.StatusEvents, " "),
		Beep:                   "false",
	}
	if j.WaitURL != "" {
		conf.WaitUrl = j.WaitURL
		conf.WaitMethod = http.MethodPost
	}
	return twimlResponse(c, []twiml.Element{&twiml.VoiceDial{InnerElements: []twiml.Element{conf}}})
}

func callSID(c echo.Context) (string, error) {
	sid := c.FormValue("CallSid")
	if !callSIDPattern.MatchString(sid) {
		return "", echo.NewHTTPError(http.StatusBadRequest, "CallSid is missing or malformed")
	}
	return sid, nil
}

// voiceIncoming is the number's voice URL: a customer is calling.
func (h *Handlers) voiceIncoming(c echo.Context) error {
	sid, err := callSID(c)
	if err != nil {
		return err
	}
	in := callflow.Inbound{
		CallSID:    sid,
		From:       limit(c.FormValue("From"), 64),
		To:         limit(c.FormValue("To"), 64),
		CallerName: limit(c.FormValue("CallerName"), 128),
	}
	ins, err := h.Service.IncomingCall(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return instructions(c, ins)
}

// voiceWait is what a waiting caller hears: a greeting, their place in the
// queue when no agent is free, and looping music. The music never depends
// on the database: a caller whose position cannot be read still waits.
func (h *Handlers) voiceWait(c echo.Context) error {
	verbs := []twiml.Element{&twiml.VoiceSay{Message: waitGreeting}}
	if sid := c.FormValue("CallSid"); callSIDPattern.MatchString(sid) {
		pos, err := h.Service.QueuePosition(c.Request().Context(), sid)
		if err != nil {
			h.Logger.Warn("wait music without the queue position", "err", err)
		}
		if pos > 0 {
			verbs = append(verbs, &twiml.VoiceSay{Message: queuePositionMessage(pos)})
		}
	}
	verbs = append(verbs, &twiml.VoicePlay{Url: waitMusic, Loop: "0"})
	return twimlResponse(c, verbs)
}

// queuePositionMessage is what a caller waiting in line hears.
func queuePositionMessage(pos int) string {
	if pos == 1 {
		return "You are next in line."
	}
	return "You are number " + strconv.Itoa(pos) + " in line."
}

// voiceAgent answers when an agent accepts: it joins them to the caller.
func (h *Handlers) voiceAgent(c echo.Context) error {
	sid, err := callSID(c)
	if err != nil {
		return err
	}
	legID, err := strconv.ParseInt(c.QueryParam("leg"), 10, 64)
	if err != nil || legID <= 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "leg is missing or malformed")
	}
	ins, err := h.Service.AgentConnect(c.Request().Context(), legID, sid)
	if err != nil {
		return err
	}
	return instructions(c, ins)
}

// voiceStatus is the call progress callback of every call the app places
// (and of the number, if it is configured with it).
func (h *Handlers) voiceStatus(c echo.Context) error {
	sid, err := callSID(c)
	if err != nil {
		return err
	}
	var legID int64
	if q := c.QueryParam("leg"); q != "" {
		if legID, err = strconv.ParseInt(q, 10, 64); err != nil || legID <= 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "leg is malformed")
		}
	}
	st := callflow.CallStatus{CallSID: sid, Status: c.FormValue("CallStatus"), Sequence: c.FormValue("SequenceNumber"), LegID: legID}
	if err := h.Service.CallStatus(c.Request().Context(), st); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

var conferenceSIDPattern = regexp.MustCompile(`^CF[0-9a-fA-F]{32}$`)

// voiceConference is the conference status callback.
func (h *Handlers) voiceConference(c echo.Context) error {
	ev := callflow.ConferenceEvent{
		ConferenceSID: c.FormValue("ConferenceSid"),
		FriendlyName:  c.FormValue("FriendlyName"),
		Event:         c.FormValue("StatusCallbackEvent"),
		Sequence:      c.FormValue("SequenceNumber"),
		CallSID:       c.FormValue("CallSid"),
		Hold:          c.FormValue("Hold") == "true",
		EndOnExit:     c.FormValue("EndConferenceOnExit") == "true",
		ReasonEnded:   limit(c.FormValue("ReasonConferenceEnded"), 128),
		CallSIDEnding: c.FormValue("CallSidEndingConference"),
		ReasonLeft:    limit(c.FormValue("ReasonParticipantLeft"), 64),
	}
	if !conferenceSIDPattern.MatchString(ev.ConferenceSID) || !isText(ev.FriendlyName, 128) || !isText(ev.Event, 64) {
		return echo.NewHTTPError(http.StatusBadRequest, "ConferenceSid, FriendlyName and StatusCallbackEvent are required")
	}
	if _, err := strconv.ParseUint(ev.Sequence, 10, 63); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "SequenceNumber is missing or malformed")
	}
	if (ev.CallSID != "" && !callSIDPattern.MatchString(ev.CallSID)) || (ev.CallSIDEnding != "" && !callSIDPattern.MatchString(ev.CallSIDEnding)) {
		return echo.NewHTTPError(http.StatusBadRequest, "CallSid is malformed")
	}
	if err := h.Service.ConferenceEvent(c.Request().Context(), ev); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// limit cuts a value Twilio relays from the caller's network to a sane size
// and makes it text both databases store: valid UTF-8 without NUL bytes,
// never cut inside a character.
func limit(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// isText reports a non-empty value of at most n bytes that the databases
// can compare: valid UTF-8 without NUL bytes.
func isText(s string, n int) bool {
	return s != "" && len(s) <= n && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
