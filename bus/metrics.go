package bus

import (
	"time"

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
}

// PublisherGroup is the group label of events published with Publish.
const PublisherGroup = "publisher"

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
			Help: "Events dead-lettered, by group and reason."}, []string{"group", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_events_duplicates_total",
			Help: "Redeliveries skipped by the inbox, by group."}, []string{"group"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_handler_duration_seconds",
			Help: "How long handlers ran, by group and handler type.", Buckets: prometheus.DefBuckets}, []string{"group", "type"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_handlers_in_flight",
			Help: "Handlers running now, by group."}, []string{"group"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "baton_publish_duration_seconds",
			Help: "How long Publish took to publish a batch durably.", Buckets: prometheus.DefBuckets}),
	}
	for _, c := range []prometheus.Collector{m.published, m.handled, m.retried, m.dead, m.duplicates, m.duration, m.inFlight, m.publish} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
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

func (m *metrics) publishDone(n int, took time.Duration) {
	if m == nil {
		return
	}
	m.published.WithLabelValues(PublisherGroup).Add(float64(n))
	m.publish.Observe(took.Seconds())
}
