package live

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Replayer renders what a stream starts with.
type Replayer interface {
	// Missed returns the activity of the events after afterID that the
	// audience may see.
	Missed(ctx context.Context, aud Audience, afterID int64) ([]Message, error)
	// Current renders the audience's fragments as they are now, and the
	// newest event they reflect.
	Current(ctx context.Context, aud Audience) ([]Message, int64, error)
}

// StreamOptions tune a stream.
type StreamOptions struct {
	// Retry is how long a browser waits before reconnecting.
	Retry time.Duration
	// Heartbeat is how often a comment keeps idle connections open.
	Heartbeat time.Duration
	// Shutdown ends the stream when the server shuts down. A stream
	// outlives its request once the broker writes it (see Serve), so the
	// request's context does not end it.
	Shutdown context.Context
}

// Serve starts one Server-Sent Events stream. It writes the activity the
// client missed (after lastID, unless it is NoReplay) and the audience's
// fragments: those the broker last sent the audience, or, for the first stream of an audience,
// fragments it renders itself. Nothing published meanwhile is lost: the
// stream joins the broker first, and skips live activity it already
// replayed.
//
// Then, on HTTP/1.1, it takes the connection over from net/http and hands
// it to the broker, whose few writers send every update, and returns: one
// small goroutine per stream reads the connection only to learn when the
// client goes away. Ten thousand open dashboards then cost a goroutine and
// a socket each, not a request's worth of buffers and two goroutines.
// Where the connection cannot be taken over (HTTP/2), Serve writes the
// stream itself until the client goes away, ctx or opts.Shutdown ends, or
// the broker drops the stream.
func Serve(ctx context.Context, w http.ResponseWriter, b *Broker, rp Replayer, aud Audience, lastID int64, opts StreamOptions) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("live: the response writer cannot stream")
	}
	if opts.Shutdown == nil {
		opts.Shutdown = context.Background()
	}
	sub, start, gen := b.join(aud)
	attached := false
	defer func() {
		if !attached {
			b.Unsubscribe(sub)
		}
	}()

	var head net.Buffers
	head = append(head, []byte(fmt.Sprintf("retry: %d\n\n", opts.Retry.Milliseconds())))
	seen := max(lastID, 0)
	if lastID != NoReplay {
		missed, err := rp.Missed(ctx, aud, lastID)
		if err != nil {
			return err
		}
		for _, m := range missed {
			head = append(head, encode(m).wire)
			seen = max(seen, m.ID)
		}
	}
	if start == nil {
		msgs, latest, err := rp.Current(ctx, aud)
		if err != nil {
			return err
		}
		b.seed(aud, gen, msgs, latest)
		for _, m := range msgs {
			m.ID = latest
			start = append(start, encode(m))
		}
	}
	for _, f := range start {
		// The fragments the audience was last sent may be older than the
		// history the client has seen (events about others since): stamp
		// them with the newer id, or the browser's next reconnect would
		// replay lines it already shows.
		if f.id < seen {
			f = restamp(f, seen)
		}
		head = append(head, f.wire)
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")

	// Whatever net/http had buffered from the connection (a client of
	// the stream sends nothing after its request) is dropped with the
	// bufio.ReadWriter.
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		attached = true
		b.serveConn(sub, conn, h, head, seen, opts)
		return nil
	}

	w.WriteHeader(http.StatusOK)
	if _, err := head.WriteTo(w); err != nil {
		return nil
	}
	flusher.Flush()
	heartbeat := time.NewTicker(opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-opts.Shutdown.Done():
			return nil
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
			flusher.Flush()
		case _, open := <-sub.wake:
			if !open {
				return nil
			}
			for _, u := range sub.take() {
				bufs := u.appendTo(nil, seen)
				if _, err := bufs.WriteTo(w); err != nil {
					return nil
				}
			}
			flusher.Flush()
		}
	}
}

// serveConn writes the response's head and the stream's start to a
// connection taken over from net/http, attaches it to the broker, and
// leaves a goroutine reading it: the stream ends when the client closes
// it, when a write fails, or at shutdown.
func (b *Broker) serveConn(sub *Subscription, conn net.Conn, h http.Header, start net.Buffers, seen int64, opts StreamOptions) {
	var resp bytes.Buffer
	resp.WriteString("HTTP/1.1 200 OK\r\n")
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	// The body ends when the connection does.
	h.Set("Connection", "close")
	h.Write(&resp)
	resp.WriteString("\r\n")
	bufs := append(net.Buffers{resp.Bytes()}, start...)
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := bufs.WriteTo(conn); err != nil {
		conn.Close()
		b.Unsubscribe(sub)
		return
	}
	b.attach(sub, conn, seen, opts.Heartbeat)
	// Whatever read deadline the server set for the request no longer
	// applies: the stream reads until the client goes.
	conn.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(opts.Shutdown, func() { conn.Close() })
	go func() {
		defer b.Unsubscribe(sub)
		defer stop()
		defer conn.Close()
		var buf [64]byte
		for {
			if _, err := conn.Read(buf[:]); err != nil {
				return
			}
		}
	}()
}

// EventActivity names the messages that add a line of history.
const EventActivity = "activity"

// NoReplay is the last event id of a stream that resumes nothing: it
// starts from the audience's fragments as they are now.
const NoReplay = -1

// LastEventID reads where a stream should resume: the Last-Event-ID header
// a reconnecting EventSource sends, else the "last" query parameter the
// page was rendered with. 0 is a place to resume too (a page rendered
// before the first event); with neither, or nonsense, it is NoReplay.
func LastEventID(r *http.Request) int64 {
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("last")} {
		if id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && id >= 0 {
			return id
		}
	}
	return NoReplay
}
