package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/models"
)

// requestIDKey is the request context key of the request id.
type requestIDKey struct{}

// RequestID returns the id the requestID middleware gave the request whose
// context ctx is, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// maxRequestIDLen bounds an id taken from a proxy.
const maxRequestIDLen = 64

// validRequestID accepts a proxy's id only when it is a short, plain token,
// so it can go into a log line or header as is.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID gives every request an id (or keeps the proxy's X-Request-Id),
// answers it in X-Request-Id and puts it in the request's context, so a
// user's report and the log lines meet.
func (h *Handlers) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id := r.Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		return next(c)
	}
}

// requestLogger is the app's logger with the request's id attached.
func (h *Handlers) requestLogger(c echo.Context) *slog.Logger {
	return h.Logger.With("request_id", RequestID(c.Request().Context()))
}

// quietRoute reports routes polled by machines or fetched with every page,
// whose access lines are logged at debug level only.
func quietRoute(route string) bool {
	switch route {
	case "/healthz", "/readyz", "/metrics", "/static/*":
		return true
	}
	return false
}

// webhookRoute reports the routes Twilio calls, whose latency is measured.
func webhookRoute(route string) bool {
	return strings.HasPrefix(route, "/conference/") || strings.HasPrefix(route, "/voice/")
}

// accessLog writes one structured log line per request. It logs the route
// pattern (c.Path()), never the raw URL: query strings and path values
// (call ids, identities, phone numbers in a mistyped URL) stay out of the
// log. It also times Twilio's webhooks for the metrics.
func (h *Handlers) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			// Answer now, so the line has the status the caller gets.
			c.Error(err)
		}
		elapsed := time.Since(start)
		route := c.Path()
		if webhookRoute(route) {
			h.Metrics.ObserveWebhook(route, elapsed)
		}
		level := slog.LevelInfo
		if quietRoute(route) {
			level = slog.LevelDebug
		}
		r, res := c.Request(), c.Response()
		h.Logger.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", res.Status),
			slog.Duration("duration", elapsed),
			slog.Int64("bytes", res.Size),
			slog.String("request_id", RequestID(r.Context())),
			slog.String("remote_ip", echo.ExtractIPDirect()(r)),
		)
		return nil
	}
}

// Content-Security-Policy: our own origin only. Pages have no inline
// script or style (htmx runs with allowEval and indicator styles off).
const cspSelf = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'%s; media-src 'self'%s; font-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// With a real Twilio account the browser phone (Voice JS SDK 2.x) opens
// its signalling WebSocket to wss://voice-js.<edge>.twilio.com, posts
// telemetry to https://eventgw.twilio.com and fetches its ring tones from
// https://sdk.twilio.com; the audio itself is WebRTC, which CSP does not
// govern. Only Twilio's https and wss hosts are added.
const (
	twilioConnect = " https://*.twilio.com wss://*.twilio.com"
	twilioMedia   = " https://*.twilio.com"
)

// contentSecurityPolicy is the policy of every response; with twilio it
// also lets the browser phone reach Twilio.
func contentSecurityPolicy(twilio bool) string {
	if twilio {
		return fmt.Sprintf(cspSelf, twilioConnect, twilioMedia)
	}
	return fmt.Sprintf(cspSelf, "", "")
}

// simConsolePolicy is the strict policy plus inline styles: the
// simulator's page (/sim, simulator mode only) is a self-contained
// developer console with an inline <style>. Scoping the relaxation to the
// /sim routes keeps every page of the product strict; the console has no
// inline script, so script-src stays 'self'.
var simConsolePolicy = strings.Replace(contentSecurityPolicy(false), "style-src 'self'", "style-src 'self' 'unsafe-inline'", 1)

// simConsoleRoute reports the simulator console's routes.
func simConsoleRoute(route string) bool { return route == "/sim" || route == "/sim/*" }

// The security headers' values, built once and shared by every response
// (net/http only reads them): http.Header.Set would allocate each value
// again on every request, webhooks included.
var (
	cspProduct     = []string{contentSecurityPolicy(true)}
	cspSimulator   = []string{contentSecurityPolicy(false)}
	cspSimConsole  = []string{simConsolePolicy}
	hstsHeader     = []string{"max-age=31536000; includeSubDomains"}
	fixedSecHeader = []struct {
		name  string
		value []string
	}{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Referrer-Policy", []string{"same-origin"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Permissions-Policy", []string{"microphone=(self), camera=(), geolocation=(), payment=()"}},
	}
)

