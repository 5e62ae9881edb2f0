package twiml

import "encoding/xml"

// Noun is one party a Dial connects to. The concrete types are Conference,
// Client and Number, held as values.
type Noun interface{ isNoun() }

// Conference joins the call to a named conference room.
type Conference struct {
	Name                   string // element text, trimmed; never empty
	StartConferenceOnEnter bool   // default true
	EndConferenceOnExit    bool   // default false
	WaitURL                string
	// WaitURLSet tells waitUrl="" (wait in silence) from an absent waitUrl
	// (Twilio's default hold music), which WaitURL alone cannot.
	WaitURLSet           bool
	WaitMethod           string // GET or POST (default)
	Muted                bool
	Beep                 string // true (default), false, onEnter or onExit
	MaxParticipants      int    // 2..250, default 250
	ParticipantLabel     string
	Coach                string // CallSid of the participant this one coaches
	StatusCallback       string
	StatusCallbackMethod string   // GET or POST (default)
	StatusCallbackEvent  []string // from: start end join leave mute hold modify speaker announcement
	Record               string   // do-not-record (default) or record-from-start
	Region               string
	Trim                 string // trim-silence (default) or do-not-trim
	JitterBufferSize     string // large (default), medium, small or off
	EventCallbackURL     string
}

// Client rings a Twilio Voice SDK device registered as Identity.
type Client struct {
	Identity string // element text or a nested <Identity>; never empty
	// Parameters are the nested <Parameter name value/> pairs Twilio hands
	// to the device as custom parameters; nil when there are none.
	Parameters           map[string]string
	URL                  string // TwiML run on the answering leg before it connects
	Method               string // for URL: GET or POST (default)
	StatusCallback       string
	StatusCallbackMethod string   // GET or POST (default)
	StatusCallbackEvent  []string // from: initiated ringing answered completed
}

// Number rings a phone number.
type Number struct {
	Number               string // element text, trimmed; never empty
	URL                  string // TwiML run on the answering leg before it connects
	Method               string // for URL: GET or POST (default)
	SendDigits           string // DTMF sent once the number answers
	StatusCallback       string
	StatusCallbackMethod string   // GET or POST (default)
	StatusCallbackEvent  []string // from: initiated ringing answered completed
}

func (Conference) isNoun() {}
func (Client) isNoun()     {}
func (Number) isNoun()     {}

// unsupportedNouns are real Twilio Dial nouns the simulator cannot connect.
var unsupportedNouns = map[string]bool{
	"Application": true, "Queue": true, "Sim": true, "Sip": true, "WhatsApp": true,
}

var conferenceEvents = []string{"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"}

var callEvents = []string{"initiated", "ringing", "answered", "completed"}

// bareNumber is the Number Twilio makes of <Dial>+15551234567</Dial>,
// with the defaults a <Number> element would get.
func bareNumber(number string) Number {
	return Number{Number: number, Method: "POST", StatusCallbackMethod: "POST"}
}

func (d *decoder) noun(start xml.StartElement) (Noun, error) {
	if start.Name.Space == "" {
		switch start.Name.Local {
		case "Conference":
			return d.conference(start)
		case "Client":
			return d.client(start)
		case "Number":
			return d.number(start)
		}
		if unsupportedNouns[start.Name.Local] {
			return nil, schemaErrorf("<%s> is not supported by the simulator", start.Name.Local)
		}
	}
	return nil, schemaErrorf("<%s> is not a noun <Dial> accepts", elementName(start.Name))
}

