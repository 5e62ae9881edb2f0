package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/warmtransfer/warmtransfer/static"
)

// static serves the embedded css, js and vendored files. Vendored file
// names carry their version, so they can be cached for a long time.
func (h *Handlers) static() echo.HandlerFunc {
	files := http.StripPrefix("/static/", http.FileServerFS(static.FS))
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
		files.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