// securityHeaders sets the Content-Security-Policy and friends on every
// response, errors included (they are set before the handler runs).
// Echo wraps its global middleware around the handler on every request,
// so nothing is computed here.
func (h *Handlers) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hdr := c.Response().Header()
		switch {
		case h.SimHandler != nil && simConsoleRoute(c.Path()):
			hdr["Content-Security-Policy"] = cspSimConsole
		case h.Simulator:
			hdr["Content-Security-Policy"] = cspSimulator
		default:
			hdr["Content-Security-Policy"] = cspProduct
		}
		for _, f := range fixedSecHeader {
			hdr[f.name] = f.value
		}
		if strings.HasPrefix(h.PublicURL, "https://") {
			hdr["Strict-Transport-Security"] = hstsHeader
		}
		return next(c)
	}
}

// readyTimeout bounds the readiness checks.
const readyTimeout = 2 * time.Second

// readyz answers 200 when the database answers and every migration is
// applied, 503 with the reason otherwise: a load balancer sends no traffic
// to an instance that cannot serve it.
func (h *Handlers) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	notReady := func(reason string, err error) error {
		h.requestLogger(c).Warn("not ready", "reason", reason, "err", err)
		return c.String(http.StatusServiceUnavailable, "not ready: "+reason)
	}
	if err := h.DB.PingContext(ctx); err != nil {
		return notReady("database unreachable", err)
	}
	applied, err := models.MigrationsApplied(ctx, h.DB)
	if err != nil {
		return notReady("cannot read the applied migrations", err)
	}
	if !applied {
		return notReady("database migrations not applied", nil)
	}
	return c.String(http.StatusOK, "ready")
}

// metrics serves Prometheus metrics. Like /healthz it needs no
// session (Prometheus scrapes without one); it carries counts by state
// and route only, no numbers, names or identities.
func (h *Handlers) metrics(c echo.Context) error {
	h.Metrics.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// phoneNumber matches an E.164 number, the form Twilio sends From, To and
// Caller in.
var phoneNumber = regexp.MustCompile(`\+[1-9][0-9]{5,14}`)

// MaskPhone hides all but the country code's first digit and the last two
// digits of a phone number: "+15551230001" becomes "+1********01". Other
// characters are kept; a string too short to be a number is masked whole.
func MaskPhone(s string) string {
	digits := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	keepHead, keepTail := 1, 2
	if digits < 6 {
		keepHead, keepTail = 0, 0
	}
	b := []byte(s)
	seen := 0
	for i := range b {
		if b[i] < '0' || b[i] > '9' {
			continue
		}
		seen++
		if seen > keepHead && seen <= digits-keepTail {
			b[i] = '*'
		}
	}
	return string(b)
}

// MaskPhones masks every E.164 number in s (an error message, say).
func MaskPhones(s string) string {
	if !strings.Contains(s, "+") {
		return s
	}
	return phoneNumber.ReplaceAllStringFunc(s, MaskPhone)
}

// MaskPhoneNumbers wraps a log handler so that no line it writes carries a
// phone number: the message and every string, error or other value
// (groups included) go through MaskPhones. It is the backstop for numbers
// that hide in error texts (Twilio's "The 'To' number +1... is not valid").
func MaskPhoneNumbers(next slog.Handler) slog.Handler {
	if _, ok := next.(phoneMasker); ok {
		return next
	}
	return phoneMasker{next}
}

type phoneMasker struct{ next slog.Handler }

func (m phoneMasker) Enabled(ctx context.Context, l slog.Level) bool { return m.next.Enabled(ctx, l) }

func (m phoneMasker) Handle(ctx context.Context, r slog.Record) error {
	if !mayHoldPhone(r) {
		// Most lines (every request's access line) have nothing to
		// mask: passed on as they are, without a copy.
		return m.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, MaskPhones(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(maskAttr(a))
		return true
	})
	return m.next.Handle(ctx, out)
}

func (m phoneMasker) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = maskAttr(a)
	}
	return phoneMasker{m.next.WithAttrs(masked)}
}

func (m phoneMasker) WithGroup(name string) slog.Handler {
	return phoneMasker{m.next.WithGroup(name)}
}

// mayHoldPhone reports whether MaskPhones could change any part of r: an
// E.164 number starts with '+', and values that are printed (errors,
// structs) or nested are looked at the slow way.
func mayHoldPhone(r slog.Record) bool {
	found := strings.Contains(r.Message, "+")
	r.Attrs(func(a slog.Attr) bool {
		switch v := a.Value.Resolve(); v.Kind() {
		case slog.KindString:
			found = strings.Contains(v.String(), "+")
		case slog.KindAny, slog.KindGroup:
			found = true
		}
		return !found
	})
	return found
}

func maskAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, MaskPhones(v.String()))
	case slog.KindGroup:
		group := v.Group()
		masked := make([]slog.Attr, len(group))
		for i, g := range group {
			masked[i] = maskAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(masked...)}
	case slog.KindAny:
		// Errors and structs are printed by the handler; if their text
		// holds a number, log the masked text instead.
		text := fmt.Sprint(v.Any())
		if masked := MaskPhones(text); masked != text {
			return slog.String(a.Key, masked)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
