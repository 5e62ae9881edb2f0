package handlers

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/twilio/twilio-go/twiml"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

// benchEvents are the conference events the call flow asks Twilio for.
var benchEvents = []string{"start", "end", "join", "leave", "hold", "modify", "mute"}

// benchInstructions are the documents the voice webhooks answer with, as
// the call flow builds them: the customer's and the agent's
// <Dial><Conference>, and the refusal.
var benchInstructions = []struct {
	name string
	ins  callflow.Instructions
}{
	{"customer", callflow.Instructions{Join: &callflow.Join{
		Conference:     "call-CA0123456789abcdef0123456789abcdef",
		StartOnEnter:   false,
		EndOnExit:      true,
		WaitURL:        "https://wt.example.com/conference/wait",
		Label:          "customer",
		StatusCallback: "https://wt.example.com/voice/conference",
		StatusEvents:   benchEvents,
	}}},
	{"agent", callflow.Instructions{Join: &callflow.Join{
		Conference:     "call-CA0123456789abcdef0123456789abcdef",
		StartOnEnter:   true,
		EndOnExit:      false,
		Label:          "agent-alice",
		StatusCallback: "https://wt.example.com/voice/conference",
		StatusEvents:   benchEvents,
	}}},
	{"say-hangup", callflow.Instructions{Say: "Sorry, this call has already ended."}},
}

// BenchmarkInstructions renders each document through the handlers' own
// path (instructions -> echo's Blob) into a recorder.
func BenchmarkInstructions(b *testing.B) {
	e := echo.New()
	for _, tc := range benchInstructions {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodPost, PathVoiceIncoming, nil)
			var bytes int
			for b.Loop() {
				rec := httptest.NewRecorder()
				c := e.NewContext(req, rec)
				if err := instructions(c, tc.ins); err != nil {
					b.Fatal(err)
				}
				bytes = rec.Body.Len()
			}
			b.ReportMetric(float64(bytes), "bytes/doc")
		})
	}
	b.Run("wait", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest(http.MethodPost, PathVoiceWait, nil)
		h := &Handlers{}
		for b.Loop() {
			rec := httptest.NewRecorder()
			if err := h.voiceWait(e.NewContext(req, rec)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTwiMLVoice is twilio-go's twiml.Voice on the same elements,
// without echo: what the handlers used to render with, for comparison.
func BenchmarkTwiMLVoice(b *testing.B) {
	for _, tc := range benchInstructions {
		if tc.ins.Join == nil {
			continue
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			j := tc.ins.Join
			for b.Loop() {
				conf := &twiml.VoiceConference{
					Name:                   j.Conference,
					StartConferenceOnEnter: strconv.FormatBool(j.StartOnEnter),
					EndConferenceOnExit:    strconv.FormatBool(j.EndOnExit),
					ParticipantLabel:       j.Label,
					StatusCallback:         j.StatusCallback,
					StatusCallbackMethod:   http.MethodPost,
					StatusCallbackEvent:    strings.Join(j.StatusEvents, " "),
					Beep:                   "false",
					WaitUrl:                j.WaitURL,
				}
				doc, err := twiml.Voice([]twiml.Element{&twiml.VoiceDial{InnerElements: []twiml.Element{conf}}})
				if err != nil || doc == "" {
					b.Fatal(err)
				}
			}
		})
	}
}
