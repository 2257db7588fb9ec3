package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/expectations"
	"github.com/batonhq/baton/examples/orders/orchestration"
	expectation "github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/runner"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/ui"
)

// serverConfig is what baton server's flags set.
type serverConfig struct {
	data          string
	addr          string
	tokens        []string
	tokensFile    string
	scoped        []api.Token
	hosts         []string
	maxStreams    int
	streamsPer    int
	flowFiles     []string
	expectFiles   []string
	routes        []string
	webhooks      []string
	webhookSecret string
	webhookFor    time.Duration
	webhookCap    time.Duration
	demo          bool
	services      bool
	failRate      float64
	stopTimeout   time.Duration
	backends      backendConfig
	retention     store.Retention
}

// listFlag is a flag that may be repeated.
type listFlag struct{ values *[]string }

func (l listFlag) String() string {
	if l.values == nil {
		return ""
	}
	return strings.Join(*l.values, ",")
}

func (l listFlag) Set(s string) error {
	*l.values = append(*l.values, s)
	return nil
}

func runServer(ctx context.Context, e *env, args []string) error {
	f := newFlags("server", "run the coordinator and the HTTP API for your flows", "[flags]", `
Runs Baton on the embedded backend in the data directory --data (or on the
backends --bus and --store name, below): a coordinator running the flows of
the --flows files, their schedules, notifications (a server-sent-events
stream and --webhook endpoints), and the HTTP API on --addr (docs/api.md).
The services that handle the flows' steps run in your own programs (see
docs/first-service.md and the runner package); --route says which consumer
group handles each type. A program of your own that registers flows in Go
runs them the same way, with runner.Config.Flows and runner.Config.Addr.

--demo adds the orders example: its order flow, and its order, payment,
inventory and notification services in this process (with --services=false
only the flow: its steps go to baton worker processes), and --fail-rate
makes some orders meet a fault, as in baton demo.

The API listens on 127.0.0.1:7070 by default: loopback only. To listen on
another interface, give a token: without one the server refuses to start.
With tokens, every /v1 request needs "Authorization: Bearer TOKEN";
/healthz, /readyz and /metrics (Prometheus metrics, docs/observability.md)
stay open. A token has a scope: read (look), write (also start, cancel and
signal runs, publish events) or admin (also schedules and dead letters).
--tokens-file FILE (or BATON_TOKENS) gives scoped tokens, one SCOPE:TOKEN
each ("read:6f1c0d5e8a2b4f73..."), # comments allowed; --token (or
BATON_TOKEN, comma-separated) gives admin tokens, but any user of this
machine sees command-line flags (ps): prefer the file or the environment.
A token is at least 16 bytes (openssl rand -hex 16 makes one); docs/security.md
says more. The server also serves the API, without a token, on the
control socket DIR/baton.sock, which only this user may open: baton status,
dlq, tail, run and schedule with --data DIR reach it there.

The API answers only requests whose Host header names it: a loopback name
or address, the address it was reached on, or an --allow-host NAME (give
the names a server beyond loopback is reached by). It refuses writes from
other origins' web pages and bodies that are not JSON. --max-streams and
--max-streams-per-token bound the event streams and long polls held open.

Webhooks get run.completed, run.failed, dead_letter, expectation.broken and
expectation.cleared notifications as JSON POSTs signed with the Standard
Webhooks scheme (headers webhook-id, webhook-timestamp, webhook-signature;
docs/security.md) using --webhook-secret (or BATON_WEBHOOK_SECRET): give it
as whsec_ and the base64 of a random key. Each delivery is kept in the store
until the webhook answers it, so a restart sends what a crash interrupted;
failures are retried with backoff, up to --webhook-backoff-cap apart, for
--webhook-retry-for after the notification, then given up.

An --expect file declares expectations of choreography in YAML or JSON
("after payment.processed.v1, inventory.reserved.v1 or inventory.failed.v1
within 30s, for the same correlation id"; docs/observability.md): the server
watches them, and tells of each one broken, and of each met late, on the
event stream and the webhooks, in the journal (baton status) and in
metrics. With --demo, the orders example's expectation is watched too.

A --flows file holds flow definitions in YAML or JSON (one flow, a list, or
{"flows": [...]}; docs/orchestration.md shows one). A step that sends a type no
service here handles needs a --route TYPE=GROUP: the coordinator sends it to
the consumer group GROUP, where it waits for a process that runs GROUP's
handlers.

To scale out on a broker and a database, run the services in baton worker
processes and give the servers --services=false: each is then a coordinator
and an API only. Several servers may share one --store and --namespace: they
share the runs (a transition is a compare-and-set on the run's revision) and
each schedule tick starts one run whichever server sees it first.

Ctrl-C (or SIGTERM) stops gracefully, in this order: stop taking requests,
stop the notification hub (ending event streams and letting webhook requests
under way finish; unanswered deliveries stay in the store), stop
the schedules and the coordinator, stop the services, close the data
directory.

--bus picks the transport and --store the store, by the URL's scheme (or
BATON_BUS and BATON_STORE; the flags win): embedded (the default, in --data),
nats://, amqp:// or rabbitmq:// for the bus; embedded, postgres:// or
redis:// for the store. The embedded backend is both or neither: a NATS or
RabbitMQ bus needs a PostgreSQL or Redis store. --namespace (or
BATON_NAMESPACE) names the NATS stream, RabbitMQ exchange, PostgreSQL schema
and Redis key prefix. On those backends --data only keeps the ledger of the
order services, and there is no control socket: reach the server over HTTP
with --server.`,
		"baton server --flows approvals.yaml --route approval.requested.v1=approvals",
		"baton server --demo",
		"baton server --demo --data ./baton-data --fail-rate 0.1",
		"baton server --addr 0.0.0.0:7070 --token $(cat token.txt)",
		"baton server --addr 0.0.0.0:7070 --tokens-file /etc/baton/tokens --allow-host baton.example.com",
		"baton server --webhook https://hooks.example.com/baton --webhook-secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"baton server --flows flows.yaml --expect expectations.yaml",
		"baton server --demo --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0",
		"baton server --flows flows.yaml --bus amqp://guest:guest@127.0.0.1:5672/ --store postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		"baton server --demo --services=false --addr 127.0.0.1:7071 --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0")
	cfg := serverConfig{services: true}
	f.StringVar(&cfg.data, "data", "baton-data", "keep the data in `DIR` (created if missing)")
	f.StringVar(&cfg.addr, "addr", api.DefaultAddr, "serve the HTTP API on `HOST:PORT`")
	f.Var(listFlag{&cfg.tokens}, "token", "accept the bearer `TOKEN`, with the admin scope (repeat for several; default: BATON_TOKEN, comma-separated; none: loopback only); ps shows it: prefer --tokens-file")
	f.StringVar(&cfg.tokensFile, "tokens-file", "", "accept the scoped tokens in `FILE`, one SCOPE:TOKEN per line, scope read, write or admin, # comments (default: BATON_TOKENS, the same entries)")
	f.Var(listFlag{&cfg.hosts}, "allow-host", "answer requests whose Host header is `NAME`, beside loopback names and the address reached (repeatable) (default none)")
	f.IntVar(&cfg.maxStreams, "max-streams", api.DefaultMaxStreams, "hold at most `N` event streams and long polls open at once")
	f.IntVar(&cfg.streamsPer, "max-streams-per-token", api.DefaultMaxStreamsPerToken, "hold at most `N` event streams and long polls open per token")
	f.Var(listFlag{&cfg.flowFiles}, "flows", "also run the flows defined in `FILE` (YAML or JSON; repeatable) (default none)")
	f.Var(listFlag{&cfg.expectFiles}, "expect", "also watch the expectations declared in `FILE` (YAML or JSON; repeatable) (default none)")
	f.Var(listFlag{&cfg.routes}, "route", "send steps of event type TYPE to the consumer group GROUP, as `TYPE=GROUP` (repeatable) (default none)")
	f.Var(listFlag{&cfg.webhooks}, "webhook", "POST notifications to `URL` (repeatable) (default none)")
	f.StringVar(&cfg.webhookSecret, "webhook-secret", "", "sign webhooks with `SECRET`, whsec_ and the base64 of a key (default: BATON_WEBHOOK_SECRET)")
	f.DurationVar(&cfg.webhookFor, "webhook-retry-for", 24*time.Hour, "retry a webhook delivery for `D` after its notification, then give it up")
	f.DurationVar(&cfg.webhookCap, "webhook-backoff-cap", time.Hour, "wait at most `D` between the attempts of a webhook delivery")
	f.BoolVar(&cfg.demo, "demo", false, "also run the orders example: its order flow and, unless --services=false, its services")
	f.BoolVar(&cfg.services, "services", true, "with --demo, run the order services in this process (--services=false: only the coordinator, which sends their steps to baton worker processes)")
	f.Float64Var(&cfg.failRate, "fail-rate", 0, "with --demo, the share `P` of orders, from 0 to 1, that meet a fault (as in baton demo)")
	f.DurationVar(&cfg.stopTimeout, "stop-timeout", 10*time.Second, "on Ctrl-C, wait up to `D` for each part to finish its work")
	backends := f.backendFlags()
	retention := f.retentionFlags()
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	if err := backends.fromEnv(e, "server"); err != nil {
		return err
	}
	cfg.backends = *backends
	var err error
	if cfg.retention, err = retention.fromEnv(e, "server"); err != nil {
		return err
	}
	if len(cfg.tokens) == 0 {
		for t := range strings.SplitSeq(e.env(envToken), ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.tokens = append(cfg.tokens, t)
			}
		}
	}
	if cfg.webhookSecret == "" {
		cfg.webhookSecret = e.env(envWebhookSecret)
	}
	switch {
	case cfg.data == "":
		return usagef("server: --data: give a directory")
	case cfg.failRate < 0 || cfg.failRate > 1:
		return usagef("server: --fail-rate %v: give a share from 0 to 1", cfg.failRate)
	case cfg.failRate != 0 && !cfg.demo:
		return usagef("server: --fail-rate is the demo's: it makes the orders example's services fail; give --demo too")
	case len(cfg.webhooks) > 0 && cfg.webhookSecret == "":
		return usagef("server: --webhook needs --webhook-secret (or %s): receivers verify the signature with it", envWebhookSecret)
	case cfg.webhookFor <= 0 || cfg.webhookCap <= 0:
		return usagef("server: --webhook-retry-for %v, --webhook-backoff-cap %v: give positive durations", cfg.webhookFor, cfg.webhookCap)
	case cfg.stopTimeout <= 0:
		return usagef("server: --stop-timeout %v: give a positive duration", cfg.stopTimeout)
	}
	for _, t := range cfg.tokens {
		if t == "" {
			return usagef("server: --token: an empty token would let anyone in")
		}
		if len(t) < api.MinTokenLength {
			return usagef("server: --token: a token of %d bytes is too short: give at least %d (openssl rand -hex 16 makes one)", len(t), api.MinTokenLength)
		}
	}
	if cfg.scoped, err = scopedTokens(e, cfg.tokensFile); err != nil {
		return err
	}
	if cfg.maxStreams < 1 || cfg.streamsPer < 1 {
		return usagef("server: --max-streams and --max-streams-per-token: give a number from 1")
	}
	if !api.Loopback(cfg.addr) && len(cfg.tokens) == 0 && len(cfg.scoped) == 0 {
		return usagef("server: --addr %s is not loopback, and no token is set: set --token (or %s) or --tokens-file (or %s), or listen on 127.0.0.1", cfg.addr, envToken, envTokens)
	}
	return serve(ctx, e, cfg)
}

