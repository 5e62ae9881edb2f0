package handlers

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/internal/live"
	"github.com/warmtransfer/warmtransfer/models"
)

// Stream timings: browsers reconnect after retry; heartbeats keep idle
// connections from being closed by proxies.
const (
	streamRetry     = 2 * time.Second
	streamHeartbeat = 15 * time.Second
)

// events is the Server-Sent Events stream of live fragments: the board's
// for managers, the agent's own console for agents. It resumes after the
// Last-Event-ID a reconnecting browser sends, replaying what it missed.
func (h *Handlers) events(c echo.Context) error {
	a := currentAgent(c)
	aud := live.Audience{AgentID: a.ID}
	if a.Role == models.RoleManager {
		aud = live.Audience{Board: true}
	}
	return live.Serve(c.Request().Context(), c.Response(), h.Broker, h.Replayer, aud, live.LastEventID(c.Request()),
		live.StreamOptions{Retry: streamRetry, Heartbeat: streamHeartbeat, Shutdown: h.Streams})
}
