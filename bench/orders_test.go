package bench

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bench/internal/cpuacct"
	"github.com/batonhq/baton/bench/internal/openloop"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// orderFlow is the order flow (on a fresh data directory when b is set), choreographed or,
// with co set, orchestrated over the same services, with the time each order
// was placed and finished.
type orderFlow struct {
	b  *embedded.Backend
	rt *bus.Runtime
	co *flow.Coordinator

	mu       sync.Mutex
	placed   map[string]time.Time
	finished map[string]time.Duration
	done     chan struct{}
	want     int

	// completed counts runs the coordinator saved as completed: under
	// orchestration an order is settled then, not when its last handler
	// returns.
	completed atomic.Int64
}

// Notify counts completed runs; the coordinator calls it once the run's
// completion is saved.
func (f *orderFlow) Notify(ctx context.Context, n flow.Notification) {
	if n.Kind == flow.RunCompleted {
		f.completed.Add(1)
	}
}

// start starts the services, and the coordinator when orchestrated.
func (f *orderFlow) start(tb testing.TB) {
	if err := f.rt.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if f.co != nil {
		if err := f.co.Start(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
}

// openFlow opens the order flow on the embedded backend without starting
// anything; orchestrated adds a coordinator running the order flow over the
// services.
func openFlow(tb testing.TB, want int, orchestrated bool) *orderFlow {
	return openFlowWith(tb, want, orchestrated, telemetry{})
}

// telemetry is what the runtime and the coordinator of an order flow
// record to: nothing with the zero value.
type telemetry struct {
	metrics prometheus.Registerer
	tracer  trace.TracerProvider
}

// openFlowWith is openFlow recording to tel.
func openFlowWith(tb testing.TB, want int, orchestrated bool, tel telemetry) *orderFlow {
	b, err := embedded.Open(embedded.Config{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() }) // after wireFlow's cleanup: last
	f := wireFlow(tb, b, b, want, orchestrated, tel)
	f.b = b
	return f
}

// wireFlow registers the order services on a runtime over tr and st, the
// order service's handlers observed, and, orchestrated, a coordinator
// running the order flow over them; both are stopped when tb ends.
func wireFlow(tb testing.TB, tr bus.Transport, st store.Store, want int, orchestrated bool, tel telemetry) *orderFlow {
	rt, err := bus.New(bus.Config{Transport: tr, Store: st, Metrics: tel.metrics, TracerProvider: tel.tracer})
	if err != nil {
		tb.Fatal(err)
	}
	f := &orderFlow{rt: rt, placed: map[string]time.Time{}, finished: map[string]time.Duration{}, done: make(chan struct{}), want: want}
	ledger, _ := orders.NewLedger("")
	services := orders.Services(ledger, orders.Faults{})
	for _, s := range services {
		if s.Name == "order" {
			for i := range s.Handlers {
				s.Handlers[i].Func = f.observe(s.Handlers[i].Func)
			}
		}
		if err := rt.Register(s); err != nil {
			tb.Fatal(err)
		}
	}
	if orchestrated {
		ftr, ok := tr.(flow.Transport)
		if !ok {
			tb.Fatalf("transport %T cannot send to one consumer group, which the flow's steps need", tr)
		}
		if f.co, err = flow.New(flow.Config{Store: st, Transport: ftr, Flows: []flow.Flow{orchestration.Flow()}, Services: services, Notifier: f,
			Metrics: tel.metrics, TracerProvider: tel.tracer}); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if f.co != nil {
			f.co.Stop(stopCtx)
		}
		rt.Stop(stopCtx)
	})
	return f
}

// observe wraps a terminal handler to note when each order finished.
func (f *orderFlow) observe(h baton.HandlerFunc) baton.HandlerFunc {
	return func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		out, err := h(ctx, e)
		if err == nil {
			f.mu.Lock()
			if _, ok := f.finished[e.Subject]; !ok {
				f.finished[e.Subject] = time.Since(f.placed[e.Subject])
				if len(f.finished) == f.want {
					close(f.done)
				}
			}
			f.mu.Unlock()
		}
		return out, err
	}
}

