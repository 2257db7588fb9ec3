package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/bench/internal/cpuacct"
	"github.com/batonhq/baton/bench/internal/openloop"
	"github.com/batonhq/baton/bench/internal/orderwork"
	"github.com/batonhq/baton/bench/internal/rabbitmq"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/flow"
)

func natsURL() string { return envOr("BATON_NATS_URL", "nats://127.0.0.1:4222") }

// needNATS skips b when the NATS server cannot be reached.
func needNATS(b *testing.B) {
	b.Helper()
	nc, err := nats.Connect(natsURL(), nats.Timeout(5*time.Second))
	if err != nil {
		b.Skipf("NATS is not reachable at %s (%v); start nats-server -js, or point BATON_NATS_URL at one", hostOf(natsURL()), err)
	}
	nc.Close()
}

// The groups of the order flow: the four services and the coordinator.
var orderGroups = []string{"order", "payment", "inventory", "notification", flow.DefaultGroup}

// deleteRabbitMQNamespace deletes every queue rabbitbus may have declared
// for groups in namespace ns (the group's queue, its bindings record, its
// dead letters and its delay queues), then the exchange. Queues that were
// never declared are passed over.
func deleteRabbitMQNamespace(tb testing.TB, ns string, groups ...string) {
	var names []string
	for _, g := range groups {
		q := ns + "." + g
		names = append(names, q, q+".bindings", q+".dead")
		for _, d := range []string{"50ms", "100ms", "250ms", "500ms", "1s", "2.5s", "5s", "10s", "30s", "1m", "5m", "15m", "1h"} {
			names = append(names, q+".delay."+d)
		}
	}
	conn, err := amqp.Dial(rabbitURL())
	if err != nil {
		tb.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	var ch *amqp.Channel
	for _, q := range names {
		if ch == nil {
			if ch, err = conn.Channel(); err != nil {
				tb.Errorf("cleanup: %v", err)
				return
			}
		}
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			// A failed delete closes the channel; a missing queue is no error.
			ch = nil
			var ae *amqp.Error
			if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
				tb.Errorf("cleanup: delete queue %s: %v", q, err)
			}
		}
	}
	if ch == nil {
		if ch, err = conn.Channel(); err != nil {
			tb.Errorf("cleanup: %v", err)
			return
		}
	}
	if err := ch.ExchangeDelete(ns, false, false); err != nil {
		tb.Errorf("cleanup: delete exchange %s: %v", ns, err)
	}
}

func deleteNATSStream(tb testing.TB, stream string) {
	nc, err := nats.Connect(natsURL())
	if err != nil {
		tb.Errorf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Errorf("cleanup: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil {
		tb.Errorf("cleanup: delete stream %s: %v", stream, err)
	}
}

// openBrokerFlow is openFlow on a broker and a database: the order flow's
// services (and, orchestrated, the coordinator) on busKind ("rabbitmq" or
// "nats") and storeKind ("redis" or "postgres"), in a fresh namespace
// deleted when b ends. b is skipped when a server cannot be reached.
func openBrokerFlow(b *testing.B, busKind, storeKind string, orchestrated bool) *orderFlow {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := benchNamespace()
	switch busKind {
	case "rabbitmq":
		needRabbitMQ(b)
		b.Cleanup(func() { deleteRabbitMQNamespace(b, ns, orderGroups...) })
	case "nats":
		needNATS(b)
	default:
		b.Fatalf("no bus %q", busKind)
	}
	st := openBenchStore(b, storeKind, ns)
	var tr bus.Transport
	switch busKind {
	case "rabbitmq":
		rb, err := rabbitbus.Open(ctx, rabbitbus.Config{URL: rabbitURL(), Namespace: ns})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rb.Close() })
		tr = rb
	case "nats":
		nb, err := natsbus.Open(ctx, natsbus.Config{URL: natsURL(), Namespace: ns})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			nb.Close()
			deleteNATSStream(b, nb.Stream())
		})
		tr = nb
	}
	return wireFlow(b, tr, st, b.N, orchestrated, telemetry{})
}

