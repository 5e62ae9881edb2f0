// Package twiml parses Twilio TwiML voice documents as strictly as Twilio
// does, so the Twilio simulator fails a call exactly where Twilio would and
// tests can inspect the TwiML the app produced as typed values instead of
// comparing XML strings (twilio-go writes attributes in random order).
//
// Parse covers the verbs and nouns the simulator plays: Say, Play, Pause,
// Redirect, Hangup, Reject and Dial with Conference, Client and Number.
// Real Twilio verbs and nouns outside that set are refused by name, so a
// document the simulator cannot play never passes for one it can.
package twiml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Error codes are Twilio's, so the simulator can report them in the same
// notifications and call logs Twilio would.
const (
	// CodeDocumentParse is Twilio error 12100: the body is not well-formed
	// XML, its root is not <Response>, or it is too large to be TwiML.
	CodeDocumentParse = 12100
	// CodeSchemaValidation is Twilio error 12200: the XML is well formed but
	// is not valid TwiML (unknown verb, bad attribute value, missing text).
	CodeSchemaValidation = 12200
)

// MaxDocumentSize is Twilio's 64 KB limit on a TwiML response. Larger
// bodies are refused before decoding, which also bounds the work a hostile
// or runaway webhook can make the simulator do.
const MaxDocumentSize = 64 * 1024

// Error is a document Twilio would refuse; Code says which of Twilio's two
// TwiML errors it would report.
type Error struct {
	Code    int
	Message string
}

// Error formats the code with the message so logs read like Twilio's
// debugger entries.
func (e *Error) Error() string {
	return fmt.Sprintf("twiml: %d: %s", e.Code, e.Message)
}

func parseErrorf(format string, args ...any) error {
	return &Error{Code: CodeDocumentParse, Message: fmt.Sprintf(format, args...)}
}

func schemaErrorf(format string, args ...any) error {
	return &Error{Code: CodeSchemaValidation, Message: fmt.Sprintf(format, args...)}
}

// utf8BOM is skipped because editors and some frameworks prepend it, and
// encoding/xml would otherwise see it as text before the root element.
var utf8BOM = []byte("\xEF\xBB\xBF")

// Parse reads a TwiML document. It returns *Error for anything Twilio would
// reject. Attribute defaults documented by Twilio are filled in, so callers
// never have to tell an absent attribute from its default (except waitUrl,
// see Conference.WaitURLSet).
func Parse(data []byte) (*Response, error) {
	if len(data) > MaxDocumentSize {
		return nil, parseErrorf("document is %d bytes, larger than the %d byte TwiML limit", len(data), MaxDocumentSize)
	}
	d := &decoder{xml: xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, utf8BOM)))}
	root, err := d.root()
	if err != nil {
		return nil, err
	}
	response, err := d.response(root)
	if err == nil {
		err = d.end()
	}
	if err != nil {
		// Twilio parses the whole document before validating it, so a
		// document that is both invalid and malformed fails with 12100.
		var twimlErr *Error
		if errors.As(err, &twimlErr) && twimlErr.Code == CodeSchemaValidation {
			if parseErr := d.finish(); parseErr != nil {
				return nil, parseErr
			}
		}
		return nil, err
	}
	return response, nil
}

// decoder walks the token stream with a fixed grammar: every element is
// either parsed by the function for its place in the document or refused on
// its start tag. Nothing is skipped, so no content is silently dropped, and
// the parsed tree can never go deeper than Response > Dial > Client >
// Parameter. Only after a refusal does finish read on, and then only to
// check that the rest is well formed.
type decoder struct {
	xml     *xml.Decoder
	started bool
	depth   int // open elements, so finish knows where the root ends
}

// token returns the next token that carries meaning, turning decoder
// failures into 12100 and io.EOF into a clean io.EOF for callers that
// expect the document may end.
func (d *decoder) token() (xml.Token, error) {
	for {
		tok, err := d.xml.Token()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, parseErrorf("malformed XML: %v", err)
		}
		first := !d.started
		d.started = true
		switch t := tok.(type) {
		case xml.Comment:
			continue
		case xml.ProcInst:
			// XML allows the declaration only as the very first thing in
			// the document; other processing instructions mean nothing
			// to TwiML.
			if strings.EqualFold(t.Target, "xml") && !first {
				return nil, parseErrorf("XML declaration must come first in the document")
			}
			continue
		case xml.Directive:
			// A DOCTYPE could declare entities; Twilio does not expand
			// them and neither should a parser fed by untrusted webhooks.
			return nil, parseErrorf("DOCTYPE and other <!...> declarations are not allowed in TwiML")
		case xml.StartElement:
			if err := checkDuplicateAttrs(t); err != nil {
				return nil, err
			}
			d.depth++
		case xml.EndElement:
			d.depth--
		}
		return tok, nil
	}
}

