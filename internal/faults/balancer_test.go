package faults_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// balancer is a load balancer in front of several instances, as the README
// deploys them: one public URL, which Twilio is given and signs, and every
// instance configured with it.
//
// It spreads webhooks the worst way for an app that kept a call's state in
// one process: each call's webhooks alternate between the instances, so
// two webhooks in a row about one call never reach the same instance. (A
// balancer counting all requests would interleave concurrent calls, and a
// call could by chance be served by one instance only.) New calls also
// alternate: the first caller starts on the first instance, the second on
// the next, and likewise the agents' legs, so a test knows where each call
// began.
type balancer struct {
	URL      string
	backends []*instance

	mu     sync.Mutex
	count  map[string]int // CallSid -> webhooks sent, plus the call's start
	starts map[string]int // path -> calls that began there
	other  int            // requests about no call
	served []served
}

// served is one request the balancer passed on, and the answer.
type served struct {
	Instance, Path, CallSID string
	Status                  int
	// Gone is set when Twilio stopped waiting before the instance answered
	// (the call ended meanwhile): the proxy's 502 then went nowhere, and
	// says nothing about the instance.
	Gone bool
}

type backendKey struct{}

func newBalancer(t *testing.T, backends ...*instance) *balancer {
	t.Helper()
	lb := &balancer{backends: backends, count: map[string]int{}, starts: map[string]int{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			in := pr.In.Context().Value(backendKey{}).(*instance)
			target, _ := url.Parse(in.URL)
			pr.SetURL(target)
			pr.SetXForwarded()
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		sid := form.Get("CallSid")
		in := lb.pick(r.URL.Path, sid)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), backendKey{}, in)))
		lb.mu.Lock()
		gone := r.Context().Err() != nil
		lb.served = append(lb.served, served{Instance: in.name, Path: r.URL.Path, CallSID: sid, Status: rec.status, Gone: gone})
		lb.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	lb.URL = srv.URL
	for _, in := range backends {
		in.setPublicURL(lb.URL)
	}
	return lb
}

func (lb *balancer) pick(path, callSID string) *instance {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	n := len(lb.backends)
	if callSID == "" {
		lb.other++
		return lb.backends[(lb.other-1)%n]
	}
	next, known := lb.count[callSID]
	if !known {
		next = lb.starts[path]
		lb.starts[path]++
	}
	lb.count[callSID] = next + 1
	return lb.backends[next%n]
}

// requests returns what the balancer has passed on so far.
func (lb *balancer) requests() []served {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]served(nil), lb.served...)
}

// instancesFor returns the instances that served webhooks about a call, in
// the order they did.
func (lb *balancer) instancesFor(callSID string) []string {
	var got []string
	for _, s := range lb.requests() {
		if s.CallSID == callSID {
			got = append(got, s.Instance)
		}
	}
	return got
}

// statusRecorder keeps the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets the proxy flush through the recorder.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// setPublicURL gives the instance, before it starts, the address Twilio
// calls and signs: the balancer's, not its own.
func (in *instance) setPublicURL(u string) {
	for i, kv := range in.env {
		if strings.HasPrefix(kv, "WT_PUBLIC_URL=") {
			in.env[i] = "WT_PUBLIC_URL=" + u
		}
	}
}
