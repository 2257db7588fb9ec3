package notify

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// /metrics shows the webhook deliveries by outcome, as Stats counts them.
func TestWebhookDeliveryMetrics(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusBadRequest) // the first is given up; the next are taken
	reg := prometheus.NewRegistry()
	h, err := New(Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}}, QueueSize: 2, Senders: 1,
		Retry: fastRetry, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: two wait in the queue, two find it full.
	for i := range 4 {
		h.Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stop(t, h)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range families["baton_webhook_deliveries_total"].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"sent": 1, "failed": 1, "dropped": 2}
	for outcome, n := range want {
		if got[outcome] != n {
			t.Errorf("baton_webhook_deliveries_total{outcome=%q} = %v; want %v (all: %v)", outcome, got[outcome], n, got)
		}
	}
}
