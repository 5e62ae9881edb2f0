package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmtransfer/warmtransfer/models"
)

// customer is one simulated caller and what the tool expects of their call.
type customer struct {
	idx      int
	from     string
	sid      string // the customer's CallSid, from the simulator
	placedAt time.Time
	callID   int64 // the app's id for the call, once it is stored

	// owner is the agent the call must be with: whoever answered it, then
	// whoever it was last transferred to.
	owner *simAgent
	// settled: the app shows the owner alone with the caller, so the call
	// may be transferred.
	settled      bool
	transferring bool
	// pending is the colleague being rung by a transfer.
	pending   *simAgent
	transfers int
	hungUp    bool
}

// simAgent is one agent: a session in the app and a simulated browser
// phone, and what the tool expects them to be doing.
type simAgent struct {
	s *session
	// call is the customer the agent is on, or being rung for; nil when free.
	call *customer
	// legSID is the phone's current call.
	legSID string
	// leaving: the agent's leg is expected to end (they left the call or
	// handed it over, or the customer hung up).
	leaving bool
	// reserved: picked as a transfer's colleague and not yet rung.
	reserved bool
}

// callsRun is the calls scenario's shared state, under mu.
type callsRun struct {
	t   *target
	ctl *http.Client

	mu         sync.Mutex
	customers  []*customer
	byFrom     map[string]*customer
	agents     []*simAgent
	byIdentity map[string]*simAgent
	failures   map[string][]string // kind -> examples
	answerLat  []time.Duration
	transferLt map[string][]time.Duration // by mode
	outcomes   map[string]int             // transfer outcomes

	// talk is how long agents talk to a colleague before handing over.
	talk time.Duration

	transfers sync.WaitGroup
	phonesUp  sync.WaitGroup
	phonesOK  atomic.Int64
	accepts   atomic.Int64
}

// fail records a failure of the kind; the report shows counts and a few
// examples.
func (r *callsRun) fail(kind, format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failLocked(kind, format, a...)
}

func (r *callsRun) failLocked(kind, format string, a ...any) {
	r.failures[kind] = append(r.failures[kind], fmt.Sprintf(format, a...))
}

