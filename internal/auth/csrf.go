package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
)

// AnonymousCSRFCookieName is the cookie that binds a CSRF token to a browser
// that has no session yet (the sign-in form), which stops login CSRF: a
// foreign site cannot sign a victim's browser in to the attacker's account.
const AnonymousCSRFCookieName = "wt_csrf"

// The message prefixes keep the two token kinds apart, so a session ID can
// never be replayed as an anonymous cookie value or the other way round. A
// JWT signing input cannot collide with them: base64url has no ':'.
const (
	sessionCSRFPrefix   = "csrf:"
	anonymousCSRFPrefix = "csrf-anon:"
)

// anonymousCSRFBytes is the length of the random wt_csrf cookie value.
const anonymousCSRFBytes = 16

// CSRFToken returns the CSRF token for forms and htmx requests made within
// sess. It is an HMAC of the session ID, so it needs no storage, changes with
// every sign-in, and is worthless with any other session.
func (s *Sessions) CSRFToken(sess *Session) string {
	if sess == nil || sess.ID == "" {
		return ""
	}
	return s.mac(sessionCSRFPrefix + sess.ID)
}

// CheckCSRF reports whether token is the CSRF token of sess. The comparison
// takes the same time wherever the first wrong byte is.
func (s *Sessions) CheckCSRF(sess *Session, token string) bool {
	want := s.CSRFToken(sess)
	return want != "" && hmac.Equal([]byte(want), []byte(token))
}

// AnonymousCSRF returns the CSRF token to put in a form shown to a visitor
// without a session. It reuses the visitor's wt_csrf cookie or, when there is
// none (or it is malformed), sets a new random one on w and adds it to r, so
// calling it twice while rendering one page gives the same token. The cookie
// is SameSite=Strict: a cross-site form post never carries it.
func (s *Sessions) AnonymousCSRF(w http.ResponseWriter, r *http.Request) string {
	if value, ok := anonymousCSRFCookie(r); ok {
		return s.mac(anonymousCSRFPrefix + value)
	}
	cookie := &http.Cookie{
		Name:     AnonymousCSRFCookieName,
		Value:    randomHex(anonymousCSRFBytes),
		Path:     "/",
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteStrictMode,
	}
	http.SetCookie(w, cookie)
	r.AddCookie(cookie)
	return s.mac(anonymousCSRFPrefix + cookie.Value)
}

// CheckAnonymousCSRF reports whether token matches the wt_csrf cookie the
// request carries. A request without the cookie always fails.
func (s *Sessions) CheckAnonymousCSRF(r *http.Request, token string) bool {
	value, ok := anonymousCSRFCookie(r)
	if !ok {
		return false
	}
	return hmac.Equal([]byte(s.mac(anonymousCSRFPrefix+value)), []byte(token))
}

// anonymousCSRFCookie returns the request's wt_csrf value when it has the
// shape AnonymousCSRF gives it; anything else is treated as absent.
func anonymousCSRFCookie(r *http.Request) (string, bool) {
	cookie, err := r.Cookie(AnonymousCSRFCookieName)
	if err != nil {
		return "", false
	}
	raw, err := hex.DecodeString(cookie.Value)
	if err != nil || len(raw) != anonymousCSRFBytes {
		return "", false
	}
	return cookie.Value, true
}

// mac returns HMAC-SHA256(secret, msg) in unpadded base64url, which is safe
// in form fields and headers without escaping.
func (s *Sessions) mac(msg string) string {
	h := hmac.New(sha256.New, s.secret)
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
