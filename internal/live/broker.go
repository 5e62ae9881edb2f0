// Package live pushes what changed to the people watching: each committed
// event is turned into HTML fragments, rendered once per audience (the
// managers' board, or one agent's console), and sent to every open
// Server-Sent Events stream of that audience.
//
// The broker remembers what it last sent each audience, so that it sends
// only what changed: a fragment that renders the same is not sent again,
// and when only some parts of a fragment changed (one agent's row of a
// hundred) it sends those parts alone. A new stream starts from that same
// memory instead of rendering again. Each message is encoded for the wire
// once, whatever the number of streams.
package live

import (
	"context"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// Audience is who a stream is for: the board, or one agent's console.
type Audience struct {
	Board   bool
	AgentID int64
}

// Message is one Server-Sent Event.
type Message struct {
	ID    int64
	Event string
	Data  string
	// Parts are pieces of Data that may be replaced on their own, in the
	// order they appear in it (see views.Part).
	Parts []Part
}

// Part is one rendered views.Part: an element with a page-unique id.
type Part struct {
	ID   string
	HTML string
}

// Renderer turns state into messages.
type Renderer interface {
	// Render renders, for each audience, the lines of history of the batch
	// the audience may see, then its live fragments as they are now, once
	// per audience whatever the number of streams.
	Render(ctx context.Context, auds []Audience, batch []models.Event) (map[Audience][]Message, error)
	// Audiences returns the agents an event concerns besides the board;
	// all says it concerns every agent's console.
	Audiences(ctx context.Context, ev models.Event) (auds []Audience, all bool, err error)
}

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

// fragmentState is the last version of a fragment an audience was sent.
type fragmentState struct {
	msg Message
	// skeleton is the fragment without its parts; diffable says the parts
	// were found in it, in order.
	skeleton string
	diffable bool
}

// audience is an audience's open streams and what they were last sent.
type audience struct {
	subs map[*Subscription]struct{}
	// frags is nil until the audience's fragments were rendered (by the
	// broker, or by its first stream).
	frags []fragmentState
	id    int64 // the newest event the fragments reflect
	// gen counts changes to frags; a stream that rendered the fragments
	// itself keeps them only if nothing changed meanwhile.
	gen uint64
	// start caches frags encoded for a new stream.
	start []*frame
}

// Broker fans events out to subscriptions.
type Broker struct {
	render Renderer
	log    *slog.Logger

	mu      sync.Mutex
	auds    map[Audience]*audience
	pending []models.Event
	wake    chan struct{}
	closed  bool

	// Streams whose connections are attached wait here for a writer.
	wmu     sync.Mutex
	wcond   *sync.Cond
	writes  []*Subscription
	wclosed bool
	workers sync.WaitGroup

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// NewBroker starts a broker; Close stops it.
func NewBroker(render Renderer, log *slog.Logger) *Broker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		render: render, log: log,
		auds: map[Audience]*audience{},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	b.wcond = sync.NewCond(&b.wmu)
	// A few writers serve every attached stream: writes to loopback or a
	// proxy rarely block, and a stalled one times out.
	for range max(4, 2*runtime.GOMAXPROCS(0)) {
		b.workers.Add(1)
		go b.writer()
	}
	go b.loop()
	return b
}

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

// Publish hands the broker a committed event. It never blocks: events are
// batched, so a burst is rendered once.
func (b *Broker) Publish(ev models.Event) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.pending = append(b.pending, ev)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Subscribe opens a stream for an audience.
func (b *Broker) Subscribe(aud Audience) *Subscription {
	s, _, _ := b.join(aud)
	return s
}

// join opens a stream and returns, in the same step, what the audience was
// last sent (nil if it was never rendered) and the state's generation for
// seed. Every update sent after it is relative to what it returned.
func (b *Broker) join(aud Audience) (*Subscription, []*frame, uint64) {
	s := &Subscription{aud: aud, b: b, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.close()
		return s, nil, 0
	}
	a := b.auds[aud]
	if a == nil {
		a = &audience{subs: map[*Subscription]struct{}{}}
		b.auds[aud] = a
	}
	a.subs[s] = struct{}{}
	if a.frags == nil {
		return s, nil, a.gen
	}
	if a.start == nil {
		for _, f := range a.frags {
			m := f.msg
			m.ID = a.id
			a.start = append(a.start, encode(m))
		}
	}
	return s, a.start, a.gen
}

// seed keeps fragments a stream rendered itself, as what the audience was
// last sent, unless the broker sent the audience something since join
// returned gen.
func (b *Broker) seed(aud Audience, gen uint64, msgs []Message, id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.auds[aud]
	if a == nil || a.gen != gen || a.frags != nil {
		return
	}
	a.frags = make([]fragmentState, len(msgs))
	for i, m := range msgs {
		a.frags[i] = newFragmentState(m)
	}
	a.id = id
	a.gen++
}

// Unsubscribe closes a stream; it is safe to call more than once.
func (b *Broker) Unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(s)
}

