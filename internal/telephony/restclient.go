// Package telephony is the app's door to Twilio: a twilio-go REST client
// that can be pointed at another base URL (the simulator), and the
// implementation of the call-flow service's Telephony interface on top of it.
package telephony

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
)

// TwilioAPIURL is where twilio-go sends REST requests unless told otherwise.
const TwilioAPIURL = "https://api.twilio.com"

// NewRestClient returns a twilio-go client for accountSID, authenticating
// with user and password (the account SID and auth token, or an API key and
// its secret). twilio-go's base URL cannot be configured, so when apiURL is
// not Twilio's own, a transport rewrites every request's scheme and host.
func NewRestClient(apiURL, accountSID, user, password string, timeout time.Duration) (*twilio.RestClient, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	var rt http.RoundTripper = base
	if apiURL != "" && apiURL != TwilioAPIURL {
		target, err := url.Parse(apiURL)
		if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
			return nil, fmt.Errorf("telephony: invalid Twilio API URL %q", apiURL)
		}
		rt = rewriteHost{target: target, next: base}
	}
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(user, password),
		HTTPClient:  &http.Client{Transport: rt, Timeout: timeout},
	}
	c.SetAccountSid(accountSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c}), nil
}

// rewriteHost sends requests meant for api.twilio.com to another server.
type rewriteHost struct {
	target *url.URL
	next   http.RoundTripper
}

func (r rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme = r.target.Scheme
	out.URL.Host = r.target.Host
	out.Host = r.target.Host
	return r.next.RoundTrip(out)
}
