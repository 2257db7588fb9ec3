package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
)

// The load of each case: faultOrders orders, one every faultPace, the
// engine restarted once a third of them are placed and left down for
// faultDown before it is started again.
const (
	faultOrders = 400
	faultPace   = 5 * time.Millisecond
	faultDown   = 2 * time.Second
	// faultDeadline bounds the wait for every order to end, once the
	// producer is done: minutes, as the machine may be busy with other
	// packages' tests.
	faultDeadline = 4 * time.Minute
)

// faultMix makes 30% of the orders meet a fault: declined cards and stock
// that runs out (cancellation paths), a flaky gateway (retries) and a dead
// one (dead letters).
var faultMix = orders.Faults{Rate: 0.3}

// TestRestartUnderLoad runs the choreographed order services on a broker
// bus and a database store, places orders at a steady pace, and restarts
// one engine part-way without touching the services: they must reconnect
// by themselves. Then every order must end exactly once, with each effect
// in the ledger once and a dead letter only for each order whose payment
// gateway is down. Redeliveries are allowed (the bus is at-least-once and
// settles step by step); the inboxes and the ledger's idempotency keys must
// absorb them.
func TestRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts private RabbitMQ, PostgreSQL, NATS and Redis servers and restarts the brokers under load")
	}
	tests := []struct {
		name      string
		transport string // "rabbitmq" or "nats"
		store     string // "postgres" or "redis"
		restart   string // the one of the two restarted
	}{
		{name: "RabbitMQ", transport: "rabbitmq", store: "postgres", restart: "rabbitmq"},
		{name: "NATS", transport: "nats", store: "redis", restart: "nats"},
		{name: "PostgreSQL", transport: "rabbitmq", store: "postgres", restart: "postgres"},
		{name: "Redis", transport: "nats", store: "redis", restart: "redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := newRing(400)
			log := slog.New(slog.NewTextHandler(logs, nil))
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(logs)
				}
			})
			tr, st, engine := openEngines(t, tt.transport, tt.store, tt.restart, log)
			runRestart(t, tr, st, tt.restart, engine, log)
		})
	}
}

