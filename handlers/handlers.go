// Package handlers is the app's HTTP surface: Echo handlers grouped by who
// calls them (Twilio's voice webhooks, agents, managers, the event stream).
// Handlers parse, call the call-flow service, and render; they hold no
// domain logic.
package handlers

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/a-h/templ"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/live"
	"github.com/warmtransfer/warmtransfer/internal/metrics"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// Deps are what the handlers need, built once at start-up.
type Deps struct {
	Service  *callflow.Service
	DB       *bun.DB
	Sessions *auth.Sessions
	Tokens   auth.AccessTokens
	// AuthToken checks X-Twilio-Signature; PublicURL is the base URL
	// Twilio signs (the address Twilio was told to call).
	AuthToken string
	PublicURL string
	Simulator bool
	// SimHandler serves the simulator in simulator mode, nil otherwise.
	SimHandler http.Handler
	// Streams is cancelled when the server shuts down, ending SSE streams.
	Streams context.Context
	// Broker and Replayer feed the live event streams.
	Broker   *live.Broker
	Replayer live.Replayer
	Logger   *slog.Logger
	// Metrics are served at /metrics; nil builds them from DB and Broker.
	Metrics *metrics.Metrics
	// SignInLimiter slows password guessing; nil uses the default limits.
	SignInLimiter *SignInLimiter
}

// Handlers holds the dependencies of every handler.
type Handlers struct {
	Deps
	echo *echo.Echo
}

// New returns the handlers for e.
func New(e *echo.Echo, d Deps) *Handlers {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Streams == nil {
		d.Streams = context.Background()
	}
	// No log line of the handlers carries a phone number.
	d.Logger = slog.New(MaskPhoneNumbers(d.Logger.Handler()))
	if d.Metrics == nil {
		src := metrics.Sources{DB: d.DB, Logger: d.Logger}
		if d.Broker != nil {
			src.SSEClients = d.Broker.Subscribers
		}
		d.Metrics = metrics.New(src)
	}
	if d.SignInLimiter == nil {
		d.SignInLimiter = NewSignInLimiter(SignInLimits{})
	}
	h := &Handlers{Deps: d, echo: e}
	e.HTTPErrorHandler = h.errorHandler
	return h
}

// htmx request headers.
const (
	headerHXRequest = "HX-Request"
	headerHXBoosted = "HX-Boosted"
)

// isFragmentRequest reports an htmx request that wants a fragment rather
// than a full page.
func isFragmentRequest(c echo.Context) bool {
	r := c.Request()
	return r.Header.Get(headerHXRequest) == "true" && r.Header.Get(headerHXBoosted) != "true"
}

// requestData is what every page needs besides its own data.
func (h *Handlers) requestData(c echo.Context) views.RequestData {
	rd := views.RequestData{Reverse: h.reverse, Simulator: h.Simulator}
	if a := currentAgent(c); a != nil {
		sum := callflow.AgentSummary{ID: a.ID, Identity: a.Identity, Name: a.Name, Role: a.Role, Presence: a.Presence}
		rd.Agent = &sum
	}
	if s := currentSession(c); s != nil {
		rd.CSRF = h.Sessions.CSRFToken(s)
	}
	return rd
}

// reverse builds a path from a route name, for templates.
func (h *Handlers) reverse(name string, params ...any) string {
	return h.echo.Reverse(name, params...)
}

// render writes a templ component with the request's data in its context.
func (h *Handlers) render(c echo.Context, status int, comp templ.Component) error {
	rd := h.requestData(c)
	if rd.CSRF == "" {
		if tok, ok := c.Get(ctxAnonCSRF).(string); ok {
			rd.CSRF = tok
		}
	}
	// Only a full page opens an event stream that resumes from here; a
	// fragment answering an htmx action needs no query for it.
	rd.LastEventID = -1
	if !isFragmentRequest(c) {
		if id, err := models.LatestEventID(c.Request().Context(), h.DB); err == nil {
			rd.LastEventID = id
		}
	}
	ctx := views.WithRequest(c.Request().Context(), rd)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return comp.Render(ctx, c.Response())
}

// errorHandler is the one place errors become responses: a short text for
// htmx and API callers, an error page for browsers.
func (h *Handlers) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := classify(err)
	if status >= 500 {
		h.requestLogger(c).Error("request failed", "method", c.Request().Method, "route", c.Path(), "err", err)
	}
	r := c.Request()
	accept := r.Header.Get(echo.HeaderAccept)
	if isFragmentRequest(c) || r.Method != http.MethodGet || !strings.Contains(accept, "text/html") {
		_ = c.String(status, msg)
		return
	}
	_ = h.render(c, status, views.ErrorPage(status, msg))
}

// classify maps an error to an HTTP status and a message safe to show.
func classify(err error) (int, string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg, ok := he.Message.(string)
		if !ok {
			msg = http.StatusText(he.Code)
		}
		return he.Code, msg
	}
	switch {
	case errors.Is(err, callflow.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, callflow.ErrNotOnCall), errors.Is(err, callflow.ErrNotManager):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, callflow.ErrSelfTransfer), errors.Is(err, callflow.ErrUnknownAgent), errors.Is(err, callflow.ErrBadPresence):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, callflow.ErrCallEnded), errors.Is(err, callflow.ErrAgentUnavailable),
		errors.Is(err, callflow.ErrTransferInProgress), errors.Is(err, callflow.ErrColleagueNotJoined),
		errors.Is(err, callflow.ErrOnCall), errors.Is(err, callflow.ErrNoConsult), errors.Is(err, callflow.ErrConferenceNotReady),
		errors.Is(err, callflow.ErrNobodyToCoach), errors.Is(err, callflow.ErrNotListening):
		return http.StatusConflict, err.Error()
	case errors.Is(err, callflow.ErrTelephony):
		return http.StatusBadGateway, "Twilio did not accept the request; try again"
	case databaseUnavailable(err):
		return http.StatusServiceUnavailable, "the database is unavailable; try again in a moment"
	}
	return http.StatusInternalServerError, "something went wrong; it has been logged"
}

func (h *Handlers) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok")
}

// recoverPanics turns a panicking handler into an error for the central
// error handler (a 500 that is logged with its stack), instead of a dropped
// connection.
func (h *Handlers) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			err = fmt.Errorf("handlers: panic serving %s: %v\n%s", c.Path(), r, debug.Stack())
		}()
		return next(c)
	}
}

// databaseUnavailable reports an error that means the database cannot be
// reached right now (restarting, network down), as opposed to a bug: the
// request may simply be tried again, and Twilio retries its webhooks.
func databaseUnavailable(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.As(err, &pgErr):
		// Class 57: operator intervention (admin shutdown, crash shutdown,
		// cannot connect now); class 08: connection exceptions.
		return strings.HasPrefix(pgErr.Code, "57") || strings.HasPrefix(pgErr.Code, "08")
	}
	return pgconn.SafeToRetry(err)
}
