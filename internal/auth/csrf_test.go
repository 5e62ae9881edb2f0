package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/auth"
)

func TestCSRFTokenIsBoundToItsSession(t *testing.T) {
	s := newSessions(t, false)
	aliceCookie, alice, err := s.Issue("alice", "agent", 1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	// The session as a later request sees it: the token must depend only on
	// what the cookie carries.
	aliceReadBack, err := s.Read(requestWith(aliceCookie), testNow)
	if err != nil {
		t.Fatal(err)
	}
	_, aliceAgain, err := s.Issue("alice", "agent", 1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	_, bob, err := s.Issue("bob", "agent", 1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.NewSessions([]byte("another secret of at least 32 bytes!"), time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	token := s.CSRFToken(alice)

	tests := []struct {
		name  string
		sess  *auth.Session
		token string
		want  bool
	}{
		{name: "own token", sess: alice, token: token, want: true},
		{name: "token read back from the cookie", sess: aliceReadBack, token: token, want: true},
		{name: "another agent's session", sess: bob, token: token},
		{name: "the same agent's other session", sess: aliceAgain, token: token},
		{name: "the other session's own token is not alice's", sess: alice, token: s.CSRFToken(aliceAgain)},
		{name: "token made with another secret", sess: alice, token: other.CSRFToken(alice)},
		{name: "empty token", sess: alice, token: ""},
		{name: "truncated token", sess: alice, token: token[:len(token)-1]},
		{name: "no session", sess: nil, token: token},
		{name: "no session, no token", sess: nil, token: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.CheckCSRF(tt.sess, tt.token); got != tt.want {
				t.Errorf("CheckCSRF = %v, want %v", got, tt.want)
			}
		})
	}
	if s.CSRFToken(alice) != token {
		t.Error("CSRFToken is not stable for one session")
	}
}

func TestAnonymousCSRFSetsAStrictCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "plain http", true: "https"}[secure]
		t.Run(name, func(t *testing.T) {
			s := newSessions(t, secure)
			w := httptest.NewRecorder()
			token := s.AnonymousCSRF(w, requestWith())
			if token == "" {
				t.Fatal("AnonymousCSRF returned no token")
			}
			cookies := w.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("Set-Cookie = %v, want one wt_csrf cookie", cookies)
			}
			c := cookies[0]
			if c.Name != "wt_csrf" || c.Path != "/" || !c.HttpOnly ||
				c.SameSite != http.SameSiteStrictMode || c.Secure != secure || len(c.Value) != 32 {
				t.Errorf("cookie = %+v", c)
			}
		})
	}
}

func TestAnonymousCSRF(t *testing.T) {
	s := newSessions(t, false)

	// The sign-in page: a first visit gets a cookie and a token.
	w := httptest.NewRecorder()
	token := s.AnonymousCSRF(w, requestWith())
	cookie := w.Result().Cookies()[0]

	// Another visitor, another cookie.
	otherW := httptest.NewRecorder()
	otherToken := s.AnonymousCSRF(otherW, requestWith())
	otherCookie := otherW.Result().Cookies()[0]
	if otherCookie.Value == cookie.Value || otherToken == token {
		t.Fatal("two visitors got the same anonymous CSRF cookie or token")
	}

	_, sess, err := s.Issue("alice", "agent", 1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	// A session ID has the same shape as a wt_csrf value; the tokens must
	// still not stand in for each other.
	sessionIDAsCookie := &http.Cookie{Name: "wt_csrf", Value: sess.ID}

	tests := []struct {
		name   string
		cookie *http.Cookie // nil: no cookie
		token  string
		want   bool
	}{
		{name: "token with its cookie", cookie: cookie, token: token, want: true},
		{name: "token without a cookie", token: token},
		{name: "token with another visitor's cookie", cookie: otherCookie, token: token},
		{name: "empty token", cookie: cookie, token: ""},
		{name: "truncated token", cookie: cookie, token: token[:len(token)-1]},
		{name: "cookie value sent as the token", cookie: cookie, token: cookie.Value},
		{name: "malformed cookie", cookie: &http.Cookie{Name: "wt_csrf", Value: "not-hex"}, token: token},
		{name: "session CSRF token against a session-ID cookie", cookie: sessionIDAsCookie, token: s.CSRFToken(sess)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := requestWith()
			if tt.cookie != nil {
				r = requestWith(tt.cookie)
			}
			if got := s.CheckAnonymousCSRF(r, tt.token); got != tt.want {
				t.Errorf("CheckAnonymousCSRF = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAnonymousCSRFReusesTheCookie(t *testing.T) {
	s := newSessions(t, false)
	first := httptest.NewRecorder()
	token := s.AnonymousCSRF(first, requestWith())
	cookie := first.Result().Cookies()[0]

	tests := []struct {
		name      string
		cookie    *http.Cookie
		wantSame  bool
		wantIssue bool
	}{
		{name: "returning visitor keeps cookie and token", cookie: cookie, wantSame: true},
		{name: "malformed cookie is replaced", cookie: &http.Cookie{Name: "wt_csrf", Value: "zz"}, wantIssue: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := requestWith(tt.cookie)
			got := s.AnonymousCSRF(w, r)
			if (got == token) != tt.wantSame {
				t.Errorf("token same as before = %v, want %v", got == token, tt.wantSame)
			}
			if issued := len(w.Result().Cookies()) > 0; issued != tt.wantIssue {
				t.Errorf("set a cookie = %v, want %v", issued, tt.wantIssue)
			}
			if !s.CheckAnonymousCSRF(requestWith(cookieFrom(w, tt.cookie)), got) {
				t.Error("the returned token does not check against the cookie the browser now holds")
			}
		})
	}

	// One page that renders two forms must get one cookie and one token.
	w := httptest.NewRecorder()
	r := requestWith()
	a, b := s.AnonymousCSRF(w, r), s.AnonymousCSRF(w, r)
	if a != b {
		t.Errorf("two calls on one fresh request gave %q and %q", a, b)
	}
	if n := len(w.Result().Cookies()); n != 1 {
		t.Errorf("two calls on one fresh request set %d cookies, want 1", n)
	}
}

// cookieFrom returns the wt_csrf cookie the browser holds after w: the one w
// set, or else the one it already had.
func cookieFrom(w *httptest.ResponseRecorder, had *http.Cookie) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == "wt_csrf" {
			return c
		}
	}
	return had
}
