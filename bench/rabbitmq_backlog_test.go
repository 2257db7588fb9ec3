package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/bench/internal/rabbitmq"
	"github.com/batonhq/baton/bus"
)

// BenchmarkRabbitMQBacklog publishes a backlog of small events (about 400
// bytes) to a group's lazy classic queue while no consumer runs, then starts
// a worker (the runtime on rabbitbus, with the Redis store for its inbox and
// journal, 32 consumers with a prefetch of 256) that drains it. It reports
// the publish and drain rates, the process's resident memory when the drain
// starts, at its peak and at the end (sampled every 100ms while it drains), and the queue's
// memory in the broker with the backlog in it (from rabbitmqctl, when it can
// be run). The backlog is BATON_BENCH_BACKLOG events (default 1,000,000);
// b.N is ignored, so run it with -benchtime 1x (with Nx, N > 1, it runs
// twice: a benchmark runs once with b.N = 1 first):
//
//	go test -run '^$' -bench RabbitMQBacklog -benchtime 1x ./bench
func BenchmarkRabbitMQBacklog(b *testing.B) {
	needRabbitMQ(b)
	total := 1_000_000
	if v := os.Getenv("BATON_BENCH_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("BATON_BENCH_BACKLOG=%q: want a positive number of events", v)
		}
		total = n
	}
	const (
		group = "drain"
		typ   = "bench.backlog.v1"
	)
	ctx := context.Background()
	ns := benchNamespace()
	queue := ns + "." + group
	b.Cleanup(func() { rabbitmq.Delete(b, ns, groupQueues(ns, group)...) })
	st := openBenchStore(b, "redis", ns)
	tr, err := rabbitbus.Open(ctx, rabbitbus.Config{URL: rabbitURL(), Namespace: ns})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })

	// Publish the backlog to the group's queue (declared by the first
	// PublishTo) from 8 goroutines in batches of 1,000, each batch
	// confirmed before the next.
	b.ResetTimer()
	start := time.Now()
	data := []byte(`{"pad":"` + strings.Repeat("x", 200) + `"}`)
	const publishers, batch = 8, 1000
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			msgs := make([]bus.Message, 0, batch)
			for i := p * batch; i < total; i += publishers * batch {
				msgs = msgs[:0]
				for j := i; j < min(i+batch, total); j++ {
					e := baton.Event{ID: ns + "-" + strconv.Itoa(j), Source: "bench", SpecVersion: baton.SpecVersion,
						Type: typ, Subject: strconv.Itoa(j), Time: start, DataContentType: "application/json", Data: data}
					msgs = append(msgs, bus.Message{Event: e})
				}
				if err := tr.PublishTo(ctx, group, msgs...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	published := time.Since(start)
	if n, mem, err := brokerQueue(queue); err != nil {
		b.Logf("no broker figures: %v", err)
	} else {
		if n != total {
			b.Errorf("the queue holds %d messages, want %d", n, total)
		}
		b.ReportMetric(float64(mem)/(1<<20), "MiB-broker-queue")
	}

	// Drain it, from a clean heap: what the publishers left is not the
	// worker's.
	runtime.GC()
	debug.FreeOSMemory()
	startRSS := rss(b)
	rt, err := bus.New(bus.Config{Transport: tr, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	err = rt.Register(baton.Service{Name: group, Handlers: []baton.Handler{{
		Type: typ,
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) { return nil, nil },
	}}})
	if err != nil {
		b.Fatal(err)
	}
	peak := startRSS
	start = time.Now()
	if err := rt.Start(ctx); err != nil {
		b.Fatal(err)
	}
	stats := rt.Stats()
	var marks []string // RSS at each tenth drained
	next := total / 10
	waitFor(b, time.Hour, 100*time.Millisecond, func() bool {
		h := stats.Handled()
		now := rss(b)
		peak = max(peak, now)
		for next > 0 && h >= int64(next) && len(marks) < 10 {
			marks = append(marks, fmt.Sprintf("%d%%:%.0f", 10*(len(marks)+1), now))
			next += total / 10
		}
		return h >= int64(total) || b.Failed()
	}, func() string {
		return fmt.Sprintf("%d of %d drained, %d retried, dead %v", stats.Handled(), total, stats.Retried(), stats.DeadLettered())
	})
	drained := time.Since(start)
	endRSS := rss(b)
	b.StopTimer()
	rt.Stop(ctx)
	if n := stats.Retried() + stats.Duplicates(); n > 0 || len(stats.DeadLettered()) > 0 {
		b.Logf("%d retried, %d duplicates, dead %v", stats.Retried(), stats.Duplicates(), stats.DeadLettered())
	}
	b.Logf("%d events: published in %v, drained in %v; RSS MiB at start %.0f, as the drain went %s, at the end %.0f",
		total, published.Round(time.Millisecond), drained.Round(time.Millisecond), startRSS, strings.Join(marks, " "), endRSS)
	b.ReportMetric(float64(total)/published.Seconds(), "published/s")
	b.ReportMetric(float64(total)/drained.Seconds(), "drained/s")
	b.ReportMetric(startRSS, "MiB-start-rss")
	b.ReportMetric(peak, "MiB-peak-rss")
	b.ReportMetric(endRSS, "MiB-end-rss")
}

// brokerQueue asks rabbitmqctl for a queue's message count and memory in
// bytes.
func brokerQueue(name string) (messages int, memory int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "list_queues", "--quiet", "--no-table-headers", "name", "messages", "memory").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("rabbitmqctl list_queues: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != name {
			continue
		}
		messages, err = strconv.Atoi(f[1])
		if err == nil {
			memory, err = strconv.ParseInt(f[2], 10, 64)
		}
		return messages, memory, err
	}
	return 0, 0, fmt.Errorf("rabbitmqctl does not list queue %s", name)
}
