package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/bench/internal/cpuacct"
	"github.com/batonhq/baton/bench/internal/rabbitmq"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// The servers of the broker benchmarks, read from the variables the
// backends' own tests read.
func rabbitURL() string { return rabbitmq.URL() }

func postgresURL() string {
	return envOr("BATON_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

func redisURL() string { return envOr("BATON_REDIS_URL", "redis://127.0.0.1:6379/0") }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// hostOf is a URL's host, for messages that must not show a password.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return "(an unparsable URL)"
}

// needRabbitMQ skips b when the broker cannot be reached.
func needRabbitMQ(b *testing.B) {
	b.Helper()
	conn, err := amqp.DialConfig(rabbitURL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		b.Skipf("RabbitMQ is not reachable at %s (%v); start it with `rabbitmq-server -detached`, or point BATON_RABBITMQ_URL at one", hostOf(rabbitURL()), err)
	}
	conn.Close()
}

// benchNamespace is a fresh RabbitMQ exchange name, PostgreSQL schema and
// Redis key prefix.
func benchNamespace() string {
	var r [6]byte
	rand.Read(r[:])
	return "batonbench_" + hex.EncodeToString(r[:])
}

// groupQueues are the queues rabbitbus declares for groups in namespace ns.
func groupQueues(ns string, groups ...string) []string {
	var qs []string
	for _, g := range groups {
		qs = append(qs, ns+"."+g, ns+"."+g+".bindings")
	}
	return qs
}

// openBenchStore opens a store of kind "redis" or "postgres" (or the
// "memory" stand-in) in namespace
// ns (key prefix or schema), removed with its data when b ends; b is
// skipped when the server cannot be reached.
func openBenchStore(b *testing.B, kind, ns string) store.Store {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch kind {
	case "memory":
		return &memoryInbox{seen: map[string]bool{}}
	case "redis":
		st, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL(), Prefix: ns + ":"})
		if err != nil {
			b.Skipf("Redis is not reachable at %s (%v); set BATON_REDIS_URL", hostOf(redisURL()), err)
		}
		b.Cleanup(func() {
			st.Close()
			if err := deleteRedisPrefix(ns + ":"); err != nil {
				b.Errorf("cleanup: delete the keys of %s: %v", ns, err)
			}
		})
		return st
	case "postgres":
		st, err := pgstore.Open(ctx, pgstore.Config{URL: postgresURL(), Schema: ns, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Skipf("PostgreSQL is not reachable at %s (%v); set BATON_POSTGRES_URL", hostOf(postgresURL()), err)
		}
		b.Cleanup(func() {
			st.Close()
			if err := dropSchema(ns); err != nil {
				b.Errorf("cleanup: drop schema %s: %v", ns, err)
			}
		})
		return st
	}
	b.Fatalf("no store %q", kind)
	return nil
}

func deleteRedisPrefix(prefix string) error {
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 5000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}

func dropSchema(schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, postgresURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitFor polls done until it holds, failing b after limit.
func waitFor(b *testing.B, limit time.Duration, every time.Duration, done func() bool, what func() string) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			b.Fatalf("gave up after %v: %s", limit, what())
		}
		time.Sleep(every)
	}
}

// The pipeline both sides of BenchmarkRabbitMQPipeline run: events of
// pipelineIn go to the group "relay", whose handler publishes one event of
// pipelineOut for each, which the group "sink" consumes.
const (
	pipelineIn  = "bench.relay.v1"
	pipelineOut = "bench.relayed.v1"
	// As the runtime's defaults: bus.Config.Concurrency consumers per group,
	// each on a channel of its own with rabbitbus.Config.Prefetch.
	pipelineWorkers  = 32
	pipelinePrefetch = 256
	// Input is published from 4 goroutines in batches of 100, each batch
	// sent in full and then its confirms awaited.
	pipelinePublishers, pipelineBatch = 4, 100
)

// pipelinePad makes an event about 1 KiB.
var pipelinePad = strings.Repeat("x", 960)

// BenchmarkRabbitMQPipeline publishes b.N events of about 1 KiB to a group
// whose handler publishes one event of another type for each, consumed by
// a second group, and reports events/s from the first publish to the last
// settlement at the second group, and the CPU time this process spent per
// event: once written by hand on github.com/rabbitmq/amqp091-go, once with
// Baton's runtime on rabbitbus with each store. Both use the same topology
// (a durable topic exchange, durable lazy classic queues), persistent
// messages, publisher confirms, acks after the output's confirm, 32
// consumers per group with a prefetch of 256. Both handlers pass the data
// through without decoding it. Baton adds what the hand-written pipeline
// lacks: the inbox (each handled event is looked up and marked, so that a
// redelivery is skipped) and the journal (every publication and handling is
// recorded). baton/memory keeps the inbox in a map and drops the journal:
// it is there to tell the store's share of the cost from the rest.
//
//	go test -run '^$' -bench RabbitMQPipeline -benchtime 30000x -count 3 ./bench
func BenchmarkRabbitMQPipeline(b *testing.B) {
	needRabbitMQ(b)
	b.Run("handwritten", benchmarkHandwrittenPipeline)
	b.Run("baton", func(b *testing.B) {
		for _, kind := range []string{"redis", "postgres", "memory"} {
			b.Run(kind, func(b *testing.B) { benchmarkBatonPipeline(b, kind) })
		}
	})
}

