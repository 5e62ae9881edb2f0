package auth

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultAccessTokenTTL is the Access Token lifetime when AccessTokens.TTL is
// zero; the browser phone asks for a new token before it runs out.
const DefaultAccessTokenTTL = time.Hour

// MaxAccessTokenTTL is the longest lifetime Twilio accepts for an Access Token.
const MaxAccessTokenTTL = 24 * time.Hour

// MaxClientIdentityLength is the longest client identity Twilio accepts
// (longer ones fail registration with error 51003).
const MaxClientIdentityLength = 121

// ErrInvalidIdentity is returned by AccessTokens.Issue for an identity the
// browser phone could not register with: empty, too long, or with characters
// outside letters, digits, '_', '.', '-' and '@'. It is also what the app
// should check agent identities against when they are created, since the same
// string becomes the "client:<identity>" address Twilio dials.
var ErrInvalidIdentity = errors.New("auth: invalid Twilio client identity")

// clientIdentityChars is the character set ValidClientIdentity accepts. It is
// narrower than what Twilio tolerates on purpose: these characters need no
// escaping in a "client:" URI, a TwiML <Client> or a form field.
var clientIdentityChars = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

// ValidClientIdentity reports whether identity can be used as a Twilio Voice
// client identity (see ErrInvalidIdentity).
func ValidClientIdentity(identity string) bool {
	return len(identity) <= MaxClientIdentityLength && clientIdentityChars.MatchString(identity)
}

// AccessTokens issues Twilio Access Tokens with a Voice grant, which the
// Voice JS SDK 2.x (Twilio.Device) needs to register the agent's browser
// phone and receive "client:<identity>" calls.
type AccessTokens struct {
	// AccountSID is the Twilio account the token is scoped to (AC...).
	AccountSID string
	// APIKey is the SID of the API key that signs the token (SK...).
	APIKey string
	// APISecret is that API key's secret, the HS256 signing key.
	APISecret string
	// TTL is the token lifetime; zero means DefaultAccessTokenTTL.
	TTL time.Duration
	// OutgoingApplicationSID is the TwiML App (AP...) for calls the browser
	// places; empty means the token only allows incoming calls.
	OutgoingApplicationSID string
}

// Issue returns a signed Access Token for identity valid from now, and the
// lifetime it was given so the caller can schedule a refresh. Its claims follow
// Twilio's helper libraries: jti "<APIKey>-<unix seconds>", iss APIKey, sub
// AccountSID, exp, and grants with the identity and the Voice grant.
func (a AccessTokens) Issue(identity string, now time.Time) (token string, ttl time.Duration, err error) {
	if a.AccountSID == "" || a.APIKey == "" || a.APISecret == "" {
		return "", 0, errors.New("auth: access token: account SID, API key and API secret are required")
	}
	if !ValidClientIdentity(identity) {
		return "", 0, fmt.Errorf("%w: %q", ErrInvalidIdentity, identity)
	}
	ttl = a.TTL
	if ttl == 0 {
		ttl = DefaultAccessTokenTTL
	}
	if ttl < time.Second || ttl > MaxAccessTokenTTL {
		return "", 0, fmt.Errorf("auth: access token lifetime %s is outside 1s..%s", ttl, MaxAccessTokenTTL)
	}

	voice := map[string]any{
		"incoming": map[string]any{"allow": true},
	}
	if a.OutgoingApplicationSID != "" {
		voice["outgoing"] = map[string]any{"application_sid": a.OutgoingApplicationSID}
	}
	claims := jwt.MapClaims{
		"jti": a.APIKey + "-" + strconv.FormatInt(now.Unix(), 10),
		"iss": a.APIKey,
		"sub": a.AccountSID,
		"exp": now.Add(ttl).Unix(),
		"grants": map[string]any{
			"identity": identity,
			"voice":    voice,
		},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	// Twilio identifies its "first-party" token format by this content type.
	t.Header["cty"] = "twilio-fpa;v=1"
	token, err = t.SignedString([]byte(a.APISecret))
	if err != nil {
		return "", 0, fmt.Errorf("auth: sign access token: %w", err)
	}
	return token, ttl, nil
}