func (d *decoder) conference(start xml.StartElement) (Noun, error) {
	a := readAttrs(start)
	conference := Conference{
		StartConferenceOnEnter: a.boolean("startConferenceOnEnter", true),
		EndConferenceOnExit:    a.boolean("endConferenceOnExit", false),
		WaitMethod:             a.method("waitMethod"),
		Muted:                  a.boolean("muted", false),
		Beep:                   a.oneOf("beep", "true", "true", "false", "onEnter", "onExit"),
		MaxParticipants:        a.integer("maxParticipants", 250, 2, 250),
		ParticipantLabel:       a.text("participantLabel"),
		Coach:                  a.text("coach"),
		StatusCallback:         a.text("statusCallback"),
		StatusCallbackMethod:   a.method("statusCallbackMethod"),
		StatusCallbackEvent:    a.events("statusCallbackEvent", conferenceEvents...),
		Record:                 a.oneOf("record", "do-not-record", "do-not-record", "record-from-start"),
		Region:                 a.text("region"),
		Trim:                   a.oneOf("trim", "trim-silence", "trim-silence", "do-not-trim"),
		JitterBufferSize:       a.oneOf("jitterBufferSize", "large", "large", "medium", "small", "off"),
		EventCallbackURL:       a.text("eventCallbackUrl"),
	}
	conference.WaitURL, conference.WaitURLSet = a.lookup("waitUrl")
	if a.err != nil {
		return nil, a.err
	}
	text, err := d.content(start, nil)
	if err != nil {
		return nil, err
	}
	conference.Name = trimText(text)
	if conference.Name == "" {
		return nil, schemaErrorf("<Conference> has no name")
	}
	return conference, nil
}

func (d *decoder) number(start xml.StartElement) (Noun, error) {
	a := readAttrs(start)
	number := Number{
		URL:                  a.text("url"),
		Method:               a.method("method"),
		SendDigits:           a.digits("sendDigits"),
		StatusCallback:       a.text("statusCallback"),
		StatusCallbackMethod: a.method("statusCallbackMethod"),
		StatusCallbackEvent:  a.events("statusCallbackEvent", callEvents...),
	}
	if a.err != nil {
		return nil, a.err
	}
	text, err := d.content(start, nil)
	if err != nil {
		return nil, err
	}
	number.Number = trimText(text)
	if number.Number == "" {
		return nil, schemaErrorf("<Number> has no phone number")
	}
	return number, nil
}

func (d *decoder) client(start xml.StartElement) (Noun, error) {
	a := readAttrs(start)
	client := Client{
		URL:                  a.text("url"),
		Method:               a.method("method"),
		StatusCallback:       a.text("statusCallback"),
		StatusCallbackMethod: a.method("statusCallbackMethod"),
		StatusCallbackEvent:  a.events("statusCallbackEvent", callEvents...),
	}
	if a.err != nil {
		return nil, a.err
	}
	text, err := d.content(start, func(child xml.StartElement) error {
		switch child.Name {
		case xml.Name{Local: "Identity"}:
			if client.Identity != "" {
				return schemaErrorf("<Client> has more than one <Identity>")
			}
			identity, err := d.identity(child)
			client.Identity = identity
			return err
		case xml.Name{Local: "Parameter"}:
			name, value, err := d.parameter(child)
			if err != nil {
				return err
			}
			if _, dup := client.Parameters[name]; dup {
				return schemaErrorf("<Client> has <Parameter name=%q> twice", name)
			}
			if client.Parameters == nil {
				client.Parameters = make(map[string]string)
			}
			client.Parameters[name] = value
			return nil
		}
		return schemaErrorf("<Client> cannot contain <%s>", elementName(child.Name))
	})
	if err != nil {
		return nil, err
	}
	if bare := trimText(text); bare != "" {
		if client.Identity != "" {
			return nil, schemaErrorf("<Client> has both text and an <Identity>")
		}
		client.Identity = bare
	}
	if client.Identity == "" {
		return nil, schemaErrorf("<Client> has no identity")
	}
	return client, nil
}

// identity reads <Identity>, the form Twilio documents for a Client that
// also carries <Parameter>s.
func (d *decoder) identity(start xml.StartElement) (string, error) {
	text, err := d.content(start, nil)
	if err != nil {
		return "", err
	}
	identity := trimText(text)
	if identity == "" {
		return "", schemaErrorf("<Identity> is empty")
	}
	return identity, nil
}

func (d *decoder) parameter(start xml.StartElement) (name, value string, err error) {
	a := readAttrs(start)
	name, value = a.text("name"), a.text("value")
	if name == "" {
		return "", "", schemaErrorf("<Parameter> has no name")
	}
	if err := d.emptyContent(start); err != nil {
		return "", "", err
	}
	return name, value, nil
}
