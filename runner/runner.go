// Package runner runs a team's own services and flows in its own program:
// the services' handlers under the bus runtime, the flows under a
// coordinator with their schedules, and, when asked, an HTTP listener with
// the API, health and stats, until the context ends; then it stops
// gracefully. A service's main is then about fifteen lines:
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	b, err := backend.Open(ctx, backend.FromEnv(os.Getenv))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer b.Close()
//	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store,
//		Services: []baton.Service{shipping.Service()}})
//	if err != nil {
//		log.Fatal(err)
//	}
//	if err := r.Run(ctx); err != nil {
//		log.Fatal(err)
//	}
//
// Several processes may run the same service: they share its consumer
// group's work. Several may run the same flows on a shared store: they
// share the runs, and each schedule tick starts one run.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// DefaultStopTimeout bounds each part's graceful stop when
// Config.StopTimeout is zero.
const DefaultStopTimeout = 10 * time.Second

// Config configures a Runner. Transport and Store are required, and at
// least one of Services, Flows and Expectations.
type Config struct {
	Transport bus.Transport
	Store     store.Store
	// Services run here: each is a consumer group, handling the events
	// it subscribes to (choreography) and the steps flows send it
	// (orchestration).
	Services []baton.Service
	// Flows run here, under a coordinator, with their schedules.
	Flows []flow.Flow
	// Expectations are watched here (package expect): a broken one is
	// told to Notifier, counted in Metrics and journaled.
	Expectations []expect.Expectation
	// Remote are services whose handlers run in other processes: the
	// coordinator sends their steps to their groups. Their handlers'
	// Func may be nil.
	Remote []baton.Service
	// Concurrency is how many events each service handles at once
	// (default: the runtime's, 32).
	Concurrency int
	// Addr, when set, is where the runner serves HTTP: /healthz, /readyz
	// and /stats, and the API (/v1/..., docs/api.md) over these flows and
	// the journal. Beyond loopback it needs Tokens.
	Addr string
	// Tokens are the bearer tokens the API accepts, with the admin scope;
	// none (and no ScopedTokens) means loopback only.
	Tokens []string
	// ScopedTokens are more tokens, each with its scope (api.Config).
	ScopedTokens []api.Token
	// Hosts are the names the API may be reached by beside loopback and
	// its address (api.Config).
	Hosts []string
	// Notifier hears of finished runs, alerts and broken expectations
	// (for instance a notify.Hub); nil for none.
	Notifier flow.Notifier
	// Source is the source of the events published here (default
	// "baton-runner").
	Source string
	// StopTimeout bounds each part's graceful stop (default
	// DefaultStopTimeout).
	StopTimeout time.Duration
	// Logger receives what the parts log; the default discards. Wrap its
	// handler in telemetry.NewLogHandler, and make it slog's default too,
	// for the lines logged with a handler's or a step's ctx (the parts'
	// and the handlers' own) to carry the trace and span ids
	// (docs/observability.md).
	Logger *slog.Logger
	// Metrics, when set, is the Prometheus registry the runtime, the
	// coordinator and the schedules register their collectors with, and
	// that GET /metrics on Addr serves, open like /healthz, with services
	// alone as with flows (docs/observability.md). A Notifier such as a
	// notify.Hub registers its own (notify.Config.Metrics). One
	// *prometheus.Registry is both what is registered with and what is
	// gathered, so the two cannot disagree. Nil records no metrics.
	Metrics *prometheus.Registry
	// TracerProvider, when set, is where the runtime's and the
	// coordinator's spans go (telemetry.Start makes one from the OTEL_*
	// variables); nil makes none.
	TracerProvider trace.TracerProvider
}

// Runner runs services and flows. Build it with New, then Run it (or Start
// and Stop it).
type Runner struct {
	cfg   Config
	rt    *bus.Runtime
	co    *flow.Coordinator
	sched *flow.Scheduler
	watch *expect.Watcher
	srv   *http.Server
	ready atomic.Bool

	mu      sync.Mutex
	state   int // 0 new, 1 started, 2 stopped
	ln      net.Listener
	served  chan error
	stopErr error
	stopped chan struct{}
}