// scopedTokens reads the scoped tokens of --tokens-file, else of
// BATON_TOKENS.
func scopedTokens(e *env, file string) ([]api.Token, error) {
	text, from := e.env(envTokens), envTokens
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("server: --tokens-file: %v", err)
		}
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(e.stderr, "warning: --tokens-file %s may be read by other users (mode %v): chmod 600 it\n", file, fi.Mode().Perm())
		}
		text, from = string(b), "--tokens-file "+file
	}
	tokens, err := api.ParseTokens(text)
	if err != nil {
		return nil, usagef("server: %s: %v", from, err)
	}
	return tokens, nil
}

// routeServices turns --route TYPE=GROUP flags into services the
// coordinator routes by; their handlers run elsewhere.
func routeServices(routes []string) ([]baton.Service, error) {
	byGroup := map[string]*baton.Service{}
	var order []string
	for _, r := range routes {
		typ, group, ok := strings.Cut(r, "=")
		typ, group = strings.TrimSpace(typ), strings.TrimSpace(group)
		if !ok || typ == "" || group == "" {
			return nil, usagef("server: --route %q: give TYPE=GROUP, such as approval.requested.v1=approvals", r)
		}
		if _, _, err := event.ParseType(typ); err != nil {
			return nil, usagef("server: --route %q: %v", r, err)
		}
		s := byGroup[group]
		if s == nil {
			s = &baton.Service{Name: group}
			byGroup[group] = s
			order = append(order, group)
		}
		s.Handlers = append(s.Handlers, baton.Handler{Type: typ})
	}
	out := make([]baton.Service, 0, len(order))
	for _, g := range order {
		out = append(out, *byGroup[g])
	}
	return out, nil
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, e *env, cfg serverConfig) (err error) {
	routed, err := routeServices(cfg.routes)
	if err != nil {
		return err
	}
	var flows []flow.Flow
	if cfg.demo {
		flows = append(flows, orchestration.Flow())
	}
	for _, path := range cfg.flowFiles {
		fs, err := flow.LoadFile(path)
		if err != nil {
			return fmt.Errorf("--flows: %w", err)
		}
		flows = append(flows, fs...)
	}
	var watched []expectation.Expectation
	if cfg.demo {
		watched = append(watched, expectations.InventoryAnswers())
	}
	for _, path := range cfg.expectFiles {
		xs, err := expectation.LoadFile(path)
		if err != nil {
			return fmt.Errorf("--expect: %w", err)
		}
		watched = append(watched, xs...)
	}
	if len(flows) == 0 {
		return usagef("server: no flows to run: give --flows FILE (docs/orchestration.md shows one), or --demo for the orders example's flow")
	}
	log := e.log

	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return err
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
	_, isEmbedded := st.(*embedded.Backend)

	// services run here; the coordinator routes by them and by routed,
	// whose handlers run elsewhere.
	var services []baton.Service
	switch {
	case cfg.demo && cfg.services:
		ledger, err := orders.NewLedger(filepath.Join(cfg.data, "ledger.jsonl"))
		if err != nil {
			return err
		}
		defer ledger.Close()
		services = orders.Services(ledger, orders.Faults{Rate: cfg.failRate})
	case cfg.demo:
		routed = append(routed, orders.Services(nil, orders.Faults{})...)
	}
	var hooks []notify.Webhook
	for _, u := range cfg.webhooks {
		hooks = append(hooks, notify.Webhook{URL: u, Secret: cfg.webhookSecret})
	}
	reg := newRegistry()
	hubCfg := notify.Config{Webhooks: hooks, Logger: log, Metrics: reg, MaxAge: cfg.webhookFor, Retry: baton.RetryPolicy{Cap: cfg.webhookCap}}
	if d, ok := st.(store.Deliveries); ok {
		hubCfg.Store = d
	}
	hub, err := notify.New(hubCfg)
	if err != nil {
		return fmt.Errorf("--webhook: %w", err)
	}
	rn, err := runner.New(runner.Config{Transport: tp, Store: st, Services: services, Flows: flows, Remote: routed,
		Expectations: watched, Notifier: hub, Source: "baton-server", StopTimeout: cfg.stopTimeout, Logger: log, Metrics: reg, TracerProvider: tracer})
	if err != nil {
		return err
	}

	var ready atomic.Bool
	apiCfg := api.Config{Store: st, Transport: tp, Coordinator: rn.Coordinator(), Scheduler: rn.Scheduler(), Publisher: rn, Hub: hub,
		Tokens: cfg.tokens, ScopedTokens: cfg.scoped, Hosts: cfg.hosts, MaxStreams: cfg.maxStreams, MaxStreamsPerToken: cfg.streamsPer,
		Logger: log, TracerProvider: tracer,
		Ready: func(context.Context) error {
			if !ready.Load() {
				return errors.New("the coordinator is starting or stopping")
			}
			return nil
		}}
	srv, err := api.NewServer(cfg.addr, apiCfg)
	if err != nil {
		return err
	}
	dash, err := ui.New(ui.Config{API: srv.Handler, Store: st, Flows: flows, Expectations: watched, Scheduler: rn.Scheduler(),
		Tokens: loginTokens(cfg.tokens, cfg.scoped), Hosts: cfg.hosts, Logger: log})
	if err != nil {
		return err
	}
	base, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv.Handler = withMetrics(dash, reg)
	srv.BaseContext = func(net.Listener) context.Context { return base }
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	defer ln.Close()

	// The control socket serves the same API without tokens: only this
	// user may open it. It stands for the data directory, so only the
	// embedded backend has one.
	var ctl *control
	if isEmbedded {
		socketCfg := apiCfg
		socketCfg.Tokens, socketCfg.ScopedTokens = nil, nil
		socketAPI, err := api.New(socketCfg)
		if err != nil {
			return err
		}
		if ctl, err = serveControlHandler(cfg.data, socketAPI); err != nil {
			fmt.Fprintf(e.stderr, "warning: no control socket, so commands with --data %s cannot reach this server: %v\n", cfg.data, err)
			ctl = nil
		}
	}

	stopCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), cfg.stopTimeout)
	}
	// What has started is stopped in the documented order, whatever
	// happens: stop taking requests, stop the hub (which ends the event
	// streams a server's shutdown waits for), wait for the requests in
	// flight, stop the schedules and the coordinator, stop the services
	// (the runner's Stop); the deferred closeBackends closes the data
	// directory last.
	var (
		serving, hubStarted, started bool
		stopWatch                    = func() {}
	)
	defer func() {
		ready.Store(false)
		var shutdown sync.WaitGroup
		if serving {
			shutdown.Go(func() {
				c, cancel := stopCtx()
				defer cancel()
				if err := srv.Shutdown(c); err != nil {
					cancelRequests()
					srv.Close()
				}
			})
		}
		if ctl != nil {
			shutdown.Go(func() {
				c, cancel := stopCtx()
				defer cancel()
				ctl.close(c)
			})
		}
		stopWatch()
		if hubStarted {
			c, cancel := stopCtx()
			if err := hub.Stop(c); err != nil {
				fmt.Fprintf(e.stderr, "warning: notifications: %v\n", err)
			}
			cancel()
		}
		shutdown.Wait()
		cancelRequests()
		if started {
			c, cancel := stopCtx()
			if err := rn.Stop(c); err != nil {
				fmt.Fprintf(e.stderr, "warning: %v\n", err)
			}
			cancel()
		}
	}()
	if err := rn.Start(ctx); err != nil {
		return err
	}
	started = true
	if err := hub.Start(ctx); err != nil {
		return err
	}
	hubStarted = true
	stopWatch = watchDead(st, hub, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	serving = true
	ready.Store(true)

	scheme := "http://" + ln.Addr().String()
	auth := "no token: loopback only"
	if n := len(cfg.tokens) + len(cfg.scoped); n > 0 {
		auth = fmt.Sprintf("%d token(s) required", n)
	}
	names := make([]string, len(flows))
	for i, fl := range flows {
		names[i] = fmt.Sprintf("%s v%d", fl.Name, fl.Version)
	}
	where := "data in " + cfg.data
	if !isEmbedded {
		bk, sk, _ := pickBackends(cfg.backends.bus, cfg.backends.store)
		where = fmt.Sprintf("bus %s, store %s, namespace %s, ledger in %s", bk, sk, cfg.backends.namespace, cfg.data)
	}
	fmt.Fprintf(e.stderr, "baton server: %s; flows: %s\n", where, strings.Join(names, ", "))
	if ctl != nil {
		fmt.Fprintf(e.stderr, "control socket: %s\n", ctl.path)
	}
	fmt.Fprintf(e.stderr, "listening on %s (%s); Ctrl-C to stop\n", scheme, auth)
	fmt.Fprintf(e.stderr, "dashboard: %s/\n", scheme)

	failed, failure := storeFailed(st)
	select {
	case <-ctx.Done():
		fmt.Fprintln(e.stderr, "stopping: no new requests; then notifications, the coordinator, the services, the data directory")
		return nil
	case err := <-served:
		return fmt.Errorf("serve %s: %w", cfg.addr, err)
	case <-failed:
		return failure()
	}
}

