package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Route names. Templates build URLs by reversing these, so no path is
// written twice.
const (
	RouteHome          = "home"
	RouteSignIn        = "auth.signin"
	RouteSignInPost    = "auth.signin.post"
	RouteSignOut       = "auth.signout"
	RouteToken         = "auth.token"
	RouteAgent         = "agent.console"
	RoutePresence      = "agent.presence"
	RouteTransfer      = "calls.transfer"
	RouteLeave         = "calls.leave"
	RouteHangup        = "calls.hangup"
	RouteConsult       = "calls.consult"
	RouteComplete      = "calls.complete"
	RouteThreeWay      = "calls.threeway"
	RouteCancel        = "calls.cancel"
	RouteBlind         = "calls.blind"
	RouteToQueue       = "calls.queue"
	RouteListen        = "calls.listen"
	RouteCoach         = "calls.coach"
	RouteStopListening = "calls.unmonitor"
	RouteBoard         = "board"
	RouteEvents        = "events"
	RouteStatic        = "static"
	RouteHealth        = "healthz"
	RouteVoiceIncoming = "voice.incoming"
	RouteVoiceWait     = "voice.wait"
	RouteVoiceAgent    = "voice.agent"
	RouteVoiceStatus   = "voice.status"
	RouteVoiceConf     = "voice.conference"
	RouteSimConsole    = "sim.console"
	RouteReady         = "readyz"
	RouteMetrics       = "metrics"
	RouteAdminAgents   = "admin.agents"
	RouteAdminAdd      = "admin.agents.add"
	RouteAdminDisable  = "admin.agents.disable"
	RouteAdminEnable   = "admin.agents.enable"
	RouteAdminReset    = "admin.agents.reset"
)

// Paths Twilio is configured with; they are part of the deployment's
// contract with Twilio (the number's voice URL), so they are fixed.
const (
	PathVoiceIncoming = "/conference/connect/client"
	PathVoiceWait     = "/conference/wait"
	PathVoiceAgent    = "/conference/connect/agent"
	PathVoiceStatus   = "/voice/status"
	PathVoiceConf     = "/voice/conference"
)

// Register mounts every route of the app on e: reading it tells the whole
// surface of the product.
func Register(e *echo.Echo, h *Handlers) {
	name := func(r *echo.Route, n string) { r.Name = n }

	// Every request gets an id, a structured log line and the security
	// headers.
	// A handler that panics answers 500 through the error handler, and
	// the access log records it, instead of the connection being dropped.
	e.Use(h.requestID, h.accessLog, h.recoverPanics, h.securityHeaders)

	name(e.GET("/", h.home, h.session), RouteHome)
	name(e.GET("/healthz", h.healthz), RouteHealth)
	name(e.GET("/readyz", h.readyz), RouteReady)
	name(e.GET("/metrics", h.metrics), RouteMetrics)
	name(e.GET("/static/*", h.static()), RouteStatic)

	// People, signed in with a session cookie; every change needs the CSRF token.
	name(e.GET("/signin", h.signInPage), RouteSignIn)
	name(e.POST("/signin", h.signIn), RouteSignInPost)
	name(e.POST("/signout", h.signOut, h.session, h.requireAgent, h.csrf), RouteSignOut)
	name(e.POST("/token", h.token, h.session, h.requireAgent, h.csrf), RouteToken)
	name(e.GET("/agent", h.console, h.session, h.requireAgent), RouteAgent)
	name(e.POST("/presence", h.presence, h.session, h.requireAgent, h.csrf), RoutePresence)
	name(e.POST("/calls/:id/transfer", h.transfer, h.session, h.requireAgent, h.csrf), RouteTransfer)
	name(e.POST("/calls/:id/leave", h.leave, h.session, h.requireAgent, h.csrf), RouteLeave)
	name(e.POST("/calls/:id/hangup", h.hangup, h.session, h.requireAgent, h.csrf), RouteHangup)
	name(e.POST("/calls/:id/consult", h.consult, h.session, h.requireAgent, h.csrf), RouteConsult)
	name(e.POST("/calls/:id/complete", h.complete, h.session, h.requireAgent, h.csrf), RouteComplete)
	name(e.POST("/calls/:id/threeway", h.threeWay, h.session, h.requireAgent, h.csrf), RouteThreeWay)
	name(e.POST("/calls/:id/cancel", h.cancelConsult, h.session, h.requireAgent, h.csrf), RouteCancel)
	name(e.POST("/calls/:id/blind", h.blindTransfer, h.session, h.requireAgent, h.csrf), RouteBlind)
	name(e.POST("/calls/:id/queue", h.toQueue, h.session, h.requireAgent, h.csrf), RouteToQueue)
	name(e.POST("/calls/:id/listen", h.listen, h.session, h.requireManager, h.csrf), RouteListen)
	name(e.POST("/calls/:id/coach", h.coach, h.session, h.requireManager, h.csrf), RouteCoach)
	name(e.POST("/calls/:id/unmonitor", h.stopListening, h.session, h.requireManager, h.csrf), RouteStopListening)
	name(e.GET("/board", h.board, h.session, h.requireManager), RouteBoard)
	name(e.GET("/events", h.events, h.session, h.requireAgent), RouteEvents)

	// Managers administer the agents.
	name(e.GET("/admin/agents", h.adminAgents, h.session, h.requireManager), RouteAdminAgents)
	name(e.POST("/admin/agents", h.adminAdd, h.session, h.requireManager, h.csrf), RouteAdminAdd)
	name(e.POST("/admin/agents/:identity/disable", h.adminDisable, h.session, h.requireManager, h.csrf), RouteAdminDisable)
	name(e.POST("/admin/agents/:identity/enable", h.adminEnable, h.session, h.requireManager, h.csrf), RouteAdminEnable)
	name(e.POST("/admin/agents/:identity/reset", h.adminReset, h.session, h.requireManager, h.csrf), RouteAdminReset)

	// Twilio, signed with X-Twilio-Signature.
	name(e.POST(PathVoiceIncoming, h.voiceIncoming, h.twilioSigned), RouteVoiceIncoming)
	name(e.POST(PathVoiceWait, h.voiceWait, h.twilioSigned), RouteVoiceWait)
	name(e.POST(PathVoiceAgent, h.voiceAgent, h.twilioSigned), RouteVoiceAgent)
	name(e.POST(PathVoiceStatus, h.voiceStatus, h.twilioSigned), RouteVoiceStatus)
	name(e.POST(PathVoiceConf, h.voiceConference, h.twilioSigned), RouteVoiceConf)

	// The simulated Twilio, in simulator mode only: its control API and
	// page under /sim and Twilio's REST API, on the app's own port.
	if h.SimHandler != nil {
		sim := echo.WrapHandler(h.SimHandler)
		name(e.GET("/sim", sim), RouteSimConsole)
		e.POST("/sim", sim)
		e.Any("/sim/*", sim)
		e.Any("/2010-04-01/*", sim)
	}
	e.RouteNotFound("/*", func(c echo.Context) error { return echo.NewHTTPError(http.StatusNotFound, "page not found") })
}
