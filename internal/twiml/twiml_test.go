package twiml_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/twiml"
)

// The seeds' documents, which the app must keep producing.
const (
	seedCustomerJoins = `<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="https://example.com/conference/wait" waitMethod="POST">CA123</Conference></Dial></Response>`
	seedAgentJoins    = `<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Conference startConferenceOnEnter="true" endConferenceOnExit="false">CA123</Conference></Dial></Response>`
	seedWait          = `<Response><Say>Thank you for calling. Please wait.</Say><Play loop="0">https://example.com/music.mp3</Play></Response>`
)

// twilioGoFirstRun and twilioGoSecondRun are the output of two runs of
// twiml.Voice from github.com/twilio/twilio-go v1.31.0 on the same verbs:
//
//	twiml.Voice([]twiml.Element{
//		&twiml.VoiceSay{Message: "Connecting you to an agent.", Voice: "Polly.Joanna", Language: "en-US", Loop: "2"},
//		&twiml.VoiceDial{Action: "https://example.com/dial/done", Method: "GET", Timeout: "20",
//			CallerId: "+15550001111", AnswerOnBridge: "true", TimeLimit: "600", HangupOnStar: "true",
//			Record: "record-from-answer", InnerElements: []twiml.Element{
//				&twiml.VoiceNumber{PhoneNumber: "+15551234567", SendDigits: "ww123#", Url: "https://example.com/whisper",
//					Method: "GET", StatusCallback: "https://example.com/status", StatusCallbackMethod: "GET",
//					StatusCallbackEvent: "initiated ringing answered completed"},
//				&twiml.VoiceClient{Url: "https://example.com/client", StatusCallbackEvent: "answered completed",
//					StatusCallback: "https://example.com/client-status", InnerElements: []twiml.Element{
//						&twiml.VoiceIdentity{ClientIdentity: "agent-42"},
//						&twiml.VoiceParameter{Name: "callSid", Value: "CA123"}}}}},
//		&twiml.VoiceDial{InnerElements: []twiml.Element{&twiml.VoiceConference{Name: "CA123",
//			StartConferenceOnEnter: "false", EndConferenceOnExit: "true", WaitUrl: "https://example.com/conference/wait",
//			WaitMethod: "GET", Muted: "true", Beep: "onEnter", MaxParticipants: "3", ParticipantLabel: "customer",
//			Coach: "CA999", StatusCallback: "https://example.com/conference/events", StatusCallbackMethod: "POST",
//			StatusCallbackEvent: "start end join leave", Record: "record-from-start", Region: "ie1",
//			Trim: "do-not-trim", JitterBufferSize: "small", EventCallbackUrl: "https://example.com/conference/cb"}}},
//		&twiml.VoicePlay{Url: "https://example.com/music.mp3", Loop: "0"},
//		&twiml.VoicePause{Length: "3"},
//		&twiml.VoiceRedirect{Url: "https://example.com/next", Method: "GET"},
//		&twiml.VoiceReject{Reason: "busy"},
//		&twiml.VoiceHangup{},
//	})
//
// They are captured rather than generated here because twilio-go/twiml
// imports github.com/beevik/etree, which this module's go.sum does not
// list. The two runs put the attributes in different orders, which is the
// point: the parser must read them by name.
const (
	twilioGoFirstRun  = `<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="Polly.Joanna" loop="2" language="en-US">Connecting you to an agent.</Say><Dial timeout="20" hangupOnStar="true" timeLimit="600" callerId="+15550001111" answerOnBridge="true" method="GET" record="record-from-answer" action="https://example.com/dial/done"><Number method="GET" sendDigits="ww123#" url="https://example.com/whisper" statusCallbackEvent="initiated ringing answered completed" statusCallback="https://example.com/status" statusCallbackMethod="GET">+15551234567</Number><Client statusCallbackEvent="answered completed" statusCallback="https://example.com/client-status" url="https://example.com/client"><Identity>agent-42</Identity><Parameter name="callSid" value="CA123"/></Client></Dial><Dial><Conference beep="onEnter" waitMethod="GET" region="ie1" coach="CA999" statusCallbackEvent="start end join leave" statusCallbackMethod="POST" eventCallbackUrl="https://example.com/conference/cb" endConferenceOnExit="true" maxParticipants="3" statusCallback="https://example.com/conference/events" muted="true" trim="do-not-trim" jitterBufferSize="small" participantLabel="customer" startConferenceOnEnter="false" waitUrl="https://example.com/conference/wait" record="record-from-start">CA123</Conference></Dial><Play loop="0">https://example.com/music.mp3</Play><Pause length="3"/><Redirect method="GET">https://example.com/next</Redirect><Reject reason="busy"/><Hangup/></Response>`
	twilioGoSecondRun = `<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US" voice="Polly.Joanna" loop="2">Connecting you to an agent.</Say><Dial action="https://example.com/dial/done" timeLimit="600" method="GET" hangupOnStar="true" answerOnBridge="true" timeout="20" callerId="+15550001111" record="record-from-answer"><Number statusCallback="https://example.com/status" url="https://example.com/whisper" method="GET" statusCallbackMethod="GET" sendDigits="ww123#" statusCallbackEvent="initiated ringing answered completed">+15551234567</Number><Client url="https://example.com/client" statusCallbackEvent="answered completed" statusCallback="https://example.com/client-status"><Identity>agent-42</Identity><Parameter value="CA123" name="callSid"/></Client></Dial><Dial><Conference waitUrl="https://example.com/conference/wait" region="ie1" coach="CA999" trim="do-not-trim" statusCallbackEvent="start end join leave" statusCallbackMethod="POST" participantLabel="customer" startConferenceOnEnter="false" statusCallback="https://example.com/conference/events" waitMethod="GET" maxParticipants="3" record="record-from-start" eventCallbackUrl="https://example.com/conference/cb" jitterBufferSize="small" muted="true" beep="onEnter" endConferenceOnExit="true">CA123</Conference></Dial><Play loop="0">https://example.com/music.mp3</Play><Pause length="3"/><Redirect method="GET">https://example.com/next</Redirect><Reject reason="busy"/><Hangup/></Response>`
)

