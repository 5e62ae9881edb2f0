package twiliosim

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Call statuses, as Twilio names them.
const (
	StatusQueued     = "queued"
	StatusInitiated  = "initiated"
	StatusRinging    = "ringing"
	StatusInProgress = "in-progress"
	StatusCompleted  = "completed"
	StatusBusy       = "busy"
	StatusFailed     = "failed"
	StatusNoAnswer   = "no-answer"
	StatusCanceled   = "canceled"
)

// Call directions.
const (
	DirectionInbound      = "inbound"
	DirectionOutboundAPI  = "outbound-api"
	DirectionOutboundDial = "outbound-dial"
)

// NumberBehavior says what a simulated phone number does when it is called.
type NumberBehavior string

// The behaviours a called number can have. Numbers answer by default.
const (
	NumberAnswers  NumberBehavior = "answer"
	NumberBusy     NumberBehavior = "busy"
	NumberNoAnswer NumberBehavior = "no-answer"
	NumberFails    NumberBehavior = "failed"
)

// callSource says where a call's instructions come from once it is answered.
type callSource struct {
	url, method                 string
	fallbackURL, fallbackMethod string
	twiml                       string
}

// call is one leg, in any direction. All fields are guarded by Sim.mu.
type call struct {
	sid, parentSID   string
	from, to         string
	callerName       string
	direction        string
	status           string
	created, updated time.Time
	started, endedAt time.Time

	source callSource

	statusCallback       string
	statusCallbackMethod string
	statusEvents         map[string]bool
	callbackSeq          int

	ringTimeout time.Duration
	// stopRing ends the goroutine timing the ring, once the leg is answered
	// or over.
	stopRing func()
	// onAnswer runs (with Sim.mu held) when an outbound leg is answered.
	onAnswer func()
	// onRingEnd runs (with Sim.mu held) when an outbound leg stops ringing
	// without an answer: busy, no-answer, failed or canceled.
	onRingEnd func(status string)

	runCancel context.CancelFunc
	hearing   string
	part      *participant // the conference this call is in, if any
	// bridge is the other party of a <Dial><Client|Number> while connected.
	bridge *call
	// onBridgeEnd tells a dialing parent that its bridged child hung up.
	onBridgeEnd func()
	// dialing holds the children a <Dial> is ringing on this call's behalf.
	dialing []*call

	webhooks []WebhookRecord
	done     chan struct{}
}

func (c *call) ended() bool {
	switch c.status {
	case StatusCompleted, StatusBusy, StatusFailed, StatusNoAnswer, StatusCanceled:
		return true
	}
	return false
}

func (c *call) answered() bool { return !c.started.IsZero() }

// isClient reports whether the call goes to a simulated browser phone.
func (c *call) clientIdentity() (string, bool) {
	if c.direction == DirectionInbound {
		return "", false
	}
	id, ok := strings.CutPrefix(c.to, "client:")
	return id, ok
}

func (s *Sim) newCallLocked(direction, from, to string) *call {
	now := time.Now()
	c := &call{
		sid:       newSID("CA"),
		from:      from,
		to:        to,
		direction: direction,
		status:    StatusQueued,
		created:   now,
		updated:   now,
		done:      make(chan struct{}),
	}
	s.calls[c.sid] = c
	s.callOrder = append(s.callOrder, c)
	return c
}

// voiceParams are the parameters Twilio sends with every request about a call.
func (s *Sim) voiceParamsLocked(c *call) url.Values {
	v := url.Values{
		"AccountSid": {s.cfg.AccountSID},
		"ApiVersion": {APIVersion},
		"CallSid":    {c.sid},
		"CallStatus": {c.status},
		"Direction":  {c.direction},
		"From":       {c.from},
		"To":         {c.to},
		"Caller":     {c.from},
		"Called":     {c.to},
	}
	if c.parentSID != "" {
		v.Set("ParentCallSid", c.parentSID)
	}
	if c.callerName != "" {
		v.Set("CallerName", c.callerName)
	}
	return v
}

// setStatusLocked moves a call to a new status and sends the matching call
// progress event, if the call subscribed to it.
func (s *Sim) setStatusLocked(c *call, status string) {
	c.status = status
	c.updated = time.Now()
	event := ""
	switch status {
	case StatusInitiated:
		event = "initiated"
	case StatusRinging:
		event = "ringing"
	case StatusInProgress:
		event = "answered"
	default:
		if c.ended() {
			event = "completed"
		}
	}
	if event != "" {
		s.callProgressLocked(c, event)
	}
	s.changedLocked()
}

