package twiliosim

import (
	"context"
	"fmt"
	"math"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/twiml"
)

// Nominal lengths of simulated audio, before Config.Speed divides them.
const (
	sayPerChar    = 60 * time.Millisecond
	sayMinimum    = 500 * time.Millisecond
	playPerLoop   = 3 * time.Second
	maxRedirects  = 50
	applicationEr = "We're sorry, an application error has occurred. Goodbye."
)

// nextStep is what a call does once a TwiML document is done with it.
type nextStep struct {
	stop   bool // the call ended or was taken over; the runner just exits
	url    string
	method string
	params url.Values
}

// runLocked replaces whatever TwiML the call is executing with src.
func (s *Sim) runLocked(c *call, src callSource, extra url.Values) {
	if c.runCancel != nil {
		c.runCancel()
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c.runCancel = cancel
	s.goTracked(func() { s.run(ctx, c, src, extra) })
}

func (s *Sim) run(ctx context.Context, c *call, src callSource, extra url.Values) {
	doc, docURL, ok := s.program(ctx, c, src, extra)
	for hops := 0; ok; hops++ {
		if hops > maxRedirects {
			s.applicationError(ctx, c, docURL, 11215, "too many redirects")
			return
		}
		next := s.execute(ctx, c, doc, docURL)
		if next.stop || ctx.Err() != nil {
			return
		}
		if next.url == "" {
			// Twilio hangs up once a document runs out of verbs.
			s.mu.Lock()
			if ctx.Err() == nil {
				s.endCallLocked(c, endStatusFor(c), "end of TwiML")
			}
			s.mu.Unlock()
			return
		}
		doc, docURL, ok = s.program(ctx, c, callSource{url: next.url, method: next.method}, next.params)
	}
}

// endStatusFor is the status a call ends with when its TwiML hangs up: a
// call that was never answered did not complete.
func endStatusFor(c *call) string {
	if c.answered() {
		return StatusCompleted
	}
	return StatusNoAnswer
}

// program obtains a TwiML document for a call: inline TwiML, or a webhook
// (and its fallback) whose failure ends the call with Twilio's application
// error.
func (s *Sim) program(ctx context.Context, c *call, src callSource, extra url.Values) (*twiml.Response, string, bool) {
	if src.url == "" {
		doc, err := twiml.Parse([]byte(src.twiml))
		if err != nil {
			code := 12100
			if te, ok := err.(*twiml.Error); ok {
				code = te.Code
			}
			s.applicationError(ctx, c, "", code, err.Error())
			return nil, "", false
		}
		return doc, "", true
	}
	doc, failure := s.fetchTwiML(ctx, c, src.method, src.url, extra)
	if failure == nil {
		return doc, src.url, true
	}
	if ctx.Err() != nil {
		return nil, "", false
	}
	s.notifyLocking(c.sid, failure)
	if src.fallbackURL != "" {
		fb := cloneValues(extra)
		fb.Set("ErrorCode", strconv.Itoa(failure.Code))
		fb.Set("ErrorUrl", src.url)
		doc, fbFailure := s.fetchTwiML(ctx, c, orPost(src.fallbackMethod), src.fallbackURL, fb)
		if fbFailure == nil {
			return doc, src.fallbackURL, true
		}
		if ctx.Err() != nil {
			return nil, "", false
		}
		s.notifyLocking(c.sid, fbFailure)
	}
	s.applicationError(ctx, c, src.url, 0, "")
	return nil, "", false
}

// applicationError plays Twilio's apology and hangs up.
func (s *Sim) applicationError(ctx context.Context, c *call, at string, code int, msg string) {
	if code != 0 {
		s.notifyLocking(c.sid, &hookFailure{Code: code, Message: msg, URL: at})
	}
	s.answerInbound(c)
	s.playFor(ctx, c, "say: "+applicationEr, sayLength(applicationEr))
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() == nil {
		s.endCallLocked(c, endStatusFor(c), "application error")
	}
}

// fetchTwiML requests a call's instructions and parses them as Twilio does:
// XML content types are TwiML, audio is played once.
func (s *Sim) fetchTwiML(ctx context.Context, c *call, method, rawURL string, extra url.Values) (*twiml.Response, *hookFailure) {
	s.mu.Lock()
	params := s.voiceParamsLocked(c)
	s.mu.Unlock()
	for k, vs := range extra {
		params[k] = vs
	}
	res := s.request(ctx, c.sid, method, rawURL, params)
	if res.failure != nil {
		return nil, res.failure
	}
	mt, _, _ := mime.ParseMediaType(res.contentType)
	switch {
	case mt == "text/xml" || mt == "application/xml" || mt == "text/html":
		doc, err := twiml.Parse(res.body)
		if err != nil {
			te, _ := err.(*twiml.Error)
			code := 12100
			if te != nil {
				code = te.Code
			}
			return nil, &hookFailure{Code: code, Message: err.Error(), URL: rawURL}
		}
		return doc, nil
	case strings.HasPrefix(mt, "audio/"):
		return &twiml.Response{Verbs: []twiml.Verb{twiml.Play{URL: rawURL, Loop: 1}}}, nil
	default:
		return nil, &hookFailure{Code: 12300, Message: fmt.Sprintf("invalid Content-Type %q", res.contentType), URL: rawURL}
	}
}

// answerInbound answers an inbound call the first time its TwiML does
// something audible, as Twilio does.
func (s *Sim) answerInbound(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.direction == DirectionInbound && !c.answered() && !c.ended() {
		c.started = time.Now()
		s.setStatusLocked(c, StatusInProgress)
	}
}

// execute runs one document's verbs.
func (s *Sim) execute(ctx context.Context, c *call, doc *twiml.Response, docURL string) nextStep {
	for _, verb := range doc.Verbs {
		if ctx.Err() != nil {
			return nextStep{stop: true}
		}
		switch v := verb.(type) {
		case twiml.Say:
			s.answerInbound(c)
			if !s.playLoop(ctx, c, "say: "+v.Text, sayLength(v.Text), v.Loop) {
				return nextStep{stop: true}
			}
		case twiml.Play:
			s.answerInbound(c)
			what := "play: " + resolve(docURL, v.URL)
			if v.URL == "" {
				what = "digits: " + v.Digits
			}
			if !s.playLoop(ctx, c, what, playPerLoop, v.Loop) {
				return nextStep{stop: true}
			}
		case twiml.Pause:
			if !s.pause(ctx, c, v) {
				return nextStep{stop: true}
			}
		case twiml.Redirect:
			return nextStep{url: resolve(docURL, v.URL), method: orPost(v.Method)}
		case twiml.Hangup:
			s.answerInbound(c)
			s.mu.Lock()
			if ctx.Err() == nil {
				s.endCallLocked(c, StatusCompleted, "<Hangup>")
			}
			s.mu.Unlock()
			return nextStep{stop: true}
		case twiml.Reject:
			s.mu.Lock()
			if ctx.Err() == nil {
				status := StatusNoAnswer
				if v.Reason == "busy" {
					status = StatusBusy
				}
				if c.answered() {
					status = StatusCompleted
				}
				s.endCallLocked(c, status, "<Reject>")
			}
			s.mu.Unlock()
			return nextStep{stop: true}
		case twiml.Dial:
			params, ok := s.dial(ctx, c, v, docURL)
			if !ok {
				return nextStep{stop: true}
			}
			if v.Action != "" {
				return nextStep{url: resolve(docURL, v.Action), method: orPost(v.Method), params: params}
			}
		default:
			s.notifyLocking(c.sid, &hookFailure{Code: 12200, Message: fmt.Sprintf("verb %T is not supported", verb), URL: docURL})
		}
	}
	return nextStep{}
}

// pause waits silently. A <Pause> that comes before anything audible delays
// the pickup, as Twilio documents: the caller goes on hearing ringing, and
// the call is answered only once the pause is over.
func (s *Sim) pause(ctx context.Context, c *call, v twiml.Pause) bool {
	s.mu.Lock()
	delaysPickup := c.direction == DirectionInbound && !c.answered()
	s.mu.Unlock()
	what := "pause"
	if delaysPickup {
		what = "ringing (a leading <Pause> delays the pickup)"
	}
	if !s.playFor(ctx, c, what, repeat(time.Second, v.Length)) {
		return false
	}
	s.answerInbound(c)
	return true
}

// dial carries out a <Dial> and returns the parameters Twilio sends to its
// action URL; false means the call ended (or was redirected) meanwhile.
func (s *Sim) dial(ctx context.Context, c *call, d twiml.Dial, docURL string) (url.Values, bool) {
	for _, n := range d.Nouns {
		if conf, ok := n.(twiml.Conference); ok {
			return s.dialConference(ctx, c, d, conf, docURL)
		}
	}
	return s.dialParties(ctx, c, d, docURL)
}

func (s *Sim) dialConference(ctx context.Context, c *call, d twiml.Dial, conf twiml.Conference, docURL string) (url.Values, bool) {
	s.answerInbound(c)
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		return nil, false
	}
	spec := participantSpec{
		label:          conf.ParticipantLabel,
		startOnEnter:   conf.StartConferenceOnEnter,
		endOnExit:      conf.EndConferenceOnExit,
		muted:          conf.Muted,
		beep:           conf.Beep,
		waitURL:        resolve(docURL, conf.WaitURL),
		waitURLSet:     conf.WaitURLSet,
		waitMethod:     conf.WaitMethod,
		maxPart:        conf.MaxParticipants,
		coach:          conf.Coach,
		statusCallback: resolve(docURL, conf.StatusCallback),
		statusMethod:   conf.StatusCallbackMethod,
		// Twilio sends the statusCallback only the events listed in
		// statusCallbackEvent, which has no default: a statusCallback alone
		// gets nothing. (The Participants API differs: its
		// ConferenceStatusCallbackEvent defaults to "start end".)
		statusEvents: conf.StatusCallbackEvent,
	}
	if spec.coach != "" {
		spec.coaching = true
	}
	p, failure := s.joinLocked(c, conf.Name, spec)
	s.mu.Unlock()
	status := StatusCompleted
	if failure != nil {
		s.notifyLocking(c.sid, failure)
		status = StatusFailed
	} else {
		select {
		case <-ctx.Done():
			return nil, false
		case <-p.left:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil || c.ended() {
		return nil, false
	}
	params := url.Values{"DialCallStatus": {status}}
	if p != nil && p.conf != nil {
		params.Set("ConferenceSid", p.conf.sid)
	}
	return params, true
}

type dialResult struct {
	status   string
	childSID string
	duration int
	bridged  bool
}

// dialParties rings every <Client> and <Number> at once; the first to
// answer is bridged to the caller and the others stop ringing.
func (s *Sim) dialParties(ctx context.Context, c *call, d twiml.Dial, docURL string) (url.Values, bool) {
	if !d.AnswerOnBridge {
		s.answerInbound(c)
	}
	result := make(chan dialResult, 1)
	s.mu.Lock()
	if ctx.Err() != nil || c.ended() {
		s.mu.Unlock()
		return nil, false
	}
	decided := false
	from := c.from
	if d.CallerID != "" {
		from = d.CallerID
	}
	var children []*call
	for _, n := range d.Nouns {
		to := ""
		var cb string
		var cbMethod string
		var cbEvents []string
		switch v := n.(type) {
		case twiml.Client:
			to = "client:" + v.Identity
			cb, cbMethod, cbEvents = v.StatusCallback, v.StatusCallbackMethod, v.StatusCallbackEvent
		case twiml.Number:
			to = v.Number
			cb, cbMethod, cbEvents = v.StatusCallback, v.StatusCallbackMethod, v.StatusCallbackEvent
		default:
			continue
		}
		child := s.newCallLocked(DirectionOutboundDial, from, to)
		child.parentSID = c.sid
		child.ringTimeout = time.Duration(d.Timeout) * time.Second
		child.statusCallback = resolve(docURL, cb)
		child.statusCallbackMethod = orPost(cbMethod)
		child.statusEvents = eventSet(cbEvents)
		children = append(children, child)
	}
	if len(children) == 0 {
		s.mu.Unlock()
		return url.Values{"DialCallStatus": {StatusFailed}}, true
	}
	c.dialing = children
	c.hearing = "ringback"
	remaining := len(children)
	for _, child := range children {
		child.onAnswer = func() {
			if decided || c.ended() {
				s.endCallLocked(child, StatusCompleted, "another party answered first")
				return
			}
			decided = true
			for _, other := range children {
				if other != child {
					s.ringEndLocked(other, StatusCanceled)
				}
			}
			c.dialing = nil
			if !c.answered() {
				c.started = time.Now()
				s.setStatusLocked(c, StatusInProgress)
			}
			c.bridge, child.bridge = child, c
			c.hearing = "connected to " + child.to
			child.hearing = "connected to " + c.from
			c.onBridgeEnd = func() {
				c.onBridgeEnd = nil
				result <- dialResult{status: StatusCompleted, childSID: child.sid, duration: child.durationSeconds(), bridged: true}
			}
		}
		child.onRingEnd = func(status string) {
			remaining--
			if decided || remaining > 0 {
				return
			}
			decided = true
			c.dialing = nil
			result <- dialResult{status: status, childSID: child.sid}
		}
	}
	for _, child := range children {
		if !child.ended() {
			s.ringLocked(child)
		}
	}
	s.mu.Unlock()

	var r dialResult
	select {
	case <-ctx.Done():
		return nil, false
	case r = <-result:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil || c.ended() {
		return nil, false
	}
	c.hearing = ""
	return url.Values{
		"DialCallStatus":   {r.status},
		"DialCallSid":      {r.childSID},
		"DialCallDuration": {strconv.Itoa(r.duration)},
		"DialBridged":      {strconv.FormatBool(r.bridged)},
	}, true
}

// playLoop plays one piece of audio loop times; loop 0 plays until the call
// moves on. It reports false when the call was interrupted.
func (s *Sim) playLoop(ctx context.Context, c *call, what string, each time.Duration, loop int) bool {
	if loop == 0 {
		s.setHearing(c, what+" (looping)")
		<-ctx.Done()
		return false
	}
	return s.playFor(ctx, c, what, repeat(each, loop))
}

// repeat is each played n times, saturating instead of overflowing for the
// huge loop counts and lengths a TwiML document may ask for.
func repeat(each time.Duration, n int) time.Duration {
	if n <= 0 || each <= 0 {
		return 0
	}
	if time.Duration(n) > math.MaxInt64/each {
		return math.MaxInt64
	}
	return each * time.Duration(n)
}

func (s *Sim) playFor(ctx context.Context, c *call, what string, d time.Duration) bool {
	s.setHearing(c, what)
	t := time.NewTimer(s.mediaDuration(d))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Sim) setHearing(c *call, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ended() {
		return
	}
	c.hearing = what
	c.logLocked("hears " + what)
	s.changedLocked()
}

func sayLength(text string) time.Duration {
	d := time.Duration(len(text)) * sayPerChar
	if d < sayMinimum {
		return sayMinimum
	}
	return d
}

// resolve makes a URL in a TwiML document absolute against the document's
// own URL, as Twilio does.
func resolve(base, ref string) string {
	if ref == "" || base == "" {
		return ref
	}
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

func orPost(method string) string {
	if method == "" {
		return "POST"
	}
	return strings.ToUpper(method)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func eventSet(events []string) map[string]bool {
	set := map[string]bool{}
	for _, e := range events {
		for _, f := range strings.Fields(e) {
			set[strings.ToLower(f)] = true
		}
	}
	return set
}
