package live

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
)

// scriptRenderer renders whatever the test set last.
type scriptRenderer struct {
	mu      sync.Mutex
	msgs    []Message
	batches []int64 // the last event id of each batch rendered
	ids     []int64 // every event id rendered, in order
	auds    [][]Audience
	// everyAgent makes every event concern every agent.
	everyAgent bool
}

// renderedUpTo waits until the broker has rendered the batch with event id.
func (r *scriptRenderer) renderedUpTo(t *testing.T, id int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		done := len(r.batches) > 0 && r.batches[len(r.batches)-1] >= id
		r.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker never rendered event %d", id)
		}
		time.Sleep(time.Millisecond)
	}
}

// rendered returns every event id rendered so far.
func (r *scriptRenderer) rendered() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func (r *scriptRenderer) set(msgs ...Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = msgs
}

func (r *scriptRenderer) Render(_ context.Context, auds []Audience, batch []models.Event, emit func(Audience, []Message)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, batch[len(batch)-1].ID)
	r.auds = append(r.auds, slices.Clone(auds))
	for _, ev := range batch {
		r.ids = append(r.ids, ev.ID)
	}
	for _, a := range auds {
		emit(a, r.msgs)
	}
	return nil
}

func (r *scriptRenderer) Audiences(context.Context, models.Event) ([]Audience, bool, error) {
	return nil, r.everyAgent, nil
}

// list is a fragment with a count and one row per state, each a part.
func list(count string, states ...string) Message {
	m := Message{Event: "agents"}
	var b strings.Builder
	b.WriteString(`<section id="agents"><h2>Agents</h2>`)
	c := `<span id="count">` + count + `</span>`
	b.WriteString(c)
	m.Parts = append(m.Parts, Part{ID: "count", HTML: c})
	b.WriteString(`<table><tbody>`)
	for i, s := range states {
		id := "row-" + string(rune('a'+i))
		row := `<tr id="` + id + `" data-state="` + s + `"><td>` + s + `</td></tr>`
		m.Parts = append(m.Parts, Part{ID: id, HTML: row})
		b.WriteString(row)
	}
	b.WriteString(`</tbody></table></section>`)
	m.Data = b.String()
	return m
}

func nextUpdate(t *testing.T, s *Subscription) string {
	t.Helper()
	select {
	case _, ok := <-s.wake:
		if !ok {
			t.Fatal("the stream was closed")
		}
		var b strings.Builder
		for _, u := range s.take() {
			b.Write(u.wire)
		}
		return b.String()
	case <-time.After(5 * time.Second):
		t.Fatal("no update")
	}
	return ""
}

func TestBrokerSendsWhatChanged(t *testing.T) {
	r := &scriptRenderer{}
	b := NewBroker(r, nil)
	defer b.Close()
	s := b.Subscribe(Audience{Board: true})

	summary := Message{Event: "summary", Data: "<p>2 waiting</p>"}
	r.set(summary, list("1 available", "available", "away"))
	b.Publish(models.Event{ID: 1})
	first := nextUpdate(t, s)
	for _, want := range []string{"id: 1\nevent: summary\ndata: <p>2 waiting</p>\n\n", "event: agents\n", `<tr id="row-b" data-state="away">`} {
		if !strings.Contains(first, want) {
			t.Fatalf("the first update lacks %q:\n%s", want, first)
		}
	}

	// One row and the count change: a patch with those two parts only,
	// each marked for an out-of-band swap in its own template.
	r.set(summary, list("2 available", "available", "available"))
	b.Publish(models.Event{ID: 2})
	patch := nextUpdate(t, s)
	want := "id: 2\nevent: patch\ndata: " +
		`<template><span hx-swap-oob="true" id="count">2 available</span></template>` +
		`<template><tr hx-swap-oob="true" id="row-b" data-state="available"><td>available</td></tr></template>` + "\n\n"
	if patch != want {
		t.Fatalf("patch:\n got %q\nwant %q", patch, want)
	}

	// The same render again sends nothing; a change outside the parts
	// sends the fragment whole. The update after proves the first sent
	// nothing.
	b.Publish(models.Event{ID: 3})
	r.renderedUpTo(t, 3)
	team := func(m Message) Message {
		m.Data = strings.Replace(m.Data, "<h2>Agents</h2>", "<h2>Team</h2>", 1)
		return m
	}
	r.set(summary, team(list("2 available", "available", "available")))
	b.Publish(models.Event{ID: 4})
	whole := nextUpdate(t, s)
	if !strings.HasPrefix(whole, "id: 4\nevent: agents\n") || !strings.Contains(whole, "<h2>Team</h2>") || strings.Contains(whole, "summary") {
		t.Fatalf("a change outside the parts should send that fragment whole, and only it:\n%s", whole)
	}

	// A row added is inserted after the row before it; a row gone is
	// deleted; rows that stay and did not change are not sent.
	r.set(summary, team(list("2 available", "available", "available", "away")))
	b.Publish(models.Event{ID: 5})
	want = "id: 5\nevent: patch\ndata: " +
		`<template><tbody hx-swap-oob="afterend:#row-b"><tr id="row-c" data-state="away"><td>away</td></tr></tbody></template>` + "\n\n"
	if u := nextUpdate(t, s); u != want {
		t.Fatalf("a new row:\n got %q\nwant %q", u, want)
	}
	gone := team(list("2 available", "available", "available", "away"))
	gone.Parts = append(gone.Parts[:1], gone.Parts[2:]...) // row-a is gone
	gone.Data = strings.Replace(gone.Data, `<tr id="row-a" data-state="available"><td>available</td></tr>`, "", 1)
	r.set(summary, gone)
	b.Publish(models.Event{ID: 6})
	want = "id: 6\nevent: patch\ndata: " + `<template><div id="row-a" hx-swap-oob="delete"></div></template>` + "\n\n"
	if u := nextUpdate(t, s); u != want {
		t.Fatalf("a row gone:\n got %q\nwant %q", u, want)
	}
	// Rows that swap places cannot be patched: whole.
	swapped := team(list("2 available", "away", "available"))
	swapped.Parts[1].ID, swapped.Parts[2].ID = "row-c", "row-b"
	swapped.Data = strings.NewReplacer(`id="row-a"`, `id="row-c"`).Replace(swapped.Data)
	r.set(summary, swapped)
	b.Publish(models.Event{ID: 7})
	if u := nextUpdate(t, s); !strings.HasPrefix(u, "id: 7\nevent: agents\n") {
		t.Fatalf("rows that changed order should send the fragment whole:\n%s", u)
	}

	// A stream that joins now starts from what the audience was last
	// sent, stamped with the newest event, without rendering.
	_, start, _ := b.join(Audience{Board: true})
	var got bytes.Buffer
	for _, f := range start {
		got.Write(f.wire)
	}
	for _, want := range []string{"id: 7\nevent: summary\n", "id: 7\nevent: agents\n", `id="row-c"`} {
		if !strings.Contains(got.String(), want) {
			t.Fatalf("a new stream's start lacks %q:\n%s", want, got.String())
		}
	}
}

