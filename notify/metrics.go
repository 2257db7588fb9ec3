package notify

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// deliveries reads the hub's webhook counters (Stats) when scraped, and the
// number of deliveries in the store.
type deliveries struct {
	h       *Hub
	desc    *prometheus.Desc
	pending *prometheus.Desc
}

func (d deliveries) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.desc
	ch <- d.pending
}

func (d deliveries) Collect(ch chan<- prometheus.Metric) {
	sent, failed, dropped := d.h.Stats()
	for _, c := range []struct {
		outcome string
		n       int64
	}{{"sent", sent}, {"failed", failed}, {"dropped", dropped}} {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(c.n), c.outcome)
	}
	if d.h.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := d.h.store.CountDeliveries(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d.pending, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(d.pending, prometheus.GaugeValue, float64(n))
}

func registerMetrics(reg prometheus.Registerer, h *Hub) error {
	if reg == nil {
		return nil
	}
	return reg.Register(deliveries{h: h,
		desc: prometheus.NewDesc("baton_webhook_deliveries_total",
			"Webhook deliveries by outcome: sent (a 2xx), failed (given up: a status not worth retrying, or out of attempts or time), dropped (never stored: the store refused the write).",
			[]string{"outcome"}, nil),
		pending: prometheus.NewDesc("baton_webhook_deliveries_pending",
			"Webhook deliveries in the store, waiting to be sent or retried, for every webhook and every server sharing the store; counted when scraped, only with webhooks configured.",
			nil, nil)})
}
