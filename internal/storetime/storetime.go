// Package storetime is the one histogram of store operation latency that the
// runtime and the coordinator share: both register it on the same registry,
// and the second finds the first's.
package storetime

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Histogram registers baton_store_operation_duration_seconds on reg, or
// returns the one already registered there.
func Histogram(reg prometheus.Registerer) (*prometheus.HistogramVec, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_store_operation_duration_seconds",
		Help:    "How long the state store took to answer the runtime and the coordinator, by operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
		[]string{"operation"})
	if err := reg.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return h, nil
}

// Since observes the time since start under op.
func Since(h *prometheus.HistogramVec, op string, start time.Time) {
	h.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