func runCalls(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	var tf targetFlags
	tf.register(fs)
	tf.scenarioNeedsDB = true
	nCalls := fs.Int("calls", 100, "customer calls held at once")
	nAgents := fs.Int("agents", 0, "agents (default: the calls plus a tenth, at least 10 spare, so transfers find a free colleague)")
	rate := fs.Float64("transfers-per-min", 60, "transfers started per minute, spread evenly")
	duration := fs.Duration("duration", 30*time.Second, "how long transfers go on once every call is answered")
	ramp := fs.Float64("ramp", 50, "customer calls placed per second at the start")
	modes := fs.String("modes", "blind,warm,consult", "transfer kinds, taken in turn: blind (one step), warm (transfer, then leave), consult (then complete)")
	boards := fs.Int("boards", 1, "manager board streams open during the run (the broker renders only for watched audiences)")
	consoles := fs.Bool("consoles", false, "open every agent's console stream too, as agents' browsers would")
	talk := fs.Duration("talk", time.Second, "how long an agent talks with the colleague who answered before pressing Leave call or Complete")
	settle := fs.Duration("settle-timeout", 2*time.Minute, "how long calls may take to be answered, and to end after the hang-up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nAgents == 0 {
		*nAgents = *nCalls + max(10, *nCalls/10)
	}
	if *nAgents <= *nCalls {
		return fmt.Errorf("-agents (%d) must exceed -calls (%d): transfers need free colleagues", *nAgents, *nCalls)
	}
	kinds := strings.Split(*modes, ",")
	for _, k := range kinds {
		if transferPaths[k] == "" {
			return fmt.Errorf("unknown transfer kind %q: use blind, warm, consult", k)
		}
	}
	need := uint64(2**nAgents + *boards + 4096)
	if tf.self {
		need *= 2
	}
	if _, err := raiseOpenFileLimit(need); err != nil {
		return err
	}
	t, err := tf.open(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	r := &callsRun{
		t: t, ctl: &http.Client{Transport: newTransport(256), Timeout: time.Minute},
		byFrom: map[string]*customer{}, byIdentity: map[string]*simAgent{},
		failures: map[string][]string{}, transferLt: map[string][]time.Duration{}, outcomes: map[string]int{},
		talk: *talk,
	}
	if err := t.ready(ctx, r.ctl); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "wtload: creating and signing in %d agents …\n", *nAgents)
	agentRows, err := seedAgents(ctx, t.DB, "wtload-agent", *nAgents, models.RoleAgent, t.Password)
	if err != nil {
		return err
	}
	managerRows, err := seedAgents(ctx, t.DB, "wtload-manager", 1, models.RoleManager, t.Password)
	if err != nil {
		return err
	}
	// Phones first: an agent made available is offered calls at once.
	phoneCtx, stopPhones := context.WithCancel(ctx)
	defer stopPhones()
	for _, row := range agentRows {
		a := &simAgent{s: &session{Identity: row.Identity, AgentID: row.ID, Role: row.Role}}
		r.agents = append(r.agents, a)
		r.byIdentity[row.Identity] = a
		r.phonesUp.Add(1)
		go r.phone(phoneCtx, a)
	}
	r.phonesUp.Wait()
	if n := r.phonesOK.Load(); n != int64(len(r.agents)) {
		return fmt.Errorf("only %d of %d phones connected to the simulator at %s", n, len(r.agents), t.SimURL)
	}
	sessions, err := t.signIn(ctx, r.ctl, append(agentRows, managerRows...))
	if err != nil {
		return err
	}
	r.mu.Lock()
	for i, a := range r.agents {
		a.s = sessions[i] // the phones read it under mu
	}
	r.mu.Unlock()
	manager := sessions[len(sessions)-1]
	streams := &streamCounter{}
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	streamClient := &http.Client{Transport: &http.Transport{DialContext: newDialer().DialContext, DisableCompression: true}}
	for range *boards {
		go streams.drain(streamCtx, streamClient, t.URL+"/events", manager.cookie)
	}
	if *consoles {
		for _, a := range r.agents {
			go streams.drain(streamCtx, streamClient, t.URL+"/events", a.s.cookie)
		}
	}

	// 1. Customers call, at the ramp rate, and agents answer.
	fmt.Fprintf(os.Stderr, "wtload: placing %d calls at %.0f/s …\n", *nCalls, *ramp)
	if err := t.startProfile(); err != nil {
		return err
	}
	start := time.Now()
	placing := make(chan struct{})
	settled := make(chan int, 1)
	// Calls are watched while they are placed, so each answer is timed
	// when it happens.
	go func() { settled <- r.waitSettled(ctx, placing, *settle) }()
	err = r.placeCalls(ctx, *nCalls, *ramp)
	close(placing)
	if err != nil {
		return err
	}
	placed := time.Since(start)
	unanswered := <-settled
	answered := time.Since(start)
	fmt.Fprintf(os.Stderr, "wtload: %d calls answered after %s (%d not)\n", *nCalls-unanswered, answered.Round(time.Millisecond), unanswered)
	memAnswered, _ := t.readMemory(ctx, r.ctl)

	// 2. Transfers at the set rate, while every call stays up.
	fmt.Fprintf(os.Stderr, "wtload: transferring at %.0f/min for %s …\n", *rate, *duration)
	r.transferLoop(ctx, *rate, *duration, kinds)
	done := make(chan struct{})
	go func() { r.transfers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(*settle):
		r.fail("transfer did not finish", "transfers still running %s after the transfer phase", *settle)
	}

	// 3. Each call is with the right agent, and nobody is on two calls.
	fmt.Fprintln(os.Stderr, "wtload: checking every call's owner …")
	r.checkOwners(ctx)

	// 4. Every customer hangs up; every call must end everywhere.
	fmt.Fprintln(os.Stderr, "wtload: every customer hangs up …")
	hangStart := time.Now()
	r.hangUpAll(ctx)
	hungUp := time.Since(hangStart)
	milestones := r.waitEnded(ctx, *settle, manager)
	t.stopProfile()
	memEnd, _ := t.readMemory(ctx, r.ctl)
	stopStreams()
	stopPhones()

	r.report(reportInput{
		calls: *nCalls, agents: *nAgents, rate: *rate, duration: *duration, placed: placed, answered: answered,
		hungUp: hungUp, milestones: milestones, unanswered: unanswered, streams: streams, memAnswered: memAnswered, memEnd: memEnd,
	})
	if err := writeHeapProfile(tf.memProfile); err != nil {
		return err
	}
	n := 0
	for _, ex := range r.failures {
		n += len(ex)
	}
	if n > 0 {
		return fmt.Errorf("%d failure(s)", n)
	}
	return nil
}

// placeCalls has n customers call the number through the simulator's
// control API, at perSecond.
func (r *callsRun) placeCalls(ctx context.Context, n int, perSecond float64) error {
	every := time.Duration(float64(time.Second) / perSecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		c := &customer{idx: i, from: customerNumber(i + 1)}
		r.mu.Lock()
		r.customers = append(r.customers, c)
		r.byFrom[c.from] = c
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.placedAt = time.Now()
			var out struct{ SID string }
			status, err := r.simPost(ctx, "/sim/calls", url.Values{"From": {c.from}, "CallerName": {"Load Customer " + strconv.Itoa(i+1)}}, &out)
			if err != nil || status != http.StatusCreated {
				r.fail("call not placed", "customer %s: %d %v", c.from, status, err)
				return
			}
			r.mu.Lock()
			c.sid = out.SID
			r.mu.Unlock()
		}()
	}
	wg.Wait()
	return nil
}

// simPost sends a form to the simulator's control API and decodes its JSON
// answer into out (when not nil).
func (r *callsRun) simPost(ctx context.Context, path string, form url.Values, out any) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.t.SimURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := r.ctl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// hangUpAll has every customer hang up, a few at a time.
func (r *callsRun) hangUpAll(ctx context.Context) {
	r.mu.Lock()
	var todo []*customer
	for _, c := range r.customers {
		if c.sid == "" {
			continue
		}
		c.hungUp = true
		for _, a := range []*simAgent{c.owner, c.pending} {
			if a != nil && a.call == c {
				a.leaving = true
			}
		}
		todo = append(todo, c)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, c := range todo {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			status, err := r.simPost(ctx, "/sim/calls/"+c.sid+"/hangup", nil, nil)
			if err != nil || status != http.StatusOK {
				r.fail("hang-up refused", "customer %s (%s): %d %v", c.from, c.sid, status, err)
			}
		}()
	}
	wg.Wait()
}

// pick returns a random element of s, or nil.
func pick[T any](s []*T) *T {
	if len(s) == 0 {
		return nil
	}
	return s[rand.IntN(len(s))]
}
