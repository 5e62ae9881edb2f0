package live

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Replayer renders what a reconnecting stream missed.
type Replayer interface {
	// Replay returns the activity of the events after afterID that the
	// audience may see, then its fragments as they are now.
	Replay(ctx context.Context, aud Audience, afterID int64) ([]Message, error)
}

// StreamOptions tune a stream.
type StreamOptions struct {
	// Retry is how long a browser waits before reconnecting.
	Retry time.Duration
	// Heartbeat is how often a comment keeps idle connections open.
	Heartbeat time.Duration
}

// Serve writes one Server-Sent Events stream until the client goes away,
// ctx ends (server shutdown) or the broker drops the stream. Messages
// published while the replay is read from the database are not lost: the
// stream subscribes first, and skips live activity it already replayed.
func Serve(ctx context.Context, w http.ResponseWriter, b *Broker, rp Replayer, aud Audience, lastID int64, opts StreamOptions) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("live: the response writer cannot stream")
	}
	sub := b.Subscribe(aud)
	defer b.Unsubscribe(sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", opts.Retry.Milliseconds()); err != nil {
		return nil
	}
	replayed, err := rp.Replay(ctx, aud, lastID)
	if err != nil {
		return err
	}
	seen := lastID
	for _, m := range replayed {
		if err := write(w, m); err != nil {
			return nil
		}
		if m.Event == EventActivity && m.ID > seen {
			seen = m.ID
		}
	}
	flusher.Flush()

	heartbeat := time.NewTicker(opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
			flusher.Flush()
		case m, open := <-sub.C:
			if !open {
				return nil
			}
			if m.Event == EventActivity && m.ID <= seen {
				continue
			}
			if err := write(w, m); err != nil {
				return nil
			}
			// Flush once the burst that arrived together is written.
			if len(sub.C) == 0 {
				flusher.Flush()
			}
		}
	}
}

// EventActivity names the messages that add a line of history.
const EventActivity = "activity"

// write sends one message; each line of the data gets its own data: line,
// as the SSE format requires.
func write(w http.ResponseWriter, m Message) error {
	var b strings.Builder
	if m.ID > 0 {
		b.WriteString("id: ")
		b.WriteString(strconv.FormatInt(m.ID, 10))
		b.WriteByte('\n')
	}
	if m.Event != "" {
		b.WriteString("event: ")
		b.WriteString(m.Event)
		b.WriteByte('\n')
	}
	for _, line := range strings.Split(strings.ReplaceAll(m.Data, "\r\n", "\n"), "\n") {
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write([]byte(b.String()))
	return err
}

// LastEventID reads where a stream should resume: the Last-Event-ID header
// a reconnecting EventSource sends, else the "last" query parameter the
// page was rendered with.
func LastEventID(r *http.Request) int64 {
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("last")} {
		if id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && id > 0 {
			return id
		}
	}
	return 0
}
