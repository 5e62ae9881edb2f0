package twiliosim

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Conference statuses.
const (
	ConfInit       = "init"
	ConfInProgress = "in-progress"
	ConfCompleted  = "completed"
)

// Why a participant left (ReasonParticipantLeft) and why a conference
// ended (ReasonConferenceEnded), in Twilio's words.
const (
	leftHungUp        = "participant_hung_up"
	leftUpdatedViaAPI = "participant_updated_via_api"
	leftEndedViaAPI   = "conference_ended_via_api"
	leftModerator     = "moderator_ended_conference"
	leftAddFailed     = "participant_add_failed"

	endedViaAPI          = "conference-ended-via-api"
	endedByEndOnExitLeft = "participant-with-end-conference-on-exit-left"
	endedByEndOnExitKick = "participant-with-end-conference-on-exit-kicked"
	endedLastLeft        = "last-participant-left"
	endedLastKicked      = "last-participant-kicked"
)

// leaveKind distinguishes the ways a participant leaves; several share a
// Twilio reason but differ in what the call does next.
type leaveKind int

const (
	leaveHungUp     leaveKind = iota // the participant's call ended
	leaveKicked                      // Participants API delete
	leaveRedirected                  // the call was given new TwiML
	leaveConfEnded                   // the conference ended around them
	leaveAddFailed                   // wait music could not be fetched, and the like
)

// participantSpec is how a call asks to join: from <Conference> attributes
// or from Participants API parameters.
type participantSpec struct {
	label          string
	startOnEnter   bool
	endOnExit      bool
	muted          bool
	beep           string
	waitURL        string
	waitURLSet     bool
	waitMethod     string
	maxPart        int
	coach          string
	coaching       bool
	statusCallback string
	statusMethod   string
	statusEvents   []string
}

type participant struct {
	conf *conference
	call *call
	participantSpec
	hold       bool
	holdURL    string
	holdMethod string
	status     string // queued, ringing, connected, complete, failed
	created    time.Time
	updated    time.Time
	left       chan struct{}
	viaAPI     bool // created by the Participants API: nothing to return to after leaving
	media      context.CancelFunc
}

type conference struct {
	sid, name, status string
	created, updated  time.Time
	started           bool
	everJoined        bool
	parts             []*participant
	pending           []*participant
	maxParticipants   int
	callbackFixed     bool
	statusCallback    string
	statusMethod      string
	statusEvents      map[string]bool
	seq               int
	reasonEnded       string
	callSIDEnding     string
	labelEnding       string
}

// liveConferenceLocked returns the conference of that name that has not
// ended, creating it: there is at most one live conference per name, and
// each new one gets a new ConferenceSid.
func (s *Sim) liveConferenceLocked(name string) *conference {
	if conf := s.liveConfs[name]; conf != nil {
		return conf
	}
	now := time.Now()
	conf := &conference{sid: newSID("CF"), name: name, status: ConfInit, created: now, updated: now, maxParticipants: 250}
	s.confs[conf.sid] = conf
	s.liveConfs[name] = conf
	s.confOrder = append(s.confOrder, conf)
	return conf
}

// fixCallbacksLocked applies the first participant's conference callback
// settings; Twilio ignores everyone else's.
func (conf *conference) fixCallbacksLocked(spec participantSpec) {
	if conf.callbackFixed {
		return
	}
	conf.callbackFixed = true
	conf.statusCallback = spec.statusCallback
	conf.statusMethod = orPost(spec.statusMethod)
	conf.statusEvents = eventSet(spec.statusEvents)
	if spec.maxPart > 0 {
		conf.maxParticipants = spec.maxPart
	}
}

func (conf *conference) labelTaken(label string, except *participant) bool {
	if label == "" {
		return false
	}
	for _, list := range [][]*participant{conf.parts, conf.pending} {
		for _, p := range list {
			if p != except && p.label == label {
				return true
			}
		}
	}
	return false
}

func (conf *conference) findParticipant(ref string) *participant {
	for _, list := range [][]*participant{conf.parts, conf.pending} {
		for _, p := range list {
			if p.call.sid == ref || (p.label != "" && p.label == ref) {
				return p
			}
		}
	}
	return nil
}

