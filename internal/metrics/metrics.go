// Package metrics exposes the app's Prometheus metrics: call, agent and
// transfer figures read from the database at scrape time (so every
// instance reports the same shared truth), the webhook latency histogram,
// the time write transactions wait and take, the number of open event
// streams, and the Go runtime and process collectors.
//
// Nothing here carries a phone number, a name or an identity: labels are
// states, presences and route patterns only.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uptrace/bun"

	"github.com/warmtransfer/warmtransfer/models"
)

// QueryTimeout bounds the database queries of one scrape.
const QueryTimeout = 2 * time.Second

// Sources are what the metrics are computed from.
type Sources struct {
	DB *bun.DB
	// SSEClients counts open event streams; nil reports zero.
	SSEClients func() int
	// Logger receives scrape errors; nil discards them.
	Logger *slog.Logger
}

// Metrics is the app's own registry (never the global one, so several app
// instances in one process, as in tests, do not collide).
type Metrics struct {
	registry *prometheus.Registry
	webhook  *prometheus.HistogramVec
	writes   *prometheus.HistogramVec
	// writeWait and writeRun are writes' two series, looked up once: every
	// write transaction reports to them.
	writeWait, writeRun prometheus.Observer
	log                 *slog.Logger
}

// New registers the app's collectors on a fresh registry.
func New(src Sources) *Metrics {
	if src.Logger == nil {
		src.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		webhook: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wt_webhook_duration_seconds",
			Help: "Time taken to answer Twilio's webhooks, by route pattern.",
			// Twilio gives up after 15 s; most answers take milliseconds.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"route"}),
		writes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wt_db_write_seconds",
			Help: "Write transactions: how long each waited for its turn (phase=wait) and then took (phase=run). " +
				"On SQLite writes go one at a time, so a slow one, often a commit waiting on the disk, delays every other.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"phase"}),
		log: src.Logger,
	}
	m.writeWait, m.writeRun = m.writes.WithLabelValues("wait"), m.writes.WithLabelValues("run")
	sse := src.SSEClients
	m.registry.MustRegister(
		m.webhook,
		m.writes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wt_sse_clients",
			Help: "Open live-update (Server-Sent Events) streams on this instance.",
		}, func() float64 {
			if sse == nil {
				return 0
			}
			return float64(sse())
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if src.DB != nil {
		m.registry.MustRegister(&dbCollector{db: src.DB})
	}
	return m
}

// ObserveWebhook records how long a Twilio webhook took; route is the
// route pattern (bounded), never the raw URL.
func (m *Metrics) ObserveWebhook(route string, d time.Duration) {
	m.webhook.WithLabelValues(route).Observe(d.Seconds())
}

// ObserveWrite records how long a write transaction waited for its turn
// and how long it then took.
func (m *Metrics) ObserveWrite(wait, run time.Duration) {
	m.writeWait.Observe(wait.Seconds())
	m.writeRun.Observe(run.Seconds())
}

// Handler serves the registry in Prometheus' text format. A failing
// database query drops its metrics from the scrape (and is logged) rather
// than failing the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slogPrinter{m.log},
		Registry:      m.registry,
	})
}

// Registry is the registry the metrics are on, for tests and for adding
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("metrics: scrape error", "err", fmt.Sprint(v...))
}

var (
	descActive = prometheus.NewDesc("wt_active_calls",
		"Customer calls with an agent (talking or being transferred).", nil, nil)
	descWaiting = prometheus.NewDesc("wt_waiting_calls",
		"Customer calls waiting for an agent (queued or ringing an agent).", nil, nil)
	descAgents = prometheus.NewDesc("wt_agents",
		"Enabled agents (not managers) by presence.", []string{"presence"}, nil)
	descTransfers = prometheus.NewDesc("wt_transfers_total",
		"Transfers that have ended, by outcome.", []string{"outcome"}, nil)
)

// presences and outcomes are reported even when zero, so dashboards and
// alerts see a series rather than an absence.
var (
	presences = []models.Presence{models.PresenceAvailable, models.PresenceBusy, models.PresenceWrapUp, models.PresenceAway, models.PresenceOffline}
	outcomes  = []models.TransferState{models.TransferCompleted, models.TransferCanceled, models.TransferDeclined, models.TransferNoAnswer, models.TransferFailed}
)

// dbCollector reads the figures from the database at each scrape. The
// queries are grouped counts (calls use the state index; agents are few).
type dbCollector struct{ db *bun.DB }

func (d *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descActive
	ch <- descWaiting
	ch <- descAgents
	ch <- descTransfers
}

type stateCount struct {
	State string `bun:"state"`
	N     int64  `bun:"n"`
}

func (d *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), QueryTimeout)
	defer cancel()

	calls, err := d.count(ctx, "calls", "state", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("state <> ?", models.CallEnded)
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descActive, err)
		ch <- prometheus.NewInvalidMetric(descWaiting, err)
	} else {
		active := calls[string(models.CallWithAgent)] + calls[string(models.CallTransferring)]
		waiting := calls[string(models.CallQueued)] + calls[string(models.CallRinging)]
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(active))
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(waiting))
	}

	agents, err := d.count(ctx, "agents", "presence", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("role = ?", models.RoleAgent).Where("disabled = ?", false)
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descAgents, err)
	} else {
		for _, p := range presences {
			ch <- prometheus.MustNewConstMetric(descAgents, prometheus.GaugeValue, float64(agents[string(p)]), string(p))
		}
	}

	// Ended transfers only ever grow in number, so this is a counter even
	// though it is read from the table rather than incremented here.
	transfers, err := d.count(ctx, "transfers", "state", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Where("state IN (?)", bun.In(outcomes))
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descTransfers, err)
	} else {
		for _, o := range outcomes {
			ch <- prometheus.MustNewConstMetric(descTransfers, prometheus.CounterValue, float64(transfers[string(o)]), string(o))
		}
	}
}

// count returns the rows of table grouped by column.
func (d *dbCollector) count(ctx context.Context, table, column string, where func(*bun.SelectQuery) *bun.SelectQuery) (map[string]int64, error) {
	var rows []stateCount
	q := d.db.NewSelect().Table(table).
		ColumnExpr("? AS state", bun.Ident(column)).
		ColumnExpr("count(*) AS n").
		GroupExpr("?", bun.Ident(column))
	if err := where(q).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("metrics: count %s by %s: %w", table, column, err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}