// checkDuplicateAttrs enforces an XML well-formedness rule encoding/xml
// does not check.
func checkDuplicateAttrs(start xml.StartElement) error {
	seen := make(map[xml.Name]bool, len(start.Attr))
	for _, attr := range start.Attr {
		if seen[attr.Name] {
			return parseErrorf("malformed XML: <%s> has attribute %q twice", elementName(start.Name), attr.Name.Local)
		}
		seen[attr.Name] = true
	}
	return nil
}

// root reads up to the document's root element, which must be <Response>.
func (d *decoder) root() (xml.StartElement, error) {
	for {
		tok, err := d.token()
		if err == io.EOF {
			if !d.started {
				return xml.StartElement{}, parseErrorf("document is empty")
			}
			return xml.StartElement{}, parseErrorf("document has no root element")
		}
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isBlank(t) {
				return xml.StartElement{}, parseErrorf("text before the root element")
			}
		case xml.StartElement:
			if t.Name != (xml.Name{Local: "Response"}) {
				return xml.StartElement{}, parseErrorf("root element must be <Response>, not <%s>", elementName(t.Name))
			}
			return t, nil
		}
	}
}

// end checks that only blanks and comments follow </Response>.
func (d *decoder) end() error {
	for {
		tok, err := d.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isBlank(t) {
				return parseErrorf("text after </Response>")
			}
		case xml.StartElement:
			return parseErrorf("element <%s> after </Response>", elementName(t.Name))
		}
	}
}

// finish reads the rest of the document after a schema error, only to
// find out whether it is well formed.
func (d *decoder) finish() error {
	for d.depth > 0 {
		_, err := d.token()
		if err == io.EOF {
			return parseErrorf("malformed XML: the document ends inside an element")
		}
		if err != nil {
			return err
		}
	}
	return d.end()
}

// content reads the body of start through its end tag and returns its
// text. Each child element goes to child, which must consume it through its
// own end tag; a nil child means start may not contain elements.
func (d *decoder) content(start xml.StartElement, child func(xml.StartElement) error) (string, error) {
	var text strings.Builder
	for {
		tok, err := d.token()
		if err == io.EOF {
			// encoding/xml reports unclosed elements itself; this is
			// only a backstop.
			return "", parseErrorf("malformed XML: <%s> is not closed", elementName(start.Name))
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.StartElement:
			if child == nil {
				return "", schemaErrorf("<%s> cannot contain <%s>", elementName(start.Name), elementName(t.Name))
			}
			if err := child(t); err != nil {
				return "", err
			}
		case xml.EndElement:
			return text.String(), nil
		}
	}
}

// emptyContent reads the body of an element that takes neither text nor
// elements, such as <Hangup/>.
func (d *decoder) emptyContent(start xml.StartElement) error {
	text, err := d.content(start, nil)
	if err != nil {
		return err
	}
	if !isBlank([]byte(text)) {
		return schemaErrorf("<%s> cannot contain text", elementName(start.Name))
	}
	return nil
}

// elementName shows a namespaced element with its namespace, because such
// an element is never the TwiML element of the same local name.
func elementName(name xml.Name) string {
	if name.Space == "" {
		return name.Local
	}
	return name.Space + ":" + name.Local
}

// xmlSpace is whitespace as XML defines it. unicode.IsSpace is wider (it
// includes U+00A0), and a no-break space is text to Twilio, not layout.
const xmlSpace = " \t\r\n"

// trimText trims layout whitespace from element text, the way Twilio reads
// a URL, a number or a conference name written on its own indented line.
func trimText(text string) string {
	return strings.Trim(text, xmlSpace)
}

func isBlank(text []byte) bool {
	return len(bytes.Trim(text, xmlSpace)) == 0
}
