package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SessionCookieName is the cookie that carries an agent's signed session.
const SessionCookieName = "wt_session"

// MinSecretBytes is the shortest session secret NewSessions accepts: HS256 is
// only as strong as its key, and a short configured secret can be brute-forced
// offline from any one cookie.
const MinSecretBytes = 32

// ErrNoSession is returned by Sessions.Read when the request carries no
// session cookie, so the app can send the visitor to sign in rather than
// treat it as an attack.
var ErrNoSession = errors.New("auth: no session")

// ErrInvalidSession is returned (wrapped with the reason) by Sessions.Read when
// the cookie is present but cannot be trusted: bad signature, expired, another
// algorithm than HS256, or missing claims.
var ErrInvalidSession = errors.New("auth: invalid session")

// Session is what a verified session cookie says about the signed-in agent.
type Session struct {
	// Identity is the agent's identity (the JWT "sub").
	Identity string
	// Role is the agent's role when the session was issued (agent or manager).
	Role string
	// Epoch is the agent's session epoch at issue. The app bumps the stored
	// epoch on sign-out, disable and password reset, and refuses sessions
	// whose Epoch is older, so a stolen or old cookie stops working.
	Epoch int64
	// ID is the session's random 128-bit identifier in hex (the JWT "jti");
	// CSRF tokens are bound to it.
	ID string
	// IssuedAt and ExpiresAt are whole seconds, as stored in the token.
	IssuedAt, ExpiresAt time.Time
}

// sessionClaims is the JWT payload of a session cookie.
type sessionClaims struct {
	Role  string `json:"role"`
	Epoch int64  `json:"epoch"`
	jwt.RegisteredClaims
}

// Sessions issues and verifies agent session cookies. A session is a JWT
// (HS256) in a cookie, so any instance holding the secret can verify it
// without a database round trip; revocation is done by the epoch claim.
type Sessions struct {
	secret []byte
	ttl    time.Duration
	secure bool
}

// NewSessions returns a Sessions that signs with secret (at least
// MinSecretBytes), issues sessions valid for ttl, and marks its cookies Secure
// when secure is true (set it whenever the app is served over HTTPS).
func NewSessions(secret []byte, ttl time.Duration, secure bool) (*Sessions, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("auth: session secret is %d bytes, need at least %d", len(secret), MinSecretBytes)
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("auth: session lifetime %s is shorter than one second", ttl)
	}
	return &Sessions{
		// Copied so a caller reusing its slice cannot change the key underfoot.
		secret: append([]byte(nil), secret...),
		ttl:    ttl,
		secure: secure,
	}, nil
}

// Issue signs a new session for identity with the given role and the agent's
// current session epoch, and returns the cookie to set and the session it
// carries.
func (s *Sessions) Issue(identity, role string, epoch int64, now time.Time) (*http.Cookie, *Session, error) {
	if identity == "" || role == "" {
		return nil, nil, errors.New("auth: issue session: identity and role are required")
	}
	id := randomHex(16)
	issued := jwt.NewNumericDate(now)
	expires := jwt.NewNumericDate(now.Add(s.ttl))
	claims := sessionClaims{
		Role:  role,
		Epoch: epoch,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   identity,
			ID:        id,
			IssuedAt:  issued,
			ExpiresAt: expires,
		},
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: sign session: %w", err)
	}
	cookie := s.cookie(signed)
	cookie.MaxAge = int(s.ttl / time.Second)
	cookie.Expires = expires.Time
	return cookie, &Session{
		Identity:  identity,
		Role:      role,
		Epoch:     epoch,
		ID:        id,
		IssuedAt:  issued.Time,
		ExpiresAt: expires.Time,
	}, nil
}

// Read verifies the session cookie on r as of now. It returns ErrNoSession
// when there is no cookie and an error wrapping ErrInvalidSession when the
// cookie is forged, expired, signed another way or incomplete. It does not
// check the epoch: only the app knows the agent's current one.
func (s *Sessions) Read(r *http.Request, now time.Time) (*Session, error) {
	cookie, err := r.Cookie(SessionCookieName)
	if errors.Is(err, http.ErrNoCookie) || (err == nil && cookie.Value == "") {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSession, err)
	}
	parser := jwt.NewParser(
		// Only HS256: this rejects "none" and the RS256/HS256 confusion where
		// a forger signs with a key the server would treat as public.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var claims sessionClaims
	_, err = parser.ParseWithClaims(cookie.Value, &claims, func(*jwt.Token) (any, error) {
		return s.secret, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSession, err)
	}
	if claims.Subject == "" || claims.Role == "" || claims.ID == "" || claims.IssuedAt == nil {
		return nil, fmt.Errorf("%w: missing claims", ErrInvalidSession)
	}
	return &Session{
		Identity:  claims.Subject,
		Role:      claims.Role,
		Epoch:     claims.Epoch,
		ID:        claims.ID,
		IssuedAt:  claims.IssuedAt.Time,
		ExpiresAt: claims.ExpiresAt.Time,
	}, nil
}

// Clear returns a cookie that makes the browser drop the session cookie, for
// sign-out. The app must also bump the agent's epoch: clearing a cookie does
// not stop a copy of it from working.
func (s *Sessions) Clear() *http.Cookie {
	cookie := s.cookie("")
	cookie.MaxAge = -1
	cookie.Expires = time.Unix(0, 0)
	return cookie
}

// cookie carries the attributes shared by the issued and the clearing
// cookie; a browser only replaces a cookie whose name, path and domain match.
func (s *Sessions) cookie(value string) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookieName,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// randomHex returns n random bytes in hex. crypto/rand.Read cannot fail
// since Go 1.24 (it crashes the program instead), so there is no error.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
