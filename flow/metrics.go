package flow

import (
	"context"
	"log/slog"
	"time"

	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/internal/storetime"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the coordinator's Prometheus collectors; a nil *metrics (no
// Config.Metrics) records nothing. Labels are bounded: flow names, run
// statuses and step outcomes.
type metrics struct {
	started  *prometheus.CounterVec
	ended    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	steps    *prometheus.CounterVec
	due      prometheus.Gauge
	store    *prometheus.HistogramVec
}

// outboxCounter is implemented by stores with an Outbox that can count what
// it holds.
type outboxCounter interface {
	CountOutbound(ctx context.Context) (int64, error)
}

// countTimeout bounds the outbox count of one scrape.
const countTimeout = 5 * time.Second

// newMetrics registers the coordinator's collectors on cfg.Metrics; the
// outbox of cfg.Store is counted at scrape time when the store can count
// it.
func newMetrics(cfg Config) (*metrics, error) {
	reg := cfg.Metrics
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_runs_started_total",
			Help: "Runs started, by flow."}, []string{"flow"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_runs_ended_total",
			Help: "Runs ended, by flow and status (completed, failed, cancelled)."}, []string{"flow", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_run_duration_seconds",
			Help:    "How long runs took from start to end, by flow.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 1800, 3600, 86400}}, []string{"flow"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_steps_total",
			Help: "Step outcomes, by flow and outcome (completed, failed, retried, compensated)."}, []string{"flow", "outcome"}),
		due: prometheus.NewGauge(prometheus.GaugeOpts{Name: "baton_timers_due",
			Help: "Runs whose timer (a timeout, a sleep, a retry) was due when the coordinator last looked, up to 256 a look."}),
	}
	cs := []prometheus.Collector{m.started, m.ended, m.duration, m.steps, m.due}
	if oc, ok := cfg.Store.(outboxCounter); ok {
		cs = append(cs, &outboxPending{c: oc, log: cfg.Logger, desc: prometheus.NewDesc("baton_outbox_messages",
			"Messages that transitions wrote to the store's outbox and no relay has sent yet, counted when scraped (PostgreSQL, Redis).", nil, nil)})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	if m.store, err = storetime.Histogram(reg); err != nil {
		return nil, err
	}
	return m, nil
}

// outboxPending counts the outbox at scrape time.
type outboxPending struct {
	desc *prometheus.Desc
	c    outboxCounter
	log  *slog.Logger
}

func (o *outboxPending) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

// Collect leaves the metric out when the store cannot count, rather than
// fail the scrape.
func (o *outboxPending) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	n, err := o.c.CountOutbound(ctx)
	if err != nil {
		o.log.Warn("metrics: cannot count the outbox", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(n))
}

// timersDue records how many runs were due at a look.
func (m *metrics) timersDue(n int) {
	if m != nil {
		m.due.Set(float64(n))
	}
}

// timed wraps s so that its calls are observed in the store histogram,
// keeping the store.Outbox and the acker it may be.
func (m *metrics) timed(s Store) Store {
	if m == nil {
		return s
	}
	t := timedRuns{s: s, h: m.store}
	ob, isOutbox := s.(store.Outbox)
	a, isAcker := s.(acker)
	switch {
	case isOutbox && isAcker:
		return timedBoth{timedOutbox{t, ob}, a}
	case isOutbox:
		return timedOutbox{t, ob}
	case isAcker:
		return timedAcker{t, a}
	}
	return t
}

// timedAsync wraps a so that its saves are observed, taken to durable, in
// the store histogram.
func (m *metrics) timedAsync(a asyncAcker) asyncAcker {
	if m == nil {
		return a
	}
	return timedAsync{a, m.store}
}

type timedAsync struct {
	a asyncAcker
	h *prometheus.HistogramVec
}

func (t timedAsync) SaveRunAckingAsync(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, func(context.Context) error, error) {
	start := time.Now()
	saved, durable, err := t.a.SaveRunAckingAsync(ctx, r, out, d, journal...)
	if err != nil {
		storetime.Since(t.h, "save_run", start)
		return saved, nil, err
	}
	return saved, func(ctx context.Context) error {
		defer storetime.Since(t.h, "save_run", start)
		return durable(ctx)
	}, nil
}

