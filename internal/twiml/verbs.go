package twiml

import (
	"encoding/xml"
	"math"
)

// Response is a parsed TwiML document: the verbs Twilio runs in order.
type Response struct {
	Verbs []Verb
}

// Verb is one instruction inside <Response>. The concrete types are Say,
// Play, Pause, Redirect, Hangup, Reject and Dial, held as values, so a type
// switch reads `case twiml.Dial:`.
type Verb interface{ isVerb() }

// Say speaks Text with text-to-speech.
type Say struct {
	Text     string // trimmed; never empty
	Voice    string
	Language string
	Loop     int // how many times to speak; 0 repeats until the call ends
}

// Play plays an audio file, or DTMF tones when Digits is set.
type Play struct {
	URL    string // trimmed; empty only when Digits is set
	Loop   int    // how many times to play; 0 repeats until the call ends
	Digits string
}

// Pause waits in silence.
type Pause struct {
	Length int // seconds, default 1
}

// Redirect hands the call to the TwiML at URL; later verbs never run.
type Redirect struct {
	URL    string // element text, trimmed; never empty
	Method string // GET or POST (default)
}

// Hangup ends the call.
type Hangup struct{}

// Reject refuses an incoming call without answering it, so the caller is
// not billed and hears Reason's tone.
type Reject struct {
	Reason string // "rejected" (default) or "busy"
}

// Dial connects the call to one or more other parties.
type Dial struct {
	Action         string // where Twilio reports the outcome; empty: go on with the next verb
	Method         string // for Action: GET or POST (default)
	Timeout        int    // seconds to ring, 1..600, default 30
	CallerID       string
	AnswerOnBridge bool
	TimeLimit      int // seconds the call may last, 1..86400, default 14400
	HangupOnStar   bool
	Record         string // do-not-record (default), record-from-answer, record-from-ringing, their -dual forms, or legacy true/false
	// Nouns are never empty. A Conference is always the only noun; several
	// Number and Client nouns ring at once and the first to answer wins.
	Nouns []Noun
}

// maxSimultaneousDial is Twilio's limit on nouns ringing at once.
const maxSimultaneousDial = 10

func (Say) isVerb()      {}
func (Play) isVerb()     {}
func (Pause) isVerb()    {}
func (Redirect) isVerb() {}
func (Hangup) isVerb()   {}
func (Reject) isVerb()   {}
func (Dial) isVerb()     {}

// unsupportedVerbs are real Twilio verbs the simulator cannot play. They
// get their own message so nobody hunts for a typo in a valid document.
var unsupportedVerbs = map[string]bool{
	"Connect": true, "Enqueue": true, "Gather": true, "Leave": true,
	"Message": true, "Pay": true, "Record": true, "Refer": true,
	"Sms": true, "Start": true, "Stop": true,
}

// ssmlTags are the SSML elements Twilio allows inside <Say>. The simulator
// does not speak, so it cannot honour them, and taking only their text
// would drop the pauses and emphasis they ask for.
var ssmlTags = map[string]bool{
	"break": true, "emphasis": true, "lang": true, "p": true,
	"phoneme": true, "prosody": true, "s": true, "say-as": true,
	"sub": true, "w": true,
}

