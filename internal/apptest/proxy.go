package apptest

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// proxy is a reverse proxy in front of the app, on an address of its own.
type proxy struct {
	url    string
	srv    *http.Server
	served chan struct{}

	mu   sync.Mutex
	rest []ProxiedRequest
}

// ProxiedRequest is one request to Twilio's REST API (the simulator's,
// served by the app) that went through the proxy.
type ProxiedRequest struct {
	Method string
	Path   string
	// Form is the request's form body (POST) or query (GET).
	Form url.Values
}

// startProxy serves a reverse proxy to the app at appAddr on a new
// loopback port.
func startProxy(appAddr string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{url: "http://" + ln.Addr().String(), served: make(chan struct{})}
	target := &url.URL{Scheme: "http", Host: appAddr}
	rp := &httputil.ReverseProxy{
		// SetURL also sets the Host header to the app's own address, as
		// a proxy that does not preserve Host does: the app cannot learn
		// its public address from the request.
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		// Event streams are passed on as they come.
		FlushInterval: -1,
		// A request the client or the app gives up on (a stream closed
		// at the end of a test) answers 502 as usual, without a line on
		// the test's output.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/2010-04-01/") {
			p.record(r)
		}
		rp.ServeHTTP(w, r)
	})}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// record keeps a REST request's method, path and parameters, leaving its
// body for the app to read.
func (p *proxy) record(r *http.Request) {
	form := r.URL.Query()
	if r.Method == http.MethodPost && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if parsed, err := url.ParseQuery(string(body)); err == nil {
			form = parsed
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rest = append(p.rest, ProxiedRequest{Method: r.Method, Path: r.URL.Path, Form: form})
}

func (p *proxy) close() {
	if p == nil {
		return
	}
	_ = p.srv.Close()
	<-p.served
}

// ProxiedREST returns the REST requests the app sent through the proxy so
// far, oldest first; nil unless the app runs BehindProxy.
func (e *Env) ProxiedREST() []ProxiedRequest {
	if e.proxy == nil {
		return nil
	}
	e.proxy.mu.Lock()
	defer e.proxy.mu.Unlock()
	return append([]ProxiedRequest(nil), e.proxy.rest...)
}
