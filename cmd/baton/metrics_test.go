package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// scrapeMetrics reads a /metrics page into "name{label="value",...}" ->
// value, for counters and gauges, and name{...}_count for histograms.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
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

// A consumer group's backlog metric counts the messages published to it
// while none of its consumers ran, on every backend, and nothing once they
// are handled.
func TestBacklogMetric(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		need           func(t *testing.T)
		bus, store, ns func() string
		clean          func(t *testing.T, ns string)
	}{
		{name: "embedded", need: func(*testing.T) {}, bus: func() string { return "" }, store: func() string { return "" },
			clean: func(*testing.T, string) {}},
		{name: "rabbitmq+postgres",
			need: func(t *testing.T) { need(t, "RabbitMQ", rabbitTestURL()); need(t, "PostgreSQL", pgTestURL()) },
			bus:  rabbitTestURL, store: pgTestURL,
			clean: func(t *testing.T, ns string) { cleanRabbitMQ(t, ns); cleanPostgres(t, ns) }},
		{name: "nats+redis",
			need: func(t *testing.T) { need(t, "NATS", natsTestURL()); need(t, "Redis", redisTestURL()) },
			bus:  natsTestURL, store: redisTestURL,
			clean: func(t *testing.T, ns string) { cleanNATS(t, ns); cleanRedis(t, ns) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.need(t)
			ns := testNamespace()
			tc.clean(t, ns)
			ctx := t.Context()
			tp, st, closeBackends, err := openBackends(ctx, tc.bus(), tc.store(), t.TempDir(), ns, store.Retention{})
			if err != nil {
				t.Fatal(err)
			}
			defer closeBackends()

			const group, typ, n = "lagging", "metric.probed.v1", 7
			// The group is declared, and has no consumer running.
			sub, err := tp.Subscribe(ctx, group, []string{"metric.probed.*"})
			if err != nil {
				t.Fatal(err)
			}
			sub.Close()

			reg := prometheus.NewRegistry()
			rt, err := bus.New(bus.Config{Transport: tp, Store: st, Metrics: reg})
			if err != nil {
				t.Fatal(err)
			}
			err = rt.Register(baton.Service{Name: group, Handlers: []baton.Handler{{Type: typ,
				Func: func(context.Context, baton.Event) ([]baton.Event, error) { return nil, nil }}}})
			if err != nil {
				t.Fatal(err)
			}
			events := make([]baton.Event, n)
			for i := range events {
				if events[i], err = baton.NewEvent(typ, fmt.Sprint("probe-", i), map[string]int{"i": i}); err != nil {
					t.Fatal(err)
				}
			}
			if err := rt.Publish(ctx, events...); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			defer srv.Close()
			backlog := `baton_group_backlog_messages{group="lagging"}`
			handled := `baton_events_handled_total{group="lagging",type="metric.probed.v1"}`
			waitMetric := func(key string, want float64) {
				t.Helper()
				waitUntil(t, time.Minute, fmt.Sprintf("%s is %v", key, want), func() (bool, string) {
					got, ok := scrapeMetrics(t, srv.URL)[key]
					return ok && got == want, fmt.Sprintf("%v (present: %v)", got, ok)
				})
			}
			waitMetric(backlog, n)

			if err := rt.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer rt.Stop(context.Background())
			waitMetric(handled, n)
			waitMetric(backlog, 0)
		})
	}
}

// On PostgreSQL and Redis a coordinator's outbox metric counts the command
// a run's start wrote while no relay ran, and nothing once the relay has
// sent it.
func TestOutboxMetric(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		need       func(t *testing.T)
		bus, store string
		clean      func(t *testing.T, ns string)
	}{
		{"rabbitmq+postgres", func(t *testing.T) { need(t, "RabbitMQ", rabbitTestURL()); need(t, "PostgreSQL", pgTestURL()) },
			rabbitTestURL(), pgTestURL(), func(t *testing.T, ns string) { cleanRabbitMQ(t, ns); cleanPostgres(t, ns) }},
		{"nats+redis", func(t *testing.T) { need(t, "NATS", natsTestURL()); need(t, "Redis", redisTestURL()) },
			natsTestURL(), redisTestURL(), func(t *testing.T, ns string) { cleanNATS(t, ns); cleanRedis(t, ns) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.need(t)
			ns := testNamespace()
			tc.clean(t, ns)
			ctx := t.Context()
			tp, st, closeBackends, err := openBackends(ctx, tc.bus, tc.store, "", ns, store.Retention{})
			if err != nil {
				t.Fatal(err)
			}
			defer closeBackends()
			reg := prometheus.NewRegistry()
			ship := flow.Flow{Name: "ship", Version: 1, Steps: []flow.Step{{Name: "ship", Send: &flow.Send{Type: "metric.shipped.v1"}}}}
			co, err := flow.New(flow.Config{Store: st, Transport: tp.(flow.Transport), Flows: []flow.Flow{ship},
				Services: []baton.Service{{Name: "elsewhere", Handlers: []baton.Handler{{Type: "metric.shipped.v1"}}}},
				Metrics:  reg})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			defer srv.Close()
			outbox := func(want float64) {
				t.Helper()
				waitUntil(t, time.Minute, fmt.Sprintf("baton_outbox_messages is %v", want), func() (bool, string) {
					got, ok := scrapeMetrics(t, srv.URL)["baton_outbox_messages{}"]
					return ok && got == want, fmt.Sprintf("%v (present: %v)", got, ok)
				})
			}
			outbox(0)
			// Started before the coordinator: the step's command waits in the
			// outbox for the relay.
			if _, _, err := co.StartRun(ctx, flow.StartRequest{Flow: "ship", Key: "o-1"}); err != nil {
				t.Fatal(err)
			}
			outbox(1)
			if err := co.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer co.Stop(context.Background())
			outbox(0)
		})
	}
}

