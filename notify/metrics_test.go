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

// scrape reads the webhook metrics from reg: the deliveries by outcome,
// and the pending count (-1 when it could not be read).
func scrape(t *testing.T, reg *prometheus.Registry) (outcomes map[string]float64, pending float64) {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
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
	outcomes = map[string]float64{}
	for _, m := range families["baton_webhook_deliveries_total"].GetMetric() {
		outcomes[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	pending = -1
	if f := families["baton_webhook_deliveries_pending"]; f != nil {
		pending = f.GetMetric()[0].GetGauge().GetValue()
	}
	return outcomes, pending
}

// /metrics shows the webhook deliveries by outcome, as Stats counts them,
// and how many wait in the store.
func TestWebhookDeliveryMetrics(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusBadRequest) // the first is given up; the next are taken
	reg := prometheus.NewRegistry()
	st := openStore(t)
	h, err := New(Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}}, Store: st, Senders: 1,
		Retry: fastRetry, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: the three wait in the store.
	for i := range 3 {
		h.Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	if _, pending := scrape(t, reg); pending != 3 {
		t.Errorf("baton_webhook_deliveries_pending = %v before Start; want 3", pending)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deliveries", func() bool { s, f, _ := h.Stats(); return s+f == 3 })
	stop(t, h)
	// A store that refuses the write drops the notification.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	h.Notify(t.Context(), completed("lost"))

	got, pending := scrape(t, reg)
	want := map[string]float64{"sent": 2, "failed": 1, "dropped": 1}
	for outcome, n := range want {
		if got[outcome] != n {
			t.Errorf("baton_webhook_deliveries_total{outcome=%q} = %v; want %v (all: %v)", outcome, got[outcome], n, got)
		}
	}
	if pending != -1 {
		t.Errorf("baton_webhook_deliveries_pending = %v from a closed store; want it left out", pending)
	}
}
