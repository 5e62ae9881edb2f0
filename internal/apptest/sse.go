package apptest

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SSEEvent is one Server-Sent Event as a browser's EventSource sees it.
type SSEEvent struct {
	ID    int64
	Event string
	Data  string
}

// Stream is an open /events stream read as an EventSource would.
type Stream struct {
	resp   *http.Response
	events chan SSEEvent
	cancel context.CancelFunc
	Retry  time.Duration
}

// Stream opens the signed-in person's event stream, resuming after
// lastEventID when it is not zero (sent as Last-Event-ID, as a browser does
// when it reconnects).
func (c *Client) Stream(lastEventID int64) *Stream {
	c.env.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.env.URL+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastEventID, 10))
	}
	client := &http.Client{Jar: c.HTTP.Jar}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		c.env.T.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		c.env.T.Fatalf("GET /events: status %d", resp.StatusCode)
	}
	s := &Stream{resp: resp, events: make(chan SSEEvent, 1024), cancel: cancel}
	go s.read()
	c.env.T.Cleanup(s.Close)
	return s
}

func (s *Stream) read() {
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	var ev SSEEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 || ev.Event != "" {
				ev.Data = strings.Join(data, "\n")
				s.events <- ev
			}
			ev, data = SSEEvent{}, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			ev.ID, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			ev.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		case strings.HasPrefix(line, "retry: "):
			ms, _ := strconv.Atoi(line[7:])
			s.Retry = time.Duration(ms) * time.Millisecond
		}
	}
}

// Next returns the next event, waiting up to WaitLimit; ok is false when
// the stream ended.
func (s *Stream) Next() (SSEEvent, bool) {
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(WaitLimit):
		return SSEEvent{}, false
	}
}

// Until reads events until cond holds for one, returning all read.
func (s *Stream) Until(cond func(SSEEvent) bool) ([]SSEEvent, bool) {
	var got []SSEEvent
	for {
		ev, ok := s.Next()
		if !ok {
			return got, false
		}
		got = append(got, ev)
		if cond(ev) {
			return got, true
		}
	}
}

// Close ends the stream, as a browser closing the page does.
func (s *Stream) Close() {
	s.cancel()
	s.resp.Body.Close()
}
