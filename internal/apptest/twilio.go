package apptest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
)

// TwilioAnswer is the app's answer to a webhook.
type TwilioAnswer struct {
	Status      int
	ContentType string
	Body        string
}

// PostTwilio sends a webhook to target (path and query) as Twilio does: a
// form POST signed with X-Twilio-Signature over the public URL and the
// parameters.
func (e *Env) PostTwilio(t testing.TB, target string, params url.Values) TwilioAnswer {
	t.Helper()
	return e.PostTwilioSigned(t, target, params, twiliosig.Sign(e.App.AuthToken, e.URL+target, params))
}

// PostTwilioSigned sends the webhook with the given signature (none when
// empty), for tests of forged and replayed requests.
func (e *Env) PostTwilioSigned(t testing.TB, target string, params url.Values, signature string) TwilioAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+target, strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signature != "" {
		req.Header.Set(twiliosig.Header, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return TwilioAnswer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: string(body)}
}

// XMLNode is an element of a parsed XML document: its attributes as a map,
// so two documents compare equal whatever order their attributes were
// written in (twilio-go's TwiML writer orders them at random).
type XMLNode struct {
	Name     string
	Attrs    map[string]string
	Text     string
	Children []XMLNode
}

// ParseXML parses a whole XML document into its root element. Text is
// trimmed; comments and processing instructions are dropped.
func ParseXML(doc string) (XMLNode, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	var stack []*XMLNode
	var root *XMLNode
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return XMLNode{}, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &XMLNode{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.Attrs[a.Name.Local] = a.Value
			}
			stack = append(stack, n)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(bytes.TrimSpace(tok))
			}
		case xml.EndElement:
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, *n)
			}
		}
	}
	if root == nil {
		return XMLNode{}, errors.New("apptest: no root element")
	}
	return *root, nil
}

// Equal reports whether two elements have the same name, attributes, text
// and children, in the same order.
func (n XMLNode) Equal(o XMLNode) bool {
	if n.Name != o.Name || n.Text != o.Text || !maps.Equal(n.Attrs, o.Attrs) || len(n.Children) != len(o.Children) {
		return false
	}
	for i := range n.Children {
		if !n.Children[i].Equal(o.Children[i]) {
			return false
		}
	}
	return true
}

// Find returns the first element named name, depth first.
func (n XMLNode) Find(name string) (XMLNode, bool) {
	if n.Name == name {
		return n, true
	}
	for _, c := range n.Children {
		if f, ok := c.Find(name); ok {
			return f, true
		}
	}
	return XMLNode{}, false
}