func (f *orderFlow) place(tb testing.TB, from, n int) {
	if f.co != nil {
		f.startRuns(tb, from, n)
		return
	}
	events := make([]baton.Event, 0, n)
	now := time.Now()
	f.mu.Lock()
	for i := from; i < from+n; i++ {
		o := orders.NewOrder(i)
		e, err := o.Event()
		if err != nil {
			tb.Fatal(err)
		}
		e.ID, e.CorrelationID = "place-"+o.OrderID, o.OrderID
		events = append(events, e)
		f.placed[o.OrderID] = now
	}
	f.mu.Unlock()
	if err := f.rt.Publish(context.Background(), events...); err != nil {
		tb.Fatal(err)
	}
}

// startRuns starts the order flow for n orders from from, from several
// goroutines: each start is its own write.
func (f *orderFlow) startRuns(tb testing.TB, from, n int) {
	var wg sync.WaitGroup
	const starters = 16
	for g := range starters {
		wg.Go(func() {
			for i := from + g; i < from+n; i += starters {
				o := orders.NewOrder(i)
				in, _ := json.Marshal(o)
				f.mu.Lock()
				f.placed[o.OrderID] = time.Now()
				f.mu.Unlock()
				if _, _, err := f.co.StartRun(context.Background(), flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in}); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// placeAll places b.N orders from 4 placers in batches of 100, waits until
// every one has finished and is settled, and returns the time since the
// first was placed.
func placeAll(b *testing.B, f *orderFlow) time.Duration {
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	const publishers, batch = 4, 100
	for p := range publishers {
		wg.Go(func() {
			for i := p * batch; i < b.N; i += publishers * batch {
				f.place(b, i, min(batch, b.N-i))
			}
		})
	}
	wg.Wait()
	f.wait(b)
	f.settle(b)
	return time.Since(start)
}

func (f *orderFlow) wait(tb testing.TB) {
	select {
	case <-f.done:
	case <-time.After(5 * time.Minute):
		f.mu.Lock()
		n := len(f.finished)
		f.mu.Unlock()
		tb.Fatalf("only %d of %d orders finished", n, f.want)
	}
}

// settle waits, once every order's last handler has returned, until the
// last order is settled durably: choreographed, until the runtime has
// committed (outputs, inbox, journal, ack) the four events each order
// passes through; orchestrated, until the coordinator has saved every run
// as completed. Timing used to stop at the handler, before its commit.
func (f *orderFlow) settle(tb testing.TB) {
	deadline := time.Now().Add(time.Minute)
	stats := f.rt.Stats()
	for {
		if f.co != nil && f.completed.Load() >= int64(f.want) || f.co == nil && stats.Handled() >= int64(4*f.want) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("settled %d of %d handled events, %d of %d runs", stats.Handled(), 4*f.want, f.completed.Load(), f.want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (f *orderFlow) latencies() (p50, p99 time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ls := make([]time.Duration, 0, len(f.finished))
	for _, d := range f.finished {
		ls = append(ls, d)
	}
	slices.Sort(ls)
	return ls[len(ls)/2], ls[len(ls)*99/100]
}

var styles = []struct {
	name         string
	orchestrated bool
}{{"choreography", false}, {"orchestration", true}}

// BenchmarkOrderFlow places b.N orders as fast as it can, from four
// placers, and reports orders/s through the four services, in each style.
func BenchmarkOrderFlow(b *testing.B) {
	for _, st := range styles {
		b.Run(st.name, func(b *testing.B) { benchmarkOrderFlow(b, st.orchestrated) })
	}
}

func benchmarkOrderFlow(b *testing.B, orchestrated bool) {
	f := openFlow(b, b.N, orchestrated)
	f.start(b)
	cpu0 := cpuacct.Take()
	el := placeAll(b, f)
	reportGoCPU(b, cpu0, b.N)
	b.ReportMetric(float64(b.N)/el.Seconds(), "orders/s")
	p50, p99 := f.latencies()
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}

// BenchmarkOrderFlowTelemetry is OrderFlow with telemetry off, with
// Prometheus metrics on, and with metrics and OpenTelemetry traces on,
// every transaction sampled or one in ten (parent-based, as
// OTEL_TRACES_SAMPLER=parentbased_traceidratio does). Spans go through the
// SDK's batch processor to an exporter that drops them, so the cost
// measured is Baton's and the SDK's, not a collector's.
func BenchmarkOrderFlowTelemetry(b *testing.B) {
	for _, st := range styles {
		for _, tc := range []struct {
			name    string
			metrics bool
			sample  float64 // 0: no tracing
		}{{"off", false, 0}, {"metrics", true, 0}, {"metrics+traces", true, 1}, {"metrics+traces-10pct", true, 0.1}} {
			b.Run(st.name+"/"+tc.name, func(b *testing.B) {
				var tel telemetry
				if tc.metrics {
					tel.metrics = prometheus.NewRegistry()
				}
				if tc.sample > 0 {
					tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(dropSpans{}),
						sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.sample))))
					b.Cleanup(func() { tp.Shutdown(context.Background()) })
					tel.tracer = tp
				}
				f := openFlowWith(b, b.N, st.orchestrated, tel)
				f.start(b)
				el := placeAll(b, f)
				b.ReportMetric(float64(b.N)/el.Seconds(), "orders/s")
			})
		}
	}
}

// dropSpans is an exporter that drops what it is given.
type dropSpans struct{}

func (dropSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (dropSpans) Shutdown(context.Context) error                             { return nil }

// BenchmarkOrderBacklog places b.N orders before the services start, then
// reports orders/s while they work through the backlog.
func BenchmarkOrderBacklog(b *testing.B) {
	f := openFlow(b, b.N, false)
	// Declare the groups so the placed orders are kept for them.
	for _, g := range []string{"payment"} {
		if _, err := f.b.Subscribe(context.Background(), g, []string{"order.placed.*", "inventory.failed.*"}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < b.N; i += 500 {
		f.place(b, i, min(500, b.N-i))
	}
	b.ResetTimer()
	start := time.Now()
	f.start(b)
	f.wait(b)
	f.settle(b)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "orders/s")
}

// BenchmarkOrderLatency offers a fixed load of 1000 orders/s, open loop:
// order i is due at start + i ms, is placed then from one of 16 placers
// whatever the earlier orders are doing, and its latency counts from that
// due time to the order service closing it, so a stall shows in the
// percentiles instead of delaying the schedule (no coordinated omission).
// It reports p50, p99 and p99.9 and the rate achieved, in each style.
func BenchmarkOrderLatency(b *testing.B) {
	for _, st := range styles {
		b.Run(st.name, func(b *testing.B) { benchmarkOrderLatency(b, st.orchestrated) })
	}
}

func benchmarkOrderLatency(b *testing.B, orchestrated bool) {
	const rate, placers = 1000, 16
	f := openFlow(b, b.N, orchestrated)
	f.start(b)
	b.ResetTimer()
	cpu0 := cpuacct.Take()
	sched, last := openloop.Drive(b.N, rate, placers, func(i int, due time.Time) { f.placeAt(b, i, due) })
	f.wait(b)
	f.mu.Lock()
	ls := make([]time.Duration, 0, len(f.finished))
	for _, d := range f.finished {
		ls = append(ls, d)
	}
	f.mu.Unlock()
	p50, p99, p999 := openloop.Percentiles(ls)
	reportGoCPU(b, cpu0, b.N)
	b.ReportMetric(float64(b.N)/last.Sub(sched.Start).Seconds(), "achieved-orders/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(p999.Microseconds())/1000, "p99.9-ms")
}

// placeAt places order i, noting due as the time it was placed: the
// latency of an order placed late counts from when it should have been.
func (f *orderFlow) placeAt(tb testing.TB, i int, due time.Time) {
	o := orders.NewOrder(i)
	f.mu.Lock()
	f.placed[o.OrderID] = due
	f.mu.Unlock()
	if f.co != nil {
		in, _ := json.Marshal(o)
		if _, _, err := f.co.StartRun(context.Background(), flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in}); err != nil {
			tb.Error(err)
		}
		return
	}
	e, err := o.Event()
	if err != nil {
		tb.Fatal(err)
	}
	e.ID, e.CorrelationID = "place-"+o.OrderID, o.OrderID
	if err := f.rt.Publish(context.Background(), e); err != nil {
		tb.Error(err)
	}
}
