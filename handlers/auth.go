package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// Keys of values the middleware stores on the request.
const (
	ctxAgent    = "wt.agent"
	ctxSession  = "wt.session"
	ctxAnonCSRF = "wt.anon_csrf"
)

func currentAgent(c echo.Context) *models.Agent {
	a, _ := c.Get(ctxAgent).(*models.Agent)
	return a
}

func currentSession(c echo.Context) *auth.Session {
	s, _ := c.Get(ctxSession).(*auth.Session)
	return s
}

// session reads the session cookie and loads its agent. A session whose
// epoch is stale (signed out, disabled, password reset) counts as none.
func (h *Handlers) session(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := h.Sessions.Read(c.Request(), time.Now())
		if err != nil {
			if !errors.Is(err, auth.ErrNoSession) {
				c.SetCookie(h.Sessions.Clear())
			}
			return next(c)
		}
		a, err := models.AgentByIdentity(c.Request().Context(), h.DB, s.Identity)
		if errors.Is(err, models.ErrNotFound) {
			c.SetCookie(h.Sessions.Clear())
			return next(c)
		}
		if err != nil {
			return err
		}
		if a.Disabled || a.SessionEpoch != s.Epoch || string(a.Role) != s.Role {
			c.SetCookie(h.Sessions.Clear())
			return next(c)
		}
		c.Set(ctxAgent, a)
		c.Set(ctxSession, s)
		return next(c)
	}
}

// requireAgent turns away requests without a session: pages go to the
// sign-in page, everything else gets 401.
func (h *Handlers) requireAgent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if currentAgent(c) != nil {
			return next(c)
		}
		if c.Request().Method == http.MethodGet && !isFragmentRequest(c) && c.Path() != "/events" {
			return c.Redirect(http.StatusSeeOther, h.reverse(RouteSignIn))
		}
		return echo.NewHTTPError(http.StatusUnauthorized, "sign in first")
	}
}

// requireManager allows managers only.
func (h *Handlers) requireManager(next echo.HandlerFunc) echo.HandlerFunc {
	return h.requireAgent(func(c echo.Context) error {
		if currentAgent(c).Role != models.RoleManager {
			return echo.NewHTTPError(http.StatusForbidden, "this page is for managers")
		}
		return next(c)
	})
}

// csrf checks the token bound to the session, sent as the X-CSRF-Token
// header (htmx) or the "csrf" form field (plain forms).
func (h *Handlers) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := wellFormed(c); err != nil {
			return err
		}
		token := c.Request().Header.Get("X-CSRF-Token")
		if token == "" {
			token = c.FormValue("csrf")
		}
		s := currentSession(c)
		if s == nil || !h.Sessions.CheckCSRF(s, token) {
			return echo.NewHTTPError(http.StatusForbidden, "the form has expired; reload the page")
		}
		return next(c)
	}
}

// wellFormed refuses a body that is not valid form encoding before any of
// it is read: Go's parser keeps the fields before the first bad one, and a
// request acted on by halves ("to=bob&x=%zz" transferring to bob) is worse
// than one refused.
func wellFormed(c echo.Context) error {
	if _, err := c.FormParams(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the request is malformed: its body is not valid form encoding")
	}
	return nil
}

func (h *Handlers) home(c echo.Context) error {
	a := currentAgent(c)
	switch {
	case a == nil:
		return c.Redirect(http.StatusSeeOther, h.reverse(RouteSignIn))
	case a.Role == models.RoleManager:
		return c.Redirect(http.StatusSeeOther, h.reverse(RouteBoard))
	default:
		return c.Redirect(http.StatusSeeOther, h.reverse(RouteAgent))
	}
}

func (h *Handlers) signInPage(c echo.Context) error {
	c.Set(ctxAnonCSRF, h.Sessions.AnonymousCSRF(c.Response(), c.Request()))
	return h.render(c, http.StatusOK, views.SignInPage("", ""))
}

