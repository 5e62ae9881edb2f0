package twiliosim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
)

// WebhookRecord is one request the simulator made about a call, or a note
// about what happened to it.
type WebhookRecord struct {
	At       time.Time         `json:"at"`
	Method   string            `json:"method,omitempty"`
	URL      string            `json:"url,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Status   int               `json:"status,omitempty"`
	Response string            `json:"response,omitempty"`
	Error    string            `json:"error,omitempty"`
	Note     string            `json:"note,omitempty"`
}

// Notification is a webhook or TwiML failure, as Twilio's debugger records it.
type Notification struct {
	SID       string    `json:"sid"`
	CallSID   string    `json:"call_sid,omitempty"`
	ErrorCode int       `json:"error_code"`
	Message   string    `json:"message"`
	URL       string    `json:"url,omitempty"`
	Date      time.Time `json:"date"`
}

// hookFailure is why a webhook did not yield usable instructions, with
// Twilio's error code (11200 retrieval, 11205 connection, 12100 parse,
// 12200 schema, 12300 content type).
type hookFailure struct {
	Code    int
	Message string
	URL     string
}

type hookResult struct {
	body        []byte
	contentType string
	failure     *hookFailure
}

// maxResponse bounds what the simulator reads from a webhook; Twilio caps
// TwiML at 64 KB.
const maxResponse = 1 << 20

// request sends one signed webhook, exactly as Twilio does: a form POST (or
// GET with the parameters in the query), X-Twilio-Signature over the full
// URL and sorted parameters, and a hard time limit.
func (s *Sim) request(ctx context.Context, callSID, method, rawURL string, params url.Values) hookResult {
	method = orPost(method)
	rec := WebhookRecord{At: time.Now(), Method: method, URL: rawURL, Params: flatten(params)}
	res := s.doRequest(ctx, method, rawURL, params)
	if res.failure != nil {
		rec.Error = fmt.Sprintf("%d: %s", res.failure.Code, res.failure.Message)
	}
	rec.Response = string(res.body)
	if len(rec.Response) > 4096 {
		rec.Response = rec.Response[:4096] + "..."
	}
	s.mu.Lock()
	if c := s.calls[callSID]; c != nil {
		c.recordLocked(rec)
	}
	s.mu.Unlock()
	return res
}

func (s *Sim) doRequest(ctx context.Context, method, rawURL string, params url.Values) hookResult {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return hookResult{failure: &hookFailure{Code: 11100, Message: "invalid URL format", URL: rawURL}}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	var req *http.Request
	var sig string
	if method == http.MethodGet {
		q := u.Query()
		for k, vs := range params {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
		full := u.String()
		sig = twiliosig.Sign(s.cfg.AuthToken, full, nil)
		req, err = http.NewRequestWithContext(ctx, method, full, nil)
	} else {
		sig = twiliosig.Sign(s.cfg.AuthToken, rawURL, params)
		req, err = http.NewRequestWithContext(ctx, method, rawURL, strings.NewReader(params.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return hookResult{failure: &hookFailure{Code: 11100, Message: err.Error(), URL: rawURL}}
	}
	req.Header.Set(twiliosig.Header, sig)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("I-Twilio-Idempotency-Token", newSID("ID"))
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return hookResult{failure: &hookFailure{Code: 11205, Message: "HTTP connection failure: timed out after " + s.cfg.WebhookTimeout.String(), URL: rawURL}}
		}
		return hookResult{failure: &hookFailure{Code: 11205, Message: "HTTP connection failure: " + err.Error(), URL: rawURL}}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	res := hookResult{body: body, contentType: resp.Header.Get("Content-Type")}
	if err != nil {
		res.failure = &hookFailure{Code: 11200, Message: "HTTP retrieval failure: " + err.Error(), URL: rawURL}
		return res
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.failure = &hookFailure{Code: 11200, Message: fmt.Sprintf("HTTP retrieval failure: status %d", resp.StatusCode), URL: rawURL}
	}
	return res
}

func flatten(v url.Values) map[string]string {
	out := make(map[string]string, len(v))
	for k, vs := range v {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// notifyLocking records a failure in the debugger log.
func (s *Sim) notifyLocking(callSID string, f *hookFailure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifyLocked(callSID, f)
}

func (s *Sim) notifyLocked(callSID string, f *hookFailure) {
	s.notifications = append(s.notifications, Notification{
		SID: newSID("NO"), CallSID: callSID, ErrorCode: f.Code, Message: f.Message, URL: f.URL, Date: time.Now(),
	})
	if len(s.notifications) > 1000 {
		s.notifications = s.notifications[len(s.notifications)-1000:]
	}
	s.cfg.Logger.Warn("twiliosim: webhook failure", "call", callSID, "code", f.Code, "message", f.Message, "url", f.URL)
	s.changedLocked()
}

// hookJob is one status callback waiting to be delivered.
type hookJob struct {
	sim     *Sim
	callSID string
	method  string
	url     string
	params  url.Values
}

// dispatcher delivers status callbacks asynchronously (Twilio does not wait
// for them) but in order per resource, so one call's or one conference's
// events arrive as they happened while different calls go in parallel.
type dispatcher struct {
	ctx    context.Context
	mu     sync.Mutex
	closed bool
	queues map[string][]hookJob // a key is present while its drainer runs
	wg     sync.WaitGroup
}

func newDispatcher(ctx context.Context) *dispatcher {
	return &dispatcher{ctx: ctx, queues: map[string][]hookJob{}}
}

func (d *dispatcher) send(key string, j hookJob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.ctx.Err() != nil {
		return
	}
	q, running := d.queues[key]
	d.queues[key] = append(q, j)
	if !running {
		d.wg.Add(1)
		go d.drain(key)
	}
}

func (d *dispatcher) drain(key string) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		q := d.queues[key]
		if len(q) == 0 || d.ctx.Err() != nil {
			delete(d.queues, key)
			d.mu.Unlock()
			return
		}
		j := q[0]
		d.queues[key] = q[1:]
		d.mu.Unlock()

		res := j.sim.request(d.ctx, j.callSID, j.method, j.url, j.params)
		if res.failure != nil && d.ctx.Err() == nil {
			j.sim.notifyLocking(j.callSID, res.failure)
		}
	}
}

// close stops taking new callbacks and waits for the drainers, which stop
// once the simulator's context is canceled.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.wg.Wait()
}
