package handlers

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	twiliogo "github.com/twilio/twilio-go/twiml"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
	"github.com/warmtransfer/warmtransfer/internal/twiml"
)

// twilioGoDocument is what twilio-go's twiml.Voice renders for the same
// instructions: the reference the hand-written documents are held to.
func twilioGoDocument(t *testing.T, ins callflow.Instructions) string {
	t.Helper()
	var verbs []twiliogo.Element
	if j := ins.Join; j == nil {
		verbs = []twiliogo.Element{&twiliogo.VoiceSay{Message: ins.Say}, &twiliogo.VoiceHangup{}}
	} else {
		conf := &twiliogo.VoiceConference{
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
		verbs = []twiliogo.Element{&twiliogo.VoiceDial{InnerElements: []twiliogo.Element{conf}}}
	}
	doc, err := twiliogo.Voice(verbs)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// parseTwiML parses a document as the simulator does.
func parseTwiML(t *testing.T, doc string) *twiml.Response {
	t.Helper()
	r, err := twiml.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("twiml.Parse(%s): %v", doc, err)
	}
	return r
}

func TestInstructionsMatchTwilioGo(t *testing.T) {
	tests := append(benchInstructions, []struct {
		name string
		ins  callflow.Instructions
	}{
		{"say with markup", callflow.Instructions{Say: `Tom & "Jerry" <it's> over`}},
		{"names to escape", callflow.Instructions{Join: &callflow.Join{
			Conference:     "call-<&>",
			Label:          `agent-a"b`,
			WaitURL:        "https://wt.example.com/conference/wait?a=1&b=2",
			StatusCallback: "https://wt.example.com/voice/conference?x=<y>",
			StatusEvents:   []string{"start", "end"},
		}}},
	}...)
	e := echo.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(http.MethodPost, PathVoiceIncoming, nil), rec)
			if err := instructions(c, tt.ins); err != nil {
				t.Fatal(err)
			}
			if ct := rec.Header().Get(echo.HeaderContentType); ct != twimlContentType {
				t.Errorf("Content-Type = %q, want %q", ct, twimlContentType)
			}
			got, want := parseTwiML(t, rec.Body.String()), parseTwiML(t, twilioGoDocument(t, tt.ins))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("document %s\nparses to %+v\nwant (twilio-go's) %+v", rec.Body.String(), got, want)
			}
		})
	}
}

func TestWaitDocumentMatchesTwilioGo(t *testing.T) {
	tests := []struct {
		name     string
		position int
	}{
		{"no position", 0},
		{"next", 1},
		{"later", 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verbs := []twiliogo.Element{&twiliogo.VoiceSay{Message: waitGreeting}}
			if tt.position > 0 {
				verbs = append(verbs, &twiliogo.VoiceSay{Message: queuePositionMessage(tt.position)})
			}
			verbs = append(verbs, &twiliogo.VoicePlay{Url: waitMusic, Loop: "0"})
			want, err := twiliogo.Voice(verbs)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(waitTwiML(tt.position)); got != want {
				t.Errorf("wait document\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestTwilioSignedForm checks that a handler behind the signature check
// reads the same form as http.Request.ParseForm would give it, although
// the body is parsed only once.
func TestTwilioSignedForm(t *testing.T) {
	const token, public = "secret", "https://wt.example.com"
	tests := []struct {
		name        string
		target      string
		body        string
		contentType string
	}{
		{"form", "/voice/status", "CallSid=CA1&CallStatus=completed", "application/x-www-form-urlencoded"},
		{"form and query", "/voice/status?leg=7&CallStatus=queued", "CallSid=CA1&CallStatus=completed", "application/x-www-form-urlencoded"},
		{"content type with charset", "/voice/status", "CallSid=CA1", "application/x-www-form-urlencoded; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, err := url.ParseQuery(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			newRequest := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader(tt.body))
				r.Header.Set(echo.HeaderContentType, tt.contentType)
				r.Header.Set(twiliosig.Header, twiliosig.Sign(token, public+tt.target, form))
				return r
			}
			want := newRequest()
			if err := want.ParseForm(); err != nil {
				t.Fatal(err)
			}
			h := &Handlers{Deps: Deps{AuthToken: token, PublicURL: public}}
			var got url.Values
			handler := h.twilioSigned(func(c echo.Context) error {
				got = c.Request().Form
				if v := c.FormValue("CallSid"); v != "CA1" {
					t.Errorf("FormValue(CallSid) = %q", v)
				}
				return nil
			})
			if err := handler(echo.New().NewContext(newRequest(), httptest.NewRecorder())); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want.Form) {
				t.Errorf("form = %v, want %v", got, want.Form)
			}
		})
	}
}
