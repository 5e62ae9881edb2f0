package twiliosim

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// PhoneEvent is what a simulated browser phone sees: a call ringing it
// ("incoming"), stopping before it answered ("canceled"), connected
// ("accepted"), or ended ("disconnected").
type PhoneEvent struct {
	Type    string `json:"type"`
	CallSID string `json:"call_sid"`
	From    string `json:"from"`
	To      string `json:"to"`
	Status  string `json:"status,omitempty"`
}

// State is the simulator's whole state, for tests and for people.
type State struct {
	Calls         []CallState       `json:"calls"`
	Conferences   []ConferenceState `json:"conferences"`
	Notifications []Notification    `json:"notifications"`
	Phones        []PhoneState      `json:"phones"`
}

// CallState is one call as the simulator sees it.
type CallState struct {
	SID           string          `json:"sid"`
	ParentCallSID string          `json:"parent_call_sid,omitempty"`
	From          string          `json:"from"`
	To            string          `json:"to"`
	CallerName    string          `json:"caller_name,omitempty"`
	Direction     string          `json:"direction"`
	Status        string          `json:"status"`
	Conference    string          `json:"conference,omitempty"`
	ConferenceSID string          `json:"conference_sid,omitempty"`
	Hearing       string          `json:"hearing,omitempty"`
	StartTime     *time.Time      `json:"start_time,omitempty"`
	EndTime       *time.Time      `json:"end_time,omitempty"`
	Webhooks      []WebhookRecord `json:"webhooks,omitempty"`
}

// ConferenceState is one conference and who is in it.
type ConferenceState struct {
	SID                     string             `json:"sid"`
	FriendlyName            string             `json:"friendly_name"`
	Status                  string             `json:"status"`
	ReasonConferenceEnded   string             `json:"reason_conference_ended,omitempty"`
	CallSIDEndingConference string             `json:"call_sid_ending_conference,omitempty"`
	Participants            []ParticipantState `json:"participants"`
}

// ParticipantState is one participant, connected or still being called.
type ParticipantState struct {
	CallSID                string `json:"call_sid"`
	Label                  string `json:"label,omitempty"`
	Status                 string `json:"status"`
	Hold                   bool   `json:"hold"`
	Muted                  bool   `json:"muted"`
	Coaching               bool   `json:"coaching"`
	CallSIDToCoach         string `json:"call_sid_to_coach,omitempty"`
	StartConferenceOnEnter bool   `json:"start_conference_on_enter"`
	EndConferenceOnExit    bool   `json:"end_conference_on_exit"`
	Hearing                string `json:"hearing,omitempty"`
	// Heard tells whether the others in the conference hear this
	// participant. Muted is only the participant's own setting, as Twilio
	// reports it; a participant waiting for the conference to start is
	// muted by the conference as well (Twilio: "they are muted and hear
	// background music"), and one on hold is not heard either.
	Heard bool `json:"heard"`
}

// PhoneState is a browser phone with open event streams.
type PhoneState struct {
	Identity string `json:"identity"`
	Streams  int    `json:"streams"`
}

// State returns a copy of the simulator's state.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateLocked()
}

func (s *Sim) stateLocked() State {
	st := State{Calls: []CallState{}, Conferences: []ConferenceState{}, Notifications: append([]Notification{}, s.notifications...), Phones: []PhoneState{}}
	for _, c := range s.callOrder {
		cs := CallState{SID: c.sid, ParentCallSID: c.parentSID, From: c.from, To: c.to, CallerName: c.callerName,
			Direction: c.direction, Status: c.status, Hearing: c.hearing, Webhooks: append([]WebhookRecord(nil), c.webhooks...)}
		if c.part != nil {
			cs.Conference, cs.ConferenceSID = c.part.conf.name, c.part.conf.sid
		}
		if !c.started.IsZero() {
			t := c.started
			cs.StartTime = &t
		}
		if !c.endedAt.IsZero() {
			t := c.endedAt
			cs.EndTime = &t
		}
		st.Calls = append(st.Calls, cs)
	}
	for _, conf := range s.confOrder {
		cs := ConferenceState{SID: conf.sid, FriendlyName: conf.name, Status: conf.status,
			ReasonConferenceEnded: conf.reasonEnded, CallSIDEndingConference: conf.callSIDEnding, Participants: []ParticipantState{}}
		for _, list := range [][]*participant{conf.parts, conf.pending} {
			for _, p := range list {
				cs.Participants = append(cs.Participants, ParticipantState{
					CallSID: p.call.sid, Label: p.label, Status: p.status, Hold: p.hold, Muted: p.muted,
					Coaching: p.coaching, CallSIDToCoach: p.coach, StartConferenceOnEnter: p.startOnEnter,
					EndConferenceOnExit: p.endOnExit, Hearing: p.call.hearing,
					Heard: p.status == "connected" && conf.started && !p.muted && !p.hold,
				})
			}
		}
		st.Conferences = append(st.Conferences, cs)
	}
	for id, subs := range s.phones {
		st.Phones = append(st.Phones, PhoneState{Identity: id, Streams: len(subs)})
	}
	return st
}

