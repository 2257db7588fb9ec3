package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/expectations"
	"github.com/batonhq/baton/examples/orders/orchestration"
	expectation "github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/ui"
)

// demoConfig is what baton demo's flags set.
type demoConfig struct {
	orders      int
	failRate    float64
	data        string
	keep        bool
	concurrency int
	timeout     time.Duration
	serve       bool
	addr        string
	style       string
	backends    backendConfig
}

// Placement: batches of this many events per Publish, from this many
// publishers at once, so that placing is not what limits the run. Under
// orchestration each order is a run started on its own, so more starters
// work at once.
const (
	placeBatch      = 200
	placePublishers = 4
	runStarters     = 64
)

const (
	styleChoreography  = "choreography"
	styleOrchestration = "orchestration"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	f := newFlags("demo", "run the four order services and place orders through them",
		"[flags]", `
Runs the order, payment, inventory and notification services of the orders
example in this process, on the embedded backend unless --bus and --store
name others, and places orders o-000000,
o-000001, ... With --style choreography (the default) the services react to
each other's events; with --style orchestration the same services, unchanged,
are driven by a coordinator running the order flow (examples/orders/
orchestration), which refunds the payment when the stock runs out by the
charge step's compensation. Progress is shown on stderr; a
summary on stdout. The exit status is 0 only when every order ended
(completed, cancelled, or dead-lettered with a reason) and no effect happened
twice to an order.

With --fail-rate some orders go wrong, decided from their id: cards declined
and items out of stock (the order is cancelled), a flaky payment gateway
(retried, then completed), a payment gateway that is down (dead-lettered).

The demo declares the orders example's expectation: after
payment.processed.v1, inventory.reserved.v1 or inventory.failed.v1 within
30 s for the same order. Under choreography, an order that breaks it shows
expectation-broken in baton status (docs/observability.md).

With --data the directory (and the ledger of effects, DIR/ledger.jsonl) is
kept, and running again on it resumes: as a real producer would, it places
only the orders that were never placed (the journal knows them); those
placed that had not ended go on from where they were. While it runs, baton status, dlq and tail work on the same
--data through the control socket DIR/baton.sock. Ctrl-C stops gracefully.

--bus picks the transport and --store the store, by the URL's scheme (or
BATON_BUS and BATON_STORE; the flags win): embedded (the default, in the data
directory), nats://, amqp:// or rabbitmq:// for the bus; embedded,
postgres:// or redis:// for the store. The embedded backend is both or
neither: a NATS or RabbitMQ bus needs a PostgreSQL or Redis store.
--namespace (or BATON_NAMESPACE) names the NATS stream, RabbitMQ exchange,
PostgreSQL schema and Redis key prefix, so that runs can share a server.
baton status, dlq, tail and run list|get read those backends directly when
given the same --bus, --store and --namespace. The ledger of effects is only
kept with --data: run again with the same --data to resume. A run on a
namespace that holds an earlier demo run whose ledger is not here deletes
that namespace first (as baton namespace delete does) and says so.`,
		"baton demo",
		"baton demo --orders 10000 --fail-rate 0.2",
		"baton demo --style orchestration --fail-rate 0.2",
		"baton demo --data ./baton-data --keep --fail-rate 0.1   # then: baton dlq list --data ./baton-data",
		"baton demo --data ./baton-data --serve                  # keep serving; open the dashboard it prints",
		"baton demo --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0",
		"baton demo --style orchestration --bus amqp://guest:guest@127.0.0.1:5672/ --store postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	var cfg demoConfig
	f.IntVar(&cfg.orders, "orders", 1000, "place `N` orders")
	f.Float64Var(&cfg.failRate, "fail-rate", 0, "share `P` of orders, from 0 to 1, that meet a fault")
	f.StringVar(&cfg.data, "data", "", "keep the data in `DIR`, and resume a run there (default: a fresh temporary directory, removed afterwards)")
	f.BoolVar(&cfg.keep, "keep", false, "keep the temporary data directory and print where it is")
	f.IntVar(&cfg.concurrency, "concurrency", 0, "events each service handles at once, `N` (default 0: the runtime's default, 32)")
	f.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "give up when the orders have not all ended after `D`")
	f.BoolVar(&cfg.serve, "serve", false, "serve the dashboard and the API on --addr while the orders run, and after they end keep the services running until Ctrl-C")
	f.StringVar(&cfg.addr, "addr", api.DefaultAddr, "with --serve, serve the dashboard and the API on `HOST:PORT` (loopback only)")
	f.StringVar(&cfg.style, "style", styleChoreography, "how the services are coordinated: `STYLE` choreography or orchestration")
	backends := f.backendFlags()
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	if err := backends.fromEnv(e, "demo"); err != nil {
		return err
	}
	cfg.backends = *backends
	switch {
	case cfg.orders < 1:
		return usagef("demo: --orders %d: place at least one order", cfg.orders)
	case cfg.failRate < 0 || cfg.failRate > 1:
		return usagef("demo: --fail-rate %v: give a share from 0 to 1", cfg.failRate)
	case cfg.concurrency < 0:
		return usagef("demo: --concurrency %d: give 0 for the default or more", cfg.concurrency)
	case cfg.timeout <= 0:
		return usagef("demo: --timeout %v: give a positive duration", cfg.timeout)
	case cfg.style != styleChoreography && cfg.style != styleOrchestration:
		return usagef("demo: --style %q: give choreography or orchestration", cfg.style)
	case cfg.serve && !api.Loopback(cfg.addr):
		return usagef("demo: --addr %s is not loopback: the demo serves without a token, so give 127.0.0.1:PORT (baton server takes --token)", cfg.addr)
	}
	return demo(ctx, e, cfg)
}

