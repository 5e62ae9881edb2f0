package twiliosig

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"testing"

	twclient "github.com/twilio/twilio-go/client"
)

// Twilio's published example: https://www.twilio.com/docs/usage/security
const (
	docToken     = "12345"
	docURL       = "https://mycompany.com/myapp.php?foo=1&bar=2"
	docSignature = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
)

func docParams() url.Values {
	return url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
}

func TestSignMatchesTwilioPublishedVector(t *testing.T) {
	if got := Sign(docToken, docURL, docParams()); got != docSignature {
		t.Fatalf("Sign = %q, want %q", got, docSignature)
	}
}

func TestTwilioGoValidatorAgreesWithSign(t *testing.T) {
	flat := map[string]string{}
	for k, v := range docParams() {
		flat[k] = v[0]
	}
	v := twclient.NewRequestValidator(docToken)
	if !v.Validate(docURL, flat, docSignature) {
		t.Fatal("twilio-go rejects Twilio's published signature")
	}
	other := url.Values{"CallSid": {"CA9"}, "To": {"client:alice"}}
	sig := Sign("secret-token", "http://127.0.0.1:8080/conference/wait", other)
	if v.Validate("http://127.0.0.1:8080/conference/wait", map[string]string{"CallSid": "CA9", "To": "client:alice"}, sig) {
		t.Fatal("twilio-go accepted a signature made with another token")
	}
	v2 := twclient.NewRequestValidator("secret-token")
	if !v2.Validate("http://127.0.0.1:8080/conference/wait", map[string]string{"CallSid": "CA9", "To": "client:alice"}, sig) {
		t.Fatal("twilio-go rejects a signature made by Sign")
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		url       string
		params    url.Values
		signature string
		want      bool
	}{
		{"published vector", docToken, docURL, docParams(), docSignature, true},
		{"wrong token", "54321", docURL, docParams(), docSignature, false},
		{"empty signature", docToken, docURL, docParams(), "", false},
		{"changed parameter", docToken, docURL, url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+1"}}, docSignature, false},
		{"changed query", docToken, "https://mycompany.com/myapp.php?foo=1&bar=3", docParams(), docSignature, false},
		{"default port added", docToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", docParams(), docSignature, true},
		{"other port", docToken, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", docParams(), docSignature, false},
		{"garbage url", docToken, "%zz", docParams(), docSignature, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.token, tt.url, tt.params, tt.signature); got != tt.want {
				t.Fatalf("Valid = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRepeatedParametersAreAllSigned(t *testing.T) {
	a := Sign("t", "https://x.test/cb", url.Values{"StatusCallbackEvent": {"ringing", "answered"}})
	b := Sign("t", "https://x.test/cb", url.Values{"StatusCallbackEvent": {"ringing"}})
	if a == b {
		t.Fatal("a repeated parameter's second value is not covered by the signature")
	}
	c := Sign("t", "https://x.test/cb", url.Values{"StatusCallbackEvent": {"answered", "ringing"}})
	if a != c {
		t.Fatal("signature depends on the order of repeated values")
	}
}

func TestValidJSON(t *testing.T) {
	body := []byte(`{"property":"value","boolean":true}`)
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	u := "https://mycompany.com/myapp.php?bodySHA256=" + sha
	sig := Sign(docToken, u, nil)
	if !ValidJSON(docToken, u, body, sig) {
		t.Fatal("ValidJSON rejects a correct body and signature")
	}
	if ValidJSON(docToken, u, []byte(`{"property":"other"}`), sig) {
		t.Fatal("ValidJSON accepts a changed body")
	}
	if ValidJSON(docToken, "https://mycompany.com/myapp.php", body, Sign(docToken, "https://mycompany.com/myapp.php", nil)) {
		t.Fatal("ValidJSON accepts a URL without bodySHA256")
	}
	v := twclient.NewRequestValidator(docToken)
	if !v.ValidateBody(u, body, sig) {
		t.Fatal("twilio-go rejects the JSON signature")
	}
}