// Call returns one call's state.
func (st State) Call(sid string) (CallState, bool) {
	for _, c := range st.Calls {
		if c.SID == sid {
			return c, true
		}
	}
	return CallState{}, false
}

// Conference returns the newest conference with that friendly name.
func (st State) Conference(name string) (ConferenceState, bool) {
	for i := len(st.Conferences) - 1; i >= 0; i-- {
		if st.Conferences[i].FriendlyName == name {
			return st.Conferences[i], true
		}
	}
	return ConferenceState{}, false
}

// Participant returns the participant with that CallSid.
func (cs ConferenceState) Participant(callSID string) (ParticipantState, bool) {
	for _, p := range cs.Participants {
		if p.CallSID == callSID {
			return p, true
		}
	}
	return ParticipantState{}, false
}

// Subscribe returns a channel of what the phone with that identity sees,
// and a function that ends the subscription.
func (s *Sim) Subscribe(identity string) (<-chan PhoneEvent, func()) {
	ch, _, stop := s.subscribe(identity)
	return ch, stop
}

// subscribe also returns an "incoming" event for each call ringing the
// phone right now. Both come from one moment under Sim.mu, so a call that
// starts ringing meanwhile is neither missed nor announced twice.
func (s *Sim) subscribe(identity string) (<-chan PhoneEvent, []PhoneEvent, func()) {
	ch := make(chan PhoneEvent, 64)
	s.mu.Lock()
	if s.phones[identity] == nil {
		s.phones[identity] = map[chan PhoneEvent]struct{}{}
	}
	s.phones[identity][ch] = struct{}{}
	var ringing []PhoneEvent
	for _, c := range s.callOrder {
		if id, isClient := c.clientIdentity(); isClient && id == identity && c.status == StatusRinging {
			ringing = append(ringing, PhoneEvent{Type: "incoming", CallSID: c.sid, From: c.from, To: c.to})
		}
	}
	s.changedLocked()
	s.mu.Unlock()
	return ch, ringing, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if subs, ok := s.phones[identity]; ok {
			if _, ok := subs[ch]; ok {
				delete(subs, ch)
				close(ch)
				if len(subs) == 0 {
					delete(s.phones, identity)
				}
				s.changedLocked()
			}
		}
	}
}

func (s *Sim) phoneEventLocked(identity string, ev PhoneEvent) {
	for ch := range s.phones[identity] {
		select {
		case ch <- ev:
		default:
			// A phone that stopped reading misses events rather than
			// stalling every call.
		}
	}
}