func TestBrokerForgetsAudiencesNobodyWatches(t *testing.T) {
	r := &scriptRenderer{}
	b := NewBroker(r, nil)
	defer b.Close()
	aud := Audience{AgentID: 7}
	s, start, gen := b.join(aud)
	if start != nil {
		t.Fatal("an audience never rendered has nothing to start from")
	}
	b.seed(aud, gen, []Message{{Event: "roster", Data: "<ul></ul>"}}, 3)
	s2, start, _ := b.join(aud)
	if len(start) != 1 || string(start[0].wire) != "id: 3\nevent: roster\ndata: <ul></ul>\n\n" {
		t.Fatalf("the second stream should start from what the first rendered; got %d frames", len(start))
	}
	b.Unsubscribe(s)
	b.Unsubscribe(s2)
	if _, start, _ := b.join(aud); start != nil {
		t.Fatal("an audience nobody watched kept what it was sent, which goes stale")
	}
}

func TestBrokerSeedLosesToANewerUpdate(t *testing.T) {
	r := &scriptRenderer{}
	b := NewBroker(r, nil)
	defer b.Close()
	aud := Audience{Board: true}
	s, _, gen := b.join(aud)
	r.set(Message{Event: "summary", Data: "<p>new</p>"})
	b.Publish(models.Event{ID: 9})
	nextUpdate(t, s)
	// The stream's own render started before the update: it must not
	// replace what the broker sent since.
	b.seed(aud, gen, []Message{{Event: "summary", Data: "<p>old</p>"}}, 8)
	_, start, _ := b.join(aud)
	if len(start) != 1 || !strings.Contains(string(start[0].wire), "<p>new</p>") {
		t.Fatalf("a stale seed replaced the broker's update (%d frames)", len(start))
	}
}

func TestUpdateLeavesOutReplayedActivity(t *testing.T) {
	u := &update{}
	u.add(encode(Message{ID: 4, Event: EventActivity, Data: "<li>four</li>"}))
	u.add(encode(Message{ID: 6, Event: EventActivity, Data: "<li>six</li>"}))
	u.add(encode(Message{ID: 6, Event: "summary", Data: "<p>a\nb</p>"}))
	var w bytes.Buffer
	bufs := u.appendTo(nil, 5)
	if _, err := bufs.WriteTo(&w); err != nil {
		t.Fatal(err)
	}
	want := "id: 6\nevent: activity\ndata: <li>six</li>\n\nid: 6\nevent: summary\ndata: <p>a\ndata: b</p>\n\n"
	if w.String() != want {
		t.Fatalf("got %q\nwant %q", w.String(), want)
	}
}