// twilioGoParsed is what both twilio-go documents must parse to.
var twilioGoParsed = response(
	twiml.Say{Text: "Connecting you to an agent.", Voice: "Polly.Joanna", Language: "en-US", Loop: 2},
	twiml.Dial{
		Action: "https://example.com/dial/done", Method: "GET", Timeout: 20, CallerID: "+15550001111",
		AnswerOnBridge: true, TimeLimit: 600, HangupOnStar: true, Record: "record-from-answer",
		Nouns: []twiml.Noun{
			twiml.Number{
				Number: "+15551234567", URL: "https://example.com/whisper", Method: "GET", SendDigits: "ww123#",
				StatusCallback: "https://example.com/status", StatusCallbackMethod: "GET",
				StatusCallbackEvent: []string{"initiated", "ringing", "answered", "completed"},
			},
			twiml.Client{
				Identity: "agent-42", Parameters: map[string]string{"callSid": "CA123"},
				URL: "https://example.com/client", Method: "POST",
				StatusCallback: "https://example.com/client-status", StatusCallbackMethod: "POST",
				StatusCallbackEvent: []string{"answered", "completed"},
			},
		},
	},
	dial(twiml.Conference{
		Name: "CA123", StartConferenceOnEnter: false, EndConferenceOnExit: true,
		WaitURL: "https://example.com/conference/wait", WaitURLSet: true, WaitMethod: "GET",
		Muted: true, Beep: "onEnter", MaxParticipants: 3, ParticipantLabel: "customer", Coach: "CA999",
		StatusCallback: "https://example.com/conference/events", StatusCallbackMethod: "POST",
		StatusCallbackEvent: []string{"start", "end", "join", "leave"},
		Record:              "record-from-start", Region: "ie1", Trim: "do-not-trim", JitterBufferSize: "small",
		EventCallbackURL: "https://example.com/conference/cb",
	}),
	twiml.Play{URL: "https://example.com/music.mp3", Loop: 0},
	twiml.Pause{Length: 3},
	twiml.Redirect{URL: "https://example.com/next", Method: "GET"},
	twiml.Reject{Reason: "busy"},
	twiml.Hangup{},
)

func response(verbs ...twiml.Verb) *twiml.Response {
	return &twiml.Response{Verbs: verbs}
}

// dial, conference, number and client build values with Twilio's defaults,
// so a case spells out only what its document sets.
func dial(nouns ...twiml.Noun) twiml.Dial {
	return twiml.Dial{Method: "POST", Timeout: 30, TimeLimit: 14400, Record: "do-not-record", Nouns: nouns}
}

func conference(name string) twiml.Conference {
	return twiml.Conference{
		Name: name, StartConferenceOnEnter: true, WaitMethod: "POST", Beep: "true", MaxParticipants: 250,
		StatusCallbackMethod: "POST", Record: "do-not-record", Trim: "trim-silence", JitterBufferSize: "large",
	}
}

