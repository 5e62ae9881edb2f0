package live

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/warmtransfer/warmtransfer/models"
)

// rowsRenderer renders a board of realistic size whose agents' list has a
// hundred rows, and changes one row per event, as a colleague's presence
// change does: the benchmark measures the broker's own cost (diffing,
// encoding, locking, one channel send per subscriber), not rendering or the
// database.
type rowsRenderer struct {
	rows int
}

func (r *rowsRenderer) Render(_ context.Context, auds []Audience, batch []models.Event, emit func(Audience, []Message)) error {
	changed := int(batch[len(batch)-1].ID) % r.rows
	agents := Message{Event: "board-agents"}
	var data strings.Builder
	data.WriteString(`<section id="board-agents"><table><tbody>`)
	for i := range r.rows {
		state := "available"
		if i == changed {
			state = fmt.Sprintf("away-%d", batch[len(batch)-1].ID)
		}
		html := fmt.Sprintf(`<tr id="board-agent-%d" data-presence="%s"><td>Agent %d</td><td>%s</td></tr>`, i, state, i, strings.Repeat("x", 300))
		agents.Parts = append(agents.Parts, Part{ID: fmt.Sprintf("board-agent-%d", i), HTML: html})
		data.WriteString(html)
	}
	data.WriteString(`</tbody></table></section>`)
	agents.Data = data.String()
	msgs := []Message{
		{Event: "board-summary", Data: `<section id="board-summary">` + strings.Repeat("s", 1<<10) + `</section>`},
		{Event: "board-calls", Data: `<section id="board-calls">` + strings.Repeat("c", 16<<10) + `</section>`},
		agents,
		{Event: "board-ended", Data: `<section id="board-ended">` + strings.Repeat("e", 16<<10) + `</section>`},
	}
	for _, aud := range auds {
		emit(aud, msgs)
	}
	return nil
}

func (r *rowsRenderer) Audiences(context.Context, models.Event) ([]Audience, bool, error) {
	return nil, false, nil
}

// BenchmarkBrokerPublish is one board change fanned out to 10, 1,000 and
// 10,000 open board streams: each op is the time from Publish until every
// subscriber (a goroutine draining its queue, as a handler that writes its
// own stream does) has received the update. wire-B/sub is what each stream is sent per change.
func BenchmarkBrokerPublish(b *testing.B) {
	r := &rowsRenderer{rows: 100}
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			broker := NewBroker(r, nil)
			defer broker.Close()
			var updated sync.WaitGroup
			var drained sync.WaitGroup
			var wire atomic.Int64
			for range n {
				s := broker.Subscribe(Audience{Board: true})
				drained.Add(1)
				go func() {
					defer drained.Done()
					for range s.wake {
						for _, u := range s.take() {
							wire.Add(int64(len(u.wire)))
							updated.Done()
						}
					}
				}()
			}
			// The first change sends every fragment whole; the ones
			// measured send what changed.
			updated.Add(n)
			broker.Publish(models.Event{ID: 1, Kind: "agent.presence"})
			updated.Wait()
			wire.Store(0)
			id := int64(1)
			for b.Loop() {
				id++
				updated.Add(n)
				broker.Publish(models.Event{ID: id, Kind: "agent.presence"})
				updated.Wait()
			}
			b.StopTimer()
			if got := broker.Subscribers(); got != n {
				b.Fatalf("%d of %d subscribers still open: the broker dropped slow ones", got, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
			b.ReportMetric(float64(wire.Load())/float64(b.N)/float64(n), "wire-B/sub")
			broker.Close()
			drained.Wait()
		})
	}
}
