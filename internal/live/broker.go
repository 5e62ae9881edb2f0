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
	"runtime"
	"strings"
	"sync"

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
	// Render renders, for each audience in the order given, the lines of
	// history of the batch the audience may see, then its live fragments
	// as they are now, once per audience whatever the number of streams,
	// and hands each audience's messages to emit as soon as they are
	// rendered.
	Render(ctx context.Context, auds []Audience, batch []models.Event, emit func(Audience, []Message)) error
	// Audiences returns the agents an event concerns besides the board;
	// all says it concerns every agent's console.
	Audiences(ctx context.Context, ev models.Event) (auds []Audience, all bool, err error)
}

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
	var want []Audience
	for _, aud := range watched {
		if aud.Board {
			want = append([]Audience{aud}, want...)
		} else if concerned[aud] || everyAgent {
			want = append(want, aud)
		}
	}
	last := batch[len(batch)-1].ID
	sent := make(map[Audience]bool, len(want))
	err := b.render.Render(ctx, want, batch, func(aud Audience, msgs []Message) {
		sent[aud] = true
		b.send(aud, msgs, last)
	})
	if err != nil {
		b.log.Error("live: rendering", "err", err)
		// What the audiences not rendered were sent is now out of date:
		// forget it, so that the next change sends them everything.
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, aud := range want {
			if a := b.auds[aud]; a != nil && !sent[aud] {
				a.frags, a.start = nil, nil
				a.gen++
			}
		}
	}
}

// send records what was rendered for an audience and sends its streams
// what changed.
func (b *Broker) send(aud Audience, msgs []Message, last int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.auds[aud]
	if a == nil {
		return // its last stream closed while it was rendered
	}
	u := a.apply(msgs, last)
	if u == nil {
		return
	}
	for s := range a.subs {
		if !s.push(u) {
			// Too slow: drop the stream rather than stall everyone. Its
			// browser reconnects with Last-Event-ID and replays.
			b.log.Warn("live: dropping a stream that fell behind", "audience", aud)
			b.removeLocked(s)
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
