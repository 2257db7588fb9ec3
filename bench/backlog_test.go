package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bench/internal/cpuacct"
	"github.com/batonhq/baton/bus"
)

// BenchmarkSingleHop publishes b.N events of about 1 KiB from four
// publishers to one group whose handler emits nothing, and reports durable
// events/s from the first publish to the last settlement.
func BenchmarkSingleHop(b *testing.B) {
	be, err := embedded.Open(embedded.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	rt, err := bus.New(bus.Config{Transport: be, Store: be})
	if err != nil {
		b.Fatal(err)
	}
	err = rt.Register(baton.Service{Name: "sink", Handlers: []baton.Handler{{
		Type: "bench.hop.v1",
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) { return nil, nil },
	}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer rt.Stop(context.Background())
	payload := strings.Repeat("x", 900)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuacct.Take()
	var wg sync.WaitGroup
	const publishers, batch = 4, 100
	for p := range publishers {
		wg.Go(func() {
			for i := p * batch; i < b.N; i += publishers * batch {
				events := make([]baton.Event, 0, batch)
				for j := i; j < min(i+batch, b.N); j++ {
					e, _ := baton.NewEvent("bench.hop.v1", strconv.Itoa(j), map[string]string{"pad": payload})
					events = append(events, e)
				}
				if err := rt.Publish(context.Background(), events...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The last event counts once its consumption is committed, not when its
	// handler returns (which is where this used to stop).
	stats := rt.Stats()
	waitFor(b, 10*time.Minute, 100*time.Microsecond, func() bool { return stats.Handled() >= int64(b.N) || b.Failed() },
		func() string { return fmt.Sprintf("%d of %d handled", stats.Handled(), b.N) })
	reportGoCPU(b, cpu0, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkBacklog publishes a backlog of BATON_BENCH_BACKLOG events
// (default one million, about 500 bytes each) with the runtime's Publish
// while no consumer runs, then drains it through the runtime (64 handlers
// whose handler does nothing, each handled event settled with its inbox
// mark and journal entries, as any service's), and reports the publish and
// drain rates and the process's resident memory before, with the backlog,
// and at its peak during the drain. The drain used to Receive and Ack on
// the transport alone, and the peak was sampled only when the count left
// was a multiple of 100,000; it is now sampled every 100ms by a ticker.
// Run it with -benchtime 1x: b.N is ignored. It runs with the embedded
// backend's default memory sizes and with small ones (16 MiB memtables, a
// 16 MiB cache), to show what a user trades by setting them.
func BenchmarkBacklog(b *testing.B) {
	for _, sz := range []struct {
		name            string
		memtable, cache int64
	}{{"default", 0, 0}, {"small-memory", 16 << 20, 16 << 20}} {
		b.Run(sz.name, func(b *testing.B) {
			benchmarkBacklog(b, embedded.Config{Dir: b.TempDir(), MemTableSize: sz.memtable, CacheSize: sz.cache})
		})
	}
}

func benchmarkBacklog(b *testing.B, cfg embedded.Config) {
	total := 1_000_000
	if v := os.Getenv("BATON_BENCH_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("BATON_BENCH_BACKLOG=%q: want a positive number of events", v)
		}
		total = n
	}
	const typ = "bench.backlog.v1"
	be, err := embedded.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	// Declare the group so that what is published is kept for it.
	sub, err := be.Subscribe(ctx, "drain", []string{typ})
	if err != nil {
		b.Fatal(err)
	}
	sub.Close()
	rt, err := bus.New(bus.Config{Transport: be, Store: be, Concurrency: 64})
	if err != nil {
		b.Fatal(err)
	}
	err = rt.Register(baton.Service{Name: "drain", Handlers: []baton.Handler{{
		Type: typ,
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) { return nil, nil },
	}}})
	if err != nil {
		b.Fatal(err)
	}
	before := rss(b)
	start := time.Now()
	data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 400)})
	var wg sync.WaitGroup
	const publishers, batch = 4, 500
	for p := range publishers {
		wg.Go(func() {
			events := make([]baton.Event, batch)
			for i := p * batch; i < total; i += publishers * batch {
				events = events[:min(batch, total-i)]
				for j := range events {
					events[j] = baton.Event{Type: typ, Subject: strconv.Itoa(i + j), DataContentType: "application/json", Data: data}
				}
				if err := rt.Publish(ctx, events...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	published := time.Since(start)
	runtime.GC()
	backlog := rss(b)

	var peak atomic.Uint64 // math.Float64bits of the largest RSS seen
	peak.Store(math.Float64bits(backlog))
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				if r := rss(b); r > math.Float64frombits(peak.Load()) {
					peak.Store(math.Float64bits(r))
				}
			}
		}
	})
	start = time.Now()
	if err := rt.Start(ctx); err != nil {
		b.Fatal(err)
	}
	stats := rt.Stats()
	waitFor(b, time.Hour, 10*time.Millisecond, func() bool { return stats.Handled() >= int64(total) || b.Failed() },
		func() string { return fmt.Sprintf("%d of %d handled", stats.Handled(), total) })
	drained := time.Since(start)
	close(stopSampling)
	sampler.Wait()
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rt.Stop(stopCtx)
	b.ReportMetric(float64(total)/published.Seconds(), "published/s")
	b.ReportMetric(float64(total)/drained.Seconds(), "drained/s")
	b.ReportMetric(before, "rss-before-MiB")
	b.ReportMetric(backlog, "rss-backlog-MiB")
	b.ReportMetric(math.Float64frombits(peak.Load()), "rss-drain-peak-MiB")
}

// rss is the resident set size of this process in MiB.
func rss(tb testing.TB) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}