// Handler serves Twilio's REST API under /2010-04-01/ and the simulator's
// own control API and page under /sim.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	s.registerREST(mux)
	mux.HandleFunc("GET /sim", s.page)
	mux.HandleFunc("GET /sim/{$}", s.page)
	mux.HandleFunc("GET /sim/state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.State()) })
	mux.HandleFunc("POST /sim/calls", s.placeCall)
	mux.HandleFunc("GET /sim/calls/{sid}", s.showCall)
	mux.HandleFunc("POST /sim/calls/{sid}/{action}", s.callAction)
	mux.HandleFunc("POST /sim/numbers", s.setNumber)
	mux.HandleFunc("GET /sim/phones/{identity}/events", s.phoneEvents)
	mux.HandleFunc("/sim", func(w http.ResponseWriter, r *http.Request) {
		controlError(w, http.StatusMethodNotAllowed, "the /sim page only answers GET")
	})
	mux.HandleFunc("/sim/", func(w http.ResponseWriter, r *http.Request) {
		controlError(w, http.StatusNotFound, "no such simulator endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// fromPage reports whether a request is a form posted by a browser showing
// the /sim page (it accepts HTML and did not ask for JSON): a person then
// goes back to the page instead of reading JSON.
func fromPage(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, "application/json")
}

// answerControl sends a control action's result: JSON to programs, back to
// the page for people.
func answerControl(w http.ResponseWriter, r *http.Request, status int, body any) {
	if fromPage(r) {
		http.Redirect(w, r, "/sim", http.StatusSeeOther)
		return
	}
	writeJSON(w, status, body)
}

func controlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func controlStatus(err error) int {
	switch {
	case errors.Is(err, errUnknownCall):
		return http.StatusNotFound
	case errors.Is(err, errNoVoiceURL):
		return http.StatusConflict
	case errors.Is(err, errNotOurNumber):
		return http.StatusBadRequest
	default:
		return http.StatusConflict
	}
}

// placeCall is a customer dialling in: From (required, E.164), To
// (the account's number, which is also the default), CallerName (optional).
func (s *Sim) placeCall(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		controlError(w, http.StatusBadRequest, "could not parse the form: "+err.Error())
		return
	}
	from, to := formNumber(r.PostForm.Get("From")), formNumber(r.PostForm.Get("To"))
	if !e164Pattern.MatchString(from) {
		controlError(w, http.StatusBadRequest, "From must be a phone number in E.164 form, like +15551230001")
		return
	}
	if to != "" && !e164Pattern.MatchString(to) {
		controlError(w, http.StatusBadRequest, "To must be a phone number in E.164 form")
		return
	}
	name := r.PostForm.Get("CallerName")
	if len(name) > 64 {
		controlError(w, http.StatusBadRequest, "CallerName is limited to 64 characters")
		return
	}
	sid, err := s.PlaceInbound(from, to, name)
	if err != nil {
		controlError(w, controlStatus(err), err.Error())
		return
	}
	answerControl(w, r, http.StatusCreated, map[string]string{"sid": sid})
}

// formNumber reads a phone number from a form. `curl -d From=+15551230001`
// sends the "+" unencoded, and form decoding turns it into a space, so a
// space followed by digits is read as the "+" it was typed as.
func formNumber(v string) string {
	if rest, ok := strings.CutPrefix(v, " "); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
		return "+" + rest
	}
	return strings.TrimSpace(v)
}

func (s *Sim) showCall(w http.ResponseWriter, r *http.Request) {
	c, ok := s.State().Call(r.PathValue("sid"))
	if !ok {
		controlError(w, http.StatusNotFound, errUnknownCall.Error())
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// callAction is a party acting on a call: hangup (anyone), accept and
// reject (a browser phone), ring-out (a phone's ring timer running out now).
func (s *Sim) callAction(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("sid")
	var err error
	switch r.PathValue("action") {
	case "hangup":
		err = s.Hangup(sid)
	case "accept":
		err = s.Accept(sid)
	case "reject":
		err = s.Reject(sid)
	case "ring-out":
		err = s.RingOut(sid)
	default:
		controlError(w, http.StatusNotFound, "unknown action; use hangup, accept, reject or ring-out")
		return
	}
	if err != nil {
		controlError(w, controlStatus(err), err.Error())
		return
	}
	c, _ := s.State().Call(sid)
	answerControl(w, r, http.StatusOK, map[string]string{"sid": sid, "status": c.Status})
}

// setNumber sets how a simulated phone number answers: Number, Behavior.
func (s *Sim) setNumber(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		controlError(w, http.StatusBadRequest, "could not parse the form: "+err.Error())
		return
	}
	number := r.PostForm.Get("Number")
	if !e164Pattern.MatchString(number) {
		controlError(w, http.StatusBadRequest, "Number must be in E.164 form")
		return
	}
	if err := s.SetNumberBehavior(number, NumberBehavior(r.PostForm.Get("Behavior"))); err != nil {
		controlError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"number": number, "behavior": r.PostForm.Get("Behavior")})
}

// phoneEvents streams a browser phone's events as Server-Sent Events, each
// named by its type with the JSON event as data. Calls already ringing the
// phone are sent first, so a phone that connects late still sees them.
func (s *Sim) phoneEvents(w http.ResponseWriter, r *http.Request) {
	identity := r.PathValue("identity")
	if !identityPattern.MatchString(identity) {
		controlError(w, http.StatusBadRequest, "invalid identity")
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		controlError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	events, ringing, stop := s.subscribe(identity)
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	send := func(ev PhoneEvent) {
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, data)
	}
	for _, ev := range ringing {
		send(ev)
	}
	flusher.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-heartbeat.C:
			fmt.Fprint(w, ": heartbeat\n\n")
			flusher.Flush()
		case ev, ok := <-events:
			if !ok {
				return
			}
			send(ev)
			flusher.Flush()
		}
	}
}