// metricsLine is where baton worker --metrics says it serves.
var metricsLine = regexp.MustCompile(`metrics on (http://127\.0\.0\.1:\d+/metrics)`)

// A worker's --metrics endpoint counts what its services handled, and a
// real Prometheus server scraping it answers a PromQL query with the same
// count.
func TestWorkerMetricsScrapedByPrometheus(t *testing.T) {
	t.Parallel()
	need(t, "NATS", natsTestURL())
	need(t, "Redis", redisTestURL())
	ns := testNamespace()
	cleanNATS(t, ns)
	cleanRedis(t, ns)
	const n = 10

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	args := []string{"worker", "--bus", natsTestURL(), "--store", redisTestURL(), "--namespace", ns, "--metrics", "127.0.0.1:0"}
	for _, s := range orderServiceNames() {
		args = append(args, "--service", s)
	}
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, &env{stdout: &out, stderr: &errOut}, args) }()
	waitFor(t, "the worker to start", func() bool { return metricsLine.MatchString(errOut.String()) }, exited, &errOut)
	endpoint := metricsLine.FindStringSubmatch(errOut.String())[1]

	tp, st, closeBackends, err := openBackends(ctx, natsTestURL(), redisTestURL(), "", ns, store.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeBackends()
	rt, err := bus.New(bus.Config{Transport: tp, Store: st, Source: "metrics-test"})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]int, n)
	for i := range batch {
		batch[i] = i
	}
	if err := publishOrders(ctx, rt, batch); err != nil {
		t.Fatal(err)
	}

	// Four handlers per order: charge, reserve, notify, complete.
	const handled = 4 * n
	sum := func(m map[string]float64, name string) (total float64) {
		for k, v := range m {
			if strings.HasPrefix(k, name+"{") {
				total += v
			}
		}
		return total
	}
	waitUntil(t, 2*time.Minute, "the worker's /metrics counts every handler", func() (bool, string) {
		m := scrapeMetrics(t, endpoint)
		got := sum(m, "baton_events_handled_total")
		return got == handled, fmt.Sprintf("%v handled", got)
	})
	m := scrapeMetrics(t, endpoint)
	for _, k := range []string{`go_goroutines{}`, `process_start_time_seconds{}`, `baton_group_backlog_messages{group="payment"}`,
		`baton_store_operation_duration_seconds{operation="seen"}_count`} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s is not on the worker's /metrics", k)
		}
	}

	// The services' outputs went out asynchronously, and were confirmed.
	if m[`baton_confirm_duration_seconds{}_count`] == 0 {
		t.Error("no broker confirm was timed")
	}

	prom := startPrometheus(t, endpoint)
	waitUntil(t, 2*time.Minute, "Prometheus answers sum(baton_events_handled_total)", func() (bool, string) {
		v, err := promQuery(prom, "sum(baton_events_handled_total)")
		if err != nil {
			return false, err.Error()
		}
		return v == handled, fmt.Sprintf("%v", v)
	})
	if v, err := promQuery(prom, `sum(baton_events_dead_lettered_total) or vector(0)`); err != nil || v != 0 {
		t.Errorf("dead letters by Prometheus: %v, %v; want 0", v, err)
	}

	cancel()
	if code := <-exited; code != exitOK {
		t.Fatalf("worker exit %d; want 0\nstderr:\n%s", code, errOut.String())
	}
}

// startPrometheus starts Debian's prometheus, scraping target every 200ms,
// on a free port with its data in a temporary directory, and returns its
// URL; it kills the process it started when the test ends.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		msg := "prometheus is not installed (apt-get install prometheus; .ci/run installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 200ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: baton-worker
    metrics_path: %s
    static_configs:
      - targets: [%q]
`, u.Path, u.Host)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs syncBuffer
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	return "http://" + addr
}

// promQuery runs an instant PromQL query whose answer is one number.
func promQuery(base, query string) (float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query %s: %s", query, body.Error)
	}
	if len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("query %s: %d series; want 1", query, len(body.Data.Result))
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
