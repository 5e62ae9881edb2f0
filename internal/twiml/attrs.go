package twiml

import (
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// attrs reads one element's attributes by name, since their order is
// arbitrary. It keeps the first invalid value it meets in err, so a verb
// reads all its attributes in one struct literal and checks once.
// Attributes the element does not know are ignored, as Twilio only warns
// about them.
type attrs struct {
	element string
	values  map[string]string
	err     error
}

func readAttrs(start xml.StartElement) *attrs {
	a := &attrs{element: elementName(start.Name), values: make(map[string]string, len(start.Attr))}
	for _, attr := range start.Attr {
		// TwiML attributes have no namespace; xmlns declarations and
		// prefixed attributes belong to someone else.
		if attr.Name.Space == "" && attr.Name.Local != "xmlns" {
			a.values[attr.Name.Local] = attr.Value
		}
	}
	return a
}

func (a *attrs) failf(name, value, format string, args ...any) {
	if a.err == nil {
		a.err = schemaErrorf("<%s> attribute %s=%q %s", a.element, name, value, fmt.Sprintf(format, args...))
	}
}

// lookup reports whether the attribute is present, for the few attributes
// where an empty value means something other than absence.
func (a *attrs) lookup(name string) (string, bool) {
	value, ok := a.values[name]
	return value, ok
}

// text reads a free-form attribute such as a URL or a label.
func (a *attrs) text(name string) string {
	return a.values[name]
}

// boolean reads "true" or "false" in any letter case, as Twilio does.
func (a *attrs) boolean(name string, fallback bool) bool {
	raw, ok := a.values[name]
	if !ok {
		return fallback
	}
	switch strings.ToLower(trimText(raw)) {
	case "true":
		return true
	case "false":
		return false
	}
	a.failf(name, raw, "is not true or false")
	return fallback
}

// integer reads a whole number that must lie within [min, max].
func (a *attrs) integer(name string, fallback, min, max int) int {
	raw, ok := a.values[name]
	if !ok {
		return fallback
	}
	n, err := strconv.Atoi(trimText(raw))
	if err != nil {
		a.failf(name, raw, "is not a whole number")
		return fallback
	}
	if n < min || n > max {
		if max == math.MaxInt {
			a.failf(name, raw, "must be at least %d", min)
		} else {
			a.failf(name, raw, "must be between %d and %d", min, max)
		}
		return fallback
	}
	return n
}

// oneOf reads an enumerated attribute. Letter case is ignored and the
// documented spelling is returned, so callers compare against one form.
func (a *attrs) oneOf(name, fallback string, allowed ...string) string {
	raw, ok := a.values[name]
	if !ok {
		return fallback
	}
	if value, known := canonical(trimText(raw), allowed); known {
		return value
	}
	a.failf(name, raw, "must be one of %s", strings.Join(allowed, ", "))
	return fallback
}

// method reads an HTTP method attribute; Twilio only calls back with GET or
// POST and defaults to POST everywhere.
func (a *attrs) method(name string) string {
	return a.oneOf(name, "POST", "GET", "POST")
}

// events reads a space-separated list of status callback events, each of
// which must be one the element documents.
func (a *attrs) events(name string, allowed ...string) []string {
	raw, ok := a.values[name]
	if !ok {
		return nil
	}
	words := strings.Fields(raw)
	if len(words) == 0 {
		a.failf(name, raw, "lists no events")
		return nil
	}
	events := make([]string, 0, len(words))
	for _, word := range words {
		event, known := canonical(word, allowed)
		if !known {
			a.failf(name, raw, "has unknown event %q (allowed: %s)", word, strings.Join(allowed, " "))
			return nil
		}
		events = append(events, event)
	}
	return events
}

// canonical finds word in allowed ignoring letter case and returns the
// documented spelling.
func canonical(word string, allowed []string) (string, bool) {
	for _, value := range allowed {
		if strings.EqualFold(word, value) {
			return value, true
		}
	}
	return "", false
}

// digits reads DTMF tones: 0-9, * and #, with w (half a second) and W (one
// second) as pauses, the alphabet Twilio documents for sendDigits and
// Play's digits.
func (a *attrs) digits(name string) string {
	raw := a.values[name]
	for _, r := range raw {
		if !strings.ContainsRune("0123456789*#wW", r) {
			a.failf(name, raw, "may only hold 0-9, *, #, w and W")
			return ""
		}
	}
	return raw
}
