package runner_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/runner"
)

// The runner's /metrics counts what its services and flows did: a handler
// that fails once is retried once and handled once, a permanent failure is
// dead-lettered under its reason, and a run that completes is ended
// "completed".
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	b := openEmbedded(t)
	var calls atomic.Int32
	services := []baton.Service{
		{Name: "flaky", Retry: baton.RetryPolicy{MaxAttempts: 3, Base: 10 * time.Millisecond, Cap: 10 * time.Millisecond},
			Handlers: []baton.Handler{{Type: "order.placed.v1", Func: func(context.Context, baton.Event) ([]baton.Event, error) {
				if calls.Add(1) == 1 {
					return nil, errors.New("not yet")
				}
				return nil, nil
			}}}},
		{Name: "broken", Handlers: []baton.Handler{{Type: "order.audited.v1", Func: func(context.Context, baton.Event) ([]baton.Event, error) {
			return nil, baton.Permanent(errors.New("never"))
		}}}},
		// A step's result is its handler's output: the run ends with it.
		{Name: "shipper", Handlers: []baton.Handler{{Type: "order.ship.v1", Func: func(context.Context, baton.Event) ([]baton.Event, error) {
			shipped, err := baton.NewEvent("order.shipped.v1", "o-1", map[string]string{})
			return []baton.Event{shipped}, err
		}}}},
	}
	ship := flow.Flow{Name: "ship", Version: 1, Steps: []flow.Step{{Name: "ship", Send: &flow.Send{Type: "order.ship.v1"}}}}
	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store, Services: services,
		Flows: []flow.Flow{ship}, Addr: "127.0.0.1:0", Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(ctx) })
	placed, _ := baton.NewEvent("order.placed.v1", "o-1", map[string]string{})
	audited, _ := baton.NewEvent("order.audited.v1", "o-1", map[string]string{})
	if err := r.Publish(ctx, placed, audited); err != nil {
		t.Fatal(err)
	}
	run, _, err := r.Coordinator().StartRun(ctx, flow.StartRequest{Flow: "ship", Key: "o-1"})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{
		`baton_events_published_total{group="publisher"}`:                     2,
		`baton_events_handled_total{group="flaky",type="order.placed.v1"}`:    1,
		`baton_events_retried_total{group="flaky",type="order.placed.v1"}`:    1,
		`baton_events_dead_lettered_total{group="broken",reason="permanent"}`: 1,
		`baton_events_handled_total{group="shipper",type="order.ship.v1"}`:    1,
		`baton_runs_started_total{flow="ship"}`:                               1,
		`baton_runs_ended_total{flow="ship",status="completed"}`:              1,
		`baton_steps_total{flow="ship",outcome="completed"}`:                  1,
		`baton_handlers_in_flight{group="flaky"}`:                             0,
		// Read from the embedded backend at scrape time: nothing waits.
		`baton_group_backlog_messages{group="flaky"}`:   0,
		`baton_group_backlog_messages{group="shipper"}`: 0,
		`baton_timers_due{}`:                            0,
		// The coordinator created one run, in one store call.
		`baton_store_operation_duration_seconds{operation="create_run"}_count`: 1,
	}
	var got map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got = scrape(t, "http://"+r.Addr()+"/metrics")
		if matches(got, want) {
			break
		}
		if time.Now().After(deadline) {
			for k, v := range want {
				t.Errorf("%s = %v; want %v", k, got[k], v)
			}
			cur, _ := r.Coordinator().Run(ctx, run.ID)
			t.Fatalf("run %s", cur.Status)
		}
	}
	// Settled: nothing more comes. A second look must agree.
	time.Sleep(100 * time.Millisecond)
	got = scrape(t, "http://"+r.Addr()+"/metrics")
	for k, v := range want {
		if got[k] != v {
			t.Errorf("later, %s = %v; want %v", k, got[k], v)
		}
	}
	if _, ok := got[`baton_events_dead_lettered_total{group="flaky",reason="exhausted"}`]; ok {
		t.Error("flaky was dead-lettered")
	}
}

// A runner of services alone, with no flows, serves /metrics too, and a
// group's backlog there counts what waits for it.
func TestMetricsServicesOnly(t *testing.T) {
	t.Parallel()
	b := openEmbedded(t)
	release := make(chan struct{})
	services := []baton.Service{{Name: "slow", Handlers: []baton.Handler{{Type: "order.placed.v1",
		Func: func(ctx context.Context, _ baton.Event) ([]baton.Event, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		}}}}}
	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store, Services: services, Concurrency: 1,
		Addr: "127.0.0.1:0", Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(ctx) })
	var events []baton.Event
	for i := range 3 {
		e, _ := baton.NewEvent("order.placed.v1", fmt.Sprintf("o-%d", i), map[string]string{})
		events = append(events, e)
	}
	if err := r.Publish(ctx, events...); err != nil {
		t.Fatal(err)
	}
	// One handler runs, held; the embedded backlog counts it with the two
	// waiting behind it.
	waitMetrics(t, r, map[string]float64{
		`baton_handlers_in_flight{group="slow"}`:          1,
		`baton_group_backlog_messages{group="slow"}`:      3,
		`baton_events_published_total{group="publisher"}`: 3,
	})
	close(release)
	waitMetrics(t, r, map[string]float64{
		`baton_handlers_in_flight{group="slow"}`:                          0,
		`baton_group_backlog_messages{group="slow"}`:                      0,
		`baton_events_handled_total{group="slow",type="order.placed.v1"}`: 3,
	})
}

// waitMetrics scrapes r's /metrics until it shows want.
func waitMetrics(t *testing.T, r *runner.Runner, want map[string]float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := scrape(t, "http://"+r.Addr()+"/metrics")
		if matches(got, want) {
			return
		}
		if time.Now().After(deadline) {
			for k, v := range want {
				t.Errorf("%s = %v; want %v", k, got[k], v)
			}
			t.FailNow()
		}
	}
}

func matches(got, want map[string]float64) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// scrape reads a /metrics page into "name{label="value",...}" -> value, for
// counters and gauges.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
			}
			key += "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
