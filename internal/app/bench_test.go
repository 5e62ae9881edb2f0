package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/handlers"
	"github.com/warmtransfer/warmtransfer/internal/apptest"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/internal/twiliosig"
	"github.com/warmtransfer/warmtransfer/models"
)

// connectBench posts signed customer-call webhooks to a running app (SQLite
// in a temporary folder, the built-in simulator as Twilio).
type connectBench struct {
	env    *apptest.Env
	client *http.Client
}

func startConnectBench(b *testing.B, mode connectMode) *connectBench {
	b.Helper()
	// SQLite whatever WT_TEST_DATABASE says: the target is for SQLite. The
	// "-postgres" modes use a fresh database on WT_TEST_POSTGRES's server.
	dbURL := testdb.SQLite(b)
	if mode.postgres {
		dbURL = testdb.Postgres(b)
	}
	// Agents' phones ring for ten minutes, so no ring times out (and sends
	// callbacks) while the benchmark runs.
	env := apptest.Start(b, apptest.Options{RingTimeout: 10 * time.Minute, DatabaseURL: dbURL})
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	return &connectBench{env: env, client: &http.Client{Transport: tr, Timeout: apptest.WaitLimit}}
}

// benchAgents is the size of the simulated contact center in the "ring"
// modes: every agent is made available again each time all of them have
// been rung, so each call is offered at once while the agents table stays
// the size of a real team (the broker reads the whole table on every
// presence change).
const benchAgents = 100

// addAgents puts n available agents in the database.
func (cb *connectBench) addAgents(b *testing.B, n int) {
	b.Helper()
	now := time.Now().UTC()
	agents := make([]models.Agent, n)
	for i := range agents {
		agents[i] = models.Agent{
			Identity: fmt.Sprintf("bench%03d", i), Name: fmt.Sprintf("Bench Agent %d", i), Role: models.RoleAgent,
			PasswordHash: "unused", Presence: models.PresenceAvailable, PresenceSince: now.Add(time.Duration(i) * time.Microsecond),
			CreatedAt: now, UpdatedAt: now,
		}
	}
	if _, err := cb.env.App.DB.NewInsert().Model(&agents).Exec(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// freeAgents makes every agent available again, behind the app's back (no
// event): their earlier offers keep ringing, for ten minutes. The update
// takes its turn with the app's own writes, as the app's writes do with
// each other; made directly, it would fight them for SQLite's write lock,
// and whichever lost would sleep in SQLite's busy handler (up to 89 ms,
// measured), which is no part of the route's cost.
func (cb *connectBench) freeAgents() error {
	return cb.env.App.Service.Write(context.Background(), func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewUpdate().Model((*models.Agent)(nil)).
			Set("presence = ?", models.PresenceAvailable).
			Where("presence <> ?", models.PresenceAvailable).
			Exec(ctx)
		return err
	})
}

// post sends one new customer call, as Twilio does when the number rings:
// a typical 12-parameter form, signed with the app's auth token.
func (cb *connectBench) post() error {
	var sid [16]byte
	_, _ = rand.Read(sid[:])
	form := url.Values{
		"AccountSid":  {"AC0123456789abcdef0123456789abcdef"},
		"ApiVersion":  {"2010-04-01"},
		"CallSid":     {"CA" + hex.EncodeToString(sid[:])},
		"CallStatus":  {"ringing"},
		"Direction":   {"inbound"},
		"From":        {"+15551230001"},
		"To":          {"+15559870000"},
		"Caller":      {"+15551230001"},
		"Called":      {"+15559870000"},
		"CallerName":  {"Pat Customer"},
		"FromCity":    {"SAN FRANCISCO"},
		"FromCountry": {"US"},
	}
	target := cb.env.URL + handlers.PathVoiceIncoming
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twiliosig.Header, twiliosig.Sign(cb.env.App.AuthToken, target, form))
	resp, err := cb.client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<Conference") {
		return fmt.Errorf("POST %s: %d %s", handlers.PathVoiceIncoming, resp.StatusCode, body)
	}
	return nil
}