// openEngines starts private instances of the two engines and opens the
// transport and the store on them; engine is the one named restart.
func openEngines(t *testing.T, transport, storeName, restart string, log *slog.Logger) (bus.Transport, store.Store, restarter) {
	t.Helper()
	ctx := t.Context()
	engines := map[string]restarter{}
	var tr bus.Transport
	switch transport {
	case "rabbitmq":
		n := startRabbitMQ(t)
		engines[transport] = n
		// A short publish timeout, so that publishes fail during the
		// outage and the producer's retries are exercised as well as the
		// waiting through it.
		b, err := rabbitbus.Open(ctx, rabbitbus.Config{URL: n.URL(), PublishTimeout: time.Second, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		tr = b
	case "nats":
		s := startNATS(t)
		engines[transport] = s
		b, err := natsbus.Open(ctx, natsbus.Config{URL: s.URL(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		tr = b
	default:
		t.Fatalf("no transport %q", transport)
	}
	var st store.Store
	switch storeName {
	case "postgres":
		s := startPostgres(t)
		engines[storeName] = s
		ps, err := pgstore.Open(ctx, pgstore.Config{URL: s.URL(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close() })
		st = ps
	case "redis":
		s := startRedis(t)
		engines[storeName] = s
		rs, err := redisstore.Open(ctx, redisstore.Config{URL: s.URL(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		st = rs
	default:
		t.Fatalf("no store %q", storeName)
	}
	engine, ok := engines[restart]
	if !ok {
		t.Fatalf("%s is neither the transport nor the store", restart)
	}
	return tr, st, engine
}

func runRestart(t *testing.T, tr bus.Transport, st store.Store, name string, engine restarter, log *slog.Logger) {
	ledger, err := orders.NewLedger("")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := bus.New(bus.Config{Transport: tr, Store: st, Concurrency: 8, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range orders.Services(ledger, faultMix) {
		if err := rt.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Registered after the backends' cleanups, so it runs before them.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rt.Stop(ctx)
	})

	ids := make([]string, faultOrders)
	for i := range ids {
		ids[i] = orders.NewOrder(i).OrderID
	}
	w := &watch{st: st, ledger: ledger, ids: ids, dead: map[string][]store.DeadLetter{}}

	// The producer places the second half of the orders only once the
	// engine is down, and the last quarter once it is back: however quickly
	// the engine stops and starts, some orders are placed through the
	// outage, and some can only end if the processes reconnected.
	outage, back := make(chan struct{}), make(chan struct{})
	pctx, stopProducer := context.WithCancel(context.Background())
	p := &producer{rt: rt, n: faultOrders, every: faultPace, done: make(chan struct{}),
		gates: []gate{{from: faultOrders / 2, open: outage}, {from: faultOrders * 3 / 4, open: back}}}
	go p.run(pctx)
	t.Cleanup(func() { stopProducer(); <-p.done })

	// The fault, under load: once a third of the orders are placed, with
	// the producer still placing the rest.
	for p.published.Load() < faultOrders/3 {
		select {
		case <-p.done:
			t.Fatalf("the producer stopped after %d orders: %v", p.published.Load(), p.failure())
		case <-time.After(10 * time.Millisecond):
		}
	}
	before := w.poll(t.Context())
	placed := p.published.Load()
	t.Logf("restarting %s: %s; %d orders placed, %s", name, engine.how(), placed, before)
	down := time.Now()
	engine.stop(t)
	close(outage)
	time.Sleep(faultDown)
	engine.start(t)
	up := time.Now()
	close(back)
	t.Logf("%s is back after %v; %d orders placed", name, up.Sub(down).Round(time.Millisecond), p.published.Load())
	if before.ended >= faultOrders {
		t.Fatalf("the restart came after the load: %d orders placed, %d ended", placed, before.ended)
	}

	// Every order ends, the producer having placed them all through the
	// outage.
	select {
	case <-p.done:
	case <-time.After(faultDeadline):
		t.Fatalf("the producer has not placed every order %v after the restart: %d placed", faultDeadline, p.published.Load())
	}
	if err := p.failure(); err != nil {
		t.Fatal(err)
	}
	if p.during(down, up) == 0 {
		t.Fatalf("no publish was in progress during the restart of %s: the producer did not keep placing orders through the outage", name)
	}
	deadline := time.Now().Add(faultDeadline)
	lastLog := time.Now()
	var last progress
	for {
		last = w.poll(t.Context())
		if last.ended == faultOrders {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the last order was placed, %d of %d orders have not ended (%s); some of them:\n%s",
				faultDeadline, faultOrders-last.ended, faultOrders, last, w.explain(t.Context(), last.left))
		}
		if time.Since(lastLog) >= 5*time.Second {
			t.Logf("waiting: %s; not ended: %s", last, strings.Join(last.left, ", "))
			lastLog = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every order ended %v after the restart: %s", time.Since(up).Round(time.Millisecond), last)

	stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Stop(stopCtx); err != nil {
		t.Errorf("stop the runtime: %v", err)
	}

	// Nothing lost, nothing done twice.
	if dups := ledger.Duplicates(); len(dups) > 0 {
		t.Errorf("%d effects happened more than once, first: %q", len(dups), dups[:min(len(dups), 10)])
	}
	dead, err := w.deadLetters(t.Context())
	if err != nil {
		t.Fatalf("list dead letters: %v", err)
	}
	byFault := map[orders.Fault]int{}
	bad := 0
	report := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, id := range ids {
		k := faultMix.For(id)
		byFault[k]++
		if got, want := effects(ledger, id), wantEffects(k); !maps.Equal(got, want) {
			report("%s (%v): effects %v, want %v", id, k, got, want)
		}
		ds := dead[id]
		delete(dead, id)
		switch {
		case k != orders.GatewayDown && len(ds) > 0:
			report("%s (%v): %d dead letters, want none: %s", id, k, len(ds), describeDead(ds))
		case k != orders.GatewayDown:
		case len(ds) != 1:
			report("%s (%v): %d dead letters, want 1: %s", id, k, len(ds), describeDead(ds))
		case ds[0].Group != "payment" || ds[0].EventID != "place-"+id || ds[0].Type != orders.TypeOrderPlaced ||
			!strings.HasPrefix(ds[0].Reason, "gave up after"):
			report("%s (%v): dead letter %s, want the payment group's order.placed.v1 place-%s, given up after its retries",
				id, k, describeDead(ds), id)
		}
	}
	for corr, ds := range dead {
		report("dead letters of no order (correlation id %q): %s", corr, describeDead(ds))
	}
	if bad > 20 {
		t.Errorf("... and %d more", bad-20)
	}

	calls, done := 0, 0
	for effect, n := range ledger.Totals() {
		calls += ledger.Calls(effect)
		done += n
	}
	s := rt.Stats()
	t.Logf("%d orders %v; %d effects from %d handler calls; publishing: %d Publish calls for %d orders, %d failed and were retried %v, %d in progress during the restart of %s; runtime: %d handled, %d retried, %d duplicates absorbed by the inboxes, dead-lettered %v",
		faultOrders, byFault, done, calls, p.calls(), faultOrders, p.failed(), p.codes(), p.during(down, up), name,
		s.Handled(), s.Retried(), s.Duplicates(), s.DeadLettered())
}

// producer places orders at a steady pace, as a client of the bus that
// keeps its promise: a Publish that returned nil is durable, one that
// failed is tried again, with the same event id, until it succeeds.
type producer struct {
	rt    *bus.Runtime
	n     int
	every time.Duration
	gates []gate

	published atomic.Int64
	done      chan struct{}

	mu       sync.Mutex
	attempts []attempt
	err      error // why the producer gave up
}

// gate holds the orders from from on until open is closed.
type gate struct {
	from int
	open <-chan struct{}
}

type attempt struct {
	start, end time.Time
	err        error
}

// publishTimeout bounds one Publish, as a client would; a publish that
// times out is tried again.
const publishTimeout = 10 * time.Second

func (p *producer) run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for i := range p.n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			p.fail(ctx.Err())
			return
		}
		for _, g := range p.gates {
			if i < g.from {
				continue
			}
			select {
			case <-g.open:
			case <-ctx.Done():
				p.fail(ctx.Err())
				return
			}
		}
		o := orders.NewOrder(i)
		e, err := o.Event()
		if err != nil {
			p.fail(err)
			return
		}
		// The same event however often it is placed: the payment group's
		// inbox skips the copies.
		e.ID, e.CorrelationID = "place-"+o.OrderID, o.OrderID
		giveUp := time.Now().Add(faultDeadline)
		for {
			a := attempt{start: time.Now()}
			actx, cancel := context.WithTimeout(ctx, publishTimeout)
			a.err = p.rt.Publish(actx, e)
			cancel()
			a.end = time.Now()
			p.mu.Lock()
			p.attempts = append(p.attempts, a)
			p.mu.Unlock()
			if a.err == nil {
				break
			}
			if !retryable(a.err) {
				p.fail(fmt.Errorf("place %s: an error that is neither unavailable nor a timeout: %w", o.OrderID, a.err))
				return
			}
			if ctx.Err() != nil || time.Now().After(giveUp) {
				p.fail(fmt.Errorf("place %s: still failing after %v: %w", o.OrderID, faultDeadline, a.err))
				return
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		p.published.Add(1)
	}
}

// retryable: the engine is away (unavailable), or the publish timed out.
func retryable(err error) bool {
	return baton.ErrorCode(err) == baton.Unavailable || errors.Is(err, context.DeadlineExceeded)
}

func (p *producer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *producer) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *producer) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.attempts)
}

func (p *producer) failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.attempts {
		if a.err != nil {
			n++
		}
	}
	return n
}

// codes counts the failed publishes by error code ("timeout" for a
// publish that ran out of time).
func (p *producer) codes() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int{}
	for _, a := range p.attempts {
		switch {
		case a.err == nil:
		case errors.Is(a.err, context.DeadlineExceeded):
			m["timeout"]++
		default:
			m[string(baton.ErrorCode(a.err))]++
		}
	}
	return m
}

// during counts the publishes that were in progress at some time between
// from and to.
func (p *producer) during(from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.attempts {
		if a.start.Before(to) && a.end.After(from) {
			n++
		}
	}
	return n
}

// watch follows the orders' progress in the ledger and the store's dead
// letters.
type watch struct {
	st     store.Store
	ledger *orders.Ledger
	ids    []string

	dead      map[string][]store.DeadLetter // by correlation id
	deadAfter string
	deadErr   error // of the last listing, while the store is away
}

type progress struct {
	completed, cancelled, dead, ended int
	left                              []string // some orders not ended, with their faults
	deadErr                           error
}

func (p progress) String() string {
	s := fmt.Sprintf("%d ended: %d completed, %d cancelled, %d dead-lettered", p.ended, p.completed, p.cancelled, p.dead)
	if p.deadErr != nil {
		s += fmt.Sprintf(" (dead letters not listed: %v)", p.deadErr)
	}
	return s
}

// poll reads the progress; the dead letters it cannot list while the store
// is away are those it listed before.
func (w *watch) poll(ctx context.Context) progress {
	w.deadErr = w.listDead(ctx)
	p := progress{deadErr: w.deadErr}
	for _, id := range w.ids {
		completed := w.ledger.Count(id, orders.EffectCompleted) > 0
		cancelled := w.ledger.Count(id, orders.EffectCancelled) > 0
		dead := len(w.dead[id]) > 0
		if completed {
			p.completed++
		}
		if cancelled {
			p.cancelled++
		}
		if dead {
			p.dead++
		}
		if completed || cancelled || dead {
			p.ended++
		} else if len(p.left) < 10 {
			p.left = append(p.left, id+" ("+faultMix.For(id).String()+")")
		}
	}
	return p
}

func (w *watch) listDead(ctx context.Context) error {
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		page, err := w.st.ListDead(lctx, w.deadAfter, 500)
		cancel()
		if err != nil {
			return err
		}
		for _, d := range page {
			w.dead[d.CorrelationID] = append(w.dead[d.CorrelationID], d)
			w.deadAfter = d.ID
		}
		if len(page) < 500 {
			return nil
		}
	}
}

// explain describes what became of the orders ids: their effects and
// their journal.
func (w *watch) explain(ctx context.Context, ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		id, _, _ = strings.Cut(id, " ")
		fmt.Fprintf(&b, "%s (%v): effects %v; journal:", id, faultMix.For(id), effects(w.ledger, id))
		hist, err := w.st.History(ctx, id)
		if err != nil {
			fmt.Fprintf(&b, " %v", err)
		}
		for _, e := range hist {
			fmt.Fprintf(&b, "\n\t%s %s %s %s %s attempt %d %s", e.Time.Format("15:04:05.000"), e.Outcome, e.Group, e.EventType, e.EventID, e.Attempt, e.Error)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// deadLetters lists every dead letter, by correlation id.
func (w *watch) deadLetters(ctx context.Context) (map[string][]store.DeadLetter, error) {
	if err := w.listDead(ctx); err != nil {
		return nil, err
	}
	return maps.Clone(w.dead), nil
}

var allEffects = []string{
	orders.EffectCharged, orders.EffectRefunded, orders.EffectReserved,
	orders.EffectNotified, orders.EffectCompleted, orders.EffectCancelled,
}

// effects counts, in the ledger, the effects an order has at least once.
func effects(ledger *orders.Ledger, id string) map[string]int {
	got := map[string]int{}
	for _, effect := range allEffects {
		if n := ledger.Count(id, effect); n > 0 {
			got[effect] = n
		}
	}
	return got
}

// wantEffects are the effects an order with fault k meets on its path, each
// once; the order of a dead gateway has none, its placement being
// dead-lettered.
func wantEffects(k orders.Fault) map[string]int {
	var list []string
	switch k {
	case orders.NoFault, orders.GatewayFlaky:
		list = []string{orders.EffectCharged, orders.EffectReserved, orders.EffectNotified, orders.EffectCompleted}
	case orders.Declined:
		list = []string{orders.EffectCancelled}
	case orders.OutOfStock:
		list = []string{orders.EffectCharged, orders.EffectRefunded, orders.EffectCancelled}
	}
	want := map[string]int{}
	for _, effect := range list {
		want[effect] = 1
	}
	return want
}

func describeDead(ds []store.DeadLetter) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("[%s %s %s %s attempt %d: %s]", d.ID, d.Group, d.Type, d.EventID, d.Attempts, d.Reason))
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}
