package app_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/twiliosim"
	"github.com/warmtransfer/warmtransfer/models"
)

// browserRoute is a route people reach from their browser, with the path
// its parameter is put into.
type browserRoute struct {
	method, path string
}

// browserRoutes lists the app's routes for people, read from its router so
// a new route is fuzzed without anyone remembering to add it. Left out:
// the Twilio routes (their own targets), the simulator's control API (a
// development tool, on in simulator mode only) and the event stream (it
// never ends, so a recorder cannot hold it; its input is only its cookie
// and Last-Event-ID, tested in live_test.go).
func browserRoutes(env *apptest.Env) []browserRoute {
	var out []browserRoute
	twilio := map[string]bool{}
	for _, rt := range twilioRoutes {
		twilio[rt.path] = true
	}
	for _, r := range env.App.Echo.Routes() {
		switch {
		case twilio[r.Path], strings.HasPrefix(r.Path, "/sim"), strings.HasPrefix(r.Path, "/2010-04-01"),
			r.Path == "/events", r.Method == echoRouteNotFound:
			continue
		}
		out = append(out, browserRoute{method: r.Method, path: r.Path})
	}
	return out
}

// echoRouteNotFound is how Echo lists its catch-all for unknown methods.
const echoRouteNotFound = "echo_route_not_found"

// FuzzBrowserRoutes sends every route people use what a browser (or
// anyone with a browser's cookies) could send: any path parameter, any
// body under any content type, with or without the CSRF token, as nobody,
// an agent on a call, an idle agent or a manager. The rule: no answer is a
// 5xx, and nothing panics. State may change (a valid request does what it
// asks); the app must answer every request sensibly all the same.
func FuzzBrowserRoutes(f *testing.F) {
	env := apptest.Start(f, apptest.Options{})
	env.AddAgent("alice", "Alice Archer", models.RoleAgent)
	env.AddAgent("bob", "Bob Baker", models.RoleAgent)
	env.AddAgent("maria", "Maria Manager", models.RoleManager)
	people := []*apptest.Client{nil, env.SignIn("alice"), env.SignIn("bob"), env.SignIn("maria")}
	customer := env.PlaceCall("+15551230001")
	env.SimAction(env.Ringing("alice"), "accept")
	env.WaitSim("alice with the customer", func(st twiliosim.State) bool {
		c, _ := st.Call(customer)
		conf, ok := st.Conference(c.Conference)
		return ok && conf.Status == twiliosim.ConfInProgress && len(conf.Participants) == 2
	})
	routes := browserRoutes(env)
	if len(routes) < 20 {
		f.Fatalf("only %d browser routes found: %v", len(routes), routes)
	}
	call, err := models.CallBySID(f.Context(), env.App.DB, customer)
	if err != nil {
		f.Fatal(err)
	}
	callID := strconv.FormatInt(call.ID, 10)

	for i := range routes {
		for who := range uint8(len(people)) {
			f.Add(uint8(i), who, uint8(0), callID, []byte("to=bob&presence=available&identity=zoe&name=Zoe&role=agent&password=zoe-password-1"), "")
		}
		f.Add(uint8(i), uint8(1), uint8(1), "1", []byte("to=alice"), "")
		f.Add(uint8(i), uint8(3), uint8(2), "alice", []byte(`{"to":"bob"}`), "application/json")
		f.Add(uint8(i), uint8(2), uint8(0), "%zz", []byte("to=%zz&presence=%00"), "")
		f.Add(uint8(i), uint8(1), uint8(0), strings.Repeat("9", 40), []byte("--x\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nbob\r\n--x--\r\n"), "multipart/form-data; boundary=x")
		f.Add(uint8(i), uint8(3), uint8(0), "-1", bytes.Repeat([]byte("a"), 70000), "")
	}

	f.Fuzz(func(t *testing.T, route, who, csrf uint8, param string, body []byte, contentType string) {
		rt := routes[int(route)%len(routes)]
		target := rt.path
		for _, p := range []string{":id", ":identity"} {
			target = strings.Replace(target, p, url.PathEscape(param), 1)
		}
		target = strings.Replace(target, "*", url.PathEscape(param), 1)
		if _, err := url.ParseRequestURI(target); err != nil {
			t.Skip("not a path a browser could request")
		}
		var req *http.Request
		if rt.method == http.MethodGet {
			req = httptest.NewRequest(rt.method, target, nil)
		} else {
			req = httptest.NewRequest(rt.method, target, bytes.NewReader(body))
			if contentType == "" {
				contentType = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", contentType)
		}
		if c := people[int(who)%len(people)]; c != nil {
			u, _ := url.Parse(env.URL)
			for _, ck := range c.HTTP.Jar.Cookies(u) {
				req.AddCookie(ck)
			}
			switch csrf % 3 {
			case 0:
				req.Header.Set("X-CSRF-Token", c.CSRF)
			case 1:
				req.Header.Set("X-CSRF-Token", param)
			}
		}
		req.Header.Set("HX-Request", "true")
		rec := httptest.NewRecorder()
		env.App.Echo.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s as %d (csrf %d, %q): %d %q", rt.method, target, who, csrf%3, contentType, rec.Code, rec.Body.String())
		}
	})
}
