package flow

import (
	"time"

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
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
	}
	for _, c := range []prometheus.Collector{m.started, m.ended, m.duration, m.steps} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
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