// callProgressLocked queues a call status callback. Without an explicit
// StatusCallbackEvent, Twilio sends only "completed".
func (s *Sim) callProgressLocked(c *call, event string) {
	if c.statusCallback == "" {
		return
	}
	subscribed := c.statusEvents[event]
	if len(c.statusEvents) == 0 {
		subscribed = event == "completed"
	}
	if !subscribed {
		return
	}
	p := s.voiceParamsLocked(c)
	p.Set("CallbackSource", "call-progress-events")
	p.Set("SequenceNumber", strconv.Itoa(c.callbackSeq))
	p.Set("Timestamp", rfc2822(time.Now()))
	c.callbackSeq++
	if c.ended() {
		d := c.durationSeconds()
		p.Set("CallDuration", strconv.Itoa(d))
		p.Set("Duration", strconv.Itoa((d+59)/60))
	}
	s.hooks.send(c.sid, hookJob{sim: s, callSID: c.sid, method: c.statusCallbackMethod, url: c.statusCallback, params: p})
}

func (c *call) durationSeconds() int {
	if c.started.IsZero() {
		return 0
	}
	end := c.endedAt
	if end.IsZero() {
		end = time.Now()
	}
	return int(end.Sub(c.started).Round(time.Second) / time.Second)
}

// ringLocked starts ringing an outbound leg: initiated, ringing, and then
// whatever the callee does.
func (s *Sim) ringLocked(c *call) {
	s.setStatusLocked(c, StatusInitiated)
	s.setStatusLocked(c, StatusRinging)
	c.hearing = "ringing"
	if id, ok := c.clientIdentity(); ok {
		s.phoneEventLocked(id, PhoneEvent{Type: "incoming", CallSID: c.sid, From: c.from, To: c.to})
		s.ringTimerLocked(c)
		return
	}
	switch s.numbers[c.to] {
	case NumberBusy:
		s.ringEndLocked(c, StatusBusy)
	case NumberFails:
		s.ringEndLocked(c, StatusFailed)
	case NumberNoAnswer:
		s.ringTimerLocked(c)
	default:
		s.answerLocked(c)
	}
}

// ringTimerLocked ends the leg with no-answer once its Timeout has passed.
// The timer runs on a tracked goroutine rather than time.AfterFunc, so Close
// waits for it instead of leaving it to fire on a closed simulator.
func (s *Sim) ringTimerLocked(c *call) {
	stop := make(chan struct{})
	c.stopRing = sync.OnceFunc(func() { close(stop) })
	timeout := c.ringTimeout
	s.goTracked(func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.status == StatusRinging {
			s.ringEndLocked(c, StatusNoAnswer)
		}
	})
}

// answerLocked connects a ringing outbound leg.
func (s *Sim) answerLocked(c *call) {
	if c.status != StatusRinging {
		return
	}
	if c.stopRing != nil {
		c.stopRing()
	}
	c.started = time.Now()
	c.hearing = ""
	s.setStatusLocked(c, StatusInProgress)
	if id, ok := c.clientIdentity(); ok {
		s.phoneEventLocked(id, PhoneEvent{Type: "accepted", CallSID: c.sid, From: c.from, To: c.to})
	}
	if c.onAnswer != nil {
		c.onAnswer()
	}
}

// ringEndLocked ends an outbound leg that was never answered.
func (s *Sim) ringEndLocked(c *call, status string) {
	if c.ended() || c.answered() {
		return
	}
	s.endCallLocked(c, status, "")
	if c.onRingEnd != nil {
		c.onRingEnd(status)
	}
}

// endCallLocked hangs a call up with a final status and lets everything
// attached to it react: its conference, its bridged party, the children it
// was dialing, and the phone that showed it.
func (s *Sim) endCallLocked(c *call, status, why string) {
	if c.ended() {
		return
	}
	if c.stopRing != nil {
		c.stopRing()
	}
	if c.runCancel != nil {
		c.runCancel()
		c.runCancel = nil
	}
	wasRinging := !c.answered()
	c.endedAt = time.Now()
	c.hearing = ""
	if why != "" {
		c.logLocked("ended: " + why)
	}
	s.setStatusLocked(c, status)
	close(c.done)
	if id, ok := c.clientIdentity(); ok {
		kind := "disconnected"
		if wasRinging {
			kind = "canceled"
		}
		s.phoneEventLocked(id, PhoneEvent{Type: kind, CallSID: c.sid, From: c.from, To: c.to, Status: status})
	}
	if p := c.part; p != nil {
		s.leaveLocked(p, leaveHungUp)
	}
	for _, child := range c.dialing {
		s.ringEndLocked(child, StatusCanceled)
	}
	c.dialing = nil
	if peer := c.bridge; peer != nil {
		c.bridge, peer.bridge = nil, nil
		if peer.parentSID == c.sid {
			s.endCallLocked(peer, StatusCompleted, "the caller hung up")
		} else if peer.onBridgeEnd != nil {
			peer.onBridgeEnd()
		}
	}
}