// joinLocked puts a call that executed <Dial><Conference> into the
// conference. A failure means the call goes on with the verb after <Dial>.
func (s *Sim) joinLocked(c *call, name string, spec participantSpec) (*participant, *hookFailure) {
	conf := s.liveConferenceLocked(name)
	if conf.labelTaken(spec.label, nil) {
		return nil, &hookFailure{Code: 16025, Message: "participant label " + strconv.Quote(spec.label) + " is already in use in conference " + name}
	}
	conf.fixCallbacksLocked(spec)
	if len(conf.parts)+len(conf.pending) >= conf.maxParticipants {
		return nil, &hookFailure{Code: 16020, Message: "conference " + name + " is full (maxParticipants " + strconv.Itoa(conf.maxParticipants) + ")"}
	}
	now := time.Now()
	p := &participant{conf: conf, call: c, participantSpec: spec, created: now}
	s.connectLocked(p)
	return p, nil
}

// connectLocked makes p a connected participant and applies the start rule.
func (s *Sim) connectLocked(p *participant) {
	conf := p.conf
	now := time.Now()
	p.status = "connected"
	p.updated = now
	p.left = make(chan struct{})
	p.call.part = p
	conf.parts = append(conf.parts, p)
	conf.everJoined = true
	conf.updated = now
	s.confEventLocked(conf, "participant-join", p, nil)
	wasStarted := conf.started
	// Start first, so a participant whose arrival starts the conference
	// never has its waitUrl requested.
	s.maybeStartLocked(conf)
	switch {
	case !conf.started:
		s.waitMusicLocked(p)
	case wasStarted:
		p.call.hearing = "conference " + conf.name
	}
	s.changedLocked()
}

// maybeStartLocked starts the conference once two participants are in and
// at least one of them has startConferenceOnEnter.
func (s *Sim) maybeStartLocked(conf *conference) {
	if conf.started || len(conf.parts) < 2 {
		return
	}
	moderator := false
	for _, p := range conf.parts {
		moderator = moderator || p.startOnEnter
	}
	if !moderator {
		return
	}
	conf.started = true
	conf.status = ConfInProgress
	conf.updated = time.Now()
	s.confEventLocked(conf, "conference-start", nil, nil)
	for _, p := range conf.parts {
		if !p.hold {
			s.stopMediaLocked(p)
			p.call.hearing = "conference " + conf.name
		}
	}
}

// leaveLocked takes p out of its conference and applies the end rules.
func (s *Sim) leaveLocked(p *participant, kind leaveKind) {
	conf := p.conf
	if p.status != "connected" {
		s.dropPendingLocked(p, StatusCanceled)
		return
	}
	for i, q := range conf.parts {
		if q == p {
			conf.parts = append(conf.parts[:i], conf.parts[i+1:]...)
			break
		}
	}
	s.stopMediaLocked(p)
	p.status = "complete"
	p.updated = time.Now()
	p.call.part = nil
	if !p.call.ended() {
		p.call.hearing = ""
	}
	reason := map[leaveKind]string{
		leaveHungUp: leftHungUp, leaveKicked: leftUpdatedViaAPI, leaveRedirected: leftUpdatedViaAPI,
		leaveAddFailed: leftAddFailed,
	}[kind]
	if kind == leaveConfEnded {
		reason = leftEndedViaAPI
		if conf.reasonEnded == endedByEndOnExitLeft || conf.reasonEnded == endedByEndOnExitKick {
			reason = leftModerator
		}
	}
	s.confEventLocked(conf, "participant-leave", p, url.Values{
		"ReasonParticipantLeft": {reason},
		"ParticipantCallStatus": {p.call.status},
	})
	close(p.left)
	if p.viaAPI && kind != leaveRedirected && !p.call.ended() {
		// A participant added through the API has no TwiML to go back to.
		s.endCallLocked(p.call, StatusCompleted, "left the conference")
	}
	if conf.status == ConfCompleted {
		return
	}
	kicked := kind == leaveKicked
	switch {
	case p.endOnExit && kicked:
		s.endConferenceLocked(conf, endedByEndOnExitKick, p)
	case p.endOnExit:
		s.endConferenceLocked(conf, endedByEndOnExitLeft, p)
	case len(conf.parts) == 0 && kicked:
		s.endConferenceLocked(conf, endedLastKicked, p)
	case len(conf.parts) == 0:
		s.endConferenceLocked(conf, endedLastLeft, p)
	}
	s.changedLocked()
}

