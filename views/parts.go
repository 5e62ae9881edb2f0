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
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		p := livePassOf(ctx)
		if p == nil {
			return c.Render(ctx, w)
		}
		html, ok := p.shared[key]
		if !ok {
			var b strings.Builder
			if err := c.Render(ctx, &b); err != nil {
				return err
			}
			html = b.String()
			p.shared[key] = html
		}
		_, err := io.WriteString(w, html)
		return err
	})
}
