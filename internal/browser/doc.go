// Package browser drives the running app in headless Chromium, as agents and
// managers use it: real pages, real htmx swaps over Server-Sent Events, the
// phone adapter talking to the simulator. The tests need Debian's chromium
// (apt-get install chromium); without it they skip, except under CI=true.
package browser
