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
		valid := false
		if isFormBody(r.Header.Get(echo.HeaderContentType)) {
			form, perr := url.ParseQuery(string(body))
			valid = perr == nil && twiliosig.Valid(h.AuthToken, fullURL, form, sig)
			if valid {
				// The handler reads the form just checked instead of
				// parsing the body again.
				r.PostForm = form
				r.Form = mergeForm(form, r.URL.Query())
			}
		} else {
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

// isFormBody reports a form-encoded body (or none): the signature then
// covers its parameters. Twilio sends exactly this content type; anything
// else is parsed as a media type.
func isFormBody(contentType string) bool {
	if contentType == "application/x-www-form-urlencoded" || contentType == "" {
		return true
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/x-www-form-urlencoded" || mt == ""
}

// mergeForm is what http.Request.ParseForm makes of a body's form and the
// URL's query: the body's values first.
func mergeForm(body, query url.Values) url.Values {
	if len(query) == 0 {
		return body
	}
	form := make(url.Values, len(body)+len(query))
	for k, v := range body {
		form[k] = v
	}
	for k, v := range query {
		form[k] = append(form[k], v...)
	}
	return form
}

// TwiML is written here rather than with twilio-go's twiml.Voice, which
// builds an element tree by reflection for every answer: on the wait
// route that cost more than the rest of the handler. The app answers with
// three shapes of document, and the parts that never change are
// rendered once.
const (
	twimlContentType = "text/xml; charset=utf-8"
	twimlHeader      = `<?xml version="1.0" encoding="UTF-8"?><Response>`
	twimlFooter      = `</Response>`
)

// twimlWriter appends a TwiML document's parts, escaped.
type twimlWriter struct{ b []byte }

// text appends s escaped for XML text or a double-quoted attribute value.
func (w *twimlWriter) text(s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			w.b = append(w.b, "&amp;"...)
		case '<':
			w.b = append(w.b, "&lt;"...)
		case '>':
			w.b = append(w.b, "&gt;"...)
		case '"':
			w.b = append(w.b, "&quot;"...)
		case '\'', '\t', '\n', '\r':
			w.b = append(w.b, "&#"...)
			w.b = strconv.AppendInt(w.b, int64(c), 10)
			w.b = append(w.b, ';')
		default:
			w.b = append(w.b, c)
		}
	}
}

// attr appends name="value".
func (w *twimlWriter) attr(name, value string) {
	w.b = append(w.b, ' ')
	w.b = append(w.b, name...)
	w.b = append(w.b, `="`...)
	w.text(value)
	w.b = append(w.b, '"')
}

func (w *twimlWriter) say(msg string) {
	w.b = append(w.b, "<Say>"...)
	w.text(msg)
	w.b = append(w.b, "</Say>"...)
}

// twimlBlob answers a TwiML document.
func twimlBlob(c echo.Context, doc []byte) error {
	return c.Blob(http.StatusOK, twimlContentType, doc)
}

// instructions renders the service's decision as TwiML.
func instructions(c echo.Context, ins callflow.Instructions) error {
	w := twimlWriter{b: make([]byte, 0, 512)}
	w.b = append(w.b, twimlHeader...)
	if ins.Join == nil {
		w.say(ins.Say)
		w.b = append(w.b, "<Hangup/>"...)
	} else {
		j := ins.Join
		w.b = append(w.b, "<Dial><Conference"...)
		w.attr("beep", "false")
		w.attr("endConferenceOnExit", strconv.FormatBool(j.EndOnExit))
		w.attr("participantLabel", j.Label)
		w.attr("startConferenceOnEnter", strconv.FormatBool(j.StartOnEnter))
		w.attr("statusCallback", j.StatusCallback)
		w.attr("statusCallbackEvent", strings.Join(j.StatusEvents, " "))
		w.attr("statusCallbackMethod", http.MethodPost)
		if j.WaitURL != "" {
			w.attr("waitMethod", http.MethodPost)
			w.attr("waitUrl", j.WaitURL)
		}
		w.b = append(w.b, '>')
		w.text(j.Conference)
		w.b = append(w.b, "</Conference></Dial>"...)
	}
	w.b = append(w.b, twimlFooter...)
	return twimlBlob(c, w.b)
}

// waitDocument is what a waiting caller hears, split around the place
// where their position in the queue goes.
var waitDocument = func() (d struct{ head, tail, whole []byte }) {
	w := twimlWriter{}
	w.b = append(w.b, twimlHeader...)
	w.say(waitGreeting)
	d.head = w.b
	w = twimlWriter{}
	w.b = append(w.b, `<Play loop="0">`...)
	w.text(waitMusic)
	w.b = append(w.b, "</Play>"...)
	w.b = append(w.b, twimlFooter...)
	d.tail = w.b
	d.whole = append(append([]byte(nil), d.head...), d.tail...)
	return d
}()

// waitTwiML is the wait document for a caller at pos in the queue (none
// when pos is 0).
func waitTwiML(pos int) []byte {
	if pos <= 0 {
		return waitDocument.whole
	}
	w := twimlWriter{b: make([]byte, 0, len(waitDocument.whole)+64)}
	w.b = append(w.b, waitDocument.head...)
	w.say(queuePositionMessage(pos))
	w.b = append(w.b, waitDocument.tail...)
	return w.b
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
	pos := 0
	if sid := c.FormValue("CallSid"); callSIDPattern.MatchString(sid) {
		var err error
		if pos, err = h.Service.QueuePosition(c.Request().Context(), sid); err != nil {
			h.Logger.Warn("wait music without the queue position", "err", err)
		}
	}
	return twimlBlob(c, waitTwiML(pos))
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
// never cut inside a character. Other control characters become spaces:
// a caller's name is shown on one line, and a line break in it has no
// business reaching a page or an event stream.
func limit(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
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
