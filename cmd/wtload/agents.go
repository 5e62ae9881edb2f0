package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/auth"
	"github.com/warmtransfer/warmtransfer/models"
)

// seedAgents creates the load's agents (or managers), prefix-0001 and on,
// all with one password, or resets the password of those a previous run
// left. The password is hashed once: bcrypt at the app's cost takes tens of
// milliseconds, and a thousand agents would otherwise take a minute.
func seedAgents(ctx context.Context, db bun.IDB, prefix string, n int, role models.Role, password string) ([]models.Agent, error) {
	hash, err := auth.HashPassword(password)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	out := make([]models.Agent, 0, n)
	var fresh []models.Agent
	for i := 1; i <= n; i++ {
		identity := fmt.Sprintf("%s-%04d", prefix, i)
		name := fmt.Sprintf("Load %s %d", role, i)
		a, err := models.AgentByIdentity(ctx, db, identity)
		switch {
		case errors.Is(err, models.ErrNotFound):
			fresh = append(fresh, models.Agent{
				Identity: identity, Name: name, Role: role, PasswordHash: hash,
				Presence: models.PresenceOffline, PresenceSince: now, CreatedAt: now, UpdatedAt: now,
			})
			continue
		case err != nil:
			return nil, err
		}
		a.Name, a.Role, a.PasswordHash, a.Disabled = name, role, hash, false
		if err := models.UpdateAgent(ctx, db, a, "name", "role", "password_hash", "disabled"); err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	// One INSERT per few hundred rows keeps under SQLite's variable limit.
	for start := 0; start < len(fresh); start += 200 {
		batch := fresh[start:min(start+200, len(fresh))]
		if _, err := db.NewInsert().Model(&batch).Exec(ctx); err != nil {
			return nil, fmt.Errorf("creating agents: %w", err)
		}
		out = append(out, batch...)
	}
	return out, nil
}

// session is one signed-in person, as their browser holds it: the session
// cookie and the CSRF token htmx sends with every change.
type session struct {
	Identity string
	AgentID  int64
	Role     models.Role
	cookie   string
	csrf     string
}

// signIn gets a session for each agent. With the app's session secret the
// cookie is issued here, by the app's own code, and agents are then made
// available as sign-in would; otherwise each signs in through the form
// (one bcrypt comparison on the server each).
func (t *target) signIn(ctx context.Context, client *http.Client, agents []models.Agent) ([]*session, error) {
	out := make([]*session, len(agents))
	errs := make([]error, len(agents))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := agents[i]
			var s *session
			var err error
			if t.Sessions != nil {
				s, err = t.issueSession(ctx, client, a)
			} else {
				s, err = t.formSignIn(ctx, client, a)
			}
			out[i], errs[i] = s, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (t *target) issueSession(ctx context.Context, client *http.Client, a models.Agent) (*session, error) {
	cookie, sess, err := t.Sessions.Issue(a.Identity, string(a.Role), a.SessionEpoch, time.Now())
	if err != nil {
		return nil, err
	}
	s := &session{Identity: a.Identity, AgentID: a.ID, Role: a.Role, cookie: cookie.Name + "=" + cookie.Value, csrf: t.Sessions.CSRFToken(sess)}
	if a.Role == models.RoleAgent {
		if status, body, err := s.post(ctx, client, t.URL, "/presence", url.Values{"presence": {"available"}}); err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("making %s available: %d %s %v", a.Identity, status, firstLine(body), err)
		}
	}
	return s, nil
}

// formSignIn signs in as a browser does: the sign-in page for its CSRF
// cookie and token, the form post, then the landing page for the token
// htmx sends.
func (t *target) formSignIn(ctx context.Context, client *http.Client, a models.Agent) (*session, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: client.Transport, Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	doc, err := getPage(ctx, c, t.URL+"/signin")
	if err != nil {
		return nil, err
	}
	token, _ := doc.Find(`input[name="csrf"]`).Attr("value")
	form := url.Values{"identity": {a.Identity}, "password": {t.Password}, "csrf": {token}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("signing in %s: status %d (is -password the agents' password?)", a.Identity, resp.StatusCode)
	}
	landing := "/agent"
	if a.Role == models.RoleManager {
		landing = "/board"
	}
	page, err := getPage(ctx, c, t.URL+landing)
	if err != nil {
		return nil, err
	}
	raw, _ := page.Find("body").Attr("hx-headers")
	var h map[string]string
	_ = json.Unmarshal([]byte(raw), &h)
	u, _ := url.Parse(t.URL)
	s := &session{Identity: a.Identity, AgentID: a.ID, Role: a.Role, csrf: h["X-CSRF-Token"]}
	for _, ck := range jar.Cookies(u) {
		if ck.Name == auth.SessionCookieName {
			s.cookie = ck.Name + "=" + ck.Value
		}
	}
	if s.cookie == "" || s.csrf == "" {
		return nil, fmt.Errorf("signing in %s: no session cookie or CSRF token", a.Identity)
	}
	return s, nil
}

func getPage(ctx context.Context, c *http.Client, u string) (*goquery.Document, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return goquery.NewDocumentFromReader(resp.Body)
}

// post sends a form as htmx does from the console: HX-Request and the CSRF
// header. It returns the status and the body.
func (s *session) post(ctx context.Context, client *http.Client, base, path string, form url.Values) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", s.csrf)
	req.Header.Set("Cookie", s.cookie)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// get fetches a page with the session.
func (s *session) get(ctx context.Context, client *http.Client, u string) (*goquery.Document, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Cookie", s.cookie)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return goquery.NewDocumentFromReader(resp.Body)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
