package apptest

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// SSEEvent is one Server-Sent Event as a browser's EventSource sees it.
type SSEEvent struct {
	ID    int64
	Event string
	Data  string
}

// Stream is an open /events stream read as an EventSource would, and
// applied as the page does: a "patch" event's out-of-band parts are swapped
// into the fragments they belong to, and each fragment so changed is
// delivered whole, as if the server had sent it, so tests read fragments
// whichever way the server chose to send them.
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
	return c.open("/events", lastEventID)
}

// StreamAt opens the event stream at src, a page's sse-connect URL (which
// carries where the page's stream resumes), as the page itself does.
func (c *Client) StreamAt(src string) *Stream {
	c.env.T.Helper()
	return c.open(src, 0)
}

func (c *Client) open(path string, lastEventID int64) *Stream {
	c.env.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.env.URL+path, nil)
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
		c.env.T.Fatalf("GET %s: status %d", path, resp.StatusCode)
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
	frags := map[string]string{} // the page's fragments, by event
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 || ev.Event != "" {
				ev.Data = strings.Join(data, "\n")
				for _, e := range ApplyPatch(frags, ev) {
					s.events <- e
				}
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

// patchEvent names the server's events of out-of-band parts.
const patchEvent = "patch"

// ApplyPatch keeps frags (the page's fragments) current with ev and returns
// what a test reads for it: ev itself, or for a patch each fragment it
// changed, whole. A part whose element is on no fragment is a server bug
// the browser would report (htmx:oobErrorNoTarget); the patch is then
// returned as it came, for the test to fail on.
func ApplyPatch(frags map[string]string, ev SSEEvent) []SSEEvent {
	if ev.Event != patchEvent {
		if ev.Event != "activity" {
			frags[ev.Event] = ev.Data
		}
		return []SSEEvent{ev}
	}
	patch, err := goquery.NewDocumentFromReader(strings.NewReader(ev.Data))
	if err != nil {
		return []SSEEvent{ev}
	}
	docs := map[string]*goquery.Document{}
	var order []string
	ok := true
	patch.Find("[hx-swap-oob]").Each(func(_ int, part *goquery.Selection) {
		swap, _ := part.Attr("hx-swap-oob")
		part.RemoveAttr("hx-swap-oob")
		// The element swapped, and what it is swapped with: the part
		// itself (replace), nothing (delete), or the part's children
		// inserted beside another element (afterend:#id, beforebegin:#id).
		id, _ := part.Attr("id")
		how := "replace"
		if style, sel, found := strings.Cut(swap, ":"); found {
			how, id = style, strings.TrimPrefix(sel, "#")
		} else if swap == "delete" {
			how = "delete"
		}
		var html string
		var err error
		if how == "replace" {
			html, err = goquery.OuterHtml(part)
		} else {
			html, err = part.Html()
		}
		if id == "" || err != nil {
			ok = false
			return
		}
		for event, data := range frags {
			// The fragment holds the element as it came, or as this patch
			// changed it so far (a row it inserted).
			if !strings.Contains(data, `id="`+id+`"`) && (docs[event] == nil || docs[event].Find(`[id="`+id+`"]`).Length() == 0) {
				continue
			}
			doc := docs[event]
			if doc == nil {
				if doc, err = goquery.NewDocumentFromReader(strings.NewReader(data)); err != nil {
					continue
				}
				docs[event] = doc
				order = append(order, event)
			}
			target := doc.Find(`[id="` + id + `"]`)
			if target.Length() != 1 {
				continue
			}
			switch how {
			case "replace":
				target.ReplaceWithHtml(html)
			case "delete":
				target.Remove()
			case "afterend":
				target.AfterHtml(html)
			case "beforebegin":
				target.BeforeHtml(html)
			default:
				ok = false
			}
			return
		}
		ok = false
	})
	if !ok || len(order) == 0 {
		return []SSEEvent{ev}
	}
	out := make([]SSEEvent, 0, len(order))
	for _, event := range order {
		html, err := docs[event].Find("body").Html()
		if err != nil {
			return []SSEEvent{ev}
		}
		frags[event] = html
		out = append(out, SSEEvent{ID: ev.ID, Event: event, Data: html})
	}
	return out
}
