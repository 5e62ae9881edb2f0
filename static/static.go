// Package static holds the browser assets served by the app: the stylesheet,
// the application scripts and the vendored third-party scripts (see
// vendor/README.md for their provenance and checksums).
package static

import "embed"

// FS holds css/, js/ and vendor/, rooted so that paths read
// "css/app.css", "vendor/htmx-2.0.11.min.js" and so on.
//
//go:embed css js vendor
var FS embed.FS
