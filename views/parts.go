package views

import (
	"context"
	"io"
	"strings"

	"github.com/a-h/templ"
)

// EventPatch carries parts of fragments that changed while the rest of
// their fragment did not: elements marked hx-swap-oob, each in a <template>
// so that table rows and list items parse wherever they belong. Each page
// with a stream has one listener for it (patchListener), which swaps
// nothing itself.
const EventPatch = "patch"

// Part is a piece of a live fragment that can be replaced on its own: an
// element with a page-unique id, which Component renders exactly as it
// appears inside the fragment. When only parts of a fragment change, the
// server sends those parts instead of the whole fragment: a colleague going
// away changes one row of a hundred.
type Part struct {
	ID        string
	Component templ.Component
}

type liveKey struct{}

// livePass is what one server-side rendering of live fragments shares.
type livePass struct {
	// shared holds what shared parts rendered, by key: a colleague's row
	// looks the same on every console, so a pass renders it once.
	shared map[string]string
}

// WithLiveRender returns a context for rendering live fragments for the
// stream: clocks that run carry no elapsed time of their own (the browser
// fills it in as it inserts them, see app.js), so a fragment renders the
// same until what it shows changes; and shared parts are rendered once for
// every audience rendered with this context. Use one such context from one
// goroutine.
func WithLiveRender(ctx context.Context) context.Context {
	return context.WithValue(ctx, liveKey{}, &livePass{shared: map[string]string{}})
}

func livePassOf(ctx context.Context) *livePass {
	p, _ := ctx.Value(liveKey{}).(*livePass)
	return p
}

// shared renders c, which must look the same to every viewer; within a
// live render pass it is rendered once per key.
func shared(key string, c templ.Component) templ.Component {
	return sharedComponent{key: key, c: c}
}

type sharedComponent struct {
	key string
	c   templ.Component
}

func (s sharedComponent) Render(ctx context.Context, w io.Writer) error {
	p := livePassOf(ctx)
	if p == nil {
		return s.c.Render(ctx, w)
	}
	html, err := s.html(ctx, p)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, html)
	return err
}

// html is what the component renders in the pass, rendered the first time.
func (s sharedComponent) html(ctx context.Context, p *livePass) (string, error) {
	if html, ok := p.shared[s.key]; ok {
		return html, nil
	}
	var b strings.Builder
	if err := s.c.Render(ctx, &b); err != nil {
		return "", err
	}
	p.shared[s.key] = b.String()
	return b.String(), nil
}

// RenderString renders c to a string of about sizeHint bytes. A shared
// part already rendered in the same live pass (the same colleague's row
// on a hundred consoles) is returned as it is, not rendered or copied
// again.
func RenderString(ctx context.Context, c templ.Component, sizeHint int) (string, error) {
	if s, ok := c.(sharedComponent); ok {
		if p := livePassOf(ctx); p != nil {
			return s.html(ctx, p)
		}
	}
	var b strings.Builder
	b.Grow(sizeHint)
	if err := c.Render(ctx, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}
