// Package twiliosig computes and checks X-Twilio-Signature, the HMAC that
// Twilio puts on every webhook it sends. The simulator signs with it and the
// app's Twilio-facing routes verify with it, so both sides share one
// implementation of Twilio's documented algorithm.
package twiliosig

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
)

// Header is the HTTP header Twilio carries the signature in.
const Header = "X-Twilio-Signature"

// Sign returns the signature of a request to fullURL (scheme, host, path and
// query exactly as Twilio was told to call it) with the given POST form
// parameters; for GET requests params is empty because the parameters are
// already part of the URL.
func Sign(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	size := len(fullURL)
	for k, values := range params {
		keys = append(keys, k)
		for _, v := range values {
			size += len(k) + len(v)
		}
	}
	sort.Strings(keys)
	// The signed text is built whole and hashed at once: a Write per
	// key and value would allocate each of them again (every webhook is
	// checked, so this is on the hot path of each).
	text := make([]byte, 0, size)
	text = append(text, fullURL...)
	for _, k := range keys {
		values := params[k]
		if len(values) > 1 {
			// Repeated parameters are signed in value order, as
			// Twilio's libraries do for array values.
			values = append([]string(nil), values...)
			sort.Strings(values)
		}
		for _, v := range values {
			text = append(text, k...)
			text = append(text, v...)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write(text)
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(mac.Sum(sum[:0]))
}

// Valid reports whether signature matches a form-encoded (or GET) request.
// Twilio is inconsistent about whether the standard port appears in the
// signed URL, so both spellings are accepted, as Twilio's libraries do.
func Valid(authToken, fullURL string, params url.Values, signature string) bool {
	if signature == "" {
		return false
	}
	if equal(Sign(authToken, fullURL, params), signature) {
		return true
	}
	other, ok := otherPortSpelling(fullURL)
	return ok && equal(Sign(authToken, other, params), signature)
}

// ValidJSON reports whether signature matches a request with a JSON (or any
// non-form) body: Twilio then signs the URL alone, which carries a
// bodySHA256 query parameter holding the hex SHA-256 of the body.
func ValidJSON(authToken, fullURL string, body []byte, signature string) bool {
	u, err := url.Parse(fullURL)
	if err != nil {
		return false
	}
	want := u.Query().Get("bodySHA256")
	if want == "" {
		return false
	}
	sum := sha256.Sum256(body)
	if !equal(hex.EncodeToString(sum[:]), strings.ToLower(want)) {
		return false
	}
	return Valid(authToken, fullURL, nil, signature)
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// otherPortSpelling returns fullURL with the default port added or
// removed, when it has a default port to add or remove.
func otherPortSpelling(fullURL string) (string, bool) {
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return "", false
	}
	defaultPort := map[string]string{"http": "80", "https": "443"}[u.Scheme]
	if defaultPort == "" {
		return "", false
	}
	other := *u
	switch u.Port() {
	case "":
		other.Host = u.Host + ":" + defaultPort
	case defaultPort:
		other.Host = u.Hostname()
	default:
		return "", false
	}
	return other.String(), true
}
