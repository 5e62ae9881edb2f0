package twiliosig

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// FuzzValid checks the signature check against anything a caller can send:
// it never panics, what Sign produces always passes, and a request whose
// parameters or JSON body changed by a single byte after signing never does.
// body is a form body (its parameters are signed) and also a JSON body.
// The seeds are in testdata/fuzz/FuzzValid, Twilio's published example
// among them.
func FuzzValid(f *testing.F) {
	f.Fuzz(func(t *testing.T, token, fullURL, body, signature string, pos uint16, flip byte) {
		params, _ := url.ParseQuery(body)
		// Whatever comes in, the answer is a bool.
		Valid(token, fullURL, params, signature)
		ValidJSON(token, fullURL, []byte(body), signature)

		sig := Sign(token, fullURL, params)
		if !Valid(token, fullURL, params, sig) {
			t.Fatalf("Valid refuses what Sign(%q, %q, %v) produced", token, fullURL, params)
		}
		if flip == 0 {
			flip = 1
		}
		if tampered, ok := flipValueByte(params, int(pos), flip); ok && Valid(token, fullURL, tampered, sig) {
			t.Fatalf("Valid accepts parameters changed after signing: %v, signed %v", tampered, params)
		}

		jsonURL, ok := withBodySHA256(fullURL, []byte(body))
		if !ok {
			return
		}
		jsonSig := Sign(token, jsonURL, nil)
		if !ValidJSON(token, jsonURL, []byte(body), jsonSig) {
			t.Fatalf("ValidJSON refuses what Sign(%q, %q, nil) produced for body %q", token, jsonURL, body)
		}
		if body != "" {
			b := []byte(body)
			b[int(pos)%len(b)] ^= flip
			if ValidJSON(token, jsonURL, b, jsonSig) {
				t.Fatalf("ValidJSON accepts a body changed after signing: %q, signed %q", b, body)
			}
		}
	})
}

// flipValueByte returns a copy of params with one byte of one non-empty
// value (the pos-th value byte in key order) XORed with flip, or false when
// every value is empty.
func flipValueByte(params url.Values, pos int, flip byte) (url.Values, bool) {
	keys := make([]string, 0, len(params))
	total := 0
	for k, vs := range params {
		keys = append(keys, k)
		for _, v := range vs {
			total += len(v)
		}
	}
	if total == 0 {
		return nil, false
	}
	sort.Strings(keys)
	pos %= total
	out := url.Values{}
	for _, k := range keys {
		for _, v := range params[k] {
			if pos >= 0 && pos < len(v) {
				b := []byte(v)
				b[pos] ^= flip
				v = string(b)
			}
			pos -= len(v)
			out[k] = append(out[k], v)
		}
	}
	return out, true
}

// withBodySHA256 adds the bodySHA256 parameter Twilio puts on the URL of a
// JSON webhook; false when fullURL cannot carry it unambiguously.
func withBodySHA256(fullURL string, body []byte) (string, bool) {
	u, err := url.Parse(fullURL)
	if err != nil || strings.Contains(fullURL, "#") || u.Query().Has("bodySHA256") {
		return "", false
	}
	sep := "?"
	if strings.Contains(fullURL, "?") {
		sep = "&"
	}
	sum := sha256.Sum256(body)
	return fullURL + sep + "bodySHA256=" + hex.EncodeToString(sum[:]), true
}