// demo runs the demo; it returns errSilent when it already reported the
// failure.
func demo(ctx context.Context, e *env, cfg demoConfig) (err error) {
	// Log lines, the demo's and those of libraries that log to slog's
	// default (pgstore does, unless given a logger), go through the
	// console, which clears the progress line first and redraws it after.
	con := &console{w: e.stderr}
	log := e.useLog(con)
	dir, keep := cfg.data, true
	if dir != "" {
		// The embedded backend makes its directory; on a broker it holds
		// only the ledger.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("--data %s: %w", dir, err)
		}
	} else {
		if dir, err = os.MkdirTemp("", "baton-demo-"); err != nil {
			return err
		}
		keep = cfg.keep
		if !keep {
			defer os.RemoveAll(dir)
		}
	}
	tp, st, closeBackends, err := openBackends(ctx, cfg.backends.bus, cfg.backends.store, dir, cfg.backends.namespace, store.Retention{})
	if err != nil {
		if b, s, _ := pickBackends(cfg.backends.bus, cfg.backends.store); b == kindEmbedded && s == kindEmbedded && baton.ErrorCode(err) == baton.Unavailable {
			return fmt.Errorf("cannot open data directory %s; is another baton process using it? (%w)\nwhile a demo runs on it, inspect it with baton status, dlq or tail --data %s", dir, err, dir)
		}
		return err
	}
	defer func() { closeBackends() }()
	_, isEmbedded := st.(*embedded.Backend)
	ledgerPath := ""
	if keep {
		ledgerPath = filepath.Join(dir, "ledger.jsonl")
	}
	freshLedger := ledgerPath == ""
	if !freshLedger {
		_, serr := os.Stat(ledgerPath)
		freshLedger = errors.Is(serr, fs.ErrNotExist)
	}
	if !isEmbedded && freshLedger {
		// The orders' ids repeat from run to run: on a namespace that
		// holds an earlier run, the inbox would skip them and they would
		// never end in this run's empty ledger. That run cannot be
		// resumed without its ledger: start afresh.
		first := orders.NewOrder(0).OrderID
		h, err := st.History(ctx, first)
		if err != nil {
			return err
		}
		if len(h) > 0 {
			closeBackends()
			closeBackends = func() error { return nil }
			if err := clearDemo(ctx, cfg.backends); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "namespace %s held an earlier demo run whose ledger is not here: deleted it to start afresh (keep runs apart with --namespace; resume one with its --data)\n", cfg.backends.namespace)
			if tp, st, closeBackends, err = openBackends(ctx, cfg.backends.bus, cfg.backends.store, dir, cfg.backends.namespace, store.Retention{}); err != nil {
				return err
			}
		}
	}
	ledger, err := orders.NewLedger(ledgerPath)
	if err != nil {
		return err
	}
	defer ledger.Close()

	tracer, stopTracing, err := startTracing(ctx, e)
	if err != nil {
		return err
	}
	defer stopTracing()
	rt, err := bus.New(bus.Config{Transport: tp, Store: st, Concurrency: cfg.concurrency, Source: "baton-demo",
		Logger: log, TracerProvider: tracer})
	if err != nil {
		return err
	}
	services := orders.Services(ledger, orders.Faults{Rate: cfg.failRate})
	for _, s := range services {
		if err := rt.Register(s); err != nil {
			return err
		}
	}
	placeOrders := func(ctx context.Context, batch []int, placed *atomic.Int64) error {
		if err := publishOrders(ctx, rt, batch); err != nil {
			return err
		}
		placed.Add(int64(len(batch)))
		return nil
	}
	placers := placePublishers
	var co *flow.Coordinator
	if cfg.style == styleOrchestration {
		ftp, ok := tp.(flow.Transport)
		if !ok {
			return fmt.Errorf("the bus %T cannot send to one consumer group, which the orchestrated demo's steps need", tp)
		}
		co, err = flow.New(flow.Config{Store: st, Transport: ftp, Flows: []flow.Flow{orchestration.Flow()}, Services: services,
			Logger: log, TracerProvider: tracer})
		if err != nil {
			return err
		}
		placeOrders = func(ctx context.Context, batch []int, placed *atomic.Int64) error {
			return startOrders(ctx, co, batch, placed)
		}
		placers = runStarters
	}
	// The control socket lives in the data directory: only the embedded
	// backend has one.
	var ctl *control
	if isEmbedded {
		var runs api.Coordinator
		if co != nil {
			runs = co
		}
		if ctl, err = serveControl(dir, st, tp, runs); err != nil {
			fmt.Fprintf(e.stderr, "warning: no control socket, so baton status, dlq and tail cannot reach this run: %v\n", err)
			ctl = nil
		} else {
			defer func() {
				stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				ctl.close(stopCtx)
			}()
		}
	}

	if cfg.serve {
		stopDashboard, err := serveDashboard(e, &cfg, st, tp, co)
		if err != nil {
			return err
		}
		defer stopDashboard()
	}

	tr := newTracker(cfg.orders, ledger, st)
	if err := tr.refresh(ctx); err != nil {
		return err
	}
	toPlace := tr.pendingIDs()
	endedBefore := cfg.orders - len(toPlace)
	if !freshLedger {
		// Resuming: as a real producer would, place only the orders never
		// placed. One with a journal was placed, and what it caused is
		// durable on the bus or in the store.
		if toPlace, err = neverPlaced(ctx, st, toPlace); err != nil {
			return err
		}
	}

	// The watcher's group is declared before the services publish.
	watcher, err := expectation.New(expectation.Config{Store: st, Transport: tp,
		Expectations: []expectation.Expectation{expectations.InventoryAnswers()}})
	if err != nil {
		return err
	}
	if err := watcher.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		watcher.Stop(stopCtx)
	}()

	start := time.Now()
	if err := rt.Start(ctx); err != nil {
		return err
	}
	// Stop is idempotent: called early when the run did not finish, so
	// the report sees everything that was in flight.
	stopRuntime := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if serr := rt.Stop(stopCtx); serr != nil {
			fmt.Fprintf(e.stderr, "warning: %v; they are redelivered on the next run\n", serr)
		}
	}
	defer stopRuntime()
	if co != nil {
		if err := co.Start(ctx); err != nil {
			return err
		}
		stopServices := stopRuntime
		stopRuntime = func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if serr := co.Stop(stopCtx); serr != nil {
				fmt.Fprintf(e.stderr, "warning: %v\n", serr)
			}
			stopServices()
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	var placed atomic.Int64
	placeErr := make(chan error, 1)
	go func() { placeErr <- place(runCtx, placeOrders, placers, toPlace, &placed) }()

	prog := &progress{c: con, tty: e.tty, tr: tr, placed: &placed, start: start, last: start, endedBefore: endedBefore}
	ended, err := waitEnded(runCtx, tr, prog, placeErr)
	elapsed := time.Since(start)
	prog.final()
	if err != nil {
		return err
	}
	if !ended {
		stopRuntime()
		return stuck(ctx, e, cfg, tr, st, dir, keep, elapsed)
	}

	if !cfg.serve {
		stopRuntime() // the counters and the ledger are final from here
	}
	c := tr.counts()
	secs := elapsed.Seconds()
	fmt.Fprintf(e.stdout, "done: %d orders, %d completed, %d cancelled, %d dead-lettered in %.2f s (%d orders/s)\n",
		cfg.orders, c.completed, c.cancelled, c.dead, secs, int(float64(cfg.orders-endedBefore)/max(secs, 1e-9)))
	if endedBefore > 0 {
		fmt.Fprintf(e.stdout, "resumed: %d orders had ended in an earlier run; %d ended in this one\n", endedBefore, cfg.orders-endedBefore)
	}
	stats := rt.Stats()
	fmt.Fprintf(e.stdout, "retries: %d\n", stats.Retried())
	fmt.Fprintf(e.stdout, "duplicates skipped: %d\n", stats.Duplicates())
	fmt.Fprintf(e.stdout, "dead letters by reason: %s\n", byReason(stats.DeadLettered()))
	if keep && isEmbedded {
		fmt.Fprintf(e.stdout, "inspect an order: baton status --data %s %s\n", dir, tr.example())
		if c.dead > 0 {
			fmt.Fprintf(e.stdout, "dead letters: baton dlq list --data %s\n", dir)
		}
	}
	dups := ledger.Duplicates()
	if len(dups) > 0 {
		fmt.Fprintf(e.stdout, "FAILED: %d effects happened more than once:\n", len(dups))
		for _, d := range dups[:min(10, len(dups))] {
			fmt.Fprintf(e.stdout, "  %s\n", d)
		}
		return errSilent
	}
	if cfg.serve {
		where := "http://" + cfg.addr
		if ctl != nil {
			where += " and " + ctl.path
		}
		fmt.Fprintf(e.stderr, "serving %s; the services keep running (replayed dead letters are handled); Ctrl-C to stop\n", where)
		<-ctx.Done()
	}
	return nil
}