func number(phone string) twiml.Number {
	return twiml.Number{Number: phone, Method: "POST", StatusCallbackMethod: "POST"}
}

func client(identity string) twiml.Client {
	return twiml.Client{Identity: identity, Method: "POST", StatusCallbackMethod: "POST"}
}

// with returns v changed by edit, for cases that differ from the defaults.
func with[T any](v T, edit func(*T)) T {
	edit(&v)
	return v
}

var parseCases = []struct {
	name string
	doc  string
	want *twiml.Response
}{
	// The seeds.
	{"seed customer joins conference", seedCustomerJoins, response(dial(with(conference("CA123"), func(c *twiml.Conference) {
		c.StartConferenceOnEnter = false
		c.EndConferenceOnExit = true
		c.WaitURL, c.WaitURLSet = "https://example.com/conference/wait", true
	})))},
	{"seed agent joins conference", seedAgentJoins, response(dial(conference("CA123")))},
	{"seed wait music", seedWait, response(
		twiml.Say{Text: "Thank you for calling. Please wait.", Loop: 1},
		twiml.Play{URL: "https://example.com/music.mp3", Loop: 0},
	)},

	// Documents produced by twilio-go.
	{"twilio-go first attribute order", twilioGoFirstRun, twilioGoParsed},
	{"twilio-go second attribute order", twilioGoSecondRun, twilioGoParsed},

	// The document itself.
	{"empty response", `<Response/>`, &twiml.Response{}},
	{"empty response with end tag", `<Response></Response>`, &twiml.Response{}},
	{"no xml declaration", `<Response><Hangup/></Response>`, response(twiml.Hangup{})},
	{"xml declaration", `<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>`, response(twiml.Hangup{})},
	{"byte order mark", "\xEF\xBB\xBF<?xml version=\"1.0\"?><Response><Hangup/></Response>", response(twiml.Hangup{})},
	{"indented with comments", `<?xml version="1.0"?>
<!-- greeting -->
<Response>
	<Say>Hello</Say>
	<!-- then leave -->
	<Hangup/>
</Response>
`, response(twiml.Say{Text: "Hello", Loop: 1}, twiml.Hangup{})},
	{"attributes on Response are ignored", `<Response version="2"><Hangup/></Response>`, response(twiml.Hangup{})},

	// Say.
	{"say defaults", `<Response><Say>Hello</Say></Response>`, response(twiml.Say{Text: "Hello", Loop: 1})},
	{"say attributes", `<Response><Say voice="Polly.Amy" language="en-GB" loop="3">Hello</Say></Response>`,
		response(twiml.Say{Text: "Hello", Voice: "Polly.Amy", Language: "en-GB", Loop: 3})},
	{"say attributes reordered", `<Response><Say loop="3" language="en-GB" voice="Polly.Amy">Hello</Say></Response>`,
		response(twiml.Say{Text: "Hello", Voice: "Polly.Amy", Language: "en-GB", Loop: 3})},
	{"say loop forever", `<Response><Say loop="0">Hold on</Say></Response>`, response(twiml.Say{Text: "Hold on", Loop: 0})},
	{"say text trimmed", "<Response><Say>\n\t Hello there \n</Say></Response>", response(twiml.Say{Text: "Hello there", Loop: 1})},
	{"say entities and cdata", `<Response><Say>Tom &amp; Jerry <![CDATA[<3]]></Say></Response>`, response(twiml.Say{Text: "Tom & Jerry <3", Loop: 1})},
	{"say split by comment", `<Response><Say>Hel<!-- x -->lo</Say></Response>`, response(twiml.Say{Text: "Hello", Loop: 1})},
	{"unknown attribute ignored", `<Response><Say colour="blue">Hi</Say></Response>`, response(twiml.Say{Text: "Hi", Loop: 1})},
	{"namespaced attribute ignored", `<Response xmlns:x="urn:x"><Say x:loop="abc">Hi</Say></Response>`, response(twiml.Say{Text: "Hi", Loop: 1})},

	// Play.
	{"play defaults", `<Response><Play>https://example.com/a.mp3</Play></Response>`, response(twiml.Play{URL: "https://example.com/a.mp3", Loop: 1})},
	{"play loop", `<Response><Play loop="5"> https://example.com/a.mp3 </Play></Response>`, response(twiml.Play{URL: "https://example.com/a.mp3", Loop: 5})},
	{"play digits only", `<Response><Play digits="wwww3"/></Response>`, response(twiml.Play{Loop: 1, Digits: "wwww3"})},
	{"play digits and loop", `<Response><Play digits="1234#*W" loop="2"></Play></Response>`, response(twiml.Play{Loop: 2, Digits: "1234#*W"})},

	// Pause, Redirect, Hangup, Reject.
	{"pause default", `<Response><Pause/></Response>`, response(twiml.Pause{Length: 1})},
	{"pause length", `<Response><Pause length="10"></Pause></Response>`, response(twiml.Pause{Length: 10})},
	{"redirect default method", `<Response><Redirect>https://example.com/next</Redirect></Response>`,
		response(twiml.Redirect{URL: "https://example.com/next", Method: "POST"})},
	{"redirect method any case", `<Response><Redirect method="get">
		https://example.com/next
	</Redirect></Response>`, response(twiml.Redirect{URL: "https://example.com/next", Method: "GET"})},
	{"hangup", `<Response><Hangup></Hangup></Response>`, response(twiml.Hangup{})},
	{"reject default", `<Response><Reject/></Response>`, response(twiml.Reject{Reason: "rejected"})},
	{"reject busy", `<Response><Reject reason="busy"/></Response>`, response(twiml.Reject{Reason: "busy"})},
	{"verbs after hangup are kept", `<Response><Hangup/><Say>unreached</Say></Response>`,
		response(twiml.Hangup{}, twiml.Say{Text: "unreached", Loop: 1})},

	// Dial.
	{"dial bare number", `<Response><Dial>+15551234567</Dial></Response>`, response(dial(number("+15551234567")))},
	{"dial bare number trimmed", "<Response><Dial>\n  +15551234567\n</Dial></Response>", response(dial(number("+15551234567")))},
	{"dial attributes", `<Response><Dial action="/done" method="GET" timeout="20" callerId="+15550001111" answerOnBridge="true" timeLimit="600" hangupOnStar="true" record="record-from-ringing-dual">+15551234567</Dial></Response>`,
		response(twiml.Dial{Action: "/done", Method: "GET", Timeout: 20, CallerID: "+15550001111", AnswerOnBridge: true,
			TimeLimit: 600, HangupOnStar: true, Record: "record-from-ringing-dual", Nouns: []twiml.Noun{number("+15551234567")}})},
	{"dial attributes reordered", `<Response><Dial record="record-from-ringing-dual" hangupOnStar="true" timeLimit="600" answerOnBridge="true" callerId="+15550001111" timeout="20" method="GET" action="/done">+15551234567</Dial></Response>`,
		response(twiml.Dial{Action: "/done", Method: "GET", Timeout: 20, CallerID: "+15550001111", AnswerOnBridge: true,
			TimeLimit: 600, HangupOnStar: true, Record: "record-from-ringing-dual", Nouns: []twiml.Noun{number("+15551234567")}})},
	{"dial booleans any case", `<Response><Dial answerOnBridge="TRUE" hangupOnStar="False">+15551234567</Dial></Response>`,
		response(with(dial(number("+15551234567")), func(d *twiml.Dial) { d.AnswerOnBridge = true }))},
	{"dial timeout bounds", `<Response><Dial timeout="1">1</Dial><Dial timeout="600">2</Dial></Response>`, response(
		with(dial(number("1")), func(d *twiml.Dial) { d.Timeout = 1 }),
		with(dial(number("2")), func(d *twiml.Dial) { d.Timeout = 600 }),
	)},
	{"dial simultaneous", `<Response><Dial><Number>+15551234567</Number><Client>alice</Client><Client>bob</Client></Dial></Response>`,
		response(dial(number("+15551234567"), client("alice"), client("bob")))},

	// Conference.
	{"conference defaults", `<Response><Dial><Conference>room</Conference></Dial></Response>`, response(dial(conference("room")))},
	{"conference name trimmed", "<Response><Dial><Conference>\n  CA123\n</Conference></Dial></Response>", response(dial(conference("CA123")))},
	{"conference empty wait url means silence", `<Response><Dial><Conference waitUrl="">room</Conference></Dial></Response>`,
		response(dial(with(conference("room"), func(c *twiml.Conference) { c.WaitURLSet = true })))},
	{"conference beep any case", `<Response><Dial><Conference beep="ONEXIT">room</Conference></Dial></Response>`,
		response(dial(with(conference("room"), func(c *twiml.Conference) { c.Beep = "onExit" })))},
	{"conference beep false", `<Response><Dial><Conference beep="False">room</Conference></Dial></Response>`,
		response(dial(with(conference("room"), func(c *twiml.Conference) { c.Beep = "false" })))},
	{"conference all attributes", `<Response><Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="/wait" waitMethod="GET" muted="true" beep="onEnter" maxParticipants="2" participantLabel="agent-2" coach="CA999" statusCallback="/events" statusCallbackMethod="GET" statusCallbackEvent="start end join leave mute hold modify speaker announcement" record="record-from-start" region="ie1" trim="do-not-trim" jitterBufferSize="off" eventCallbackUrl="/cb">room</Conference></Dial></Response>`,
		response(dial(twiml.Conference{
			Name: "room", EndConferenceOnExit: true, WaitURL: "/wait", WaitURLSet: true, WaitMethod: "GET",
			Muted: true, Beep: "onEnter", MaxParticipants: 2, ParticipantLabel: "agent-2", Coach: "CA999",
			StatusCallback: "/events", StatusCallbackMethod: "GET",
			StatusCallbackEvent: []string{"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"},
			Record:              "record-from-start", Region: "ie1", Trim: "do-not-trim", JitterBufferSize: "off", EventCallbackURL: "/cb",
		}))},

	// Client.
	{"client text identity", `<Response><Dial><Client>alice</Client></Dial></Response>`, response(dial(client("alice")))},
	{"client identity element and parameters", `<Response><Dial><Client>
		<Identity> alice </Identity>
		<Parameter name="callSid" value="CA123"/>
		<Parameter value="" name="empty"/>
	</Client></Dial></Response>`, response(dial(with(client("alice"), func(c *twiml.Client) {
		c.Parameters = map[string]string{"callSid": "CA123", "empty": ""}
	})))},
	{"client attributes", `<Response><Dial><Client url="/whisper" method="GET" statusCallback="/status" statusCallbackMethod="GET" statusCallbackEvent="initiated  ringing answered completed">alice</Client></Dial></Response>`,
		response(dial(twiml.Client{Identity: "alice", URL: "/whisper", Method: "GET", StatusCallback: "/status",
			StatusCallbackMethod: "GET", StatusCallbackEvent: []string{"initiated", "ringing", "answered", "completed"}}))},

	// Number.
	{"number attributes", `<Response><Dial><Number statusCallbackEvent="answered" sendDigits="ww1928" url="/whisper" method="GET" statusCallback="/status" statusCallbackMethod="GET">+15551234567</Number></Dial></Response>`,
		response(dial(twiml.Number{Number: "+15551234567", URL: "/whisper", Method: "GET", SendDigits: "ww1928",
			StatusCallback: "/status", StatusCallbackMethod: "GET", StatusCallbackEvent: []string{"answered"}}))},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := twiml.Parse([]byte(tc.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse mismatch\n got: %s\nwant: %s", dump(got), dump(tc.want))
			}
		})
	}
}