// New checks cfg and builds the parts; nothing runs until Start.
func New(cfg Config) (*Runner, error) {
	if cfg.Transport == nil || cfg.Store == nil {
		return nil, baton.Errorf(baton.Invalid, "runner.New", "a Transport and a Store are required (open them with backend.Open)")
	}
	if len(cfg.Services) == 0 && len(cfg.Flows) == 0 && len(cfg.Expectations) == 0 {
		return nil, baton.Errorf(baton.Invalid, "runner.New", "nothing to run: give Services, Flows or Expectations")
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Source == "" {
		cfg.Source = "baton-runner"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{cfg: cfg, stopped: make(chan struct{})}
	var err error
	r.rt, err = bus.New(bus.Config{Transport: cfg.Transport, Store: cfg.Store, Concurrency: cfg.Concurrency,
		Source: cfg.Source, Logger: cfg.Logger, Metrics: registerer(cfg.Metrics), TracerProvider: cfg.TracerProvider})
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.Services {
		if err := r.rt.Register(s); err != nil {
			return nil, err
		}
	}
	if len(cfg.Flows) > 0 {
		tr, ok := cfg.Transport.(flow.Transport)
		if !ok {
			return nil, baton.Errorf(baton.Invalid, "runner.New", "the transport %T cannot send to one consumer group, which the steps of flows need: run flows on the embedded backend, RabbitMQ or NATS", cfg.Transport)
		}
		services := append(append([]baton.Service(nil), cfg.Services...), cfg.Remote...)
		r.co, err = flow.New(flow.Config{Store: cfg.Store, Transport: tr, Flows: cfg.Flows,
			Services: services, Notifier: cfg.Notifier, Logger: cfg.Logger, Metrics: registerer(cfg.Metrics),
			TracerProvider: cfg.TracerProvider})
		if err != nil {
			return nil, err
		}
		r.sched, err = flow.NewScheduler(flow.SchedulerConfig{Store: cfg.Store, Starter: r.co, Logger: cfg.Logger,
			Metrics: registerer(cfg.Metrics)})
		if err != nil {
			return nil, err
		}
	}
	if len(cfg.Expectations) > 0 {
		r.watch, err = expect.New(expect.Config{Store: cfg.Store, Transport: cfg.Transport, Expectations: cfg.Expectations,
			Notifier: cfg.Notifier, Metrics: registerer(cfg.Metrics), Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
	}
	if cfg.Addr != "" {
		if r.srv, err = r.server(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// registerer is reg as a prometheus.Registerer: nil stays an untyped nil.
func registerer(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}

// server is the HTTP server of Config.Addr: the API, with /stats beside it.
func (r *Runner) server() (*http.Server, error) {
	apiCfg := api.Config{Store: r.cfg.Store, Transport: r.cfg.Transport, Publisher: r.rt, Tokens: r.cfg.Tokens,
		ScopedTokens: r.cfg.ScopedTokens, Hosts: r.cfg.Hosts, Logger: r.cfg.Logger, Ready: r.isReady, TracerProvider: r.cfg.TracerProvider}
	if r.co != nil {
		apiCfg.Coordinator, apiCfg.Scheduler = r.co, r.sched
	}
	srv, err := api.NewServer(r.cfg.Addr, apiCfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Stats())
	})
	if r.cfg.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(r.cfg.Metrics, promhttp.HandlerOpts{}))
	}
	srv.Handler = mux
	srv.ErrorLog = slog.NewLogLogger(r.cfg.Logger.Handler(), slog.LevelWarn)
	return srv, nil
}

func (r *Runner) isReady(context.Context) error {
	if !r.ready.Load() {
		return errors.New("the runner is starting or stopping")
	}
	return nil
}

// Start starts the expectations' watcher (whose group then receives the
// events the services publish), the services, then the coordinator and the
// schedules, then the HTTP listener. On an error, what had started is stopped again.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.state != 0 {
		r.mu.Unlock()
		return baton.Errorf(baton.Conflict, "runner start", "already started")
	}
	r.state = 1
	r.mu.Unlock()
	if err := r.start(ctx); err != nil {
		r.Stop(context.WithoutCancel(ctx))
		return err
	}
	r.ready.Store(true)
	r.cfg.Logger.Info("runner started", "services", len(r.cfg.Services), "flows", len(r.cfg.Flows), "addr", r.Addr())
	return nil
}

func (r *Runner) start(ctx context.Context) (err error) {
	if r.srv != nil {
		ln, err := net.Listen("tcp", r.cfg.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", r.cfg.Addr, err)
		}
		r.mu.Lock()
		r.ln = ln
		r.mu.Unlock()
	}
	if r.watch != nil {
		if err := r.watch.Start(ctx); err != nil {
			return err
		}
	}
	if err := r.rt.Start(ctx); err != nil {
		return err
	}
	if r.co != nil {
		if err := r.co.Start(ctx); err != nil {
			return err
		}
		if err := r.sched.Start(ctx); err != nil {
			return err
		}
	}
	if r.ln != nil {
		r.served = make(chan error, 1)
		go func() { r.served <- r.srv.Serve(r.ln) }()
	}
	return nil
}

// Addr is the address the HTTP listener listens on ("" without one): the
// port chosen when Config.Addr asked for port 0.
func (r *Runner) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// Stop stops gracefully, in this order: stop taking requests and wait for
// those in flight, stop the schedules and the coordinator (runs resume on
// the next start), stop the expectations' watcher, stop the services
// (events in flight are settled, or redelivered later). Each part gets Config.StopTimeout at most, and ctx
// bounds the whole. It is idempotent; the backends stay open.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case 0:
		r.state = 2
		close(r.stopped)
		return nil
	case 2:
		return r.stopErr
	}
	r.state = 2
	r.ready.Store(false)
	part := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, r.cfg.StopTimeout) }
	var errs []error
	if r.ln != nil {
		c, cancel := part()
		if err := r.srv.Shutdown(c); err != nil {
			r.srv.Close()
		}
		cancel()
		r.ln.Close()
	}
	if r.co != nil {
		c, cancel := part()
		if err := r.sched.Stop(c); err != nil {
			errs = append(errs, fmt.Errorf("schedules: %w", err))
		}
		if err := r.co.Stop(c); err != nil {
			errs = append(errs, fmt.Errorf("coordinator: %w; its runs resume on the next start", err))
		}
		cancel()
	}
	if r.watch != nil {
		c, cancel := part()
		if err := r.watch.Stop(c); err != nil {
			errs = append(errs, fmt.Errorf("expectations: %w", err))
		}
		cancel()
	}
	c, cancel := part()
	if err := r.rt.Stop(c); err != nil {
		errs = append(errs, fmt.Errorf("services: %w; they are redelivered", err))
	}
	cancel()
	r.stopErr = errors.Join(errs...)
	r.cfg.Logger.Info("runner stopped", "stats", r.Stats())
	close(r.stopped)
	return r.stopErr
}