// removeLocked closes a stream. An audience nobody watches is forgotten:
// what it was sent would go stale without anyone to send changes to.
func (b *Broker) removeLocked(s *Subscription) {
	if a, ok := b.auds[s.aud]; ok {
		if _, ok := a.subs[s]; ok {
			delete(a.subs, s)
			if len(a.subs) == 0 {
				delete(b.auds, s.aud)
			}
		}
	}
	s.close()
}

// Subscribers counts open streams.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, a := range b.auds {
		n += len(a.subs)
	}
	return n
}

// Close ends every stream and stops the broker.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return
	}
	b.closed = true
	for _, a := range b.auds {
		for s := range a.subs {
			b.removeLocked(s)
		}
	}
	b.mu.Unlock()
	b.cancel()
	<-b.done
	b.wmu.Lock()
	b.wclosed = true
	b.wmu.Unlock()
	b.wcond.Broadcast()
	b.workers.Wait()
}

func (b *Broker) loop() {
	defer close(b.done)
	go b.heartbeats()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
		}
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		if len(batch) > 0 {
			b.deliver(batch)
		}
	}
}

// deliver renders a batch of events for every watched audience it
// concerns, once per audience, and sends each what changed for it.
func (b *Broker) deliver(batch []models.Event) {
	ctx := b.ctx
	watched := b.watched()
	// With no stream open there is nobody to render for, and finding who
	// an event concerns costs queries.
	if len(watched) == 0 {
		return
	}
	concerned := map[Audience]bool{{Board: true}: true}
	everyAgent := false
	for _, ev := range batch {
		auds, all, err := b.render.Audiences(ctx, ev)
		if err != nil {
			b.log.Error("live: finding who an event concerns", "event", ev.ID, "err", err)
			continue
		}
		everyAgent = everyAgent || all
		for _, a := range auds {
			concerned[a] = true
		}
	}
	// The board first: rendered and on its way to every manager while the
	// consoles render.
	var board, consoles []Audience
	for _, aud := range watched {
		switch {
		case aud.Board:
			board = append(board, aud)
		case concerned[aud] || everyAgent:
			consoles = append(consoles, aud)
		}
	}
	last := batch[len(batch)-1].ID
	for _, want := range [][]Audience{board, consoles} {
		if len(want) > 0 {
			b.renderAndSend(ctx, want, batch, last)
		}
	}
}

// renderAndSend renders a batch for some audiences and sends each what
// changed for it.
func (b *Broker) renderAndSend(ctx context.Context, want []Audience, batch []models.Event, last int64) {
	rendered, err := b.render.Render(ctx, want, batch)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.log.Error("live: rendering", "err", err)
		// What these audiences were sent is now out of date: forget it,
		// so that the next change sends them everything.
		for _, aud := range want {
			if a := b.auds[aud]; a != nil {
				a.frags, a.start = nil, nil
				a.gen++
			}
		}
		return
	}
	for aud, msgs := range rendered {
		a := b.auds[aud]
		if a == nil {
			continue // its last stream closed while it was rendered
		}
		u := a.apply(msgs, last)
		if u == nil {
			continue
		}
		for s := range a.subs {
			if !s.push(u) {
				// Too slow: drop the stream rather than stall everyone.
				// Its browser reconnects with Last-Event-ID and replays.
				b.log.Warn("live: dropping a stream that fell behind", "audience", aud)
				b.removeLocked(s)
			}
		}
	}
}

// watched lists the audiences with a stream open.
func (b *Broker) watched() []Audience {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Audience, 0, len(b.auds))
	for aud := range b.auds {
		out = append(out, aud)
	}
	return out
}

// apply records what was rendered for the audience as what it was sent, and
// returns the update that brings its streams from the previous version to
// this one: the activity, the fragments that changed whole, and one patch
// with the parts that changed alone. It returns nil when nothing changed.
func (a *audience) apply(msgs []Message, last int64) *update {
	prev := make(map[string]*fragmentState, len(a.frags))
	for i := range a.frags {
		prev[a.frags[i].msg.Event] = &a.frags[i]
	}
	u := &update{}
	var next []fragmentState
	var patch strings.Builder
	for _, m := range msgs {
		if m.Event == EventActivity {
			u.add(encode(m))
			continue
		}
		st := newFragmentState(m)
		next = append(next, st)
		p := prev[m.Event]
		switch {
		case p != nil && p.msg.Data == m.Data:
			continue
		case p != nil && p.diffable && st.diffable && p.skeleton == st.skeleton:
			if ops, ok := diffParts(p.msg.Parts, m.Parts); ok {
				patch.WriteString(ops)
				continue
			}
			// The parts changed in a way a patch cannot say: send it all.
			u.add(encode(Message{ID: last, Event: m.Event, Data: m.Data}))
		default:
			u.add(encode(Message{ID: last, Event: m.Event, Data: m.Data}))
		}
	}
	if patch.Len() > 0 {
		u.add(encode(Message{ID: last, Event: views.EventPatch, Data: patch.String()}))
	}
	a.frags, a.start = next, nil
	a.id = last
	a.gen++
	if len(u.frames) == 0 {
		return nil
	}
	return u
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
// gets its own data: line, as the format requires.
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
	data := strings.ReplaceAll(m.Data, "\r\n", "\n")
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
