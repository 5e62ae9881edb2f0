package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmtransfer/warmtransfer/internal/callflow"
	"github.com/warmtransfer/warmtransfer/internal/live"
	"github.com/warmtransfer/warmtransfer/models"
	"github.com/warmtransfer/warmtransfer/views"
)

// The number of fragments each audience's stream starts with, from the
// app's own lists: an update has reached a client once all have arrived.
var (
	boardFragments = len(views.BoardFragments(callflow.BoardView{}))
	agentFragments = len(views.AgentFragments(callflow.AgentView{}))
)

// probe measures one change: when each client saw its first message of the
// update and when it received the toggled agent's row in its new presence
// (in a whole fragment or in a patch of parts, whichever the app sent), in
// nanoseconds after the change was requested (0: not yet; -1: the stream
// ended first).
type probe struct {
	t0          time.Time
	presence    string
	first, done []atomic.Int64
	remaining   atomic.Int64
	all         chan struct{}
	closeOnce   sync.Once
}

func newProbe(clients int, alive int64) *probe {
	p := &probe{first: make([]atomic.Int64, clients), done: make([]atomic.Int64, clients), all: make(chan struct{})}
	p.remaining.Store(alive)
	if alive <= 0 {
		close(p.all)
	}
	return p
}

// finish records client i as done (at ns, or -1 for a stream that ended).
func (p *probe) finish(i int, ns int64) {
	if !p.done[i].CompareAndSwap(0, ns) {
		return
	}
	if p.remaining.Add(-1) == 0 {
		p.closeOnce.Do(func() { close(p.all) })
	}
}

// sseRun is the scenario's state shared with the client goroutines.
type sseRun struct {
	current atomic.Pointer[probe]
	// toggled is the identity of the agent whose presence changes.
	toggled string
	// bytes counts the data received while a probe is current.
	bytes   atomic.Int64
	alive   atomic.Int64
	dropped atomic.Int64
	// connected counts clients that have read their first replay.
	connected sync.WaitGroup
}

// sseClient is one browser tab with the board or a console open.
type sseClient struct {
	idx       int
	board     bool
	fragments int
}

// sseScenario is one run of the sse scenario.
type sseScenario struct {
	t       *target
	ctl     *http.Client // sign-in, presence changes, /metrics
	run     *sseRun
	clients []sseClient
	// agents are the sessions whose consoles are open; toggler is the
	// agent whose presence changes.
	agents           []*session
	manager, toggler *session
	nBoard           int
	connectTime      time.Duration
	openFailures     int64
	results          []changeResult
	memBefore        serverMemory
	memIdle, memPeak serverMemory
	memAfter         serverMemory
	// toolCPU is this process's CPU time over the changes (from memIdle
	// to memAfter).
	toolCPU time.Duration
}

// changeResult is one presence change and how it reached the streams.
type changeResult struct {
	post  time.Duration // the POST /presence itself
	probe *probe
}

