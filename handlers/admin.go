package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// adminAgents is the managers' page of agents and managers.
func (h *Handlers) adminAgents(c echo.Context) error {
	return h.adminPage(c, http.StatusOK, views.AdminView{})
}

// adminAdd adds an agent or a manager.
func (h *Handlers) adminAdd(c echo.Context) error {
	na := callflow.NewAgent{
		Identity: strings.TrimSpace(c.FormValue("identity")),
		Name:     strings.TrimSpace(c.FormValue("name")),
		Role:     models.Role(c.FormValue("role")),
		Password: c.FormValue("password"),
	}
	a, err := h.Service.AddAgent(c.Request().Context(), currentAgent(c).Identity, na)
	if err != nil {
		return h.adminRefused(c, err, views.AdminForm{Identity: na.Identity, Name: na.Name, Role: na.Role})
	}
	return h.adminDone(c, views.AdminView{Notice: fmt.Sprintf("%s (%s) was added as %s and can sign in now.", a.Name, a.Identity, a.Role)})
}

// adminDisable signs an agent out everywhere and keeps them from signing
// in and from being offered calls; a call they are on goes on.
func (h *Handlers) adminDisable(c echo.Context) error {
	id, err := adminIdentity(c)
	if err != nil {
		return err
	}
	if err := h.Service.DisableAgent(c.Request().Context(), currentAgent(c).Identity, id); err != nil {
		return h.adminRefused(c, err, views.AdminForm{})
	}
	return h.adminDone(c, views.AdminView{Notice: id + " is disabled and signed out everywhere."})
}

// adminEnable lets a disabled agent sign in again.
func (h *Handlers) adminEnable(c echo.Context) error {
	id, err := adminIdentity(c)
	if err != nil {
		return err
	}
	if err := h.Service.EnableAgent(c.Request().Context(), currentAgent(c).Identity, id); err != nil {
		return h.adminRefused(c, err, views.AdminForm{})
	}
	return h.adminDone(c, views.AdminView{Notice: id + " is enabled and can sign in again."})
}

// adminReset sets the password the manager typed, or generates one and
// shows it once, and signs the agent out everywhere.
func (h *Handlers) adminReset(c echo.Context) error {
	id, err := adminIdentity(c)
	if err != nil {
		return err
	}
	typed := c.FormValue("password")
	pw, err := h.Service.ResetPassword(c.Request().Context(), currentAgent(c).Identity, id, typed)
	if err != nil {
		return h.adminRefused(c, err, views.AdminForm{})
	}
	v := views.AdminView{Notice: "The password of " + id + " is reset and their sessions are signed out."}
	if typed == "" {
		v.NewPassword, v.NewPasswordFor = pw, id
	}
	return h.adminDone(c, v)
}

// adminIdentity is the agent a row's action is about. An identity that
// could never have been created names nobody.
func adminIdentity(c echo.Context) (string, error) {
	id := c.Param("identity")
	if !auth.ValidClientIdentity(id) {
		return "", echo.NewHTTPError(http.StatusNotFound, callflow.ErrNoSuchAgent.Error())
	}
	return id, nil
}

// adminPage renders the whole page, with the list as it is now.
func (h *Handlers) adminPage(c echo.Context, status int, v views.AdminView) error {
	if err := h.fillAdminView(c, &v); err != nil {
		return err
	}
	return h.render(c, status, views.AdminAgentsPage(v))
}

// adminDone answers a successful action: htmx gets the page's body with
// the outcome; a plain form is sent back to the page, except when a
// generated password must be shown, which is never put in a URL.
func (h *Handlers) adminDone(c echo.Context, v views.AdminView) error {
	if !isFragmentRequest(c) {
		if v.NewPassword == "" {
			return c.Redirect(http.StatusSeeOther, h.reverse(RouteAdminAgents))
		}
		return h.adminPage(c, http.StatusOK, v)
	}
	if err := h.fillAdminView(c, &v); err != nil {
		return err
	}
	return h.render(c, http.StatusOK, views.AdminAgents(v))
}

// fillAdminView adds the agents as they are now and who is looking. An
// answer that shows a password must not be kept by any cache.
func (h *Handlers) fillAdminView(c echo.Context, v *views.AdminView) error {
	agents, err := h.Service.AdminAgents(c.Request().Context())
	if err != nil {
		return err
	}
	v.Agents, v.Me = agents, currentAgent(c).Identity
	if v.NewPassword != "" {
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	}
	return nil
}

// adminRefused answers an action the service refused: a short message for
// htmx (shown in #flash, the form keeps what was typed), the page with the
// message and the add form refilled for a plain form.
func (h *Handlers) adminRefused(c echo.Context, err error, form views.AdminForm) error {
	status, ok := adminStatus(err)
	if !ok {
		return err
	}
	if isFragmentRequest(c) {
		return echo.NewHTTPError(status, err.Error())
	}
	return h.adminPage(c, status, views.AdminView{Error: err.Error(), Form: form})
}

// adminStatus is the 4xx for what a manager can get wrong.
func adminStatus(err error) (int, bool) {
	switch {
	case errors.Is(err, callflow.ErrNoSuchAgent):
		return http.StatusNotFound, true
	case errors.Is(err, callflow.ErrIdentityTaken):
		return http.StatusConflict, true
	case errors.Is(err, callflow.ErrBadIdentity), errors.Is(err, callflow.ErrBadName), errors.Is(err, callflow.ErrBadRole),
		errors.Is(err, callflow.ErrPasswordShort), errors.Is(err, callflow.ErrPasswordLong), errors.Is(err, callflow.ErrDisableSelf):
		return http.StatusBadRequest, true
	}
	return 0, false
}
