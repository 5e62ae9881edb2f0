package live

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Streams and the writers that serve them: updates are encoded once and
// queued on each stream, then written by the broker's few writers once the
// stream's connection is attached (or by the stream's own handler when its
// connection could not be taken over).

// subscriberBuffer is how many updates a slow stream may fall behind before
// it is dropped; its browser reconnects and replays what it missed. An
// update is everything one batch of events sends a stream.
const subscriberBuffer = 64

// frame is a message encoded for the wire, once for every stream.
type frame struct {
	id       int64
	activity bool
	wire     []byte
}

// update is what one batch of events sends one stream.
type update struct {
	frames []*frame
	wire   []byte // the frames, concatenated
}

// Subscription is one open stream. Updates queue on it; they are written
// by the stream's own handler (see Serve's fallback), or, once the stream's
// connection is attached, by the broker's few writers, so that an idle
// stream costs no goroutine of its own beyond the one reading its
// connection.
type Subscription struct {
	aud Audience
	b   *Broker

	mu    sync.Mutex
	queue []*update
	// wake is signalled when an update is queued and closed when the
	// stream ends, for a handler that writes its own stream.
	wake chan struct{}
	// conn, once attached, is written by the broker's writers.
	conn      net.Conn
	scheduled bool // queued for a writer, or being written
	// seen is the newest line of history the stream replayed; live lines
	// up to it are not written again.
	seen      int64
	heartbeat time.Duration
	lastWrite time.Time
	closed    bool
}

// push queues an update; it reports false when the stream has fallen too
// far behind to keep.
func (s *Subscription) push(u *update) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	if len(s.queue) >= subscriberBuffer {
		return false
	}
	s.queue = append(s.queue, u)
	s.kickLocked()
	return true
}

// kickLocked gets the queue written: by a writer once the connection is
// attached, else by the handler waiting on wake.
func (s *Subscription) kickLocked() {
	if s.conn != nil {
		if !s.scheduled {
			s.scheduled = true
			s.b.schedule(s)
		}
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take empties the queue for a handler that writes its own stream.
func (s *Subscription) take() []*update {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

func (s *Subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.queue = nil
	close(s.wake)
	if s.conn != nil {
		s.conn.Close()
	}
}

// writeConn writes what is queued to the attached connection until the
// queue is empty. A write that fails or stalls for writeTimeout closes the
// connection; the goroutine reading it then ends the stream.
func (s *Subscription) writeConn() {
	for {
		s.mu.Lock()
		if s.closed || len(s.queue) == 0 {
			s.scheduled = false
			s.mu.Unlock()
			return
		}
		q, conn, seen := s.queue, s.conn, s.seen
		s.queue = nil
		s.mu.Unlock()

		var bufs net.Buffers
		for _, u := range q {
			bufs = u.appendTo(bufs, seen)
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := bufs.WriteTo(conn)
		s.mu.Lock()
		s.lastWrite = time.Now()
		s.mu.Unlock()
		if err != nil {
			conn.Close()
			s.mu.Lock()
			s.scheduled = false
			s.mu.Unlock()
			return
		}
	}
}

// writeTimeout bounds one write to a stream. A write blocks only once the
// connection's socket buffer is full, when the client has stopped reading
// for a long while; it is dropped (its browser reconnects and replays)
// rather than holding one of the few writers every stream shares.
const writeTimeout = 2 * time.Second

// schedule queues a stream for a writer.
func (b *Broker) schedule(s *Subscription) {
	b.wmu.Lock()
	b.writes = append(b.writes, s)
	b.wmu.Unlock()
	b.wcond.Signal()
}

func (b *Broker) writer() {
	defer b.workers.Done()
	for {
		b.wmu.Lock()
		for len(b.writes) == 0 && !b.wclosed {
			b.wcond.Wait()
		}
		if b.wclosed {
			b.wmu.Unlock()
			return
		}
		s := b.writes[0]
		b.writes[0] = nil
		b.writes = b.writes[1:]
		b.wmu.Unlock()
		s.writeConn()
	}
}

// attach hands a stream's connection to the broker's writers, with the
// newest line of history already written to it. Updates queued since join
// are written first.
func (b *Broker) attach(s *Subscription, conn net.Conn, seen int64, heartbeat time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		conn.Close()
		return
	}
	s.conn, s.seen, s.heartbeat, s.lastWrite = conn, seen, heartbeat, time.Now()
	if len(s.queue) > 0 {
		s.kickLocked()
	}
}

// heartbeats keeps idle attached streams open through proxies: a comment
// to each that has been written nothing for its heartbeat interval.
func (b *Broker) heartbeats() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	beat := &update{wire: []byte(": heartbeat\n\n")}
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-tick.C:
			b.mu.Lock()
			for _, a := range b.auds {
				for s := range a.subs {
					s.mu.Lock()
					if s.conn != nil && !s.closed && len(s.queue) == 0 && now.Sub(s.lastWrite) >= s.heartbeat {
						s.queue = append(s.queue, beat)
						s.lastWrite = now
						s.kickLocked()
					}
					s.mu.Unlock()
				}
			}
			b.mu.Unlock()
		}
	}
}

func (u *update) add(f *frame) {
	u.frames = append(u.frames, f)
	u.wire = append(u.wire, f.wire...)
}

// appendTo adds the update's bytes to bufs, leaving out lines of history
// the stream already replayed (at most seen).
func (u *update) appendTo(bufs net.Buffers, seen int64) net.Buffers {
	replayed := false
	for _, f := range u.frames {
		replayed = replayed || (f.activity && f.id <= seen)
	}
	if !replayed {
		return append(bufs, u.wire)
	}
	for _, f := range u.frames {
		if !f.activity || f.id > seen {
			bufs = append(bufs, f.wire)
		}
	}
	return bufs
}

// encode writes a message as a Server-Sent Event; each line of the data
// gets its own data: line, as the format requires. A lone carriage return
// ends a line too, for the browser's parser: left in the data, one in a
// caller's name would start a field of its own (an id: or event: line).
func encode(m Message) *frame {
	var b strings.Builder
	b.Grow(len(m.Data) + len(m.Event) + 64)
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
	data := lineEnds.Replace(m.Data)
	for {
		line, rest, more := strings.Cut(data, "\n")
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
		if !more {
			break
		}
		data = rest
	}
	b.WriteByte('\n')
	return &frame{id: m.ID, activity: m.Event == EventActivity, wire: []byte(b.String())}
}

// lineEnds turns each of the line endings Server-Sent Events know into \n.
var lineEnds = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// restamp returns a copy of f with the id id.
func restamp(f *frame, id int64) *frame {
	wire := f.wire
	if f.id > 0 {
		wire = wire[len("id: ")+len(strconv.FormatInt(f.id, 10))+1:]
	}
	out := make([]byte, 0, len(wire)+24)
	out = append(out, "id: "...)
	out = strconv.AppendInt(out, id, 10)
	out = append(out, '\n')
	out = append(out, wire...)
	return &frame{id: id, activity: f.activity, wire: out}
}