// Stopped is closed when Stop has finished.
func (r *Runner) Stopped() <-chan struct{} { return r.stopped }

// Run starts the runner, runs until ctx ends (a signal.NotifyContext for
// SIGTERM, usually) or the HTTP listener fails, and stops it gracefully.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.Start(ctx); err != nil {
		return err
	}
	var served error
	select {
	case <-ctx.Done():
	case served = <-r.served: // nil channel without a listener: never
		served = fmt.Errorf("serve %s: %w", r.cfg.Addr, served)
	}
	return errors.Join(served, r.Stop(context.WithoutCancel(ctx)))
}

// Publish publishes events for choreography, as a handler's outputs would
// be: their ids, source, time and correlation are filled in when missing.
func (r *Runner) Publish(ctx context.Context, events ...baton.Event) error {
	return r.rt.Publish(ctx, events...)
}

// Coordinator runs the flows; nil without Flows. Start runs with its
// StartRun.
func (r *Runner) Coordinator() *flow.Coordinator { return r.co }

// Scheduler keeps the flows' schedules; nil without Flows.
func (r *Runner) Scheduler() *flow.Scheduler { return r.sched }

// Stats are the runner's counters since it started, as /stats serves
// them.
type Stats struct {
	Published    int64            `json:"published"`
	Handled      int64            `json:"handled"`
	Retried      int64            `json:"retried"`
	Duplicates   int64            `json:"duplicates_skipped"`
	Refused      int64            `json:"refused"`
	DeadLettered map[string]int64 `json:"dead_lettered"` // by reason
}

// Stats returns the counters now.
func (r *Runner) Stats() Stats {
	s := r.rt.Stats()
	out := Stats{Published: s.Published(), Handled: s.Handled(), Retried: s.Retried(), Duplicates: s.Duplicates(),
		Refused: s.Refused(), DeadLettered: map[string]int64{}}
	for reason, n := range s.DeadLettered() {
		out.DeadLettered[string(reason)] = n
	}
	return out
}