// serveDashboard serves the dashboard and the API of the demo's backends on
// cfg.addr, and prints its URL; cfg.addr becomes the address listened on
// (a port 0 is chosen by the system).
func serveDashboard(e *env, cfg *demoConfig, st store.Store, tp bus.Transport, co *flow.Coordinator) (stop func(), err error) {
	apiCfg := api.Config{Store: st, Transport: tp}
	uiCfg := ui.Config{Store: st, Expectations: []expectation.Expectation{expectations.InventoryAnswers()}}
	if co != nil {
		apiCfg.Coordinator = co
		uiCfg.Flows = co.Flows()
	}
	srv, err := api.NewServer(cfg.addr, apiCfg)
	if err != nil {
		return nil, err
	}
	uiCfg.API = srv.Handler
	if srv.Handler, err = ui.New(uiCfg); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %s: %w", cfg.addr, err)
	}
	cfg.addr = ln.Addr().String()
	base, cancel := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return base }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns when shut down
	}()
	fmt.Fprintf(e.stderr, "dashboard: http://%s/\n", cfg.addr)
	return func() {
		cancel() // ends the live tails
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer stopCancel()
		if err := srv.Shutdown(stopCtx); err != nil {
			srv.Close()
		}
		<-done
	}, nil
}

// neverPlaced returns the orders in ids that have no journal entry.
func neverPlaced(ctx context.Context, j store.Journal, ids []int) ([]int, error) {
	var out []int
	for _, n := range ids {
		id := orders.NewOrder(n).OrderID
		h, err := j.History(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("read the journal of %s: %w", id, err)
		}
		if len(h) == 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// clearDemo deletes the namespace of an earlier demo run on a broker and a
// database, with the queues of the demo's groups.
func clearDemo(ctx context.Context, c backendConfig) error {
	ns, err := newNamespace(c)
	if err != nil {
		return err
	}
	groups, err := ns.groups(ctx)
	if err != nil {
		return err
	}
	for _, s := range orders.Services(nil, orders.Faults{}) {
		if !slices.Contains(groups, s.Name) {
			groups = append(groups, s.Name)
		}
	}
	if !slices.Contains(groups, expectation.DefaultGroup) { // the watcher journals no handling
		groups = append(groups, expectation.DefaultGroup)
	}
	if _, err := ns.delete(ctx, groups); err != nil {
		return fmt.Errorf("clear the earlier demo run in namespace %s: %w", c.namespace, err)
	}
	return nil
}

// place places every order in ids, in batches, from several placers;
// placeOrders counts in placed the orders it placed.
func place(ctx context.Context, placeOrders func(context.Context, []int, *atomic.Int64) error, placers int, ids []int, placed *atomic.Int64) error {
	batches := make(chan []int)
	go func() {
		defer close(batches)
		for i := 0; i < len(ids); i += placeBatch {
			select {
			case batches <- ids[i:min(i+placeBatch, len(ids))]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range placers {
		wg.Go(func() {
			for batch := range batches {
				if err := placeOrders(ctx, batch, placed); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	if first != nil && ctx.Err() == nil {
		return fmt.Errorf("place orders: %w", first)
	}
	return nil
}

func publishOrders(ctx context.Context, rt *bus.Runtime, batch []int) error {
	events := make([]baton.Event, len(batch))
	for i, n := range batch {
		o := orders.NewOrder(n)
		ev, err := o.Event()
		if err != nil {
			return err
		}
		ev.ID = "place-" + o.OrderID
		ev.CorrelationID = o.OrderID
		events[i] = ev
	}
	return rt.Publish(ctx, events...)
}

// startOrders starts the order flow for every order in batch, counting
// each in placed as it starts; the order id is the run's key, so starting an
// order again returns its run.
func startOrders(ctx context.Context, co *flow.Coordinator, batch []int, placed *atomic.Int64) error {
	for _, n := range batch {
		o := orders.NewOrder(n)
		in, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if _, _, err := co.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in}); err != nil {
			return fmt.Errorf("start order %s: %w", o.OrderID, err)
		}
		placed.Add(1)
	}
	return nil
}

// waitEnded polls until every order ended, placing has finished, and reports
// whether that happened before ctx ended.
func waitEnded(ctx context.Context, tr *tracker, prog *progress, placeErr <-chan error) (bool, error) {
	check := time.NewTicker(50 * time.Millisecond)
	defer check.Stop()
	placing := true
	for {
		select {
		case err := <-placeErr:
			if err != nil {
				return false, err
			}
			placing = false
		case <-check.C:
		case <-ctx.Done():
			return false, nil
		}
		if err := tr.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, err
		}
		if !placing && tr.allEnded() {
			return true, nil
		}
		prog.maybeShow()
	}
}

// stuck reports the orders that did not end, and returns errSilent.
func stuck(ctx context.Context, e *env, cfg demoConfig, tr *tracker, b store.Journal, dir string, keep bool, elapsed time.Duration) error {
	// ctx may be cancelled (Ctrl-C); the data is still worth reading.
	readCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.refresh(readCtx); err != nil {
		return err
	}
	c := tr.counts()
	endedN := c.completed + c.cancelled + c.dead
	if ctx.Err() != nil {
		fmt.Fprintf(e.stdout, "interrupted after %.2f s: %d of %d orders ended (%d completed, %d cancelled, %d dead-lettered)\n",
			elapsed.Seconds(), endedN, cfg.orders, c.completed, c.cancelled, c.dead)
	} else {
		fmt.Fprintf(e.stdout, "timed out after %v: %d of %d orders ended (%d completed, %d cancelled, %d dead-lettered)\n",
			cfg.timeout, endedN, cfg.orders, c.completed, c.cancelled, c.dead)
	}
	ids := tr.pendingIDs()
	fmt.Fprintf(e.stdout, "%d orders did not end:\n", len(ids))
	for _, n := range ids[:min(10, len(ids))] {
		id := orders.NewOrder(n).OrderID
		fmt.Fprintf(e.stdout, "  %s  %s\n", id, lastStep(readCtx, b, id))
	}
	if len(ids) > 10 {
		fmt.Fprintf(e.stdout, "  ... and %d more\n", len(ids)-10)
	}
	if keep {
		same := ""
		if b, s, _ := pickBackends(cfg.backends.bus, cfg.backends.store); b != kindEmbedded || s != kindEmbedded {
			same = " with the same --bus, --store and --namespace"
		}
		fmt.Fprintf(e.stdout, "run baton demo --data %s again%s to finish them\n", dir, same)
	}
	return errSilent
}

func lastStep(ctx context.Context, j store.Journal, id string) string {
	h, err := j.History(ctx, id)
	switch {
	case err != nil:
		return "(journal unreadable: " + err.Error() + ")"
	case len(h) == 0:
		return "never placed"
	}
	return "last: " + describe(h[len(h)-1])
}

func byReason(m map[bus.DeadReason]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for r, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", r, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// What happened to an order, as bits.
const (
	bitPaid uint8 = 1 << iota
	bitReserved
	bitNotified
	bitCompleted
	bitCancelled
	bitDead
)

var effectBits = []struct {
	effect string
	bit    uint8
}{
	{orders.EffectCharged, bitPaid},
	{orders.EffectReserved, bitReserved},
	{orders.EffectNotified, bitNotified},
	{orders.EffectCompleted, bitCompleted},
	{orders.EffectCancelled, bitCancelled},
}

// tracker follows the demo's orders through the ledger's effects and the
// dead letters. Only refresh writes; the counts may be read at any time.
type tracker struct {
	ledger *orders.Ledger
	dead   store.DeadLetters
	ids    []string
	state  []uint8

	mu        sync.Mutex
	pending   []int // orders not ended, ascending
	n         [6]int
	deadAfter string
	reasons   map[string]string // correlation id -> reason of a dead letter
}

func newTracker(n int, l *orders.Ledger, d store.DeadLetters) *tracker {
	t := &tracker{ledger: l, dead: d, ids: make([]string, n), state: make([]uint8, n),
		pending: make([]int, n), reasons: map[string]string{}}
	for i := range n {
		t.ids[i] = orders.NewOrder(i).OrderID
		t.pending[i] = i
	}
	return t
}

func (t *tracker) refresh(ctx context.Context) error {
	for {
		page, err := t.dead.ListDead(ctx, t.deadAfter, 1000)
		if err != nil {
			return err
		}
		for _, d := range page {
			t.deadAfter = d.ID
			if d.CorrelationID != "" && d.Reason != "" {
				t.reasons[d.CorrelationID] = d.Reason
			}
		}
		if len(page) < 1000 {
			break
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	left := t.pending[:0]
	for _, i := range t.pending {
		id := t.ids[i]
		for j, eb := range effectBits {
			if t.state[i]&eb.bit == 0 && t.ledger.Count(id, eb.effect) > 0 {
				t.state[i] |= eb.bit
				t.n[j]++
			}
		}
		if _, ok := t.reasons[id]; ok && t.state[i]&bitDead == 0 {
			t.state[i] |= bitDead
			t.n[5]++
		}
		if t.state[i]&(bitCompleted|bitCancelled|bitDead) == 0 {
			left = append(left, i)
		}
	}
	t.pending = left
	return nil
}

type counts struct{ paid, reserved, notified, completed, cancelled, dead int }

// counts says how many orders each thing happened to. An order that ended is
// counted once: completed, else cancelled, else dead-lettered.
func (t *tracker) counts() counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := counts{paid: t.n[0], reserved: t.n[1], notified: t.n[2]}
	for _, s := range t.state {
		switch {
		case s&bitCompleted != 0:
			c.completed++
		case s&bitCancelled != 0:
			c.cancelled++
		case s&bitDead != 0:
			c.dead++
		}
	}
	return c
}

func (t *tracker) allEnded() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) == 0
}

func (t *tracker) pendingIDs() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.pending)
}

// example picks an order worth a look: the first dead-lettered one, else the
// first cancelled one, else o-000017 (or the first).
func (t *tracker) example() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, bit := range []uint8{bitDead, bitCancelled} {
		for i, s := range t.state {
			if s&bit != 0 && (bit == bitDead || s&bitCompleted == 0) {
				return t.ids[i]
			}
		}
	}
	return t.ids[min(17, len(t.ids)-1)]
}

// progress draws the progress line on stderr: redrawn in place every 200ms
// on a terminal, a new line every second otherwise.
type progress struct {
	c      *console
	tty    bool
	tr     *tracker
	placed *atomic.Int64
	start  time.Time
	last   time.Time
	// endedBefore orders had ended before this run; the rate leaves them out.
	endedBefore int
}

func (p *progress) line() string {
	c := p.tr.counts()
	ended := c.completed + c.cancelled + c.dead
	rate := float64(ended-p.endedBefore) / max(time.Since(p.start).Seconds(), 1e-9)
	return fmt.Sprintf("placed %d · paid %d · reserved %d · notified %d · completed %d · cancelled %d · dead %d · %d orders/s",
		p.placed.Load(), c.paid, c.reserved, c.notified, c.completed, c.cancelled, c.dead, int(rate))
}

func (p *progress) maybeShow() {
	every := time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.show()
}

func (p *progress) show() {
	if p.tty {
		p.c.draw(p.line())
		return
	}
	fmt.Fprintln(p.c, p.line())
}

// final draws the last state and ends the line.
func (p *progress) final() {
	p.show()
	p.c.endLine()
}

// console is the demo's stderr while the progress line is on screen: what
// else is written there (a library's log line) clears the line first and
// redraws it after, rather than running into it.
type console struct {
	mu   sync.Mutex
	w    io.Writer
	line string // the line drawn in place, until endLine
}

func (c *console) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.line == "" {
		return c.w.Write(b)
	}
	fmt.Fprint(c.w, "\r\x1b[K")
	n, err := c.w.Write(b)
	fmt.Fprintf(c.w, "%s\x1b[K", c.line)
	return n, err
}

// draw draws line in place of the one drawn before.
func (c *console) draw(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "\r%s\x1b[K", line)
	c.line = line
}

// endLine ends the line drawn in place, if any.
func (c *console) endLine() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.line != "" {
		fmt.Fprintln(c.w)
		c.line = ""
	}
}
