package notify

import "github.com/prometheus/client_golang/prometheus"

// deliveries reads the hub's webhook counters (Stats) when scraped.
type deliveries struct {
	h    *Hub
	desc *prometheus.Desc
}

func (d deliveries) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d deliveries) Collect(ch chan<- prometheus.Metric) {
	sent, failed, dropped := d.h.Stats()
	for _, c := range []struct {
		outcome string
		n       int64
	}{{"sent", sent}, {"failed", failed}, {"dropped", dropped}} {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(c.n), c.outcome)
	}
}

func registerMetrics(reg prometheus.Registerer, h *Hub) error {
	if reg == nil {
		return nil
	}
	return reg.Register(deliveries{h: h, desc: prometheus.NewDesc("baton_webhook_deliveries_total",
		"Webhook deliveries by outcome: sent (a 2xx), failed (out of attempts, or a status not worth retrying), dropped (a full queue, or still queued at Stop).",
		[]string{"outcome"}, nil)})
}