// BenchmarkBrokerOrderFlow places b.N orders of the order flow, with no
// faults, as fast as it can (4 placers, batches of 100, as OrderFlow does)
// on each combination of broker and database, in each style, and reports
// orders/s from the first place to the last completion. sat-p50-ms and
// sat-p99-ms are the latencies from placing an order to the order service
// completing it in that saturated run: with thousands of orders queued they
// measure the queue, not the latency at a given load.
//
// handwritten-amqp is the same flow written directly on
// github.com/rabbitmq/amqp091-go, for comparison (see
// benchmarkHandwrittenOrderFlow); handwritten-amqp-ce-inbox is that flow
// doing two things more that Baton does: CloudEvents binary-mode headers on
// every message, and an inbox in Redis (looked up before the handler,
// marked once the output is confirmed, before the ack).
//
//	go test -run '^$' -bench BrokerOrderFlow -benchtime 3000x -count 2 ./bench
func BenchmarkBrokerOrderFlow(b *testing.B) {
	for _, busKind := range []string{"rabbitmq", "nats"} {
		for _, storeKind := range []string{"postgres", "redis"} {
			for _, st := range styles {
				b.Run(busKind+"+"+storeKind+"/"+st.name, func(b *testing.B) {
					f := openBrokerFlow(b, busKind, storeKind, st.orchestrated)
					f.start(b)
					cpu0 := cpuacct.Take()
					runOrderFlow(b, f)
					if busKind == "rabbitmq" {
						cpuacct.Report(b, cpuacct.Take().Sub(cpu0), b.N)
					}
				})
			}
		}
	}
	b.Run("handwritten-amqp/choreography", func(b *testing.B) { benchmarkHandwrittenOrderFlow(b, false) })
	b.Run("handwritten-amqp-ce-inbox/choreography", func(b *testing.B) { benchmarkHandwrittenOrderFlow(b, true) })
}

// runOrderFlow places b.N orders from 4 placers and reports orders/s and
// the saturated latencies.
func runOrderFlow(b *testing.B, f *orderFlow) {
	el := placeAll(b, f)
	b.StopTimer()
	reportOrderFlow(b, el, f.latencies)
}