// signIn checks an identity and password. Every failure looks the same and
// takes as long, so it tells nothing about which identities exist. Too many
// failures for an identity or from an address are refused (429) before
// the password is looked at.
func (h *Handlers) signIn(c echo.Context) error {
	ctx := c.Request().Context()
	if err := wellFormed(c); err != nil {
		return err
	}
	if !h.Sessions.CheckAnonymousCSRF(c.Request(), c.FormValue("csrf")) {
		c.Set(ctxAnonCSRF, h.Sessions.AnonymousCSRF(c.Response(), c.Request()))
		return h.render(c, http.StatusForbidden, views.SignInPage("The form has expired. Please try again.", ""))
	}
	identity := strings.TrimSpace(c.FormValue("identity"))
	password := c.FormValue("password")
	// The direct peer address: X-Forwarded-For is not trusted, since any
	// client could then claim a fresh address per guess. Behind a proxy
	// every client shares the proxy's address and the per-address limit
	// becomes a global one; the per-identity limit still holds.
	ip := echo.ExtractIPDirect()(c.Request())
	if wait := h.SignInLimiter.Attempt(ip, identity); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		c.Set(ctxAnonCSRF, h.Sessions.AnonymousCSRF(c.Response(), c.Request()))
		msg := fmt.Sprintf("Too many attempts, try again in %d seconds.", secs)
		return h.render(c, http.StatusTooManyRequests, views.SignInPage(msg, identity))
	}
	fail := func() error {
		c.Set(ctxAnonCSRF, h.Sessions.AnonymousCSRF(c.Response(), c.Request()))
		return h.render(c, http.StatusUnauthorized, views.SignInPage("Wrong identity or password.", identity))
	}
	// An identity that could not exist is refused like a wrong password,
	// before it reaches the database (a NUL byte there is an SQL error).
	if !auth.ValidClientIdentity(identity) || password == "" || len(password) > 256 {
		auth.EqualizeTiming(password)
		return fail()
	}
	a, err := models.AgentByIdentity(ctx, h.DB, identity)
	if errors.Is(err, models.ErrNotFound) {
		auth.EqualizeTiming(password)
		return fail()
	}
	if err != nil {
		return err
	}
	if !auth.CheckPassword(a.PasswordHash, password) || a.Disabled {
		return fail()
	}
	h.SignInLimiter.Succeeded(ip, identity)
	cookie, _, err := h.Sessions.Issue(a.Identity, string(a.Role), a.SessionEpoch, time.Now())
	if err != nil {
		return err
	}
	c.SetCookie(cookie)
	if a.Role == models.RoleAgent {
		// An agent who signs in again mid-call keeps the call (ErrOnCall).
		if err := h.Service.SetPresence(ctx, a.Identity, models.PresenceAvailable); err != nil && !errors.Is(err, callflow.ErrOnCall) {
			h.Logger.Warn("setting presence at sign-in", "agent", a.Identity, "err", err)
		}
		return c.Redirect(http.StatusSeeOther, h.reverse(RouteAgent))
	}
	return c.Redirect(http.StatusSeeOther, h.reverse(RouteBoard))
}

// signOut ends every session of the agent (the epoch moves on) and takes
// them off the routing list.
func (h *Handlers) signOut(c echo.Context) error {
	ctx := c.Request().Context()
	a := currentAgent(c)
	if err := h.Service.SignOut(ctx, a.Identity); err != nil {
		return err
	}
	c.SetCookie(h.Sessions.Clear())
	if isFragmentRequest(c) {
		c.Response().Header().Set("HX-Redirect", h.reverse(RouteSignIn))
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, h.reverse(RouteSignIn))
}

// tokenResponse is what the browser phone needs to register with Twilio.
type tokenResponse struct {
	Token    string `json:"token"`
	Identity string `json:"identity"`
	TTL      int    `json:"ttl"`
}

// token issues a Twilio Access Token for the signed-in agent, and only for
// them.
func (h *Handlers) token(c echo.Context) error {
	a := currentAgent(c)
	if want := c.FormValue("identity"); want != "" && want != a.Identity {
		return echo.NewHTTPError(http.StatusForbidden, "you can only have a token for yourself")
	}
	tok, ttl, err := h.Tokens.Issue(a.Identity, time.Now())
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	return json.NewEncoder(c.Response()).Encode(tokenResponse{Token: tok, Identity: a.Identity, TTL: int(ttl.Seconds())})
}
