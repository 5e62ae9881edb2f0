package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// phoneConfig tells the page's phone adapter how to reach its phone.
func (h *Handlers) phoneConfig(identity string) views.PhoneConfig {
	if h.Simulator {
		return views.PhoneConfig{
			Mode: "simulator", Identity: identity, TokenURL: h.reverse(RouteToken),
			SimEventsURL: "/sim/phones/" + identity + "/events", SimCallURL: "/sim/calls/{sid}",
		}
	}
	return views.PhoneConfig{Mode: "twilio", Identity: identity, TokenURL: h.reverse(RouteToken)}
}

// console is the agent's page.
func (h *Handlers) console(c echo.Context) error {
	a := currentAgent(c)
	v, err := h.Service.AgentView(c.Request().Context(), a.Identity)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, views.AgentPage(v, h.phoneConfig(a.Identity)))
}

// presence sets the agent available or away.
func (h *Handlers) presence(c echo.Context) error {
	a := currentAgent(c)
	p := models.Presence(c.FormValue("presence"))
	if p != models.PresenceAvailable && p != models.PresenceAway {
		return echo.NewHTTPError(http.StatusBadRequest, "presence must be available or away")
	}
	if err := h.Service.SetPresence(c.Request().Context(), a.Identity, p); err != nil {
		return err
	}
	return h.agentFragment(c, views.AgentStatus)
}

func callID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "the call id must be a positive number")
	}
	return id, nil
}

// transfer rings a colleague into the agent's call.
func (h *Handlers) transfer(c echo.Context) error {
	return h.ringColleague(c, h.Service.Transfer)
}

// consult holds the caller and rings a colleague to talk to privately.
func (h *Handlers) consult(c echo.Context) error {
	return h.ringColleague(c, h.Service.Consult)
}

// blindTransfer hands the call to a colleague and takes the agent off it.
func (h *Handlers) blindTransfer(c echo.Context) error {
	return h.ringColleague(c, h.Service.BlindTransfer)
}

// toQueue sends the caller back to the queue and takes the agent off it.
func (h *Handlers) toQueue(c echo.Context) error {
	return h.callAction(c, h.Service.ToQueue)
}

// ringColleague reads the call and the chosen colleague, and starts a
// transfer or a consult with them.
func (h *Handlers) ringColleague(c echo.Context, start func(ctx context.Context, identity string, callID int64, to string) (*models.Transfer, error)) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	to, err := colleague(c)
	if err != nil {
		return err
	}
	if _, err := start(c.Request().Context(), currentAgent(c).Identity, id, to); err != nil {
		return err
	}
	return h.agentFragment(c, views.CallPanel)
}

// colleague reads the form's choice of colleague.
func colleague(c echo.Context) (string, error) {
	to := strings.TrimSpace(c.FormValue("to"))
	if to == "" {
		return "", echo.NewHTTPError(http.StatusBadRequest, "choose a colleague to transfer to")
	}
	if !auth.ValidClientIdentity(to) {
		return "", echo.NewHTTPError(http.StatusBadRequest, callflow.ErrUnknownAgent.Error())
	}
	return to, nil
}

// complete hands a consulted call to the colleague.
func (h *Handlers) complete(c echo.Context) error {
	return h.callAction(c, h.Service.Complete)
}

// threeWay brings the held caller into the consult.
func (h *Handlers) threeWay(c echo.Context) error {
	return h.callAction(c, h.Service.ThreeWay)
}

// cancelConsult drops the consulted colleague and returns to the caller.
func (h *Handlers) cancelConsult(c echo.Context) error {
	return h.callAction(c, h.Service.Cancel)
}

// callAction runs an action on the call in the path and answers with the
// call panel.
func (h *Handlers) callAction(c echo.Context, action func(ctx context.Context, identity string, callID int64) error) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	if err := action(c.Request().Context(), currentAgent(c).Identity, id); err != nil {
		return err
	}
	return h.agentFragment(c, views.CallPanel)
}

// leave takes the agent out of a call a colleague has joined.
func (h *Handlers) leave(c echo.Context) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	if err := h.Service.Leave(c.Request().Context(), currentAgent(c).Identity, id); err != nil {
		return err
	}
	return h.agentFragment(c, views.CallPanel)
}

// hangup ends the call for everyone.
func (h *Handlers) hangup(c echo.Context) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	if err := h.Service.Hangup(c.Request().Context(), currentAgent(c).Identity, id); err != nil {
		return err
	}
	return h.agentFragment(c, views.CallPanel)
}

// agentFragment answers an htmx action with a fresh rendering of one part
// of the console, or a plain form post with a redirect back to it.
func (h *Handlers) agentFragment(c echo.Context, fragment func(callflow.AgentView) templ.Component) error {
	if !isFragmentRequest(c) {
		return c.Redirect(http.StatusSeeOther, h.reverse(RouteAgent))
	}
	v, err := h.Service.AgentView(c.Request().Context(), currentAgent(c).Identity)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, fragment(v))
}

// board is the managers' live board.
func (h *Handlers) board(c echo.Context) error {
	v, err := h.Service.Board(c.Request().Context())
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, views.BoardPage(v))
}

// listen rings the manager's phone into a call, muted.
func (h *Handlers) listen(c echo.Context) error {
	return h.supervise(c, false)
}

// coach rings the manager's phone into a call, heard by the agent alone.
func (h *Handlers) coach(c echo.Context) error {
	return h.supervise(c, true)
}

func (h *Handlers) supervise(c echo.Context, coach bool) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	if err := h.Service.Supervise(c.Request().Context(), currentAgent(c).Identity, id, coach); err != nil {
		return err
	}
	return h.supervised(c)
}

// stopListening takes the manager off the call they listen to or coach.
func (h *Handlers) stopListening(c echo.Context) error {
	id, err := callID(c)
	if err != nil {
		return err
	}
	if err := h.Service.StopSupervising(c.Request().Context(), currentAgent(c).Identity, id); err != nil {
		return err
	}
	return h.supervised(c)
}

// supervised answers a supervision request: the console's call panel when
// asked from it, nothing for the board (its stream shows the change).
func (h *Handlers) supervised(c echo.Context) error {
	if !isFragmentRequest(c) {
		return c.Redirect(http.StatusSeeOther, h.reverse(RouteBoard))
	}
	if c.Request().Header.Get("HX-Target") == "call" {
		return h.agentFragment(c, views.CallPanel)
	}
	return c.NoContent(http.StatusNoContent)
}