func reportOrderFlow(b *testing.B, elapsed time.Duration, latencies func() (p50, p99 time.Duration)) {
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
	p50, p99 := latencies()
	b.ReportMetric(float64(p50.Microseconds())/1000, "sat-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "sat-p99-ms")
}

// The hand-written flow's consumers, as the runtime's defaults: 32 per
// group, each with a prefetch of 256.
const (
	handWorkers  = 32
	handPrefetch = 256
)

// handFlow tracks the hand-written flow's orders: when each was placed and
// how long it took to complete.
type handFlow struct {
	mu       sync.Mutex
	placed   map[string]time.Time
	finished map[string]time.Duration
	want     int
	done     chan struct{}
}

func (h *handFlow) finish(orderID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.finished[orderID]; ok {
		return
	}
	h.finished[orderID] = time.Since(h.placed[orderID])
	if len(h.finished) == h.want {
		close(h.done)
	}
}

func (h *handFlow) latencies() (p50, p99 time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ls := make([]time.Duration, 0, len(h.finished))
	for _, d := range h.finished {
		ls = append(ls, d)
	}
	slices.Sort(ls)
	return ls[len(ls)/2], ls[len(ls)*99/100]
}

// benchmarkHandwrittenOrderFlow is the order flow as one would write it on
// amqp091 without Baton, the best way we know: a durable topic exchange,
// a durable lazy classic queue per service bound to the type it handles,
// persistent messages, publisher confirms, a manual ack of each delivery
// only after its output is confirmed. Each service is 32 consumers, each
// with a long-lived consuming channel (prefetch 256) and a long-lived
// confirm channel of its own for its outputs; a consumer does not wait for
// a confirm before handling its next delivery: its acker acks deliveries
// as their outputs' confirms come back (a window of up to the prefetch).
// Orders are placed as in the Baton variants: 4 placers, batches of 100,
// each batch's confirms awaited. What it lacks against Baton: no inbox (a
// redelivery is handled again and its output published twice), no journal,
// no retries with backoff, no dead letters, no orchestration.
//
// With likeBaton, every message carries the CloudEvents attributes Baton
// sends (binary mode), and each service keeps an inbox in Redis, through
// go-redis's autopipeliner as redisstore does: a delivery whose id is
// marked is acked and skipped; the id is marked (SET with a 24 h expiry)
// once the output is confirmed, before the ack.
func benchmarkHandwrittenOrderFlow(b *testing.B, likeBaton bool) {
	needRabbitMQ(b)
	ctx := context.Background()
	ns := benchNamespace()
	var inbox *redis.AutoPipeliner
	if likeBaton {
		inbox = handInbox(b, ns)
	}
	hops := orderwork.Hops()
	var queues []string
	for _, h := range hops {
		queues = append(queues, ns+"."+h.Group)
	}
	b.Cleanup(func() { rabbitmq.Delete(b, ns, queues...) })
	bindings := map[string]string{}
	for _, h := range hops {
		bindings[ns+"."+h.Group] = h.In
	}
	pubConn, subConn := handTopology(b, ns, bindings)

	f := &handFlow{placed: map[string]time.Time{}, finished: map[string]time.Duration{}, want: b.N, done: make(chan struct{})}
	var consumers sync.WaitGroup
	b.Cleanup(func() {
		subConn.Close() // ends the consumers' deliveries
		pubConn.Close() // ends the outstanding confirms
		consumers.Wait()
	})
	type pending struct {
		d       amqp.Delivery
		dc      *amqp.DeferredConfirmation
		orderID string
	}
	for _, h := range hops {
		for range handWorkers {
			pub, err := pubConn.Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := pub.Confirm(false); err != nil {
				b.Fatal(err)
			}
			ch, err := subConn.Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Qos(handPrefetch, 0, false); err != nil {
				b.Fatal(err)
			}
			deliveries, err := ch.Consume(ns+"."+h.Group, "", false, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			window := make(chan pending, handPrefetch)
			consumers.Go(func() {
				defer close(window)
				for d := range deliveries {
					if inbox != nil && inbox.Exists(ctx, handInboxKey(ns, h.Group, d.MessageId)).Val() == 1 {
						d.Ack(false)
						continue
					}
					typ := h.Out
					out, orderID, err := h.Handle(d.Body)
					if err != nil {
						b.Errorf("%s: %v", h.Group, err)
						d.Nack(false, false)
						continue
					}
					id := h.Group + "-" + d.MessageId
					var headers amqp.Table
					if likeBaton {
						headers = ceHeaders(id, h.Group, typ, orderID, d.MessageId, d.Headers)
					}
					dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, ns, typ, false, false, amqp.Publishing{
						DeliveryMode: amqp.Persistent, ContentType: "application/json",
						MessageId: id, Type: typ, Timestamp: time.Now(), Body: out, Headers: headers,
					})
					if err != nil {
						d.Nack(false, true)
						continue
					}
					window <- pending{d, dc, orderID}
				}
			})
			consumers.Go(func() {
				for p := range window {
					<-p.dc.Done()
					if p.dc.Acked() {
						if inbox != nil {
							if err := inbox.Set(ctx, handInboxKey(ns, h.Group, p.d.MessageId), 1, 24*time.Hour).Err(); err != nil {
								b.Errorf("%s: mark the inbox: %v", h.Group, err)
								p.d.Nack(false, true)
								continue
							}
						}
						p.d.Ack(false)
						// An order is done once its last delivery is
						// settled (output confirmed, inbox marked, acked),
						// as on Baton's side; it used to count at the handler.
						if h.Group == "order" {
							f.finish(p.orderID)
						}
					} else {
						p.d.Nack(false, true)
					}
				}
			})
		}
	}

	placer, err := pubConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := placer.Confirm(false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuacct.Take()
	var wg sync.WaitGroup
	const publishers, batch = 4, 100
	for p := range publishers {
		wg.Go(func() {
			confs := make([]*amqp.DeferredConfirmation, 0, batch)
			for i := p * batch; i < b.N; i += publishers * batch {
				confs = confs[:0]
				for j := i; j < min(i+batch, b.N); j++ {
					o := orders.NewOrder(j)
					body, _ := json.Marshal(o)
					f.mu.Lock()
					f.placed[o.OrderID] = time.Now()
					f.mu.Unlock()
					var headers amqp.Table
					if likeBaton {
						headers = ceHeaders("place-"+o.OrderID, "bench", orders.TypeOrderPlaced, o.OrderID, "", nil)
					}
					dc, err := placer.PublishWithDeferredConfirmWithContext(ctx, ns, orders.TypeOrderPlaced, false, false, amqp.Publishing{
						DeliveryMode: amqp.Persistent, ContentType: "application/json",
						MessageId: "place-" + o.OrderID, Type: orders.TypeOrderPlaced, Timestamp: time.Now(), Body: body, Headers: headers,
					})
					if err != nil {
						b.Error(err)
						return
					}
					confs = append(confs, dc)
				}
				for _, dc := range confs {
					if ok, err := dc.WaitContext(ctx); err != nil || !ok {
						b.Errorf("place not confirmed (%v)", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-f.done:
	case <-time.After(5 * time.Minute):
		f.mu.Lock()
		n := len(f.finished)
		f.mu.Unlock()
		b.Fatalf("only %d of %d orders finished", n, b.N)
	}
	el, cpu := time.Since(start), cpuacct.Take().Sub(cpu0)
	b.StopTimer()
	reportOrderFlow(b, el, f.latencies)
	cpuacct.Report(b, cpu, b.N)
}

// ceHeaders are the CloudEvents attributes of an event in AMQP binary mode,
// as rabbitbus sends them: the id, source, spec version, type, subject and
// time, and Baton's correlation id, causation id and hop count (one more
// than the cause's, from its headers).
func ceHeaders(id, source, typ, orderID, causation string, cause amqp.Table) amqp.Table {
	h := amqp.Table{
		"cloudEvents_id": id, "cloudEvents_source": source, "cloudEvents_specversion": "1.0",
		"cloudEvents_type": typ, "cloudEvents_subject": orderID,
		"cloudEvents_time": time.Now().UTC().Format(time.RFC3339Nano), "cloudEvents_correlationid": orderID,
	}
	if causation != "" {
		hops, _ := strconv.Atoi(fmt.Sprint(cause["cloudEvents_hops"]))
		h["cloudEvents_causationid"] = causation
		h["cloudEvents_hops"] = strconv.Itoa(hops + 1)
	}
	return h
}

// handInbox is a Redis client for the hand-written inboxes, whose keys are
// deleted when b ends; b is skipped when Redis cannot be reached.
func handInbox(b *testing.B, ns string) *redis.AutoPipeliner {
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		b.Fatal(err)
	}
	opt.PoolSize = 128 // as redisstore's
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		rdb.Close()
		b.Skipf("Redis is not reachable at %s (%v); set BATON_REDIS_URL", hostOf(redisURL()), err)
	}
	ap, err := rdb.AutoPipeline()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		rdb.Close()
		if err := deleteRedisPrefix(ns + ":"); err != nil {
			b.Errorf("cleanup: delete the keys of %s: %v", ns, err)
		}
	})
	return ap
}

func handInboxKey(ns, group, id string) string { return ns + ":inbox:" + group + ":" + id }

// BenchmarkBrokerOrderLatency offers a fixed load of 100 orders/s (5 every
// 50ms) to the order flow on each combination of broker and database, in
// each style, and reports the latency from placing an order to the order
// service completing it: a latency at a load every combination carries,
// unlike BrokerOrderFlow's saturated figures.
//
//	go test -run '^$' -bench BrokerOrderLatency -benchtime 1000x ./bench
func BenchmarkBrokerOrderLatency(b *testing.B) {
	const every, perTick = 50 * time.Millisecond, 5
	for _, busKind := range []string{"rabbitmq", "nats"} {
		for _, storeKind := range []string{"postgres", "redis"} {
			for _, st := range styles {
				b.Run(busKind+"+"+storeKind+"/"+st.name, func(b *testing.B) {
					f := openBrokerFlow(b, busKind, storeKind, st.orchestrated)
					f.start(b)
					b.ResetTimer()
					tick := time.NewTicker(every)
					defer tick.Stop()
					for i := 0; i < b.N; i += perTick {
						<-tick.C
						f.place(b, i, min(perTick, b.N-i))
					}
					f.wait(b)
					b.StopTimer()
					p50, p99 := f.latencies()
					b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
				})
			}
		}
	}
}

// BenchmarkBrokerOrderOpenLoop offers the choreographed order flow on
// RabbitMQ + Redis a fixed load of 500 orders/s, open-loop, as
// bench/watermill's WatermillOrderLatency offers it to the Watermill flow:
// order i is due at start + i × 2 ms and is placed then (by one of 16
// senders, one order per publish), whatever happened to the orders before
// it, and its latency counts from its due time until the order service's
// handler returned. Unlike BrokerOrderLatency's ticker, a stall does not
// delay the schedule, so it shows in the percentiles. It reports
// p50/p99/p99.9, the achieved rate (orders over the time from the first due
// time to the last handled) and the CPU seconds per 1,000 orders of each
// process.
//
//	go test -run '^$' -bench BrokerOrderOpenLoop -benchtime 6000x ./bench
func BenchmarkBrokerOrderOpenLoop(b *testing.B) {
	b.Run("rabbitmq+redis/choreography", func(b *testing.B) {
		const rate, senders = 500, 16
		f := openBrokerFlow(b, "rabbitmq", "redis", false)
		f.start(b)
		b.ResetTimer()
		cpu0 := cpuacct.Take()
		sched, _ := openloop.Drive(b.N, rate, senders, func(i int, due time.Time) { f.placeDue(b, i, due) })
		f.wait(b)
		cpu := cpuacct.Take().Sub(cpu0)
		b.StopTimer()
		f.mu.Lock()
		last := sched.Start
		ls := make([]time.Duration, 0, len(f.finished))
		for id, d := range f.finished {
			ls = append(ls, d)
			if t := f.placed[id].Add(d); t.After(last) {
				last = t
			}
		}
		f.mu.Unlock()
		p50, p99, p999 := openloop.Percentiles(ls)
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(p999.Microseconds())/1000, "p99.9-ms")
		b.ReportMetric(float64(b.N)/last.Sub(sched.Start).Seconds(), "achieved-orders/s")
		cpuacct.Report(b, cpu, b.N)
	})
}

// placeDue places order i alone, noting it as placed at its due time.
func (f *orderFlow) placeDue(tb testing.TB, i int, due time.Time) {
	o := orders.NewOrder(i)
	e, err := o.Event()
	if err != nil {
		tb.Fatal(err)
	}
	e.ID, e.CorrelationID = "place-"+o.OrderID, o.OrderID
	f.mu.Lock()
	f.placed[o.OrderID] = due
	f.mu.Unlock()
	if err := f.rt.Publish(context.Background(), e); err != nil {
		tb.Error(err)
	}
}
