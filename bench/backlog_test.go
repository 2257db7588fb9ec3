package bench

import (
	"context"
	"fmt"
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
	var mu sync.Mutex
	seen := 0
	done := make(chan struct{})
	err = rt.Register(baton.Service{Name: "sink", Handlers: []baton.Handler{{
		Type: "bench.hop.v1",
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			mu.Lock()
			if seen++; seen == b.N {
				close(done)
			}
			mu.Unlock()
			return nil, nil
		},
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
	start := time.Now()
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
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkBacklog publishes a backlog of one million events (about 500
// bytes each) while no consumer runs, then drains it with 64 consumers, and
// reports the publish and drain rates and the process's resident memory
// before, with the backlog, and at its peak during the drain. Run it with
// -benchtime 1x: b.N is ignored.
func BenchmarkBacklog(b *testing.B) {
	const total = 1_000_000
	be, err := embedded.Open(embedded.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	sub, err := be.Subscribe(ctx, "drain", []string{"bench.backlog.v1"})
	if err != nil {
		b.Fatal(err)
	}
	before := rss(b)
	start := time.Now()
	body := []byte(`{"specversion":"1.0","type":"bench.backlog.v1","source":"bench","id":"ID","data":{"pad":"` + strings.Repeat("x", 400) + `"}}`)
	var wg sync.WaitGroup
	const publishers, batch = 4, 500
	for p := range publishers {
		wg.Go(func() {
			msgs := make([]bus.Message, batch)
			for i := p * batch; i < total; i += publishers * batch {
				for j := range msgs {
					msgs[j] = bus.Message{Type: "bench.backlog.v1", ID: strconv.Itoa(i + j), Body: body}
				}
				if err := be.Publish(ctx, msgs...); err != nil {
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
	peak := backlog
	start = time.Now()
	var left atomic.Int64
	left.Store(total)
	var pmu sync.Mutex
	for range 64 {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				d, err := sub.Receive(ctx)
				if err == nil {
					err = sub.Ack(ctx, d)
				}
				if err != nil {
					b.Error(err)
					return
				}
				if n := left.Load(); n%100_000 == 0 {
					r := rss(b)
					pmu.Lock()
					peak = max(peak, r)
					pmu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(total/published.Seconds(), "published/s")
	b.ReportMetric(total/time.Since(start).Seconds(), "drained/s")
	b.ReportMetric(before, "rss-before-MiB")
	b.ReportMetric(backlog, "rss-backlog-MiB")
	b.ReportMetric(peak, "rss-drain-peak-MiB")
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
