package live

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/warmtransfer/warmtransfer/models"
)

// fixedRenderer returns the same messages whatever it is asked: the board's
// four fragments and one line of activity, of realistic sizes. With it the
// benchmark measures the broker's own cost (batching, locking, one channel
// send per message per subscriber), not rendering or the database.
type fixedRenderer struct {
	frags    []Message
	activity Message
}

func newFixedRenderer() *fixedRenderer {
	frag := func(event string, size int) Message {
		return Message{Event: event, Data: `<section id="` + event + `">` + strings.Repeat("x", size) + `</section>`}
	}
	return &fixedRenderer{
		frags: []Message{
			frag("board-summary", 1<<10),
			frag("board-calls", 16<<10),
			frag("board-agents", 8<<10),
			frag("board-ended", 16<<10),
		},
		activity: Message{Event: EventActivity, Data: `<li class="activity">A caller was offered to Alice</li>`},
	}
}

func (r *fixedRenderer) Fragments(context.Context, Audience) ([]Message, error) {
	return r.frags, nil
}

func (r *fixedRenderer) Activity(_ context.Context, _ Audience, events []models.Event) ([]Message, error) {
	msgs := make([]Message, len(events))
	for i, ev := range events {
		msgs[i] = r.activity
		msgs[i].ID = ev.ID
	}
	return msgs, nil
}

func (r *fixedRenderer) Audiences(context.Context, models.Event) ([]Audience, error) {
	return nil, nil
}

// BenchmarkBrokerPublish is one board update fanned out to 10, 1,000 and
// 10,000 open board streams: each op is the time from Publish until every
// subscriber (a goroutine draining its channel, as an SSE handler does) has
// received all five messages of the update.
func BenchmarkBrokerPublish(b *testing.B) {
	r := newFixedRenderer()
	perUpdate := len(r.frags) + 1
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			broker := NewBroker(r, nil)
			defer broker.Close()
			var updated sync.WaitGroup
			var drained sync.WaitGroup
			for range n {
				s := broker.Subscribe(Audience{Board: true})
				drained.Add(1)
				go func() {
					defer drained.Done()
					got := 0
					for range s.C {
						got++
						if got%perUpdate == 0 {
							updated.Done()
						}
					}
				}()
			}
			id := int64(0)
			for b.Loop() {
				id++
				updated.Add(n)
				broker.Publish(models.Event{ID: id, Kind: "call.offered", CallID: 1})
				updated.Wait()
			}
			b.StopTimer()
			if got := broker.Subscribers(); got != n {
				b.Fatalf("%d of %d subscribers still open: the broker dropped slow ones", got, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
			broker.Close()
			drained.Wait()
		})
	}
}