// dropPendingLocked removes a participant whose call never connected.
func (s *Sim) dropPendingLocked(p *participant, callStatus string) {
	conf := p.conf
	found := false
	for i, q := range conf.pending {
		if q == p {
			conf.pending = append(conf.pending[:i], conf.pending[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		return
	}
	p.status = "failed"
	p.updated = time.Now()
	if !p.call.ended() {
		s.ringEndLocked(p.call, StatusCanceled)
	}
	// The call has ended by now, and its own status says why (no-answer,
	// busy, failed, canceled); callStatus only covers a call that somehow
	// could not be ended.
	if p.call.ended() {
		callStatus = p.call.status
	}
	s.confEventLocked(conf, "participant-leave", p, url.Values{
		"ReasonParticipantLeft": {leftAddFailed},
		"ParticipantCallStatus": {callStatus},
	})
	if conf.status != ConfCompleted && len(conf.parts) == 0 && len(conf.pending) == 0 {
		if conf.everJoined {
			s.endConferenceLocked(conf, endedLastLeft, nil)
		} else {
			// Nobody ever joined: the conference simply never happened.
			conf.status = ConfCompleted
			conf.updated = time.Now()
			delete(s.liveConfs, conf.name)
		}
	}
	s.changedLocked()
}

// endConferenceLocked ends the conference: everyone still in it drops out
// and goes on with their own TwiML, and calls still ringing into it stop.
func (s *Sim) endConferenceLocked(conf *conference, reason string, ending *participant) {
	if conf.status == ConfCompleted {
		return
	}
	conf.status = ConfCompleted
	conf.reasonEnded = reason
	conf.updated = time.Now()
	if ending != nil {
		conf.callSIDEnding = ending.call.sid
		conf.labelEnding = ending.label
	}
	if s.liveConfs[conf.name] == conf {
		delete(s.liveConfs, conf.name)
	}
	for len(conf.parts) > 0 {
		s.leaveLocked(conf.parts[0], leaveConfEnded)
	}
	for len(conf.pending) > 0 {
		s.dropPendingLocked(conf.pending[0], StatusCanceled)
	}
	extra := url.Values{"ReasonConferenceEnded": {reason}, "Reason": {reasonText(reason)}}
	if conf.callSIDEnding != "" {
		extra.Set("CallSidEndingConference", conf.callSIDEnding)
	}
	if conf.labelEnding != "" {
		extra.Set("ParticipantLabelEndingConference", conf.labelEnding)
	}
	s.confEventLocked(conf, "conference-end", nil, extra)
	s.changedLocked()
}

func reasonText(reason string) string {
	switch reason {
	case endedViaAPI:
		return "Conference ended via API"
	case endedByEndOnExitLeft:
		return "Participant with endConferenceOnExit left the conference"
	case endedByEndOnExitKick:
		return "Participant with endConferenceOnExit was removed from the conference"
	case endedLastKicked:
		return "Last participant was removed from the conference"
	default:
		return "Last participant left the conference"
	}
}

// confEventLocked queues a conference status callback if the conference
// subscribed to that kind of event.
func (s *Sim) confEventLocked(conf *conference, event string, p *participant, extra url.Values) {
	category := map[string]string{
		"conference-start": "start", "conference-end": "end",
		"participant-join": "join", "participant-leave": "leave",
		"participant-mute": "mute", "participant-unmute": "mute",
		"participant-hold": "hold", "participant-unhold": "hold",
		"participant-modify": "modify",
		"announcement-end":   "announcement", "announcement-fail": "announcement",
	}[event]
	if conf.statusCallback == "" || !conf.statusEvents[category] {
		return
	}
	conf.seq++
	v := url.Values{
		"AccountSid":          {s.cfg.AccountSID},
		"ConferenceSid":       {conf.sid},
		"FriendlyName":        {conf.name},
		"SequenceNumber":      {strconv.Itoa(conf.seq)},
		"Timestamp":           {rfc2822(time.Now())},
		"StatusCallbackEvent": {event},
	}
	callSID := ""
	if p != nil {
		callSID = p.call.sid
		v.Set("CallSid", p.call.sid)
		v.Set("Muted", strconv.FormatBool(p.muted))
		v.Set("Hold", strconv.FormatBool(p.hold))
		v.Set("Coaching", strconv.FormatBool(p.coaching))
		v.Set("EndConferenceOnExit", strconv.FormatBool(p.endOnExit))
		v.Set("StartConferenceOnEnter", strconv.FormatBool(p.startOnEnter))
		if p.label != "" {
			v.Set("ParticipantLabel", p.label)
		}
		if p.coach != "" {
			v.Set("CallSidToCoach", p.coach)
		}
	}
	for k, vs := range extra {
		v[k] = vs
	}
	s.hooks.send(conf.sid, hookJob{sim: s, callSID: callSID, method: conf.statusMethod, url: conf.statusCallback, params: v})
}

// waitMusicLocked plays the participant's waitUrl while the conference has
// not started: Twilio's default music when none was given, silence for "".
func (s *Sim) waitMusicLocked(p *participant) {
	switch {
	case !p.waitURLSet:
		s.stopMediaLocked(p)
		p.call.hearing = "default wait music (looping)"
	case p.waitURL == "":
		s.stopMediaLocked(p)
		p.call.hearing = "silence"
	default:
		s.mediaLocked(p, p.waitURL, orPost(p.waitMethod), true)
	}
}

// holdMusicLocked plays the holdUrl (fetched with GET unless told
// otherwise), or Twilio's default hold music.
func (s *Sim) holdMusicLocked(p *participant) {
	if p.holdURL == "" {
		s.stopMediaLocked(p)
		p.call.hearing = "default hold music (looping)"
		return
	}
	method := p.holdMethod
	if method == "" {
		method = "GET"
	}
	s.mediaLocked(p, p.holdURL, method, false)
}

func (s *Sim) stopMediaLocked(p *participant) {
	if p.media != nil {
		p.media()
		p.media = nil
	}
}

// mediaLocked fetches and plays a wait or hold document on the
// participant's call. Only <Play>, <Say>, <Pause> and <Redirect> are allowed
// there. A wait document that ends is requested again, so the waitUrl plays
// for as long as the participant waits (the music "loops"); a hold document
// that ends leaves the participant in silence.
//
// Two guards keep a document from being requested in a tight loop: a wait
// document that played nothing (empty, or nothing but verbs that are not
// allowed) is not requested again, and a chain of more than maxRedirects
// documents that played nothing ends in silence. A failure before anything
// could be fetched means Twilio cannot establish the conference for a
// waiting caller, who goes on with the TwiML after <Dial>; a failure later
// on is logged and leaves silence.
func (s *Sim) mediaLocked(p *participant, rawURL, method string, isWait bool) {
	s.stopMediaLocked(p)
	ctx, cancel := context.WithCancel(s.ctx)
	p.media = cancel
	c := p.call
	c.hearing = "fetching " + rawURL
	s.goTracked(func() {
		target, m := rawURL, method
		fetched := false
		quiet := 0 // documents in a row that played nothing
		for ctx.Err() == nil {
			doc, failure := s.fetchTwiML(ctx, c, m, target, nil)
			if ctx.Err() != nil {
				return
			}
			if failure != nil {
				s.mu.Lock()
				s.notifyLocked(c.sid, failure)
				if isWait && !fetched && p.status == "connected" && ctx.Err() == nil {
					s.leaveLocked(p, leaveAddFailed)
				}
				s.mu.Unlock()
				if fetched {
					break
				}
				return
			}
			fetched = true
			next, played := s.playMedia(ctx, c, doc, target)
			if ctx.Err() != nil {
				return
			}
			if played {
				quiet = 0
			} else {
				quiet++
			}
			switch {
			case quiet > maxRedirects:
				next = ""
			case next != "":
				m = "POST"
			case isWait && played:
				next, m = rawURL, method
			}
			if next == "" {
				break
			}
			target = next
		}
		if ctx.Err() == nil {
			s.setHearing(c, "silence")
		}
	})
}

// playMedia plays an audio-only document. It returns the URL a <Redirect>
// points to ("" at the end of the document or when the call moved on), and
// whether anything was played.
func (s *Sim) playMedia(ctx context.Context, c *call, doc *twimlDoc, docURL string) (next string, played bool) {
	for _, verb := range doc.Verbs {
		switch v := verb.(type) {
		case twimlSay:
			played = true
			if !s.playLoop(ctx, c, "say: "+v.Text, sayLength(v.Text), v.Loop) {
				return "", played
			}
		case twimlPlay:
			played = true
			if !s.playLoop(ctx, c, "play: "+resolve(docURL, v.URL), playPerLoop, v.Loop) {
				return "", played
			}
		case twimlPause:
			played = true
			if !s.playFor(ctx, c, "pause", repeat(time.Second, v.Length)) {
				return "", played
			}
		case twimlRedirect:
			if v.URL == "" {
				return docURL, played
			}
			return resolve(docURL, v.URL), played
		default:
			// Twilio's own code for this: "Invalid Verb used in waitUrl,
			// holdUrl, or announceUrl TwiML".
			s.notifyLocking(c.sid, &hookFailure{Code: 13238, Message: "only <Play>, <Say>, <Pause> and <Redirect> are allowed in wait and hold music", URL: docURL})
		}
	}
	return "", played
}