var pageTemplate = template.Must(template.New("sim").Funcs(template.FuncMap{
	"since": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return time.Since(*t).Round(time.Second).String()
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Twilio simulator</title>
<meta http-equiv="refresh" content="3">
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2933}
table{border-collapse:collapse;margin-bottom:2rem;width:100%}
th,td{border-bottom:1px solid #d9e2ec;padding:.35rem .6rem;text-align:left;font-size:.9rem;vertical-align:top}
th{background:#f0f4f8}code{font-size:.85rem}form{margin:1rem 0}
</style></head><body>
<h1>Twilio simulator</h1>
<p>Account <code>{{.AccountSID}}</code>, number <code>{{.Number}}</code>, voice URL <code>{{.VoiceURL}}</code>. This page refreshes every 3 seconds; <a href="/sim/state">state as JSON</a>.</p>
<form method="post" action="/sim/calls"><label>Place a customer call from <input name="From" value="+15551230001" pattern="\+[1-9][0-9]{1,14}" required></label>
<label>name <input name="CallerName" maxlength="64"></label> <button>Call</button></form>
<h2>Calls</h2>
<table><tr><th>Call</th><th>From</th><th>To</th><th>Direction</th><th>Status</th><th>Conference</th><th>Hearing</th><th>Talk time</th><th></th></tr>
{{range .State.Calls}}<tr><td><code>{{.SID}}</code></td><td>{{.From}} {{.CallerName}}</td><td>{{.To}}</td><td>{{.Direction}}</td><td>{{.Status}}</td><td>{{.Conference}}</td><td>{{.Hearing}}</td><td>{{if not .EndTime}}{{since .StartTime}}{{end}}</td>
<td>{{if eq .Status "ringing"}}{{if ne .Direction "inbound"}}<form method="post" action="/sim/calls/{{.SID}}/accept"><button>Accept</button></form><form method="post" action="/sim/calls/{{.SID}}/reject"><button>Reject</button></form><form method="post" action="/sim/calls/{{.SID}}/ring-out"><button>Let it ring out</button></form>{{end}}{{end}}
{{if or (eq .Status "in-progress") (eq .Status "ringing")}}<form method="post" action="/sim/calls/{{.SID}}/hangup"><button>Hang up</button></form>{{end}}</td></tr>
{{else}}<tr><td colspan="9">No calls yet.</td></tr>{{end}}</table>
<h2>Conferences</h2>
<table><tr><th>Conference</th><th>Name</th><th>Status</th><th>Participants</th><th>Ended because</th></tr>
{{range .State.Conferences}}<tr><td><code>{{.SID}}</code></td><td>{{.FriendlyName}}</td><td>{{.Status}}</td><td>{{range .Participants}}<div><code>{{.CallSID}}</code> {{.Label}} {{.Status}}{{if .Hold}} on hold{{end}}{{if .Muted}} muted{{end}}{{if and (eq .Status "connected") (not .Heard) (not .Muted) (not .Hold)}} not heard (waiting for the conference to start){{end}}{{if .EndConferenceOnExit}} ends-on-exit{{end}}{{if .Coaching}} coaching{{end}} — {{.Hearing}}</div>{{end}}</td><td>{{.ReasonConferenceEnded}}</td></tr>
{{else}}<tr><td colspan="5">No conferences yet.</td></tr>{{end}}</table>
<h2>Notifications</h2>
<table><tr><th>When</th><th>Call</th><th>Code</th><th>Message</th><th>URL</th></tr>
{{range .State.Notifications}}<tr><td>{{.Date.Format "15:04:05"}}</td><td><code>{{.CallSID}}</code></td><td>{{.ErrorCode}}</td><td>{{.Message}}</td><td>{{.URL}}</td></tr>
{{else}}<tr><td colspan="5">No webhook failures.</td></tr>{{end}}</table>
</body></html>`))

// page shows the simulator's state to a person.
func (s *Sim) page(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data := struct {
		AccountSID, Number, VoiceURL string
		State                        State
	}{s.cfg.AccountSID, s.cfg.Number, s.cfg.VoiceURL, s.stateLocked()}
	s.mu.Unlock()
	for i := range data.State.Calls {
		data.State.Calls[i].Webhooks = nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, data)
}