// rang counts the calls the simulator was asked to place (agents rung).
func (cb *connectBench) rang() int {
	n := 0
	for _, c := range cb.env.Sim.State().Calls {
		if strings.HasPrefix(c.To, "client:") {
			n++
		}
	}
	return n
}

// connectModes: "queued" has no agent free, so the request is the
// signature check and the transaction that records the call and its event
// (shared with the callers that arrive meanwhile); the background
// dispatcher then reads that nobody is free. "ring" has one of benchAgents
// agents free for every call, so the dispatcher also offers the call (a
// second transaction), rings the agent through the simulator's REST API
// over loopback HTTP, and stores the CallSid the simulator returns (a
// third), while the next requests run. The answer does not wait for the
// offer, but the offer's work shares the CPUs with them.
//
// The "-oneconn" modes are an experiment, not the app's configuration: the
// database/sql pool is cut to one connection after start, so readers queue
// behind writers too (the app already makes its writers queue in Go, first
// come first served, rather than in SQLite's busy handler).
//
// The "-postgres" modes run the app on PostgreSQL (WT_TEST_POSTGRES; they
// skip without it), the server on the same CPUs.
type connectMode struct {
	name                    string
	ring, oneConn, postgres bool
}

var connectModes = []connectMode{
	{name: "queued"}, {name: "ring", ring: true},
	{name: "queued-postgres", postgres: true}, {name: "ring-postgres", ring: true, postgres: true},
}

var connectParallelModes = []connectMode{
	{name: "queued"}, {name: "ring", ring: true},
	{name: "queued-oneconn", oneConn: true}, {name: "ring-oneconn", ring: true, oneConn: true},
	{name: "queued-postgres", postgres: true}, {name: "ring-postgres", ring: true, postgres: true},
}

// BenchmarkConnectClient is POST /conference/connect/client end to end,
// one request at a time, over real HTTP on loopback.
func BenchmarkConnectClient(b *testing.B) {
	for _, mode := range connectModes {
		b.Run(mode.name, func(b *testing.B) {
			cb := startConnectBench(b, mode)
			if mode.ring {
				cb.addAgents(b, benchAgents)
			}
			// Warm the connection and the statement cache.
			if err := cb.post(); err != nil {
				b.Fatal(err)
			}
			if err := cb.freeAgents(); err != nil {
				b.Fatal(err)
			}
			before := cb.rang()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if mode.ring && i > 0 && i%benchAgents == 0 {
					b.StopTimer()
					if err := cb.freeAgents(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if err := cb.post(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cb.rang()-before)/float64(b.N), "rings/op")
		})
	}
}

// BenchmarkConnectClientParallel is the same route under concurrency: 64
// requests in flight at once (RunParallel with 64/GOMAXPROCS goroutines per
// CPU), reporting the p50 and p99 latency of the requests besides ns/op
// (which is then wall time divided by requests: the inverse of
// throughput).
func BenchmarkConnectClientParallel(b *testing.B) {
	const inFlight = 64
	for _, mode := range connectParallelModes {
		b.Run(mode.name, func(b *testing.B) {
			cb := startConnectBench(b, mode)
			if mode.ring {
				cb.addAgents(b, benchAgents)
			}
			if mode.oneConn {
				cb.env.App.DB.SetMaxOpenConns(1)
			}
			if err := cb.post(); err != nil {
				b.Fatal(err)
			}
			if err := cb.freeAgents(); err != nil {
				b.Fatal(err)
			}
			before := cb.rang()
			var sent atomic.Int64
			var mu sync.Mutex
			var latencies []time.Duration
			b.SetParallelism(max(1, inFlight/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					// The timer cannot stop here: whoever sends every
					// (benchAgents/2)th request also frees the agents, one
					// UPDATE timed with it.
					if n := sent.Add(1); mode.ring && n%(benchAgents/2) == 0 {
						if err := cb.freeAgents(); err != nil {
							b.Error(err)
							return
						}
					}
					start := time.Now()
					if err := cb.post(); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			if len(latencies) == 0 {
				return
			}
			slices.Sort(latencies)
			pct := func(p float64) float64 {
				return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(latencies[len(latencies)-1].Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(cb.rang()-before)/float64(b.N), "rings/op")
		})
	}
}