// logLocked keeps a short history of what happened to a call, for people
// reading the simulator's state.
func (c *call) logLocked(line string) {
	c.recordLocked(WebhookRecord{At: time.Now(), Note: line})
}

// maxCallRecords bounds a call's history, so a call that runs for hours
// (a looping Redirect, a chatty status callback) does not grow without end.
const maxCallRecords = 200

func (c *call) recordLocked(rec WebhookRecord) {
	c.webhooks = append(c.webhooks, rec)
	if len(c.webhooks) > maxCallRecords {
		c.webhooks = append([]WebhookRecord(nil), c.webhooks[len(c.webhooks)-maxCallRecords:]...)
	}
}

// PlaceInbound simulates a customer dialling the account's number; to may
// be empty or that number, nothing else, since no other number has a voice
// URL. The call fetches the number's voice URL.
func (s *Sim) PlaceInbound(from, to, callerName string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to == "" {
		to = s.cfg.Number
	}
	if to != s.cfg.Number {
		return "", errNotOurNumber
	}
	if s.cfg.VoiceURL == "" {
		return "", errNoVoiceURL
	}
	c := s.newCallLocked(DirectionInbound, from, to)
	c.callerName = callerName
	c.statusCallback = s.cfg.VoiceStatusCallback
	c.statusCallbackMethod = "POST"
	c.source = callSource{url: s.cfg.VoiceURL, method: s.cfg.VoiceMethod, fallbackURL: s.cfg.VoiceFallbackURL, fallbackMethod: "POST"}
	// An inbound call rings the number while Twilio fetches its TwiML.
	c.status = StatusRinging
	s.changedLocked()
	s.runLocked(c, c.source, nil)
	return c.sid, nil
}

// Hangup ends any call as if its party hung up.
func (s *Sim) Hangup(sid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[sid]
	if !ok {
		return errUnknownCall
	}
	if c.ended() {
		return errCallEnded
	}
	if !c.answered() && c.direction != DirectionInbound {
		s.ringEndLocked(c, StatusCanceled)
		return nil
	}
	s.endCallLocked(c, StatusCompleted, "hung up")
	return nil
}

// Accept answers a call ringing a simulated browser phone.
func (s *Sim) Accept(sid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.ringingClientLocked(sid)
	if err != nil {
		return err
	}
	s.answerLocked(c)
	return nil
}

// Reject declines a call ringing a simulated browser phone; Twilio reports
// a rejected client call as busy.
func (s *Sim) Reject(sid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.ringingClientLocked(sid)
	if err != nil {
		return err
	}
	s.ringEndLocked(c, StatusBusy)
	return nil
}

// RingOut stops a ringing call as if its ring timeout had passed, so tests
// need not wait for the timer.
func (s *Sim) RingOut(sid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[sid]
	if !ok {
		return errUnknownCall
	}
	if c.status != StatusRinging || c.direction == DirectionInbound {
		return errNotRinging
	}
	s.ringEndLocked(c, StatusNoAnswer)
	return nil
}

func (s *Sim) ringingClientLocked(sid string) (*call, error) {
	c, ok := s.calls[sid]
	if !ok {
		return nil, errUnknownCall
	}
	if _, isClient := c.clientIdentity(); !isClient {
		return nil, errNotAPhone
	}
	if c.status != StatusRinging {
		return nil, errNotRinging
	}
	return c, nil
}

// SetNumberBehavior sets what a simulated phone number does when called.
func (s *Sim) SetNumberBehavior(number string, b NumberBehavior) error {
	switch b {
	case NumberAnswers, NumberBusy, NumberNoAnswer, NumberFails:
	default:
		return errBadBehavior
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numbers[number] = b
	s.changedLocked()
	return nil
}
