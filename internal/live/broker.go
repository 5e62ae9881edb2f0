// Package live pushes what changed to the people watching: each committed
// event is turned into HTML fragments, rendered once per audience (the
// managers' board, or one agent's console), and sent to every open
// Server-Sent Events stream of that audience.
package live

import (
	"context"
	"log/slog"
	"sync"

	"github.com/warmtransfer/warmtransfer/models"
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
}

// Renderer turns state into messages. The broker calls it once per
// audience for a batch of events, whatever the number of streams.
type Renderer interface {
	// Fragments renders the audience's live fragments as they are now.
	Fragments(ctx context.Context, aud Audience) ([]Message, error)
	// Activity renders events as lines of history, leaving out those the
	// audience should not see.
	Activity(ctx context.Context, aud Audience, events []models.Event) ([]Message, error)
	// Audiences returns the audiences an event concerns, besides the board.
	Audiences(ctx context.Context, ev models.Event) ([]Audience, error)
}

// subscriberBuffer is how many messages a slow stream may fall behind
// before it is dropped; its browser reconnects and replays what it missed.
const subscriberBuffer = 256

// Subscription is one open stream.
type Subscription struct {
	C    <-chan Message
	ch   chan Message
	aud  Audience
	once sync.Once
}

// Broker fans events out to subscriptions.
type Broker struct {
	render Renderer
	log    *slog.Logger

	mu      sync.Mutex
	subs    map[Audience]map[*Subscription]struct{}
	pending []models.Event
	wake    chan struct{}
	closed  bool

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
		subs: map[Audience]map[*Subscription]struct{}{},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
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
	ch := make(chan Message, subscriberBuffer)
	s := &Subscription{C: ch, ch: ch, aud: aud}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return s
	}
	if b.subs[aud] == nil {
		b.subs[aud] = map[*Subscription]struct{}{}
	}
	b.subs[aud][s] = struct{}{}
	return s
}

// Unsubscribe closes a stream; it is safe to call more than once.
func (b *Broker) Unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(s)
}

func (b *Broker) removeLocked(s *Subscription) {
	if set, ok := b.subs[s.aud]; ok {
		if _, ok := set[s]; ok {
			delete(set, s)
			if len(set) == 0 {
				delete(b.subs, s.aud)
			}
		}
	}
	s.once.Do(func() { close(s.ch) })
}

// Subscribers counts open streams.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, set := range b.subs {
		n += len(set)
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
	for _, set := range b.subs {
		for s := range set {
			b.removeLocked(s)
		}
	}
	b.mu.Unlock()
	b.cancel()
	<-b.done
}

func (b *Broker) loop() {
	defer close(b.done)
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

// deliver renders a batch of events for every audience it concerns that
// has a stream open, once per audience, and sends the result.
func (b *Broker) deliver(batch []models.Event) {
	ctx := b.ctx
	// With no stream open there is nobody to render for; finding who an
	// event concerns costs queries (a presence change reads every agent).
	if b.Subscribers() == 0 {
		return
	}
	audiences := map[Audience]bool{{Board: true}: true}
	for _, ev := range batch {
		auds, err := b.render.Audiences(ctx, ev)
		if err != nil {
			b.log.Error("live: finding who an event concerns", "event", ev.ID, "err", err)
			continue
		}
		for _, a := range auds {
			audiences[a] = true
		}
	}
	last := batch[len(batch)-1].ID
	for aud := range audiences {
		if !b.watched(aud) {
			continue
		}
		msgs, err := b.render.Activity(ctx, aud, batch)
		if err != nil {
			b.log.Error("live: rendering activity", "audience", aud, "err", err)
			msgs = nil
		}
		frags, err := b.render.Fragments(ctx, aud)
		if err != nil {
			b.log.Error("live: rendering fragments", "audience", aud, "err", err)
			continue
		}
		for _, f := range frags {
			f.ID = last
			msgs = append(msgs, f)
		}
		b.send(aud, msgs)
	}
}

func (b *Broker) watched(aud Audience) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[aud]) > 0
}

func (b *Broker) send(aud Audience, msgs []Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[aud] {
		for _, m := range msgs {
			select {
			case s.ch <- m:
			default:
				// Too slow: drop the stream rather than stall everyone.
				// Its browser reconnects with Last-Event-ID and replays.
				b.log.Warn("live: dropping a stream that fell behind", "audience", aud)
				b.removeLocked(s)
			}
			if _, still := b.subs[aud][s]; !still {
				break
			}
		}
	}
}