// flushBuffer is a response writer that streams but cannot be taken over,
// as on HTTP/2: Serve then writes the stream itself.
type flushBuffer struct {
	mu     sync.Mutex
	header http.Header
	body   bytes.Buffer
}

func (f *flushBuffer) Header() http.Header { return f.header }
func (f *flushBuffer) WriteHeader(int)     {}
func (f *flushBuffer) Flush()              {}
func (f *flushBuffer) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.body.Write(p)
}
func (f *flushBuffer) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.body.String()
}

type fixedReplayer struct{ msgs []Message }

func (r fixedReplayer) Missed(context.Context, Audience, int64) ([]Message, error) { return nil, nil }
func (r fixedReplayer) Current(context.Context, Audience) ([]Message, int64, error) {
	return r.msgs, 1, nil
}

func TestServeWritesItsOwnStreamWhenItCannotTakeTheConnection(t *testing.T) {
	r := &scriptRenderer{}
	b := NewBroker(r, nil)
	defer b.Close()
	w := &flushBuffer{header: http.Header{}}
	shutdown, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), w, b, fixedReplayer{msgs: []Message{{Event: "summary", Data: "<p>0</p>"}}},
			Audience{Board: true}, 0, StreamOptions{Retry: time.Second, Heartbeat: time.Hour, Shutdown: shutdown})
	}()
	waitFor := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(w.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s; the stream so far:\n%s", what, w.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("start", "retry: 1000\n\nid: 1\nevent: summary\ndata: <p>0</p>\n\n")
	r.set(Message{Event: "summary", Data: "<p>1</p>"})
	b.Publish(models.Event{ID: 2})
	waitFor("update", "id: 2\nevent: summary\ndata: <p>1</p>\n\n")
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end at shutdown")
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after the stream ended", n)
	}
}

// A client that stops reading is dropped after writeTimeout, and does not
// hold up the streams of everyone else meanwhile.
func TestAStalledStreamDoesNotHoldUpTheOthers(t *testing.T) {
	r := &scriptRenderer{}
	r.set(Message{Event: "summary", Data: "<p>1</p>"})
	b := NewBroker(r, nil)
	defer b.Close()
	aud := Audience{Board: true}
	stuck, _, _ := b.join(aud)
	stuckServer, stuckClient := net.Pipe() // nobody reads stuckClient
	b.attach(stuck, stuckServer, 0, time.Hour)
	good, _, _ := b.join(aud)
	goodServer, goodClient := net.Pipe()
	b.attach(good, goodServer, 0, time.Hour)
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := goodClient.Read(buf)
		got <- string(buf[:n])
	}()

	stalled := func() bool {
		stuckClient.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := stuckClient.Write([]byte("x"))
		return !errors.Is(err, io.ErrClosedPipe)
	}
	b.Publish(models.Event{ID: 1})
	select {
	case data := <-got:
		if !strings.Contains(data, "<p>1</p>") {
			t.Fatalf("the reading client got %q", data)
		}
	case <-time.After(5 * writeTimeout):
		t.Fatal("the reading client got nothing")
	}
	// It got its update while the stalled write was still pending, not
	// after the stalled stream was dropped.
	if !stalled() {
		t.Fatal("the reading client was written only after the stalled stream timed out")
	}
	// The stalled connection is closed once its write times out.
	deadline := time.Now().Add(writeTimeout + 5*time.Second)
	for stalled() {
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream's connection was never closed")
		}
	}
}

// New rows at the top go before the first row kept, each after the one
// inserted before it.
func TestDiffPartsInsertsNewRowsAtTheTop(t *testing.T) {
	row := func(id string) Part { return Part{ID: id, HTML: `<tr id="` + id + `"><td>` + id + `</td></tr>`} }
	count := Part{ID: "count", HTML: `<span id="count">1</span>`}
	got, ok := diffParts([]Part{count, row("b")}, []Part{count, row("a"), row("a-more"), row("b")})
	want := `<template><tbody hx-swap-oob="beforebegin:#b"><tr id="a"><td>a</td></tr></tbody></template>` +
		`<template><tbody hx-swap-oob="afterend:#a"><tr id="a-more"><td>a-more</td></tr></tbody></template>`
	if !ok || got != want {
		t.Fatalf("got %v %q\nwant %q", ok, got, want)
	}
	// With no row kept to go beside, a patch cannot place them.
	if _, ok := diffParts([]Part{count}, []Part{count, row("a")}); ok {
		t.Fatal("a first row has nowhere to go in a patch; the fragment must go whole")
	}
}

func TestRestamp(t *testing.T) {
	for _, m := range []Message{{ID: 7, Event: "summary", Data: "<p>x</p>"}, {Event: "summary", Data: "<p>x</p>"}} {
		got := string(restamp(encode(m), 12).wire)
		if want := "id: 12\nevent: summary\ndata: <p>x</p>\n\n"; got != want {
			t.Fatalf("restamp(%+v) = %q, want %q", m, got, want)
		}
	}
}
