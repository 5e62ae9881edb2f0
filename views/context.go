// Package views renders the app's pages and the HTML fragments its server
// pushes over SSE. Every live fragment is a component with a stable id and an
// sse-swap attribute naming its event, so the first page load and every later
// push render through the same code.
package views

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
)

// RequestData is what a page needs from the request that asked for it.
// Handlers put it in the context with WithRequest before rendering.
//
// Live fragments read only Reverse: the server renders them once per
// audience, outside any one request, with a context that carries nothing
// else.
type RequestData struct {
	// Reverse builds a URL from a route name (echo.Echo.Reverse).
	Reverse func(name string, params ...any) string
	// CSRF is the token state-changing requests must carry.
	CSRF string
	// Simulator says the app is running on the Twilio simulator.
	Simulator bool
	// Agent is the signed-in user, nil on the sign-in page.
	Agent *callflow.AgentSummary
	// LastEventID is the newest event when the page was rendered (0 when
	// there is none yet); its stream resumes from there, so nothing between
	// the two is missed. Negative when it could not be read: the stream
	// then starts from the state as it is when it opens.
	LastEventID int64
}

type requestKey struct{}

type clockKey struct{}

// WithRequest returns a context that carries r for the components rendered
// with it.
func WithRequest(ctx context.Context, r RequestData) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

func requestData(ctx context.Context) RequestData {
	r, _ := ctx.Value(requestKey{}).(RequestData)
	return r
}

// url reverses a named route. Without a Reverse function in the context it
// returns "" (a rendering bug the component tests catch), never a guess.
func url(ctx context.Context, name string, params ...any) string {
	r := requestData(ctx)
	if r.Reverse == nil {
		return ""
	}
	return r.Reverse(name, params...)
}

// staticURL is the URL of a file under static/, e.g. "css/app.css".
func staticURL(ctx context.Context, file string) string {
	return url(ctx, "static", file)
}

// csrfHeaders is the body's hx-headers value: every htmx request carries the
// CSRF token.
func csrfHeaders(ctx context.Context) string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": requestData(ctx).CSRF})
	return string(b)
}

// serverNow is the server's clock as the page is rendered, for the page's
// clocks to correct the viewer's own by: an agent's PC a few minutes off
// would otherwise show every caller waiting minutes too long, or not at all.
func serverNow(ctx context.Context) string {
	return now(ctx).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// withClock fixes the time components compute elapsed times from, for tests.
func withClock(ctx context.Context, now func() time.Time) context.Context {
	return context.WithValue(ctx, clockKey{}, now)
}

func now(ctx context.Context) time.Time {
	if f, ok := ctx.Value(clockKey{}).(func() time.Time); ok {
		return f()
	}
	return time.Now()
}

// eventsURL is the page's SSE stream, resuming after the events the page
// already reflects.
func eventsURL(ctx context.Context) string {
	u := url(ctx, "events")
	// Given whenever known, 0 included: a page rendered before the first
	// event must still be sent whatever happens before its stream opens.
	if id := requestData(ctx).LastEventID; id >= 0 && u != "" {
		u += "?last=" + strconv.FormatInt(id, 10)
	}
	return u
}
