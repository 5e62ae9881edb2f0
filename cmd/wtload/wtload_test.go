package main

import (
	"bytes"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p0 is the min", hundred, 0, time.Millisecond},
		{"p99 of four is the max", []time.Duration{1, 2, 3, 4}, 99, 4},
		{"p50 of four is the second", []time.Duration{1, 2, 3, 4}, 50, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeDoesNotReorderItsInput(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3}
	s := summarize(in)
	if s.N != 5 || s.Min != 1 || s.Max != 5 || s.P50 != 3 || s.Mean != 3 {
		t.Errorf("summarize = %+v", s)
	}
	if in[0] != 5 || in[4] != 3 {
		t.Errorf("summarize sorted its input: %v", in)
	}
}

func TestTallyMerge(t *testing.T) {
	a, b := newTally(), newTally()
	a.add(time.Millisecond, "200")
	b.add(2*time.Millisecond, "200")
	b.add(3*time.Millisecond, "403")
	a.merge(b)
	if len(a.latencies) != 3 || a.count("200") != 2 || a.failures("200") != 1 {
		t.Errorf("merged tally: %d latencies, outcomes %v", len(a.latencies), a.outcomes)
	}
	if got := a.outcomeList(); got != "200×2 403×1" {
		t.Errorf("outcomeList = %q", got)
	}
}

// The app checks webhooks with twiliosig.Valid over its public URL; what
// the tool sends must pass, and only for the URL it was signed for.
func TestSignedRequestPassesTheAppsCheck(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	const public = "https://wt.example.com/conference/wait"
	form := voiceForm(newCallSID(), "in-progress", customerNumber(42))
	req := signedRequest(token, "http://127.0.0.1:9/conference/wait", public, form)
	body, _ := io.ReadAll(req.Body)
	sent, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	sig := req.Header.Get(twiliosig.Header)
	if !twiliosig.Valid(token, public, sent, sig) {
		t.Errorf("the signature does not validate for the public URL")
	}
	if twiliosig.Valid(token, "http://127.0.0.1:9/conference/wait", sent, sig) {
		t.Errorf("the signature validates for the address the request was sent to, not the public URL")
	}
	if sig != twiliosig.Sign(token, public, form) {
		t.Errorf("signature differs from twiliosig.Sign")
	}
	if got := req.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", got)
	}
}

func TestNewCallSID(t *testing.T) {
	a, b := newCallSID(), newCallSID()
	if len(a) != 34 || !strings.HasPrefix(a, "CA") || a == b {
		t.Errorf("CallSids %q, %q", a, b)
	}
}

func TestReadStream(t *testing.T) {
	long := strings.Repeat("x", 20<<10) // longer than the reader's buffer
	stream := "retry: 2000\n\n" +
		"id: 7\nevent: board-calls\ndata: <div>\ndata: </div>\n\n" +
		": heartbeat\n\n" +
		": " + long + "\n\n" +
		"id: 8\r\nevent: activity\r\ndata: " + long + "\r\n\r\n" +
		"event: incoming\ndata: {\"type\":\"incoming\"}\n\n"
	var got []sseMessage
	if err := readStream(strings.NewReader(stream), true, func(m sseMessage) bool {
		m.Data = bytes.Clone(m.Data) // the reader reuses it after fn
		got = append(got, m)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3: %+v", len(got), got)
	}
	if got[0].ID != 7 || got[0].Event != "board-calls" || string(got[0].Data) != "<div>\n</div>" || got[0].DataBytes != 11 {
		t.Errorf("first message = %+v (data %q)", got[0], got[0].Data)
	}
	if got[1].ID != 8 || got[1].Event != "activity" || string(got[1].Data) != long || got[1].DataBytes != len(long) {
		t.Errorf("long message: id %d, event %q, %d bytes kept, %d counted", got[1].ID, got[1].Event, len(got[1].Data), got[1].DataBytes)
	}
	if got[2].ID != 0 || got[2].Event != "incoming" || string(got[2].Data) != `{"type":"incoming"}` {
		t.Errorf("last message = %+v", got[2])
	}
}
