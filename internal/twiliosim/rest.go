package twiliosim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/twiml"
)

// apiError is Twilio's REST error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func newAPIError(status, code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code), Status: status}
}

func notFound(r *http.Request) *apiError {
	return newAPIError(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
}

func invalidParam(name, value string) *apiError {
	return newAPIError(http.StatusBadRequest, 20001, "Invalid value %q for parameter %s", value, name)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, e)
}

// invalidTwiml refuses a Twiml parameter with the code Twilio would log
// for the document: 12100 when it is not well-formed, 12200 when it is
// not valid TwiML.
func invalidTwiml(err error) *apiError {
	code := twiml.CodeDocumentParse
	var te *twiml.Error
	if errors.As(err, &te) {
		code = te.Code
	}
	return newAPIError(http.StatusBadRequest, code, "Twiml is not valid TwiML: %v", err)
}

// restReply is a REST operation's successful answer; a nil body sends the
// status alone (204 after a delete).
type restReply struct {
	status int
	body   any
}

// restHandler adapts a REST operation: authentication, the account in the
// path, form parsing, and Twilio's error body for anything that goes wrong.
// Operations return their answer instead of writing it, so the answer is
// written after they have released Sim.mu: a client slow to read must never
// stall the simulator.
func (s *Sim) restHandler(allowed []string, op func(r *http.Request) (restReply, *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
			writeAPIError(w, newAPIError(http.StatusUnauthorized, 20003, "Authenticate"))
			return
		}
		if r.PathValue("account") != s.cfg.AccountSID {
			writeAPIError(w, notFound(r))
			return
		}
		ok := false
		for _, m := range allowed {
			ok = ok || r.Method == m
		}
		if !ok {
			writeAPIError(w, newAPIError(http.StatusMethodNotAllowed, 20004, "Method not allowed"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			writeAPIError(w, newAPIError(http.StatusBadRequest, 20001, "Could not parse the request body: %v", err))
			return
		}
		rep, e := op(r)
		switch {
		case e != nil:
			writeAPIError(w, e)
		case rep.body == nil:
			w.WriteHeader(rep.status)
		default:
			writeJSON(w, rep.status, rep.body)
		}
	}
}

func (s *Sim) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	eq := func(a, b string) bool { return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	s.mu.Lock()
	defer s.mu.Unlock()
	return (eq(user, s.cfg.AccountSID) && eq(pass, s.cfg.AuthToken)) ||
		(eq(user, s.cfg.APIKey) && eq(pass, s.cfg.APISecret))
}

// registerREST mounts Twilio's REST paths.
func (s *Sim) registerREST(mux *http.ServeMux) {
	const acct = "/" + APIVersion + "/Accounts/{account}"
	get, post, del := http.MethodGet, http.MethodPost, http.MethodDelete
	mux.Handle(acct+"/Calls.json", s.restHandler([]string{get, post}, s.callsCollection))
	mux.Handle(acct+"/Calls/{file}", s.restHandler([]string{get, post, del}, s.callInstance))
	mux.Handle(acct+"/Conferences.json", s.restHandler([]string{get}, s.listConferences))
	mux.Handle(acct+"/Conferences/{file}", s.restHandler([]string{get, post}, s.conferenceInstance))
	mux.Handle(acct+"/Conferences/{conf}/Participants.json", s.restHandler([]string{get, post}, s.participantsCollection))
	mux.Handle(acct+"/Conferences/{conf}/Participants/{file}", s.restHandler([]string{get, post, del}, s.participantInstance))
	mux.Handle("/"+APIVersion+"/", s.restHandler([]string{get, post, del}, func(r *http.Request) (restReply, *apiError) {
		return restReply{}, notFound(r)
	}))
}

// sidFromFile reads "CA123.json" out of a path segment.
func sidFromFile(r *http.Request) (string, bool) {
	return strings.CutSuffix(r.PathValue("file"), ".json")
}

var (
	e164Pattern     = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)
	identityPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,256}$`)
)

// validParty accepts what Twilio can call or present: an E.164 number or a
// browser phone (client:identity).
func validParty(v string) bool {
	if id, ok := strings.CutPrefix(v, "client:"); ok {
		return identityPattern.MatchString(id)
	}
	return e164Pattern.MatchString(v)
}

// checkParties validates the To and From of a new call or participant with
// Twilio's error codes.
func checkParties(to, from string) *apiError {
	switch {
	case to == "":
		return newAPIError(http.StatusBadRequest, 21201, "No 'To' number is specified")
	case !validParty(to):
		return newAPIError(http.StatusBadRequest, 21211, "The phone number you are attempting to call, %s, is not valid.", to)
	case from == "":
		return newAPIError(http.StatusBadRequest, 21213, "No 'From' number is specified")
	case !validParty(from):
		return newAPIError(http.StatusBadRequest, 21212, "Invalid From Number (caller ID): %s", from)
	}
	return nil
}

var callSIDPattern = regexp.MustCompile(`^CA[0-9a-f]{32}$`)

// validLabel applies Twilio's rules for a participant label (error 16023):
// at most 128 characters, not a CallSid (it would be ambiguous in the
// Participant's URL, which takes either) and no "/".
func validLabel(label string) bool {
	return len(label) <= 128 && !callSIDPattern.MatchString(label) && !strings.Contains(label, "/")
}

func validWebURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// form reads typed parameters, remembering the first invalid one.
type form struct {
	values url.Values
	err    *apiError
}

func (f *form) has(name string) bool   { _, ok := f.values[name]; return ok }
func (f *form) str(name string) string { return strings.TrimSpace(f.values.Get(name)) }

func (f *form) boolean(name string, def bool) bool {
	v := f.str(name)
	if v == "" {
		return def
	}
	switch strings.ToLower(v) {
	case "true":
		return true
	case "false":
		return false
	}
	if f.err == nil {
		f.err = invalidParam(name, v)
	}
	return def
}

func (f *form) integer(name string, def, min, max int) int {
	v := f.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		if f.err == nil {
			f.err = invalidParam(name, v)
		}
		return def
	}
	return n
}

func (f *form) method(name string) string {
	v := strings.ToUpper(f.str(name))
	switch v {
	case "":
		return ""
	case http.MethodGet, http.MethodPost:
		return v
	}
	if f.err == nil {
		f.err = invalidParam(name, f.str(name))
	}
	return ""
}

func (f *form) webURL(name string) string {
	v := f.str(name)
	if v != "" && !validWebURL(v) && f.err == nil {
		f.err = newAPIError(http.StatusBadRequest, 21205, "%s is not a valid URL: %s", name, v)
	}
	return v
}

// events reads a repeated or space-separated event list, checking each
// against the allowed set.
func (f *form) events(name string, allowed ...string) []string {
	var out []string
	for _, v := range f.values[name] {
		for _, e := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
			e = strings.ToLower(e)
			ok := false
			for _, a := range allowed {
				ok = ok || a == e
			}
			if !ok && f.err == nil {
				f.err = invalidParam(name, e)
			}
			out = append(out, e)
		}
	}
	return out
}

// page cuts a list to the requested page and builds Twilio's envelope.
func page[T any](r *http.Request, key string, items []T) (map[string]any, *apiError) {
	f := &form{values: r.URL.Query()}
	size := f.integer("PageSize", 50, 1, 1000)
	num := f.integer("Page", 0, 0, 1<<30)
	if f.err != nil {
		return nil, f.err
	}
	if items == nil {
		// Twilio sends an empty page as [], never null.
		items = []T{}
	}
	start := num * size
	if start > len(items) {
		start = len(items)
	}
	end := min(start+size, len(items))
	uri := func(p int) string {
		q := url.Values{}
		for k, vs := range r.URL.Query() {
			if k != "Page" && k != "PageSize" && k != "PageToken" {
				q[k] = vs
			}
		}
		q.Set("PageSize", strconv.Itoa(size))
		q.Set("Page", strconv.Itoa(p))
		if p > 0 {
			q.Set("PageToken", "PA"+strconv.Itoa(p*size))
		}
		return r.URL.Path + "?" + q.Encode()
	}
	env := map[string]any{
		key:                 items[start:end],
		"first_page_uri":    uri(0),
		"uri":               uri(num),
		"page":              num,
		"page_size":         size,
		"start":             start,
		"end":               max(end-1, start),
		"next_page_uri":     nil,
		"previous_page_uri": nil,
	}
	if end < len(items) {
		env["next_page_uri"] = uri(num + 1)
	}
	if num > 0 {
		env["previous_page_uri"] = uri(num - 1)
	}
	return env, nil
}

var callProgressEvents = []string{"initiated", "ringing", "answered", "completed"}

// callsCollection lists calls (GET) or places an outbound call (POST).
func (s *Sim) callsCollection(r *http.Request) (restReply, *apiError) {
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		s.mu.Lock()
		var out []callResource
		for i := len(s.callOrder) - 1; i >= 0; i-- {
			c := s.callOrder[i]
			if (q.Get("To") != "" && c.to != q.Get("To")) || (q.Get("From") != "" && c.from != q.Get("From")) ||
				(q.Get("Status") != "" && c.status != q.Get("Status")) || (q.Get("ParentCallSid") != "" && c.parentSID != q.Get("ParentCallSid")) {
				continue
			}
			out = append(out, s.callJSONLocked(c))
		}
		s.mu.Unlock()
		env, e := page(r, "calls", out)
		if e != nil {
			return restReply{}, e
		}
		return restReply{http.StatusOK, env}, nil
	}

	f := &form{values: r.PostForm}
	to, from := f.str("To"), f.str("From")
	if e := checkParties(to, from); e != nil {
		return restReply{}, e
	}
	src := callSource{url: f.webURL("Url"), method: orPost(f.method("Method")), fallbackURL: f.webURL("FallbackUrl"), fallbackMethod: orPost(f.method("FallbackMethod")), twiml: f.values.Get("Twiml")}
	cb := f.webURL("StatusCallback")
	cbMethod := orPost(f.method("StatusCallbackMethod"))
	events := f.events("StatusCallbackEvent", callProgressEvents...)
	timeout := f.integer("Timeout", 60, 1, 600)
	if f.err != nil {
		return restReply{}, f.err
	}
	if src.url == "" && src.twiml == "" {
		return restReply{}, newAPIError(http.StatusBadRequest, 21205, "Url parameter is required.")
	}
	if src.url == "" {
		// Twilio ignores Twiml when Url is also given; it checks Twiml otherwise.
		if _, err := twiml.Parse([]byte(src.twiml)); err != nil {
			return restReply{}, invalidTwiml(err)
		}
	} else {
		src.twiml = ""
	}

	s.mu.Lock()
	c := s.newCallLocked(DirectionOutboundAPI, from, to)
	c.source = src
	c.statusCallback, c.statusCallbackMethod, c.statusEvents = cb, cbMethod, eventSet(events)
	c.ringTimeout = time.Duration(timeout) * time.Second
	c.onAnswer = func() { s.runLocked(c, c.source, nil) }
	body := s.callJSONLocked(c)
	s.changedLocked()
	s.mu.Unlock()
	s.ringSoon(c)
	return restReply{http.StatusCreated, body}, nil
}

// ringSoon starts ringing after the create request has been answered, so
// the caller sees the call "queued" as on Twilio.
func (s *Sim) ringSoon(c *call) {
	s.goTracked(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.status == StatusQueued && s.ctx.Err() == nil {
			s.ringLocked(c)
		}
	})
}

// callInstance fetches, updates (redirect, hang up) or deletes one call.
func (s *Sim) callInstance(r *http.Request) (restReply, *apiError) {
	sid, ok := sidFromFile(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[sid]
	if !ok || c == nil {
		return restReply{}, notFound(r)
	}
	switch r.Method {
	case http.MethodGet:
		return restReply{http.StatusOK, s.callJSONLocked(c)}, nil
	case http.MethodDelete:
		if !c.ended() {
			return restReply{}, newAPIError(http.StatusBadRequest, 21220, "Call is not completed. Cannot delete.")
		}
		delete(s.calls, sid)
		for i, x := range s.callOrder {
			if x == c {
				s.callOrder = append(s.callOrder[:i], s.callOrder[i+1:]...)
				break
			}
		}
		s.changedLocked()
		return restReply{status: http.StatusNoContent}, nil
	}

	f := &form{values: r.PostForm}
	newURL, twimlText := f.webURL("Url"), f.values.Get("Twiml")
	method := orPost(f.method("Method"))
	status := f.str("Status")
	fallback, fallbackMethod := f.webURL("FallbackUrl"), orPost(f.method("FallbackMethod"))
	cb, cbMethod := f.webURL("StatusCallback"), f.method("StatusCallbackMethod")
	if f.err != nil {
		return restReply{}, f.err
	}
	if newURL != "" && twimlText != "" {
		return restReply{}, newAPIError(http.StatusBadRequest, 20001, "Url and Twiml are mutually exclusive")
	}
	if status != "" && status != StatusCompleted && status != StatusCanceled {
		return restReply{}, invalidParam("Status", status)
	}
	if twimlText != "" {
		if _, err := twiml.Parse([]byte(twimlText)); err != nil {
			return restReply{}, invalidTwiml(err)
		}
	}
	if c.ended() {
		return restReply{}, newAPIError(http.StatusBadRequest, 21220, "Call is not in-progress. Cannot redirect.")
	}
	if cb != "" {
		c.statusCallback = cb
	}
	if cbMethod != "" {
		c.statusCallbackMethod = cbMethod
	}
	switch {
	case status == StatusCanceled:
		// Canceling only stops calls that are not yet connected.
		if !c.answered() {
			s.hangUpUnansweredLocked(c)
		}
	case status == StatusCompleted:
		if c.answered() {
			s.endCallLocked(c, StatusCompleted, "completed via the REST API")
		} else {
			s.hangUpUnansweredLocked(c)
		}
	case newURL != "" || twimlText != "":
		s.interruptLocked(c)
		c.source = callSource{url: newURL, method: method, fallbackURL: fallback, fallbackMethod: fallbackMethod, twiml: twimlText}
		if c.answered() || c.direction == DirectionInbound {
			s.runLocked(c, c.source, nil)
		}
		c.logLocked("redirected via the REST API")
	}
	s.changedLocked()
	return restReply{http.StatusOK, s.callJSONLocked(c)}, nil
}

func (s *Sim) hangUpUnansweredLocked(c *call) {
	if c.direction == DirectionInbound {
		s.endCallLocked(c, StatusCanceled, "canceled via the REST API")
		return
	}
	s.ringEndLocked(c, StatusCanceled)
}

// interruptLocked stops what a call is doing before it is given new TwiML:
// it leaves its conference, stops dialing and drops its bridged party.
func (s *Sim) interruptLocked(c *call) {
	if p := c.part; p != nil {
		s.leaveLocked(p, leaveRedirected)
	}
	for _, child := range c.dialing {
		s.ringEndLocked(child, StatusCanceled)
	}
	c.dialing = nil
	if peer := c.bridge; peer != nil {
		c.bridge, peer.bridge = nil, nil
		c.onBridgeEnd = nil
		if peer.parentSID == c.sid {
			s.endCallLocked(peer, StatusCompleted, "the other party was redirected")
		} else if peer.onBridgeEnd != nil {
			peer.onBridgeEnd()
		}
	}
}

// listConferences lists conferences, newest first, filtered as Twilio does.
func (s *Sim) listConferences(r *http.Request) (restReply, *apiError) {
	q := r.URL.Query()
	status := q.Get("Status")
	if status != "" && status != ConfInit && status != ConfInProgress && status != ConfCompleted {
		return restReply{}, invalidParam("Status", status)
	}
	s.mu.Lock()
	var out []conferenceResource
	for i := len(s.confOrder) - 1; i >= 0; i-- {
		conf := s.confOrder[i]
		if (q.Get("FriendlyName") != "" && conf.name != q.Get("FriendlyName")) || (status != "" && conf.status != status) {
			continue
		}
		out = append(out, s.conferenceJSONLocked(conf))
	}
	s.mu.Unlock()
	env, e := page(r, "conferences", out)
	if e != nil {
		return restReply{}, e
	}
	return restReply{http.StatusOK, env}, nil
}

// conferenceInstance fetches a conference or updates it: end it, or play an
// announcement to everyone in it.
func (s *Sim) conferenceInstance(r *http.Request) (restReply, *apiError) {
	sid, ok := sidFromFile(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	conf := s.confs[sid]
	if !ok || conf == nil {
		return restReply{}, notFound(r)
	}
	if r.Method == http.MethodPost {
		f := &form{values: r.PostForm}
		status := f.str("Status")
		announce := f.webURL("AnnounceUrl")
		announceMethod := orPost(f.method("AnnounceMethod"))
		if f.err != nil {
			return restReply{}, f.err
		}
		if status != "" && status != ConfCompleted {
			return restReply{}, invalidParam("Status", status)
		}
		if announce != "" && conf.status != ConfCompleted {
			for _, p := range conf.parts {
				s.announceLocked(p, announce, announceMethod)
			}
		}
		if status == ConfCompleted {
			s.endConferenceLocked(conf, endedViaAPI, nil)
		}
	}
	return restReply{http.StatusOK, s.conferenceJSONLocked(conf)}, nil
}

// conferenceForParticipantsLocked finds the conference a Participants
// request is about, by ConferenceSid. Creating a participant may instead
// name the conference by FriendlyName: then the live conference of that
// name is returned, or nil and the name when the new participant is to
// create it. Nothing is created here, so a request refused later leaves no
// empty conference behind.
func (s *Sim) conferenceForParticipantsLocked(r *http.Request, create bool) (*conference, string, *apiError) {
	ref := r.PathValue("conf")
	if conf := s.confs[ref]; conf != nil {
		if create && conf.status == ConfCompleted {
			// The Participants resource covers only conferences that have
			// not completed; a completed one has none to add to, which
			// Twilio answers as a resource that does not exist.
			return nil, "", notFound(r)
		}
		return conf, conf.name, nil
	}
	if create && ref != "" && !strings.HasPrefix(ref, "CF") {
		if len(ref) > 128 {
			return nil, "", invalidParam("ConferenceSid", ref)
		}
		return s.liveConfs[ref], ref, nil
	}
	return nil, "", notFound(r)
}

var conferenceEvents = []string{"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"}

// participantsCollection lists participants or adds one by calling it.
func (s *Sim) participantsCollection(r *http.Request) (restReply, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodGet {
		conf, _, e := s.conferenceForParticipantsLocked(r, false)
		if e != nil {
			return restReply{}, e
		}
		f := &form{values: r.URL.Query()}
		muted, hold, coaching := f.has("Muted"), f.has("Hold"), f.has("Coaching")
		wantMuted, wantHold, wantCoaching := f.boolean("Muted", false), f.boolean("Hold", false), f.boolean("Coaching", false)
		if f.err != nil {
			return restReply{}, f.err
		}
		var out []participantResource
		for _, list := range [][]*participant{conf.parts, conf.pending} {
			for _, p := range list {
				if (muted && p.muted != wantMuted) || (hold && p.hold != wantHold) || (coaching && p.coaching != wantCoaching) {
					continue
				}
				out = append(out, s.participantJSONLocked(p))
			}
		}
		env, e := page(r, "participants", out)
		if e != nil {
			return restReply{}, e
		}
		return restReply{http.StatusOK, env}, nil
	}

	f := &form{values: r.PostForm}
	to, from := f.str("To"), f.str("From")
	if e := checkParties(to, from); e != nil {
		return restReply{}, e
	}
	spec := participantSpec{
		label:          f.str("Label"),
		startOnEnter:   f.boolean("StartConferenceOnEnter", true),
		endOnExit:      f.boolean("EndConferenceOnExit", false),
		muted:          f.boolean("Muted", false),
		beep:           f.str("Beep"),
		waitURL:        f.webURL("WaitUrl"),
		waitURLSet:     f.has("WaitUrl"),
		waitMethod:     f.method("WaitMethod"),
		maxPart:        f.integer("MaxParticipants", 250, 2, 250),
		coach:          f.str("CallSidToCoach"),
		statusCallback: f.webURL("ConferenceStatusCallback"),
		statusMethod:   f.method("ConferenceStatusCallbackMethod"),
		statusEvents:   f.events("ConferenceStatusCallbackEvent", conferenceEvents...),
	}
	spec.coaching = f.boolean("Coaching", spec.coach != "")
	if !f.has("ConferenceStatusCallbackEvent") {
		// Twilio's documented default for the Participants API; TwiML's
		// statusCallbackEvent has none (see dialConference).
		spec.statusEvents = []string{"start", "end"}
	}
	cb, cbMethod := f.webURL("StatusCallback"), orPost(f.method("StatusCallbackMethod"))
	events := f.events("StatusCallbackEvent", callProgressEvents...)
	// Twilio documents a participant's Timeout as 5 to 600 seconds.
	timeout := f.integer("Timeout", 60, 5, 600)
	if f.err != nil {
		return restReply{}, f.err
	}
	if !validLabel(spec.label) {
		return restReply{}, newAPIError(http.StatusBadRequest, 16023, "Invalid participant label %q: it must not exceed 128 characters, be a CallSid or contain '/'", spec.label)
	}
	if spec.coaching && spec.coach == "" {
		return restReply{}, newAPIError(http.StatusBadRequest, 20001, "CallSidToCoach is required when Coaching is true")
	}
	conf, name, e := s.conferenceForParticipantsLocked(r, true)
	if e != nil {
		return restReply{}, e
	}
	if spec.coach != "" && (conf == nil || conf.findParticipant(spec.coach) == nil) {
		return restReply{}, newAPIError(http.StatusBadRequest, 13240, "CallSidToCoach %s is not a participant of this conference", spec.coach)
	}
	if conf != nil && conf.labelTaken(spec.label, nil) {
		return restReply{}, newAPIError(http.StatusBadRequest, 16025, "Participant label %s is already in use in this conference", spec.label)
	}
	if conf != nil && len(conf.parts)+len(conf.pending) >= conf.maxParticipants {
		return restReply{}, newAPIError(http.StatusBadRequest, 16020, "Conference is full (maxParticipants %d)", conf.maxParticipants)
	}
	if conf == nil {
		conf = s.liveConferenceLocked(name)
	}
	conf.fixCallbacksLocked(spec)

	c := s.newCallLocked(DirectionOutboundAPI, from, to)
	c.statusCallback, c.statusCallbackMethod, c.statusEvents = cb, cbMethod, eventSet(events)
	c.ringTimeout = time.Duration(timeout) * time.Second
	now := time.Now()
	p := &participant{conf: conf, call: c, participantSpec: spec, status: "queued", created: now, updated: now, viaAPI: true}
	conf.pending = append(conf.pending, p)
	c.part = p
	c.onAnswer = func() {
		for i, q := range conf.pending {
			if q == p {
				conf.pending = append(conf.pending[:i], conf.pending[i+1:]...)
				break
			}
		}
		if conf.status == ConfCompleted {
			s.endCallLocked(c, StatusCompleted, "the conference had ended")
			return
		}
		s.connectLocked(p)
	}
	c.onRingEnd = func(status string) {
		c.part = nil
		s.dropPendingLocked(p, status)
	}
	body := s.participantJSONLocked(p)
	s.changedLocked()
	s.ringSoonParticipant(c, p)
	return restReply{http.StatusCreated, body}, nil
}

func (s *Sim) ringSoonParticipant(c *call, p *participant) {
	s.goTracked(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.status == StatusQueued && s.ctx.Err() == nil {
			p.status = "ringing"
			s.ringLocked(c)
		}
	})
}

// participantInstance fetches, updates or removes one participant, named by
// CallSid or by label.
func (s *Sim) participantInstance(r *http.Request) (restReply, *apiError) {
	// PathValue has already percent-decoded a label; decoding it again
	// would misread a label that contains "%".
	ref, ok := sidFromFile(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	conf, _, e := s.conferenceForParticipantsLocked(r, false)
	if e != nil {
		return restReply{}, e
	}
	p := conf.findParticipant(ref)
	if !ok || p == nil {
		return restReply{}, notFound(r)
	}
	switch r.Method {
	case http.MethodGet:
		return restReply{http.StatusOK, s.participantJSONLocked(p)}, nil
	case http.MethodDelete:
		if p.status == "connected" {
			s.leaveLocked(p, leaveKicked)
		} else {
			s.ringEndLocked(p.call, StatusCanceled)
		}
		s.changedLocked()
		return restReply{status: http.StatusNoContent}, nil
	}

	f := &form{values: r.PostForm}
	// Muted is read as strictly as on create: true or false, else 20001.
	mutedSet, muted := f.has("Muted"), f.boolean("Muted", p.muted)
	holdSet, hold := f.has("Hold"), f.boolean("Hold", p.hold)
	holdURL, holdMethod := f.webURL("HoldUrl"), f.method("HoldMethod")
	eoeSet, eoe := f.has("EndConferenceOnExit"), f.boolean("EndConferenceOnExit", p.endOnExit)
	coachingSet, coaching := f.has("Coaching"), f.boolean("Coaching", p.coaching)
	coach := f.str("CallSidToCoach")
	announce, announceMethod := f.webURL("AnnounceUrl"), orPost(f.method("AnnounceMethod"))
	waitURL, waitMethod := f.webURL("WaitUrl"), f.method("WaitMethod")
	f.boolean("BeepOnExit", false)
	if f.err != nil {
		return restReply{}, f.err
	}
	if coach != "" && conf.findParticipant(coach) == nil {
		return restReply{}, newAPIError(http.StatusBadRequest, 13240, "CallSidToCoach %s is not a participant of this conference", coach)
	}
	if coachingSet && coaching && coach == "" && p.coach == "" {
		return restReply{}, newAPIError(http.StatusBadRequest, 20001, "CallSidToCoach is required when Coaching is true")
	}
	wasHeld := p.hold
	p.updated = time.Now()
	if holdURL != "" {
		p.holdURL = holdURL
	}
	if holdMethod != "" {
		p.holdMethod = holdMethod
	}
	if f.has("WaitUrl") {
		p.waitURL, p.waitURLSet = waitURL, true
		if waitMethod != "" {
			p.waitMethod = waitMethod
		}
	}
	if holdSet && hold != p.hold {
		p.hold = hold
		if hold {
			s.confEventLocked(conf, "participant-hold", p, nil)
			if p.status == "connected" {
				s.holdMusicLocked(p)
			}
		} else {
			s.confEventLocked(conf, "participant-unhold", p, nil)
			if p.status == "connected" {
				if conf.started {
					s.stopMediaLocked(p)
					p.call.hearing = "conference " + conf.name
				} else {
					s.waitMusicLocked(p)
				}
			}
		}
	}
	if mutedSet && muted != p.muted {
		p.muted = muted
		event := "participant-unmute"
		if muted {
			event = "participant-mute"
		}
		s.confEventLocked(conf, event, p, nil)
	}
	modified := false
	// Twilio ignores an endConferenceOnExit change on a participant that is
	// on hold; applications must take the participant off hold first.
	if eoeSet && eoe != p.endOnExit && !wasHeld && !p.hold {
		p.endOnExit = eoe
		modified = true
	}
	if coachingSet && coaching != p.coaching {
		p.coaching = coaching
		modified = true
	}
	if coach != "" && coach != p.coach {
		p.coach = coach
		modified = true
	}
	if modified {
		s.confEventLocked(conf, "participant-modify", p, nil)
	}
	if announce != "" && p.status == "connected" {
		s.announceLocked(p, announce, announceMethod)
	}
	s.changedLocked()
	return restReply{http.StatusOK, s.participantJSONLocked(p)}, nil
}

// announceLocked plays an announcement to one participant, then reports
// announcement-end (or -fail) to the conference's status callback.
func (s *Sim) announceLocked(p *participant, rawURL, method string) {
	c, conf := p.call, p.conf
	s.goTracked(func() {
		doc, failure := s.fetchTwiML(s.ctx, c, method, rawURL, nil)
		s.mu.Lock()
		if failure != nil {
			s.notifyLocked(c.sid, failure)
			s.confEventLocked(conf, "announcement-fail", p, url.Values{"AnnounceUrl": {rawURL}, "ReasonAnnouncementFailed": {failure.Message}})
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, v := range doc.Verbs {
			switch v := v.(type) {
			case twimlSay:
				c.logLockedSafe(s, "announcement: say: "+v.Text)
			case twimlPlay:
				c.logLockedSafe(s, "announcement: play: "+v.URL)
			}
		}
		s.mu.Lock()
		s.confEventLocked(conf, "announcement-end", p, url.Values{"AnnounceUrl": {rawURL}})
		s.changedLocked()
		s.mu.Unlock()
	})
}

func (c *call) logLockedSafe(s *Sim, line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.logLocked(line)
}