// deadEvery is how often the server looks for new dead letters to notify.
const deadEvery = time.Second

// watchDead tells the hub of every dead letter added from now on (the
// runtime has no hook for it), and returns a function that stops watching.
func watchDead(s store.DeadLetters, hub *notify.Hub, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	last, err := lastDead(ctx, s)
	if err != nil {
		log.Warn("dead letters: cannot find the last one; notifying those already there", "err", err)
	}
	go func() {
		defer close(done)
		t := time.NewTicker(deadEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for {
				page, err := s.ListDead(ctx, last, 500)
				if err != nil {
					if ctx.Err() == nil {
						log.Warn("dead letters: list", "err", err)
					}
					break
				}
				for i := range page {
					d := page[i]
					last = d.ID
					hub.Notify(ctx, flow.Notification{Kind: flow.DeadLetter, Time: d.Time,
						Message: fmt.Sprintf("%s gave up on %s %s after %d attempts: %s", d.Group, d.Type, d.EventID, d.Attempts, d.Reason),
						Dead:    &d})
				}
				if len(page) < 500 {
					break
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// lastDead returns the id of the newest dead letter, "" when there is none.
func lastDead(ctx context.Context, s store.DeadLetters) (string, error) {
	last := ""
	for {
		page, err := s.ListDead(ctx, last, 1000)
		if err != nil {
			return last, err
		}
		if len(page) == 0 {
			return last, nil
		}
		last = page[len(page)-1].ID
	}
}

// loginTokens are the tokens the dashboard lets a user log in with: every
// one the API accepts, whatever its scope, since the API checks the scope
// of each write the pages send.
func loginTokens(admin []string, scoped []api.Token) []string {
	all := slices.Clone(admin)
	for _, t := range scoped {
		all = append(all, t.Secret)
	}
	return all
}
