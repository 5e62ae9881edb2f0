package live

import (
	"context"
	"fmt"
	"io"
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
}

// Serve writes one Server-Sent Events stream until the client goes away,
// ctx ends (server shutdown) or the broker drops the stream. It starts with
// the activity the client missed (after lastID) and the audience's
// fragments: those the broker last sent the audience, or, for the first
// stream of an audience, fragments it renders itself. Nothing published
// meanwhile is lost: the stream joins the broker first, and skips live
// activity it already replayed.
func Serve(ctx context.Context, w http.ResponseWriter, b *Broker, rp Replayer, aud Audience, lastID int64, opts StreamOptions) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("live: the response writer cannot stream")
	}
	sub, start, gen := b.join(aud)
	defer b.Unsubscribe(sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", opts.Retry.Milliseconds()); err != nil {
		return nil
	}
	seen := lastID
	if lastID > 0 {
		missed, err := rp.Missed(ctx, aud, lastID)
		if err != nil {
			return err
		}
		for _, m := range missed {
			if _, err := w.Write(encode(m).wire); err != nil {
				return nil
			}
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
		if _, err := w.Write(f.wire); err != nil {
			return nil
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
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
			flusher.Flush()
		case u, open := <-sub.c:
			if !open {
				return nil
			}
			if err := writeUpdate(w, u, seen); err != nil {
				return nil
			}
			// Flush once the burst that arrived together is written.
			if len(sub.c) == 0 {
				flusher.Flush()
			}
		}
	}
}

// EventActivity names the messages that add a line of history.
const EventActivity = "activity"

// writeUpdate writes an update, leaving out lines of history the stream
// already replayed (at most seen).
func writeUpdate(w io.Writer, u *update, seen int64) error {
	replayed := false
	for _, f := range u.frames {
		replayed = replayed || (f.activity && f.id <= seen)
	}
	if !replayed {
		_, err := w.Write(u.wire)
		return err
	}
	for _, f := range u.frames {
		if f.activity && f.id <= seen {
			continue
		}
		if _, err := w.Write(f.wire); err != nil {
			return err
		}
	}
	return nil
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