func (d *decoder) response(start xml.StartElement) (*Response, error) {
	response := &Response{}
	text, err := d.content(start, func(child xml.StartElement) error {
		verb, err := d.verb(child)
		if err != nil {
			return err
		}
		response.Verbs = append(response.Verbs, verb)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !isBlank([]byte(text)) {
		return nil, schemaErrorf("<Response> cannot contain text outside a verb")
	}
	return response, nil
}

func (d *decoder) verb(start xml.StartElement) (Verb, error) {
	if start.Name.Space == "" {
		switch start.Name.Local {
		case "Say":
			return d.say(start)
		case "Play":
			return d.play(start)
		case "Pause":
			return d.pause(start)
		case "Redirect":
			return d.redirect(start)
		case "Hangup":
			return d.hangup(start)
		case "Reject":
			return d.reject(start)
		case "Dial":
			return d.dial(start)
		}
		if unsupportedVerbs[start.Name.Local] {
			return nil, schemaErrorf("<%s> is not supported by the simulator", start.Name.Local)
		}
	}
	return nil, schemaErrorf("<%s> is not a TwiML verb", elementName(start.Name))
}

func (d *decoder) say(start xml.StartElement) (Verb, error) {
	a := readAttrs(start)
	say := Say{
		Voice:    a.text("voice"),
		Language: a.text("language"),
		Loop:     a.integer("loop", 1, 0, math.MaxInt),
	}
	if a.err != nil {
		return nil, a.err
	}
	text, err := d.content(start, func(child xml.StartElement) error {
		if child.Name.Space == "" && ssmlTags[child.Name.Local] {
			return schemaErrorf("SSML <%s> inside <Say> is not supported by the simulator", child.Name.Local)
		}
		return schemaErrorf("<Say> cannot contain <%s>", elementName(child.Name))
	})
	if err != nil {
		return nil, err
	}
	say.Text = trimText(text)
	if say.Text == "" {
		return nil, schemaErrorf("<Say> has no text to speak")
	}
	return say, nil
}

func (d *decoder) play(start xml.StartElement) (Verb, error) {
	a := readAttrs(start)
	play := Play{
		Loop:   a.integer("loop", 1, 0, math.MaxInt),
		Digits: a.digits("digits"),
	}
	if a.err != nil {
		return nil, a.err
	}
	text, err := d.content(start, nil)
	if err != nil {
		return nil, err
	}
	play.URL = trimText(text)
	if play.URL == "" && play.Digits == "" {
		return nil, schemaErrorf("<Play> needs a URL or a digits attribute")
	}
	return play, nil
}

func (d *decoder) pause(start xml.StartElement) (Verb, error) {
	a := readAttrs(start)
	pause := Pause{Length: a.integer("length", 1, 1, math.MaxInt)}
	if a.err != nil {
		return nil, a.err
	}
	if err := d.emptyContent(start); err != nil {
		return nil, err
	}
	return pause, nil
}

func (d *decoder) redirect(start xml.StartElement) (Verb, error) {
	a := readAttrs(start)
	redirect := Redirect{Method: a.method("method")}
	if a.err != nil {
		return nil, a.err
	}
	text, err := d.content(start, nil)
	if err != nil {
		return nil, err
	}
	redirect.URL = trimText(text)
	if redirect.URL == "" {
		return nil, schemaErrorf("<Redirect> has no URL")
	}
	return redirect, nil
}

func (d *decoder) hangup(start xml.StartElement) (Verb, error) {
	if err := d.emptyContent(start); err != nil {
		return nil, err
	}
	return Hangup{}, nil
}

func (d *decoder) reject(start xml.StartElement) (Verb, error) {
	a := readAttrs(start)
	reject := Reject{Reason: a.oneOf("reason", "rejected", "rejected", "busy")}
	if a.err != nil {
		return nil, a.err
	}
	if err := d.emptyContent(start); err != nil {
		return nil, err
	}
	return reject, nil
}

func (d *decoder) dial(start xml.StartElement) (Verb, error) {
	a := readAttrs(start)
	dial := Dial{
		Action:         a.text("action"),
		Method:         a.method("method"),
		Timeout:        a.integer("timeout", 30, 1, 600),
		CallerID:       a.text("callerId"),
		AnswerOnBridge: a.boolean("answerOnBridge", false),
		TimeLimit:      a.integer("timeLimit", 14400, 1, 86400),
		HangupOnStar:   a.boolean("hangupOnStar", false),
		Record: a.oneOf("record", "do-not-record",
			"do-not-record", "record-from-answer", "record-from-ringing",
			"record-from-answer-dual", "record-from-ringing-dual", "true", "false"),
	}
	if a.err != nil {
		return nil, a.err
	}
	text, err := d.content(start, func(child xml.StartElement) error {
		noun, err := d.noun(child)
		if err != nil {
			return err
		}
		dial.Nouns = append(dial.Nouns, noun)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if bare := trimText(text); bare != "" {
		if len(dial.Nouns) > 0 {
			return nil, schemaErrorf("<Dial> cannot mix a bare number with nouns")
		}
		dial.Nouns = []Noun{bareNumber(bare)}
	}
	if err := checkNouns(dial.Nouns); err != nil {
		return nil, err
	}
	return dial, nil
}

func checkNouns(nouns []Noun) error {
	if len(nouns) == 0 {
		return schemaErrorf("<Dial> has no number or noun to dial")
	}
	for _, noun := range nouns {
		if _, ok := noun.(Conference); ok && len(nouns) > 1 {
			return schemaErrorf("<Conference> must be the only noun in its <Dial>")
		}
	}
	if len(nouns) > maxSimultaneousDial {
		return schemaErrorf("<Dial> has %d nouns; Twilio rings at most %d at once", len(nouns), maxSimultaneousDial)
	}
	return nil
}
