package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/warmtransfer/warmtransfer/internal/auth"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	// A fixed instant with a fractional second, to show times are truncated
	// the same way on issue and on read.
	testNow = time.Date(2026, 3, 14, 9, 26, 53, 589_793_238, time.UTC)
)

const testTTL = 8 * time.Hour

func newSessions(t *testing.T, secure bool) *auth.Sessions {
	t.Helper()
	s, err := auth.NewSessions(testSecret, testTTL, secure)
	if err != nil {
		t.Fatalf("NewSessions: %v", err)
	}
	return s
}

// requestWith returns a GET carrying the cookies, as the browser sends them.
func requestWith(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

func TestNewSessionsRefusesWeakSettings(t *testing.T) {
	tests := []struct {
		name    string
		secret  []byte
		ttl     time.Duration
		wantErr bool
	}{
		{name: "no secret", secret: nil, ttl: time.Hour, wantErr: true},
		{name: "31-byte secret", secret: testSecret[:31], ttl: time.Hour, wantErr: true},
		{name: "32-byte secret", secret: testSecret, ttl: time.Hour},
		{name: "zero lifetime", secret: testSecret, ttl: 0, wantErr: true},
		{name: "negative lifetime", secret: testSecret, ttl: -time.Hour, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := auth.NewSessions(tt.secret, tt.ttl, false)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewSessions error = %v, wantErr %v", err, tt.wantErr)
			}
			if (s == nil) != tt.wantErr {
				t.Errorf("NewSessions returned %v with error %v", s, err)
			}
		})
	}
}

func TestSessionRoundTrip(t *testing.T) {
	s := newSessions(t, true)
	cookie, issued, err := s.Issue("alice", "manager", 7, testNow)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if raw, err := hex.DecodeString(issued.ID); err != nil || len(raw) != 16 {
		t.Errorf("session ID %q is not 128 bits of hex", issued.ID)
	}
	wantIssued := testNow.Truncate(time.Second)
	if !issued.IssuedAt.Equal(wantIssued) || !issued.ExpiresAt.Equal(wantIssued.Add(testTTL)) {
		t.Errorf("issued at %v until %v, want %v until %v", issued.IssuedAt, issued.ExpiresAt, wantIssued, wantIssued.Add(testTTL))
	}

	read, err := s.Read(requestWith(cookie), testNow.Add(time.Minute))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if read.Identity != "alice" || read.Role != "manager" || read.Epoch != 7 || read.ID != issued.ID {
		t.Errorf("Read = %+v, want %+v", read, issued)
	}
	if !read.IssuedAt.Equal(issued.IssuedAt) || !read.ExpiresAt.Equal(issued.ExpiresAt) {
		t.Errorf("Read times %v..%v, issued %v..%v", read.IssuedAt, read.ExpiresAt, issued.IssuedAt, issued.ExpiresAt)
	}

	claims := payloadOf(t, cookie.Value)
	for _, key := range []string{"sub", "role", "epoch", "jti", "iat", "exp"} {
		if _, ok := claims[key]; !ok {
			t.Errorf("session token lacks claim %q: %v", key, claims)
		}
	}
	if len(claims) != 6 {
		t.Errorf("session token claims = %v, want exactly sub, role, epoch, jti, iat, exp", claims)
	}
}

func TestSessionIDsAreUnique(t *testing.T) {
	s := newSessions(t, false)
	_, a, errA := s.Issue("alice", "agent", 1, testNow)
	_, b, errB := s.Issue("alice", "agent", 1, testNow)
	if errA != nil || errB != nil {
		t.Fatalf("Issue: %v, %v", errA, errB)
	}
	if a.ID == b.ID {
		t.Errorf("two sessions share ID %q", a.ID)
	}
}

func TestIssueRequiresIdentityAndRole(t *testing.T) {
	s := newSessions(t, false)
	tests := []struct{ name, identity, role string }{
		{name: "no identity", identity: "", role: "agent"},
		{name: "no role", identity: "alice", role: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.Issue(tt.identity, tt.role, 1, testNow); err == nil {
				t.Error("Issue succeeded")
			}
		})
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "plain http", true: "https"}[secure]
		t.Run(name, func(t *testing.T) {
			cookie, _, err := newSessions(t, secure).Issue("alice", "agent", 1, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if cookie.Name != "wt_session" || cookie.Path != "/" || !cookie.HttpOnly ||
				cookie.SameSite != http.SameSiteLaxMode || cookie.Secure != secure ||
				cookie.MaxAge != int(testTTL/time.Second) {
				t.Errorf("cookie = %+v", cookie)
			}
			// What the browser actually receives.
			header := setCookieHeader(cookie)
			wants := []string{"wt_session=", "Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=28800"}
			if secure {
				wants = append(wants, "Secure")
			}
			for _, want := range wants {
				if !strings.Contains(header, want) {
					t.Errorf("Set-Cookie %q lacks %q", header, want)
				}
			}
			if !secure && strings.Contains(header, "Secure") {
				t.Errorf("Set-Cookie %q is Secure on plain http", header)
			}
		})
	}
}