type timedRuns struct {
	s Store
	h *prometheus.HistogramVec
}

func (t timedRuns) CreateRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, bool, error) {
	defer storetime.Since(t.h, "create_run", time.Now())
	return t.s.CreateRun(ctx, r, out)
}

func (t timedRuns) Run(ctx context.Context, id string) (store.Run, error) {
	defer storetime.Since(t.h, "run", time.Now())
	return t.s.Run(ctx, id)
}

func (t timedRuns) SaveRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, error) {
	defer storetime.Since(t.h, "save_run", time.Now())
	return t.s.SaveRun(ctx, r, out)
}

func (t timedRuns) ListRuns(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	defer storetime.Since(t.h, "list_runs", time.Now())
	return t.s.ListRuns(ctx, q)
}

func (t timedRuns) DueRuns(ctx context.Context, now time.Time, limit int) ([]store.Run, error) {
	defer storetime.Since(t.h, "due_runs", time.Now())
	return t.s.DueRuns(ctx, now, limit)
}

func (t timedRuns) Append(ctx context.Context, entries ...store.Entry) error {
	defer storetime.Since(t.h, "append", time.Now())
	return t.s.Append(ctx, entries...)
}

type timedOutbox struct {
	timedRuns
	ob store.Outbox
}

func (t timedOutbox) ClaimOutbound(ctx context.Context, limit int, lease time.Duration) ([]store.Pending, error) {
	defer storetime.Since(t.h, "claim_outbound", time.Now())
	return t.ob.ClaimOutbound(ctx, limit, lease)
}

func (t timedOutbox) MarkSent(ctx context.Context, ids ...string) error {
	defer storetime.Since(t.h, "mark_sent", time.Now())
	return t.ob.MarkSent(ctx, ids...)
}

type timedAcker struct {
	timedRuns
	a acker
}

func (t timedAcker) SaveRunAcking(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, error) {
	defer storetime.Since(t.h, "save_run", time.Now())
	return t.a.SaveRunAcking(ctx, r, out, d, journal...)
}

type timedBoth struct {
	timedOutbox
	a acker
}

func (t timedBoth) SaveRunAcking(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, error) {
	defer storetime.Since(t.h, "save_run", time.Now())
	return t.a.SaveRunAcking(ctx, r, out, d, journal...)
}

func (m *metrics) runStarted(flow string) {
	if m != nil {
		m.started.WithLabelValues(flow).Inc()
	}
}

// saved records what a saved transition did.
func (m *metrics) saved(x *exec, flow, status string, took time.Duration) {
	if m == nil {
		return
	}
	for _, o := range x.outcomes {
		m.steps.WithLabelValues(flow, o).Inc()
	}
	if x.ended {
		m.ended.WithLabelValues(flow, status).Inc()
		m.duration.WithLabelValues(flow).Observe(took.Seconds())
	}
}

// tickCounter counts a Scheduler's ticks; the zero tickCounter (no
// SchedulerConfig.Metrics) counts nothing.
type tickCounter struct{ c *prometheus.CounterVec }

// Tick outcomes.
const (
	tickFired    = "fired"     // a run started for a tick on time
	tickCaughtUp = "caught_up" // a run started for a tick missed (a downtime, a pause)
	tickSkipped  = "skipped"   // no run: the overlap policy, the catch-up limit
)

func newTicks(reg prometheus.Registerer) (tickCounter, error) {
	if reg == nil {
		return tickCounter{}, nil
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_schedule_ticks_total",
		Help: "Schedule ticks this process handled, by schedule and outcome (fired, caught_up, skipped)."}, []string{"schedule", "outcome"})
	return tickCounter{c}, reg.Register(c)
}

func (t tickCounter) add(schedule, outcome string, n int) {
	if t.c != nil && n > 0 {
		t.c.WithLabelValues(schedule, outcome).Add(float64(n))
	}
}
