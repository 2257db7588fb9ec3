package bus

import (
	"context"
	"log/slog"
	"time"

	"github.com/batonhq/baton/internal/storetime"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus collectors; a nil *metrics (no
// Config.Metrics) records nothing. Labels are bounded: groups are service
// names and types are the types handlers declare, never event ids.
type metrics struct {
	published  *prometheus.CounterVec
	handled    *prometheus.CounterVec
	retried    *prometheus.CounterVec
	dead       *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   *prometheus.GaugeVec
	publish    prometheus.Histogram
	confirm    prometheus.Histogram
	store      *prometheus.HistogramVec
}

// PublisherGroup is the group label of events published with Publish.
const PublisherGroup = "publisher"

// backlogTimeout bounds the backlog queries of one scrape.
const backlogTimeout = 5 * time.Second

// newMetrics registers the runtime's collectors on cfg.Metrics. The backlog
// of the groups groups returns is read at scrape time when the transport is
// a Backlogger, and what the store's retention sweeps removed when it is a
// store.Sweeper.
func newMetrics(cfg Config, groups func() []string) (*metrics, error) {
	reg := cfg.Metrics
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_events_published_total",
			Help: "Events published, by Publish (group \"publisher\") and by the handlers of a group."}, []string{"group"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_events_handled_total",
			Help: "Events whose handler succeeded, by group and handler type."}, []string{"group", "type"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_events_retried_total",
			Help: "Failed attempts scheduled for a retry, by group and handler type."}, []string{"group", "type"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_events_dead_lettered_total",
			Help: "Events dead-lettered, by group and reason (malformed, invalid, too-large, unsupported, storm, panic, permanent, exhausted)."}, []string{"group", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_events_duplicates_total",
			Help: "Redeliveries skipped by the inbox, by group."}, []string{"group"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_handler_duration_seconds",
			Help: "How long handlers ran, by group and handler type.", Buckets: prometheus.DefBuckets}, []string{"group", "type"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_handlers_in_flight",
			Help: "Handlers running now, by group."}, []string{"group"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "baton_publish_duration_seconds",
			Help: "How long Publish took to publish a batch durably.", Buckets: prometheus.DefBuckets}),
		confirm: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "baton_confirm_duration_seconds",
			Help:    "How long the broker took to confirm the outputs of a handled event, from sending them to the confirm (RabbitMQ, NATS).",
			Buckets: prometheus.DefBuckets}),
	}
	cs := []prometheus.Collector{m.published, m.handled, m.retried, m.dead, m.duplicates, m.duration, m.inFlight, m.publish, m.confirm}
	if bl, ok := cfg.Transport.(Backlogger); ok {
		cs = append(cs, &backlog{t: bl, groups: groups, log: cfg.Logger,
			desc: prometheus.NewDesc("baton_group_backlog_messages",
				"Messages waiting for a consumer group, as its transport counts them when scraped (RabbitMQ: ready messages in the group's queue; NATS: the group's messages not yet acked; embedded: messages in the group's queue not yet settled).",
				[]string{"group"}, nil)})
	}
	if sw, ok := cfg.Store.(store.Sweeper); ok {
		cs = append(cs, newSwept(sw))
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

// backlog reads the transport's backlog of each group at scrape time.
type backlog struct {
	desc   *prometheus.Desc
	t      Backlogger
	groups func() []string
	log    *slog.Logger
}

func (b *backlog) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

// Collect leaves out a group whose backlog cannot be read, rather than fail
// the scrape.
func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	for _, g := range b.groups() {
		n, err := b.t.Backlog(ctx, g)
		if err != nil {
			b.log.Warn("metrics: cannot read the backlog of a group", "group", g, "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, float64(n), g)
	}
}

// timed wraps s so that its calls are observed in the store histogram,
// keeping the store.Settler it may be.
func (m *metrics) timed(s Store) Store {
	if m == nil {
		return s
	}
	t := timedStore{s: s, h: m.store}
	if st, ok := s.(store.Settler); ok {
		return timedSettler{timedStore: t, settler: st}
	}
	return t
}

type timedStore struct {
	s Store
	h *prometheus.HistogramVec
}

func (t timedStore) Seen(ctx context.Context, group, id string) (bool, error) {
	defer storetime.Since(t.h, "seen", time.Now())
	return t.s.Seen(ctx, group, id)
}

func (t timedStore) MarkSeen(ctx context.Context, group, id string) error {
	defer storetime.Since(t.h, "mark_seen", time.Now())
	return t.s.MarkSeen(ctx, group, id)
}

func (t timedStore) Append(ctx context.Context, entries ...store.Entry) error {
	defer storetime.Since(t.h, "append", time.Now())
	return t.s.Append(ctx, entries...)
}

func (t timedStore) AddDead(ctx context.Context, d store.DeadLetter) error {
	defer storetime.Since(t.h, "add_dead", time.Now())
	return t.s.AddDead(ctx, d)
}

type timedSettler struct {
	timedStore
	settler store.Settler
}

func (t timedSettler) Settle(ctx context.Context, group, id string, entries ...store.Entry) error {
	defer storetime.Since(t.h, "settle", time.Now())
	return t.settler.Settle(ctx, group, id, entries...)
}

// count records a settled delivery's verdict, as Stats.count does.
func (m *metrics) count(group string, v verdict, published int) {
	if m == nil {
		return
	}
	switch {
	case v.duplicate:
		m.duplicates.WithLabelValues(group).Inc()
	case v.dead != "":
		m.dead.WithLabelValues(group, string(v.dead)).Inc()
	case v.retried:
		m.retried.WithLabelValues(group, v.handler).Inc()
	default:
		m.handled.WithLabelValues(group, v.handler).Inc()
		m.published.WithLabelValues(group).Add(float64(published))
	}
}

// running records a handler starting; the function it returns records it
// ending, after took.
func (m *metrics) running(group, typ string) func(took time.Duration) {
	if m == nil {
		return func(time.Duration) {}
	}
	g := m.inFlight.WithLabelValues(group)
	g.Inc()
	return func(took time.Duration) {
		g.Dec()
		m.duration.WithLabelValues(group, typ).Observe(took.Seconds())
	}
}

// confirmed records the confirm of outputs sent at sent.
func (m *metrics) confirmed(sent time.Time) {
	if m != nil {
		m.confirm.Observe(time.Since(sent).Seconds())
	}
}

func (m *metrics) publishDone(n int, took time.Duration) {
	if m == nil {
		return
	}
	m.published.WithLabelValues(PublisherGroup).Add(float64(n))
	m.publish.Observe(took.Seconds())
}