func runSSE(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sse", flag.ContinueOnError)
	var tf targetFlags
	tf.register(fs)
	tf.scenarioNeedsDB = true
	clients := fs.Int("clients", 1000, "event streams to open")
	boardShare := fs.Float64("board-share", 0.5, "share of the streams that are the manager's board; the rest are agents' consoles")
	agents := fs.Int("agents", 100, "agents whose consoles are open; console streams are spread over them (several tabs each when there are more streams than agents)")
	changes := fs.Int("changes", 10, "presence changes to time")
	interval := fs.Duration("interval", time.Second, "pause between changes")
	changeTimeout := fs.Duration("change-timeout", time.Minute, "how long a change may take to reach every client")
	parallel := fs.Int("connect-parallel", 64, "streams being opened at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	need := uint64(*clients + 4096)
	if tf.self {
		need += uint64(*clients) // the app's end of each connection too
	}
	lim, err := raiseOpenFileLimit(need)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wtload: open-file limit %d\n", lim)
	t, err := tf.open(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	sc := &sseScenario{t: t, ctl: &http.Client{Transport: newTransport(64), Timeout: time.Minute}, run: &sseRun{}}
	if err := t.ready(ctx, sc.ctl); err != nil {
		return err
	}
	if err := sc.signIn(ctx, *agents); err != nil {
		return err
	}
	if sc.memBefore, err = t.readMemory(ctx, sc.ctl); err != nil {
		return err
	}
	if err := t.startProfile(); err != nil {
		return err
	}
	streamCtx, closeStreams := context.WithCancel(ctx)
	defer closeStreams()
	if err := sc.openStreams(ctx, streamCtx, *clients, *boardShare, *parallel); err != nil {
		return err
	}
	if sc.memIdle, err = t.readMemory(ctx, sc.ctl); err != nil {
		return err
	}
	// The heap profile is taken here, with every stream open and idle:
	// what each open stream costs is the question.
	if err := writeHeapProfile(tf.memProfile); err != nil {
		return err
	}
	// Memory is sampled while changes fan out: the peak is mid-write.
	stopSampling := sampleMemory(ctx, t, sc.ctl, sc.memIdle, &sc.memPeak)
	toolCPU := processCPU()
	err = sc.timeChanges(ctx, *changes, *interval, *changeTimeout)
	t.stopProfile()
	stopSampling()
	if err != nil {
		return err
	}
	sc.memAfter, _ = t.readMemory(ctx, sc.ctl)
	sc.toolCPU = processCPU() - toolCPU
	closeStreams()
	return sc.report()
}

// signIn creates the agents, the manager and the agent whose presence
// changes, and signs them all in.
func (sc *sseScenario) signIn(ctx context.Context, agents int) error {
	fmt.Fprintln(os.Stderr, "wtload: creating and signing in the agents …")
	var rows []models.Agent
	for _, who := range []struct {
		prefix string
		n      int
		role   models.Role
	}{{"wtload-agent", agents, models.RoleAgent}, {"wtload-manager", 1, models.RoleManager}, {"wtload-toggle", 1, models.RoleAgent}} {
		made, err := seedAgents(ctx, sc.t.DB, who.prefix, who.n, who.role, sc.t.Password)
		if err != nil {
			return err
		}
		rows = append(rows, made...)
	}
	sessions, err := sc.t.signIn(ctx, sc.ctl, rows)
	if err != nil {
		return err
	}
	sc.agents, sc.manager, sc.toggler = sessions[:agents], sessions[agents], sessions[agents+1]
	sc.run.toggled = sc.toggler.Identity
	return nil
}

// openStreams opens every stream, a few at a time, and waits until each
// has read its replay.
func (sc *sseScenario) openStreams(ctx, streamCtx context.Context, n int, boardShare float64, parallel int) error {
	client := &http.Client{Transport: &http.Transport{DialContext: newDialer().DialContext, DisableCompression: true}}
	sc.nBoard = int(float64(n) * boardShare)
	if len(sc.agents) == 0 {
		sc.nBoard = n
	}
	sc.clients = make([]sseClient, n)
	var openErrs sync.Map
	fmt.Fprintf(os.Stderr, "wtload: opening %d streams (%d boards, %d consoles over %d agents) …\n", n, sc.nBoard, n-sc.nBoard, len(sc.agents))
	start := time.Now()
	sem := make(chan struct{}, parallel)
	for i := range sc.clients {
		c := &sc.clients[i]
		c.idx, c.board, c.fragments = i, i < sc.nBoard, agentFragments
		s := sc.manager
		if c.board {
			c.fragments = boardFragments
		} else {
			s = sc.agents[(i-sc.nBoard)%len(sc.agents)]
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		sc.run.connected.Add(1)
		go func() {
			err := sc.run.follow(streamCtx, client, sc.t.URL+"/events", s.cookie, c, func() { <-sem })
			if err != nil && streamCtx.Err() == nil {
				openErrs.Store(err.Error(), true)
			}
		}()
	}
	sc.run.connected.Wait()
	sc.connectTime = time.Since(start)
	sc.openFailures = int64(n) - sc.run.alive.Load() - sc.run.dropped.Load()
	fmt.Fprintf(os.Stderr, "wtload: %d streams open after %s\n", sc.run.alive.Load(), sc.connectTime.Round(time.Millisecond))
	openErrs.Range(func(k, _ any) bool {
		fmt.Fprintln(os.Stderr, "wtload: opening a stream:", k)
		return false // one example is enough
	})
	return nil
}

// timeChanges toggles the toggler's presence, one change at a time, and
// waits for each to reach every open stream (or for the timeout).
func (sc *sseScenario) timeChanges(ctx context.Context, n int, interval, timeout time.Duration) error {
	defer sc.run.current.Store(nil)
	for k := 0; k < n && ctx.Err() == nil; k++ {
		presence := "away"
		if k%2 == 1 {
			presence = "available"
		}
		p := newProbe(len(sc.clients), sc.run.alive.Load())
		p.t0, p.presence = time.Now(), presence
		sc.run.current.Store(p)
		status, body, err := sc.toggler.post(ctx, sc.ctl, sc.t.URL, "/presence", url.Values{"presence": {presence}})
		post := time.Since(p.t0)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("changing presence: %d %s %v", status, firstLine(body), err)
		}
		select {
		case <-p.all:
		case <-time.After(timeout):
		case <-ctx.Done():
		}
		sc.results = append(sc.results, changeResult{post: post, probe: p})
		fmt.Fprintf(os.Stderr, "wtload: change %d reached every stream after %s\n", k+1, time.Since(p.t0).Round(time.Millisecond))
		select {
		case <-time.After(interval):
		case <-ctx.Done():
		}
	}
	return ctx.Err()
}

// follow reads one client's stream: first its replay (the fragments as
// they are), then each update, timing it against the current probe.
// opened is called once the replay has been read, or the stream failed.
func (r *sseRun) follow(ctx context.Context, client *http.Client, u, cookie string, c *sseClient, opened func()) error {
	replayed := false
	done := func() {
		if !replayed {
			replayed = true
			opened()
			r.connected.Done()
		}
	}
	defer done()
	resp, err := openStream(ctx, client, u, cookie, 0)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r.alive.Add(1)
	// The toggled agent's row: on the board, and in a console's roster.
	marker := `data-testid="roster-` + r.toggled + `"`
	if c.board {
		marker = `data-testid="agent-row-` + r.toggled + `"`
	}
	var lastID int64
	got := 0
	var p *probe
	err = readStream(resp.Body, true, func(m sseMessage) bool {
		if m.ID == 0 {
			return true
		}
		if !replayed {
			// A stream starts with the audience's fragments, all
			// stamped with the latest event's id.
			lastID = m.ID
			if got++; got == c.fragments {
				done()
			}
			return true
		}
		r.bytes.Add(int64(m.DataBytes))
		since := func() int64 { return max(int64(time.Since(p.t0)), 1) }
		if m.ID > lastID {
			// The first message of a new update.
			lastID = m.ID
			if p = r.current.Load(); p != nil {
				p.first[c.idx].CompareAndSwap(0, since())
			}
		}
		if p != nil && m.Event != live.EventActivity && presenceOf(m.Data, marker) == p.presence {
			p.finish(c.idx, since())
		}
		return true
	})
	r.alive.Add(-1)
	if ctx.Err() == nil {
		r.dropped.Add(1)
		if p := r.current.Load(); p != nil {
			p.finish(c.idx, -1)
		}
		if err == nil {
			err = errors.New("the server ended the stream")
		}
	}
	return err
}

// presenceOf reads the data-presence attribute of the element marker
// names in html ("" when it is not there). The row's tag carries its
// data-testid before its data-presence.
func presenceOf(html []byte, marker string) string {
	i := bytes.Index(html, []byte(marker))
	if i < 0 {
		return ""
	}
	rest := html[i+len(marker):]
	if end := bytes.IndexByte(rest, '>'); end >= 0 {
		rest = rest[:end]
	}
	const attr = `data-presence="`
	j := bytes.Index(rest, []byte(attr))
	if j < 0 {
		return ""
	}
	rest = rest[j+len(attr):]
	if k := bytes.IndexByte(rest, '"'); k >= 0 {
		return string(rest[:k])
	}
	return ""
}