func TestClearRemovesTheCookie(t *testing.T) {
	s := newSessions(t, true)
	issued, _, err := s.Issue("alice", "agent", 1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	cleared := s.Clear()
	if cleared.Name != issued.Name || cleared.Path != issued.Path || cleared.Domain != issued.Domain {
		t.Errorf("Clear cookie %+v would not replace %+v", cleared, issued)
	}
	if cleared.Value != "" || cleared.MaxAge >= 0 || !cleared.HttpOnly || !cleared.Secure {
		t.Errorf("Clear cookie = %+v", cleared)
	}
	if header := setCookieHeader(cleared); !strings.Contains(header, "Max-Age=0") {
		t.Errorf("Set-Cookie %q does not expire the cookie", header)
	}
	// A browser that still sends the emptied cookie has no session.
	if _, err := s.Read(requestWith(cleared), testNow); !errors.Is(err, auth.ErrNoSession) {
		t.Errorf("Read of the cleared cookie = %v, want ErrNoSession", err)
	}
}

func TestReadRejectsUntrustedCookies(t *testing.T) {
	s := newSessions(t, false)
	cookie, issued, err := s.Issue("alice", "agent", 3, testNow)
	if err != nil {
		t.Fatal(err)
	}
	good := cookie.Value
	parts := strings.Split(good, ".")
	validClaims := map[string]any{
		"sub": "alice", "role": "manager", "epoch": 3, "jti": issued.ID,
		"iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix(),
	}
	without := func(key string) map[string]any {
		c := map[string]any{}
		for k, v := range validClaims {
			if k != key {
				c[k] = v
			}
		}
		return c
	}
	hs256 := map[string]any{"alg": "HS256", "typ": "JWT"}

	tests := []struct {
		name    string
		cookie  *http.Cookie // nil: no cookie at all
		now     time.Time
		wantErr error
	}{
		{name: "no cookie", wantErr: auth.ErrNoSession},
		{name: "empty cookie", cookie: sessionCookie(""), wantErr: auth.ErrNoSession},
		{name: "not a JWT", cookie: sessionCookie("hello"), wantErr: auth.ErrInvalidSession},
		{name: "role raised in the payload",
			cookie:  sessionCookie(parts[0] + "." + encodeJSON(t, validClaims) + "." + parts[2]),
			wantErr: auth.ErrInvalidSession},
		{name: "signature altered",
			cookie:  sessionCookie(parts[0] + "." + parts[1] + "." + flipFirstChar(parts[2])),
			wantErr: auth.ErrInvalidSession},
		{name: "signature removed",
			cookie:  sessionCookie(parts[0] + "." + parts[1] + "."),
			wantErr: auth.ErrInvalidSession},
		{name: "signed with another secret",
			cookie:  sessionCookie(forge(t, hs256, validClaims, []byte("another secret of at least 32 bytes!"))),
			wantErr: auth.ErrInvalidSession},
		{name: "expired at exactly exp", cookie: cookie, now: testNow.Add(testTTL), wantErr: auth.ErrInvalidSession},
		{name: "expired long ago", cookie: cookie, now: testNow.Add(30 * 24 * time.Hour), wantErr: auth.ErrInvalidSession},
		{name: "valid one second before exp", cookie: cookie, now: testNow.Truncate(time.Second).Add(testTTL - time.Second)},
		{name: "alg none",
			cookie:  sessionCookie(forge(t, map[string]any{"alg": "none", "typ": "JWT"}, validClaims, nil)),
			wantErr: auth.ErrInvalidSession},
		// The classic confusion: an RS256 header with an HMAC made from the
		// key, hoping the server verifies it as RSA with a "public" key.
		{name: "RS256 header, HMAC signature",
			cookie:  sessionCookie(forge(t, map[string]any{"alg": "RS256", "typ": "JWT"}, validClaims, testSecret)),
			wantErr: auth.ErrInvalidSession},
		{name: "HS512 with the right secret",
			cookie:  sessionCookie(signHS512(t, validClaims)),
			wantErr: auth.ErrInvalidSession},
		{name: "control: forged HS256 with the right secret is accepted",
			cookie: sessionCookie(forge(t, hs256, validClaims, testSecret))},
		{name: "no exp", cookie: sessionCookie(forge(t, hs256, without("exp"), testSecret)), wantErr: auth.ErrInvalidSession},
		{name: "no sub", cookie: sessionCookie(forge(t, hs256, without("sub"), testSecret)), wantErr: auth.ErrInvalidSession},
		{name: "no role", cookie: sessionCookie(forge(t, hs256, without("role"), testSecret)), wantErr: auth.ErrInvalidSession},
		{name: "no jti", cookie: sessionCookie(forge(t, hs256, without("jti"), testSecret)), wantErr: auth.ErrInvalidSession},
		{name: "no iat", cookie: sessionCookie(forge(t, hs256, without("iat"), testSecret)), wantErr: auth.ErrInvalidSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := requestWith()
			if tt.cookie != nil {
				r = requestWith(tt.cookie)
			}
			now := tt.now
			if now.IsZero() {
				now = testNow
			}
			sess, err := s.Read(r, now)
			if tt.wantErr == nil {
				if err != nil || sess == nil {
					t.Fatalf("Read = %v, %v; want a session", sess, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Read error = %v, want %v", err, tt.wantErr)
			}
			if sess != nil {
				t.Errorf("Read returned session %+v with an error", sess)
			}
		})
	}
}

func sessionCookie(value string) *http.Cookie {
	return &http.Cookie{Name: "wt_session", Value: value}
}

func setCookieHeader(c *http.Cookie) string {
	w := httptest.NewRecorder()
	http.SetCookie(w, c)
	return w.Header().Get("Set-Cookie")
}

func encodeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// forge builds a JWT by hand, so the header can claim any algorithm. With a
// key the signature is HMAC-SHA256 over the signing input; without one it is
// empty, as for "none".
func forge(t *testing.T, header, claims map[string]any, key []byte) string {
	t.Helper()
	input := encodeJSON(t, header) + "." + encodeJSON(t, claims)
	if key == nil {
		return input + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func signHS512(t *testing.T, claims map[string]any) string {
	t.Helper()
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims(claims)).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func flipFirstChar(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// payloadOf decodes a JWT's claims without verifying it.
func payloadOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
