package metrics_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/internal/metrics"
	"github.com/warmtransfer/warmtransfer/internal/testdb"
	"github.com/warmtransfer/warmtransfer/models"
)

func openDB(t *testing.T) *bun.DB {
	t.Helper()
	ctx := context.Background()
	db, err := models.Open(ctx, testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}

// scrape serves one scrape and returns series -> value and the raw text.
func scrape(t *testing.T, m *metrics.Metrics) (map[string]float64, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	series := map[string]float64{}
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series, rec.Body.String()
}

func wantSeries(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
}

// TestCountsByState stores agents, calls and transfers in every state and
// checks each figure.
func TestCountsByState(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	agent := func(identity string, role models.Role, p models.Presence, disabled bool) *models.Agent {
		a := &models.Agent{Identity: identity, Name: identity, Role: role, Presence: p, Disabled: disabled}
		if err := models.CreateAgent(ctx, db, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	alice := agent("alice", models.RoleAgent, models.PresenceBusy, false)
	bob := agent("bob", models.RoleAgent, models.PresenceAvailable, false)
	agent("carol", models.RoleAgent, models.PresenceAvailable, false)
	agent("dave", models.RoleAgent, models.PresenceWrapUp, false)
	agent("erin", models.RoleAgent, models.PresenceAvailable, true) // disabled: not counted
	agent("maria", models.RoleManager, models.PresenceAvailable, false)

	var lastCall int64
	for i, state := range []models.CallState{
		models.CallQueued, models.CallQueued, models.CallRinging,
		models.CallWithAgent, models.CallTransferring, models.CallEnded, models.CallEnded,
	} {
		c := &models.Call{CallSID: "CA" + strconv.Itoa(i), ConferenceName: "wt-" + strconv.Itoa(i), FromNumber: "+15551230001", State: state}
		if err := models.CreateCall(ctx, db, c); err != nil {
			t.Fatal(err)
		}
		lastCall = c.ID
	}
	for _, state := range []models.TransferState{
		models.TransferRinging, models.TransferJoined, models.TransferCompleted, models.TransferCompleted,
		models.TransferCanceled, models.TransferDeclined, models.TransferNoAnswer, models.TransferNoAnswer, models.TransferNoAnswer,
	} {
		tr := &models.Transfer{CallID: lastCall, FromAgentID: alice.ID, ToAgentID: bob.ID, Mode: models.TransferDirect, State: state}
		if err := models.CreateTransfer(ctx, db, tr); err != nil {
			t.Fatal(err)
		}
	}

	clients := 3
	m := metrics.New(metrics.Sources{DB: db, SSEClients: func() int { return clients }})
	m.ObserveWebhook("/conference/connect/client", 30*time.Millisecond)
	m.ObserveWebhook("/conference/connect/client", 2*time.Second)
	m.ObserveWrite(0, 3*time.Millisecond)
	m.ObserveWrite(40*time.Millisecond, 1200*time.Millisecond)
	got, body := scrape(t, m)
	wantSeries(t, got, map[string]float64{
		"wt_waiting_calls":                                                      3,
		"wt_active_calls":                                                       2,
		`wt_agents{presence="available"}`:                                       2,
		`wt_agents{presence="busy"}`:                                            1,
		`wt_agents{presence="wrap_up"}`:                                         1,
		`wt_agents{presence="away"}`:                                            0,
		`wt_agents{presence="offline"}`:                                         0,
		`wt_transfers_total{outcome="completed"}`:                               2,
		`wt_transfers_total{outcome="canceled"}`:                                1,
		`wt_transfers_total{outcome="declined"}`:                                1,
		`wt_transfers_total{outcome="no_answer"}`:                               3,
		`wt_transfers_total{outcome="failed"}`:                                  0,
		"wt_sse_clients":                                                        3,
		`wt_webhook_duration_seconds_count{route="/conference/connect/client"}`: 2,
		`wt_webhook_duration_seconds_bucket{route="/conference/connect/client",le="0.05"}`: 1,
		`wt_webhook_duration_seconds_bucket{route="/conference/connect/client",le="2.5"}`:  2,
		`wt_db_write_seconds_count{phase="run"}`:                                           2,
		`wt_db_write_seconds_bucket{phase="run",le="0.005"}`:                               1,
		`wt_db_write_seconds_bucket{phase="run",le="1"}`:                                   1,
		`wt_db_write_seconds_bucket{phase="run",le="2.5"}`:                                 2,
		`wt_db_write_seconds_count{phase="wait"}`:                                          2,
		`wt_db_write_seconds_bucket{phase="wait",le="0.025"}`:                              1,
		`wt_db_write_seconds_bucket{phase="wait",le="0.05"}`:                               2,
	})
	for _, kind := range []string{"# TYPE wt_transfers_total counter", "# TYPE wt_active_calls gauge", "# TYPE wt_webhook_duration_seconds histogram"} {
		if !strings.Contains(body, kind) {
			t.Errorf("no %q", kind)
		}
	}
	if strings.Contains(body, "5551230001") || strings.Contains(body, "alice") {
		t.Error("the metrics show a number or an identity")
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestScrapeSurvivesDatabaseFailure closes the database: the scrape still
// answers with what does not need it, and the failure is logged.
func TestScrapeSurvivesDatabaseFailure(t *testing.T) {
	db := openDB(t)
	var log syncWriter
	m := metrics.New(metrics.Sources{DB: db, Logger: slog.New(slog.NewTextHandler(io.Writer(&log), nil))})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := scrape(t, m)
	if _, ok := got["wt_active_calls"]; ok {
		t.Error("wt_active_calls reported from a closed database")
	}
	if _, ok := got["wt_sse_clients"]; !ok {
		t.Error("wt_sse_clients missing: one failing query dropped the whole scrape")
	}
	if !strings.Contains(log.b.String(), "metrics: scrape error") {
		t.Errorf("the failure was not logged: %q", log.b.String())
	}
}

// TestRegistriesAreSeparate builds two sets of metrics in one process, as
// two app instances in one test binary do: no duplicate registration.
func TestRegistriesAreSeparate(t *testing.T) {
	a := metrics.New(metrics.Sources{})
	b := metrics.New(metrics.Sources{})
	a.ObserveWebhook("/voice/status", time.Millisecond)
	got, _ := scrape(t, b)
	if _, ok := got[`wt_webhook_duration_seconds_count{route="/voice/status"}`]; ok {
		t.Error("an observation on one registry shows on another")
	}
}
