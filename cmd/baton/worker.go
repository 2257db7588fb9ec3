package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/orders"
	expectation "github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/runner"
	"github.com/batonhq/baton/store"
)

// workerConfig is what baton worker's flags set.
type workerConfig struct {
	services    []string
	expectFiles []string
	data        string
	failRate    float64
	concurrency int
	metrics     string
	backends    backendConfig
	retention   store.Retention
}

// The intervals of baton worker: a stats line every statsEvery, and up to
// workerStopTimeout for the events in flight when it stops.
const (
	statsEvery        = 5 * time.Second
	workerStopTimeout = 10 * time.Second
)

// orderServiceNames lists the services of the orders example, in the order
// orders.Services returns them.
func orderServiceNames() []string {
	var names []string
	for _, s := range orders.Services(nil, orders.Faults{}) {
		names = append(names, s.Name)
	}
	return names
}

func runWorker(ctx context.Context, e *env, args []string) error {
	f := newFlags("worker", "run the demo's order services in their own process", "--service NAME [flags]", `
Runs the services of the orders example (the demo's) that --service names
(order, payment, inventory or notification; repeat --service for several) in
this process, until Ctrl-C or SIGTERM. It runs only the demo's services: your
own run in a program of your own, which the runner package makes about
fifteen lines (docs/first-service.md). Each service consumes its consumer group:
under choreography it reacts to the events it subscribes to; under
orchestration a coordinator (baton server) sends it commands and the
runtime answers them. The same worker serves both styles unchanged, so the
services can be spread over as many processes as wanted, several processes
of the same service sharing its group's work (baton server, which runs the
four services itself too, shares it likewise).

--bus picks the transport and --store the store, by the URL's scheme (or
BATON_BUS and BATON_STORE; the flags win): nats://, amqp:// or rabbitmq://
for the bus; postgres:// or redis:// for the store. --namespace (or
BATON_NAMESPACE) must be the one the other processes use. The embedded
backend (the default) works too, in --data, which is then required; but only
one process may open a data directory, so the worker is then the only
process on it: no demo, server or other worker can share it.

The ledger of the services' effects is DIR/ledger-SERVICE.jsonl for each
service when --data is given (a file per service, so processes never share
one), else in memory. A line on stderr says what runs where; a stats line
(handled, retried, dead-lettered, duplicates) follows every 5 s and on exit.
--metrics HOST:PORT serves the worker's Prometheus metrics at
http://HOST:PORT/metrics, without a token (docs/observability.md); listen
where your Prometheus reaches it and no one else does.
With --expect FILE the worker also watches the expectations the file
declares (YAML or JSON; docs/observability.md): a broken one is journaled
(baton status shows it) and logged on stderr. Several processes may watch
the same expectations: each broken instance fires once.
On Ctrl-C the worker stops taking events, waits up to 10 s for those in
flight (the others are redelivered), and closes the backends.`,
		"baton worker --service payment --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0",
		"baton worker --service order --service notification --data ./worker-data --bus amqp://guest:guest@127.0.0.1:5672/ --store postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		"BATON_BUS=nats://127.0.0.1:4222 BATON_STORE=redis://127.0.0.1:6379/0 baton worker --service inventory --fail-rate 0.2",
		"baton worker --service payment --metrics 127.0.0.1:9464 --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0",
		"baton worker --service payment --expect expectations.yaml --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0")
	var cfg workerConfig
	f.Var(listFlag{&cfg.services}, "service", "run the service `NAME`: order, payment, inventory or notification; repeatable (default none: required)")
	f.Var(listFlag{&cfg.expectFiles}, "expect", "also watch the expectations declared in `FILE` (YAML or JSON; repeatable) (default none)")
	f.StringVar(&cfg.data, "data", "", "keep the ledger in `DIR`, and the embedded backend's data (default: the ledger in memory)")
	f.Float64Var(&cfg.failRate, "fail-rate", 0, "share `P` of orders, from 0 to 1, that meet a fault (give every process the same)")
	f.IntVar(&cfg.concurrency, "concurrency", 0, "events each service handles at once, `N` (default 0: the runtime's default, 32)")
	f.StringVar(&cfg.metrics, "metrics", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics (default none)")
	backends := f.backendFlags()
	retention := f.retentionFlags()
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	if err := backends.fromEnv(e, "worker"); err != nil {
		return err
	}
	cfg.backends = *backends
	var err error
	if cfg.retention, err = retention.fromEnv(e, "worker"); err != nil {
		return err
	}
	known := orderServiceNames()
	if len(cfg.services) == 0 {
		return usagef("worker: missing --service NAME: give one of %s; see baton worker --help", strings.Join(known, ", "))
	}
	var names []string
	for _, s := range cfg.services {
		if !slices.Contains(known, s) {
			return usagef("worker: --service %q: unknown service; give one of %s", s, strings.Join(known, ", "))
		}
		if !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	cfg.services = names
	busKind, storeKind, _ := pickBackends(cfg.backends.bus, cfg.backends.store)
	switch {
	case cfg.failRate < 0 || cfg.failRate > 1:
		return usagef("worker: --fail-rate %v: give a share from 0 to 1", cfg.failRate)
	case cfg.concurrency < 0:
		return usagef("worker: --concurrency %d: give 0 for the default or more", cfg.concurrency)
	case busKind == kindEmbedded && storeKind == kindEmbedded && cfg.data == "":
		return usagef("worker: the embedded backend needs --data DIR (or give --bus and --store)")
	}
	return worker(ctx, e, cfg)
}

// worker runs cfg.services until ctx ends.
func worker(ctx context.Context, e *env, cfg workerConfig) error {
	if cfg.data != "" {
		if err := os.MkdirAll(cfg.data, 0o700); err != nil {
			return err
		}
	}
	tracer, stopTracing, err := startTracing(ctx, e)
	if err != nil {
		return err
	}
	defer stopTracing()
	tp, st, closeBackends, err := openBackends(ctx, cfg.backends.bus, cfg.backends.store, cfg.data, cfg.backends.namespace, cfg.retention)
	if err != nil {
		return err
	}
	defer closeBackends()

	// A ledger per service: each service records its own effects, in a
	// file of its own when there is a data directory.
	var services []baton.Service
	for _, name := range cfg.services {
		path := ""
		if cfg.data != "" {
			path = filepath.Join(cfg.data, "ledger-"+name+".jsonl")
		}
		ledger, err := orders.NewLedger(path)
		if err != nil {
			return err
		}
		defer ledger.Close()
		for _, s := range orders.Services(ledger, orders.Faults{Rate: cfg.failRate}) {
			if s.Name == name {
				services = append(services, s)
			}
		}
	}
	var watched []expectation.Expectation
	for _, path := range cfg.expectFiles {
		xs, err := expectation.LoadFile(path)
		if err != nil {
			return fmt.Errorf("--expect: %w", err)
		}
		watched = append(watched, xs...)
	}
	var alerts flow.Notifier
	if len(watched) > 0 {
		alerts = stderrNotifier{e.stderr}
	}
	reg := newRegistry()
	rn, err := runner.New(runner.Config{Transport: tp, Store: st, Services: services, Concurrency: cfg.concurrency,
		Expectations: watched, Notifier: alerts, Source: "baton-worker", StopTimeout: workerStopTimeout,
		Logger: e.log, Metrics: reg, TracerProvider: tracer})
	if err != nil {
		return err
	}
	var metricsAt string
	if cfg.metrics != "" {
		ln, err := net.Listen("tcp", cfg.metrics)
		if err != nil {
			return fmt.Errorf("--metrics: listen on %s: %w", cfg.metrics, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metricsHandler(reg))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		metricsAt = "; metrics on http://" + ln.Addr().String() + "/metrics"
	}
	if err := rn.Start(ctx); err != nil {
		return err
	}
	defer rn.Stop(context.Background())

	bk, sk, _ := pickBackends(cfg.backends.bus, cfg.backends.store)
	ledgerAt := "ledger in memory"
	if cfg.data != "" {
		ledgerAt = "ledger in " + cfg.data
	}
	fmt.Fprintf(e.stderr, "baton worker: services %s; bus %s, store %s, namespace %s; %s%s; Ctrl-C to stop\n",
		strings.Join(cfg.services, ", "), bk, sk, cfg.backends.namespace, ledgerAt, metricsAt)

	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	failed, failure := storeFailed(st)
wait:
	for {
		select {
		case <-tick.C:
			fmt.Fprintln(e.stderr, "stats: "+workerStats(rn.Stats()))
		case <-ctx.Done():
			break wait
		case <-failed:
			return failure()
		}
	}
	fmt.Fprintln(e.stderr, "stopping: no new events; waiting for those in flight")
	if err := rn.Stop(context.Background()); err != nil {
		fmt.Fprintf(e.stderr, "warning: %v\n", err)
	}
	fmt.Fprintln(e.stderr, "stopped: "+workerStats(rn.Stats()))
	return nil
}

// stderrNotifier writes the notifications of a worker's expectations on
// its stderr, one line each.
type stderrNotifier struct{ w io.Writer }

func (n stderrNotifier) Notify(_ context.Context, note flow.Notification) {
	fmt.Fprintf(n.w, "%s: %s\n", note.Kind, note.Message)
}

// workerStats is the stats line's counts.
func workerStats(s runner.Stats) string {
	var dead int64
	for _, n := range s.DeadLettered {
		dead += n
	}
	return fmt.Sprintf("handled %d, retried %d, dead-lettered %d, duplicates %d",
		s.Handled, s.Retried, dead, s.Duplicates)
}