// dump prints a Response one verb per line, so a mismatch is readable.
func dump(r *twiml.Response) string {
	var b strings.Builder
	for _, verb := range r.Verbs {
		fmt.Fprintf(&b, "\n\t%#v", verb)
	}
	return b.String()
}

var errorCases = []struct {
	name string
	doc  string
	code int
	// message is a fragment the error must contain, so each case proves it
	// failed for the reason it names.
	message string
}{
	// 12100: not a document Twilio can read.
	{"empty body", ``, 12100, "empty"},
	{"blank body", " \n\t", 12100, "no root element"},
	{"comment only", `<!-- nothing -->`, 12100, "no root element"},
	{"unclosed root", `<Response><Say>Hi</Say>`, 12100, "malformed XML"},
	{"mismatched end tag", `<Response><Say>Hi</Play></Response>`, 12100, "malformed XML"},
	{"unquoted attribute", `<Response><Say loop=2>Hi</Say></Response>`, 12100, "malformed XML"},
	{"undefined entity", `<Response><Say>&nbsp;</Say></Response>`, 12100, "malformed XML"},
	{"duplicate attribute", `<Response><Say loop="1" loop="2">Hi</Say></Response>`, 12100, `attribute "loop" twice`},
	{"wrong root", `<Foo><Hangup/></Foo>`, 12100, "root element must be <Response>, not <Foo>"},
	{"root in wrong case", `<response/>`, 12100, "root element must be <Response>"},
	{"namespaced root", `<Response xmlns="urn:other"/>`, 12100, "root element must be <Response>, not <urn:other:Response>"},
	{"text before root", `hello <Response/>`, 12100, "text before the root element"},
	{"text after root", `<Response/>trailing`, 12100, "text after </Response>"},
	{"second root", `<Response/><Response/>`, 12100, "element <Response> after </Response>"},
	{"doctype", `<!DOCTYPE Response [<!ENTITY x "y">]><Response/>`, 12100, "DOCTYPE"},
	{"late xml declaration", `<Response/><?xml version="1.0"?>`, 12100, "XML declaration must come first"},
	{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><Response/>`, 12100, "malformed XML"},
	{"invalid utf-8", "<Response><Say>\xff</Say></Response>", 12100, "malformed XML"},
	{"too large", `<Response><Say>` + strings.Repeat("a", twiml.MaxDocumentSize) + `</Say></Response>`, 12100, "TwiML limit"},
	{"invalid and then malformed", `<Response><Foo/><Say>`, 12100, "malformed XML"},
	{"invalid and then trailing text", `<Response><Foo/></Response>junk`, 12100, "text after </Response>"},
	{"deep nesting", `<Response>` + strings.Repeat(`<Say>`, 10000), 12100, "malformed XML"},

	// 12200: readable, but not valid TwiML.
	{"unknown verb", `<Response><Foo/></Response>`, 12200, "<Foo> is not a TwiML verb"},
	{"verb in wrong case", `<Response><say>Hi</say></Response>`, 12200, "<say> is not a TwiML verb"},
	{"noun as verb", `<Response><Number>+15551234567</Number></Response>`, 12200, "<Number> is not a TwiML verb"},
	{"namespaced verb", `<Response xmlns:x="urn:x"><x:Say>Hi</x:Say></Response>`, 12200, "<urn:x:Say> is not a TwiML verb"},
	{"text in response", `<Response>Hello<Hangup/></Response>`, 12200, "text outside a verb"},
	{"deeply nested says", `<Response>` + strings.Repeat(`<Say>`, 1000) + strings.Repeat(`</Say>`, 1000) + `</Response>`, 12200, "<Say> cannot contain <Say>"},

	{"say without text", `<Response><Say>  </Say></Response>`, 12200, "<Say> has no text"},
	{"say with ssml", `<Response><Say>Hi <break time="1s"/> there</Say></Response>`, 12200, "SSML <break> inside <Say> is not supported by the simulator"},
	{"say loop not a number", `<Response><Say loop="abc">Hi</Say></Response>`, 12200, `<Say> attribute loop="abc" is not a whole number`},
	{"say loop negative", `<Response><Say loop="-1">Hi</Say></Response>`, 12200, "must be at least 0"},
	{"say loop empty", `<Response><Say loop="">Hi</Say></Response>`, 12200, "is not a whole number"},
	{"play without url or digits", `<Response><Play/></Response>`, 12200, "<Play> needs a URL or a digits attribute"},
	{"play bad digits", `<Response><Play digits="12a"/></Response>`, 12200, `<Play> attribute digits="12a"`},
	{"play loop fraction", `<Response><Play loop="1.5">/a.mp3</Play></Response>`, 12200, "is not a whole number"},
	{"play with element", `<Response><Play><Say>x</Say></Play></Response>`, 12200, "<Play> cannot contain <Say>"},
	{"pause zero", `<Response><Pause length="0"/></Response>`, 12200, "must be at least 1"},
	{"pause with text", `<Response><Pause>5</Pause></Response>`, 12200, "<Pause> cannot contain text"},
	{"redirect without url", `<Response><Redirect method="GET"/></Response>`, 12200, "<Redirect> has no URL"},
	{"redirect bad method", `<Response><Redirect method="PUT">/next</Redirect></Response>`, 12200, "must be one of GET, POST"},
	{"hangup with text", `<Response><Hangup>now</Hangup></Response>`, 12200, "<Hangup> cannot contain text"},
	{"hangup with element", `<Response><Hangup><Parameter name="a" value="b"/></Hangup></Response>`, 12200, "<Hangup> cannot contain <Parameter>"},
	{"reject bad reason", `<Response><Reject reason="nope"/></Response>`, 12200, "must be one of rejected, busy"},

	{"dial nothing", `<Response><Dial/></Response>`, 12200, "<Dial> has no number or noun"},
	{"dial blank", "<Response><Dial>\n  </Dial></Response>", 12200, "<Dial> has no number or noun"},
	{"dial timeout zero", `<Response><Dial timeout="0">1</Dial></Response>`, 12200, "must be between 1 and 600"},
	{"dial timeout negative", `<Response><Dial timeout="-5">1</Dial></Response>`, 12200, "must be between 1 and 600"},
	{"dial timeout too long", `<Response><Dial timeout="601">1</Dial></Response>`, 12200, "must be between 1 and 600"},
	{"dial timeout overflow", `<Response><Dial timeout="99999999999999999999">1</Dial></Response>`, 12200, "is not a whole number"},
	{"dial time limit zero", `<Response><Dial timeLimit="0">1</Dial></Response>`, 12200, "must be between 1 and 86400"},
	{"dial bad boolean", `<Response><Dial answerOnBridge="yes">1</Dial></Response>`, 12200, `answerOnBridge="yes" is not true or false`},
	{"dial numeric boolean", `<Response><Dial hangupOnStar="1">1</Dial></Response>`, 12200, "is not true or false"},
	{"dial bad record", `<Response><Dial record="always">1</Dial></Response>`, 12200, `record="always"`},
	{"dial bad method", `<Response><Dial method="DELETE">1</Dial></Response>`, 12200, "must be one of GET, POST"},
	{"dial unknown noun", `<Response><Dial><Foo/></Dial></Response>`, 12200, "<Foo> is not a noun <Dial> accepts"},
	{"dial verb as noun", `<Response><Dial><Say>Hi</Say></Dial></Response>`, 12200, "<Say> is not a noun <Dial> accepts"},
	{"dial text and noun", `<Response><Dial>+15550000000<Number>+15551234567</Number></Dial></Response>`, 12200, "cannot mix a bare number with nouns"},
	{"dial two conferences", `<Response><Dial><Conference>a</Conference><Conference>b</Conference></Dial></Response>`, 12200, "<Conference> must be the only noun"},
	{"dial conference and number", `<Response><Dial><Number>1</Number><Conference>a</Conference></Dial></Response>`, 12200, "<Conference> must be the only noun"},
	{"dial eleven numbers", `<Response><Dial>` + strings.Repeat(`<Number>1</Number>`, 11) + `</Dial></Response>`, 12200, "at most 10"},

	{"conference without name", `<Response><Dial><Conference startConferenceOnEnter="true"> </Conference></Dial></Response>`, 12200, "<Conference> has no name"},
	{"conference bad boolean", `<Response><Dial><Conference endConferenceOnExit="maybe">a</Conference></Dial></Response>`, 12200, `endConferenceOnExit="maybe" is not true or false`},
	{"conference empty boolean", `<Response><Dial><Conference startConferenceOnEnter="">a</Conference></Dial></Response>`, 12200, "is not true or false"},
	{"conference bad beep", `<Response><Dial><Conference beep="loud">a</Conference></Dial></Response>`, 12200, "must be one of true, false, onEnter, onExit"},
	{"conference one participant", `<Response><Dial><Conference maxParticipants="1">a</Conference></Dial></Response>`, 12200, "must be between 2 and 250"},
	{"conference too many participants", `<Response><Dial><Conference maxParticipants="251">a</Conference></Dial></Response>`, 12200, "must be between 2 and 250"},
	{"conference bad wait method", `<Response><Dial><Conference waitMethod="PUT">a</Conference></Dial></Response>`, 12200, "waitMethod"},
	{"conference unknown event", `<Response><Dial><Conference statusCallbackEvent="start finish">a</Conference></Dial></Response>`, 12200, `unknown event "finish"`},
	{"conference call event", `<Response><Dial><Conference statusCallbackEvent="ringing">a</Conference></Dial></Response>`, 12200, `unknown event "ringing"`},
	{"conference no events", `<Response><Dial><Conference statusCallbackEvent=" ">a</Conference></Dial></Response>`, 12200, "lists no events"},
	{"conference bad record", `<Response><Dial><Conference record="record-from-answer">a</Conference></Dial></Response>`, 12200, "must be one of do-not-record, record-from-start"},
	{"conference bad trim", `<Response><Dial><Conference trim="yes">a</Conference></Dial></Response>`, 12200, "must be one of trim-silence, do-not-trim"},
	{"conference bad jitter buffer", `<Response><Dial><Conference jitterBufferSize="huge">a</Conference></Dial></Response>`, 12200, "jitterBufferSize"},
	{"conference with element", `<Response><Dial><Conference>a<Number>1</Number></Conference></Dial></Response>`, 12200, "<Conference> cannot contain <Number>"},

	{"number without number", `<Response><Dial><Number url="/whisper"/></Dial></Response>`, 12200, "<Number> has no phone number"},
	{"number bad send digits", `<Response><Dial><Number sendDigits="12x">1</Number></Dial></Response>`, 12200, `sendDigits="12x"`},
	{"number conference event", `<Response><Dial><Number statusCallbackEvent="join">1</Number></Dial></Response>`, 12200, `unknown event "join"`},

	{"client without identity", `<Response><Dial><Client url="/x"></Client></Dial></Response>`, 12200, "<Client> has no identity"},
	{"client text and identity", `<Response><Dial><Client>alice<Identity>bob</Identity></Client></Dial></Response>`, 12200, "both text and an <Identity>"},
	{"client two identities", `<Response><Dial><Client><Identity>a</Identity><Identity>b</Identity></Client></Dial></Response>`, 12200, "more than one <Identity>"},
	{"client empty identity", `<Response><Dial><Client><Identity/></Client></Dial></Response>`, 12200, "<Identity> is empty"},
	{"client parameter without name", `<Response><Dial><Client>a<Parameter value="1"/></Client></Dial></Response>`, 12200, "<Parameter> has no name"},
	{"client duplicate parameter", `<Response><Dial><Client>a<Parameter name="x" value="1"/><Parameter name="x" value="2"/></Client></Dial></Response>`, 12200, `<Parameter name="x"> twice`},
	{"client parameter with text", `<Response><Dial><Client>a<Parameter name="x">1</Parameter></Client></Dial></Response>`, 12200, "<Parameter> cannot contain text"},
	{"client unknown child", `<Response><Dial><Client>a<Number>1</Number></Client></Dial></Response>`, 12200, "<Client> cannot contain <Number>"},
	{"client bad event", `<Response><Dial><Client statusCallbackEvent="completed hangup">a</Client></Dial></Response>`, 12200, `unknown event "hangup"`},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			assertError(t, tc.doc, tc.code, tc.message)
		})
	}
}

// TestParseUnsupported covers real Twilio verbs and nouns the simulator
// cannot play: they must say so by name instead of passing for unknown.
func TestParseUnsupported(t *testing.T) {
	verbs := []string{"Gather", "Record", "Enqueue", "Leave", "Sms", "Message", "Connect", "Start", "Stop", "Pay", "Refer"}
	for _, verb := range verbs {
		t.Run("verb "+verb, func(t *testing.T) {
			doc := fmt.Sprintf(`<Response><%s/></Response>`, verb)
			assertError(t, doc, twiml.CodeSchemaValidation, fmt.Sprintf("<%s> is not supported by the simulator", verb))
		})
	}
	nouns := []string{"Queue", "Sip", "Sim", "Application", "WhatsApp"}
	for _, noun := range nouns {
		t.Run("noun "+noun, func(t *testing.T) {
			doc := fmt.Sprintf(`<Response><Dial><%s>x</%[1]s></Dial></Response>`, noun)
			assertError(t, doc, twiml.CodeSchemaValidation, fmt.Sprintf("<%s> is not supported by the simulator", noun))
		})
	}
}

func assertError(t *testing.T, doc string, code int, message string) {
	t.Helper()
	got, err := twiml.Parse([]byte(doc))
	if err == nil {
		t.Fatalf("Parse succeeded with %s, want error %d", dump(got), code)
	}
	twimlErr, ok := err.(*twiml.Error)
	if !ok {
		t.Fatalf("Parse error %v is %T, want *twiml.Error", err, err)
	}
	if twimlErr.Code != code || !strings.Contains(twimlErr.Message, message) {
		t.Errorf("Parse error = %v, want code %d with %q", err, code, message)
	}
	if got != nil {
		t.Errorf("Parse returned %s alongside its error", dump(got))
	}
}

func TestErrorString(t *testing.T) {
	err := &twiml.Error{Code: 12200, Message: "<Foo> is not a TwiML verb"}
	if got, want := err.Error(), "twiml: 12200: <Foo> is not a TwiML verb"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// FuzzParse checks that no input makes Parse panic or fail with anything
// but one of Twilio's two TwiML errors.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.doc))
	}
	for _, tc := range errorCases {
		if len(tc.doc) <= 1024 {
			f.Add([]byte(tc.doc))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := twiml.Parse(data)
		if err == nil {
			if got == nil {
				t.Fatal("Parse returned neither a response nor an error")
			}
			return
		}
		twimlErr, ok := err.(*twiml.Error)
		if !ok {
			t.Fatalf("Parse error %v is %T, want *twiml.Error", err, err)
		}
		if twimlErr.Code != twiml.CodeDocumentParse && twimlErr.Code != twiml.CodeSchemaValidation {
			t.Fatalf("Parse error code %d, want 12100 or 12200", twimlErr.Code)
		}
		if got != nil {
			t.Fatalf("Parse returned a response alongside %v", err)
		}
	})
}