// memoryInbox is a store whose inbox is a map and whose journal discards
// its entries: not a configuration Baton offers (it forgets everything),
// but it shows what the runtime and rabbitbus cost without the store's
// round trips. Only what the runtime calls for handled events is there.
type memoryInbox struct {
	store.Store // nil: anything else panics
	mu          sync.Mutex
	seen        map[string]bool
}

func (m *memoryInbox) Seen(ctx context.Context, group, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[group+"\x00"+id], nil
}

func (m *memoryInbox) MarkSeen(ctx context.Context, group, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[group+"\x00"+id] = true
	return nil
}

func (m *memoryInbox) Append(ctx context.Context, entries ...store.Entry) error { return nil }

func (m *memoryInbox) Close() error { return nil }

func benchmarkBatonPipeline(b *testing.B, storeKind string) {
	ctx := context.Background()
	ns := benchNamespace()
	b.Cleanup(func() { rabbitmq.Delete(b, ns, groupQueues(ns, "relay", "sink")...) })
	st := openBenchStore(b, storeKind, ns)
	tr, err := rabbitbus.Open(ctx, rabbitbus.Config{URL: rabbitURL(), Namespace: ns})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	rt, err := bus.New(bus.Config{Transport: tr, Store: st, Concurrency: pipelineWorkers})
	if err != nil {
		b.Fatal(err)
	}
	relay := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		return []baton.Event{{Type: pipelineOut, DataContentType: e.DataContentType, Data: e.Data}}, nil
	}
	sink := func(ctx context.Context, e baton.Event) ([]baton.Event, error) { return nil, nil }
	for _, s := range []baton.Service{
		{Name: "relay", Handlers: []baton.Handler{{Type: pipelineIn, Func: relay}}},
		{Name: "sink", Handlers: []baton.Handler{{Type: pipelineOut, Func: sink}}},
	} {
		if err := rt.Register(s); err != nil {
			b.Fatal(err)
		}
	}
	if err := rt.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Stop(ctx) })
	data, _ := json.Marshal(map[string]string{"pad": pipelinePad})

	b.ResetTimer()
	start, cpu0, procs0 := time.Now(), cpuTime(), cpuacct.Take()
	var wg sync.WaitGroup
	for p := range pipelinePublishers {
		wg.Go(func() {
			for i := p * pipelineBatch; i < b.N; i += pipelinePublishers * pipelineBatch {
				events := make([]baton.Event, 0, pipelineBatch)
				for j := i; j < min(i+pipelineBatch, b.N); j++ {
					events = append(events, baton.Event{Type: pipelineIn, Subject: strconv.Itoa(j), DataContentType: "application/json", Data: data})
				}
				if err := rt.Publish(ctx, events...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	stats := rt.Stats()
	// Handled counts a delivery once its commit (outputs, inbox, journal,
	// ack) is done: the relay's b.N and the sink's b.N.
	waitFor(b, 10*time.Minute, time.Millisecond, func() bool { return stats.Handled() >= int64(2*b.N) || b.Failed() },
		func() string {
			return fmt.Sprintf("%d of %d handled, %d retried, dead %v", stats.Handled(), 2*b.N, stats.Retried(), stats.DeadLettered())
		})
	elapsed, cpu, procs := time.Since(start), cpuTime()-cpu0, cpuacct.Take().Sub(procs0)
	b.StopTimer()
	if n := stats.Retried() + stats.Duplicates(); n > 0 || len(stats.DeadLettered()) > 0 {
		b.Logf("%d retried, %d duplicates, dead %v", stats.Retried(), stats.Duplicates(), stats.DeadLettered())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/event")
	cpuacct.Report(b, procs, b.N)
}

// benchmarkHandwrittenPipeline is the pipeline as written without Baton:
// the same topology and guarantees, no inbox and no journal. As with
// rabbitbus, one connection publishes (one confirm channel shared by the
// publishers and the relay's consumers) and one consumes.
func benchmarkHandwrittenPipeline(b *testing.B) {
	ctx := context.Background()
	ns := benchNamespace()
	relayQ, sinkQ := ns+".relay", ns+".sink"
	b.Cleanup(func() { rabbitmq.Delete(b, ns, relayQ, sinkQ) })
	pubConn, subConn := handTopology(b, ns, map[string]string{relayQ: pipelineIn, sinkQ: pipelineOut})

	pub, err := pubConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Confirm(false); err != nil {
		b.Fatal(err)
	}

	var consumers sync.WaitGroup
	b.Cleanup(func() {
		subConn.Close() // ends the consumers' deliveries
		consumers.Wait()
	})
	consume := func(queue string, handle func(d amqp.Delivery) error) {
		for range pipelineWorkers {
			ch, err := subConn.Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Qos(pipelinePrefetch, 0, false); err != nil {
				b.Fatal(err)
			}
			deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			consumers.Go(func() {
				for d := range deliveries {
					if err := handle(d); err != nil {
						b.Error(err)
						d.Nack(false, true)
					}
				}
			})
		}
	}
	var relayed, sunk atomic.Int64
	// The relay pipelines its confirms as Baton's runtime does: a consumer
	// publishes a delivery's output and takes its next delivery at once,
	// while a goroutine of its own acks, in the order received, each
	// delivery whose output is confirmed, up to 16 (bus's window) per
	// consumer. It used to wait for each confirm before its next delivery,
	// which made the peer slower than it need be.
	const window = 16
	type pending struct {
		d  amqp.Delivery
		dc *amqp.DeferredConfirmation
	}
	for range pipelineWorkers {
		ch, err := subConn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		if err := ch.Qos(pipelinePrefetch, 0, false); err != nil {
			b.Fatal(err)
		}
		deliveries, err := ch.Consume(relayQ, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		inFlight := make(chan pending, window)
		consumers.Go(func() {
			defer close(inFlight)
			for d := range deliveries {
				dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, ns, pipelineOut, false, false, amqp.Publishing{
					DeliveryMode: amqp.Persistent, ContentType: "application/json",
					MessageId: d.MessageId + ".relayed", Type: pipelineOut, Timestamp: time.Now(), Body: d.Body,
				})
				if err != nil {
					b.Error(err)
					d.Nack(false, true)
					continue
				}
				inFlight <- pending{d, dc}
			}
		})
		consumers.Go(func() {
			for p := range inFlight {
				if ok, err := p.dc.WaitContext(ctx); err != nil || !ok {
					b.Errorf("output of %s not confirmed (%v)", p.d.MessageId, err)
					p.d.Nack(false, true)
					continue
				}
				if err := p.d.Ack(false); err != nil {
					b.Error(err)
					continue
				}
				relayed.Add(1)
			}
		})
	}
	consume(sinkQ, func(d amqp.Delivery) error {
		if err := d.Ack(false); err != nil {
			return err
		}
		sunk.Add(1)
		return nil
	})

	// Encoded before the timer starts, as the Baton side's data is: the
	// encoding used to be timed, once per event, on this side only.
	body, _ := json.Marshal(map[string]string{"pad": pipelinePad})
	b.ResetTimer()
	start, cpu0, procs0 := time.Now(), cpuTime(), cpuacct.Take()
	var wg sync.WaitGroup
	for p := range pipelinePublishers {
		wg.Go(func() {
			confs := make([]*amqp.DeferredConfirmation, 0, pipelineBatch)
			for i := p * pipelineBatch; i < b.N; i += pipelinePublishers * pipelineBatch {
				confs = confs[:0]
				for j := i; j < min(i+pipelineBatch, b.N); j++ {
					dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, ns, pipelineIn, false, false, amqp.Publishing{
						DeliveryMode: amqp.Persistent, ContentType: "application/json",
						MessageId: strconv.Itoa(j), Type: pipelineIn, Timestamp: time.Now(), Body: body,
					})
					if err != nil {
						b.Error(err)
						return
					}
					confs = append(confs, dc)
				}
				for _, dc := range confs {
					if ok, err := dc.WaitContext(ctx); err != nil || !ok {
						b.Errorf("publish not confirmed (%v)", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	// As with the runtime's count of handled events: the relay's acks too,
	// which may come after the sink's.
	waitFor(b, 10*time.Minute, time.Millisecond, func() bool { return relayed.Load()+sunk.Load() >= int64(2*b.N) || b.Failed() },
		func() string { return fmt.Sprintf("%d relayed and %d sunk of %d", relayed.Load(), sunk.Load(), b.N) })
	elapsed, cpu, procs := time.Since(start), cpuTime()-cpu0, cpuacct.Take().Sub(procs0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/event")
	cpuacct.Report(b, procs, b.N)
}

// handTopology declares what the hand-written benchmarks use: the topic
// exchange ns and, for each queue, a durable lazy classic queue bound to its
// routing key; and dials one connection to publish on and one to consume
// on, closed when b ends.
func handTopology(b *testing.B, ns string, bindings map[string]string) (pubConn, subConn *amqp.Connection) {
	pubConn, err := amqp.Dial(rabbitURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pubConn.Close() })
	subConn, err = amqp.Dial(rabbitURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { subConn.Close() })
	setup, err := subConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	if err := setup.ExchangeDeclare(ns, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	for q, key := range bindings {
		if _, err := setup.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-mode": "lazy"}); err != nil {
			b.Fatal(err)
		}
		if err := setup.QueueBind(q, key, ns, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	return pubConn, subConn
}
