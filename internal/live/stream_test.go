package live

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
)

// browserEnd is the browser's end of an attached stream, read all the time
// (as a browser does: a writer blocked on one unread pipe would hold up
// the others).
type browserEnd struct {
	mu   sync.Mutex
	got  strings.Builder
	more chan struct{} // signalled after each read
	err  error         // set when the stream has ended
}

// attached joins a stream for aud and attaches it to one end of a pipe, as
// Serve does with a connection it takes over.
func attached(t *testing.T, b *Broker, aud Audience, heartbeat time.Duration) *browserEnd {
	t.Helper()
	s, _, _ := b.join(aud)
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	b.attach(s, server, 0, heartbeat)
	e := &browserEnd{more: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := client.Read(buf)
			e.mu.Lock()
			e.got.Write(buf[:n])
			if err != nil {
				e.err = err
			}
			e.mu.Unlock()
			select {
			case e.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return e
}

// waitFor waits until cond holds for what the stream sent and how it
// ended (nil while it is open).
func (e *browserEnd) waitFor(t *testing.T, what string, cond func(got string, err error) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		e.mu.Lock()
		got, err := e.got.String(), e.err
		e.mu.Unlock()
		if cond(got, err) {
			return
		}
		select {
		case <-e.more:
		case <-deadline:
			t.Fatalf("no %s; the stream sent:\n%s(ended: %v)", what, got, err)
		}
	}
}

// sees waits until the stream has sent want count times.
func (e *browserEnd) sees(t *testing.T, want string, count int) {
	t.Helper()
	e.waitFor(t, want, func(got string, _ error) bool { return strings.Count(got, want) >= count })
}

// TestIdleStreamsGetHeartbeats: a stream that nothing is written to gets a
// comment now and then, so proxies between it and the browser do not take
// it for dead.
func TestIdleStreamsGetHeartbeats(t *testing.T) {
	b := NewBroker(&scriptRenderer{}, nil)
	defer b.Close()
	e := attached(t, b, Audience{Board: true}, 10*time.Millisecond)
	// Twice: the heartbeat keeps coming while the stream is idle.
	e.sees(t, ": heartbeat\n\n", 2)
}

// TestClosingTheBrokerEndsEveryStream: at shutdown each open stream ends
// (its connection is closed), so the server is not held up waiting for
// browsers that would otherwise keep them open forever.
func TestClosingTheBrokerEndsEveryStream(t *testing.T) {
	r := &scriptRenderer{everyAgent: true}
	r.set(Message{Event: "summary", Data: "<p>1</p>"})
	b := NewBroker(r, nil)
	board := attached(t, b, Audience{Board: true}, time.Hour)
	agent := attached(t, b, Audience{AgentID: 7}, time.Hour)
	b.Publish(models.Event{ID: 1})
	board.sees(t, "<p>1</p>", 1)
	agent.sees(t, "<p>1</p>", 1)
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("closing the broker did not return")
	}
	for _, e := range []*browserEnd{board, agent} {
		e.waitFor(t, "end of the stream", func(_ string, err error) bool { return err != nil })
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after the broker closed", n)
	}
}

// TestOneRenderPerAudience: however many streams watch the board, and
// however many an agent has open, a change is rendered once for each
// audience, not once per stream.
func TestOneRenderPerAudience(t *testing.T) {
	r := &scriptRenderer{everyAgent: true}
	r.set(Message{Event: "summary", Data: "<p>1</p>"})
	b := NewBroker(r, nil)
	defer b.Close()
	var readers []*browserEnd
	for range 5 {
		readers = append(readers, attached(t, b, Audience{Board: true}, time.Hour))
	}
	for range 3 {
		readers = append(readers, attached(t, b, Audience{AgentID: 7}, time.Hour))
	}
	readers = append(readers, attached(t, b, Audience{AgentID: 8}, time.Hour))
	b.Publish(models.Event{ID: 1})
	for _, e := range readers {
		e.sees(t, "<p>1</p>", 1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.auds) != 1 {
		t.Fatalf("%d render passes for one change, want 1", len(r.auds))
	}
	seen := map[Audience]int{}
	for _, a := range r.auds[0] {
		seen[a]++
	}
	want := map[Audience]int{{Board: true}: 1, {AgentID: 7}: 1, {AgentID: 8}: 1}
	if len(seen) != len(want) {
		t.Fatalf("rendered for %v, want each of %v once", r.auds[0], want)
	}
	for a, n := range want {
		if seen[a] != n {
			t.Fatalf("rendered for %v, want each of %v once", r.auds[0], want)
		}
	}
}

// TestLastEventID: where a stream resumes. 0 is a place like any other (a
// page rendered before the first event); with no place given, or a
// nonsensical one, nothing is replayed.
func TestLastEventID(t *testing.T) {
	for _, tt := range []struct {
		name, header, query string
		want                int64
	}{
		{"nothing", "", "", NoReplay},
		{"the page's place", "", "12", 12},
		{"the page rendered before any event", "", "0", 0},
		{"the browser's reconnect wins", "15", "12", 15},
		{"a header of nonsense falls back to the page's", "x", "12", 12},
		{"negative", "-3", "", NoReplay},
		{"not a number", "", "1e3", NoReplay},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/events?last="+url.QueryEscape(tt.query), nil)
			if tt.query == "" {
				r.URL.RawQuery = ""
			}
			if tt.header != "" {
				r.Header.Set("Last-Event-ID", tt.header)
			}
			if got := LastEventID(r); got != tt.want {
				t.Errorf("LastEventID = %d, want %d", got, tt.want)
			}
		})
	}
}
