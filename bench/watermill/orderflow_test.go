package watermill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton/bench/internal/cpuacct"
	"github.com/batonhq/baton/bench/internal/openloop"
	"github.com/batonhq/baton/bench/internal/orderwork"
	"github.com/batonhq/baton/bench/internal/rabbitmq"
	"github.com/batonhq/baton/examples/orders"
)

// The tuning the issue asks of a careful team: per service, a durable queue
// with a prefetch of 256 per consumer, a publisher with a pool of 16
// channels in confirm mode, and 16 handlers.
const (
	prefetch = 256
	pool     = 16
	handlers = 16
)

func rabbitURL() string { return rabbitmq.URL() }

func needRabbitMQ(tb testing.TB) {
	tb.Helper()
	conn, err := amqp.DialConfig(rabbitURL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		tb.Skipf("RabbitMQ is not reachable (%v); set BATON_RABBITMQ_URL", err)
	}
	conn.Close()
}

// config is a service's Watermill configuration: the durable topic exchange
// ns, routing key = the event type; the durable queue (lazy classic, as
// Baton's and the hand-written flows') queue; persistent messages;
// publisher confirms on a pool of channels; manual acks (Watermill acks a
// delivery once its handler returned and its outputs were published and
// confirmed).
func config(ns, queue string) wamqp.Config {
	c := wamqp.NewDurableTopicConfig(rabbitURL(), ns, queue)
	c.Exchange.Durable = true
	c.Queue.Arguments = amqp.Table{"x-queue-mode": "lazy"}
	c.Consume.Qos.PrefetchCount = prefetch
	c.Publish.ChannelPoolSize = pool
	c.Publish.ConfirmDelivery = true
	return c
}

// settling is a publisher that tells, once the broker has confirmed an
// output, which order it was about: for the order service's outputs that
// is the order's last durable step (the ack that follows is a frame the
// broker does not confirm, in every variant).
type settling struct {
	message.Publisher
	settled func(orderID string)
}

func (p settling) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	for _, m := range msgs {
		p.settled(middleware.MessageCorrelationID(m))
	}
	return nil
}

// flow is the order flow on Watermill, running, with a placer.
type flow struct {
	ns     string
	placer message.Publisher

	mu      sync.Mutex
	placed  map[string]time.Time     // when each order was placed (or due)
	handled map[string]time.Duration // since then, until the order service's handler returned
	settled map[string]time.Duration // since then, until its output was confirmed
	want    int
	done    chan struct{}
}

// openFlow declares the topology and starts the four services, each a
// router handler 16 times over its queue (16 consumers, each on a channel
// of its own), a subscriber and a publisher on connections of their own, as
// four separate service processes would have; everything is closed and
// deleted when tb ends.
func openFlow(tb testing.TB, want int) *flow {
	needRabbitMQ(tb)
	ns := "batonbench_wm_" + randHex()
	f := &flow{ns: ns, placed: map[string]time.Time{}, handled: map[string]time.Duration{}, settled: map[string]time.Duration{}, want: want, done: make(chan struct{})}
	logger := watermill.NopLogger{}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	// Correlation ids travel in metadata; the placer sets the order id.
	router.AddMiddleware(middleware.CorrelationID)
	var queues []string
	for _, hop := range orderwork.Hops() {
		q := ns + "." + hop.Group
		queues = append(queues, q)
		cfg := config(ns, q)
		sub, err := wamqp.NewSubscriber(cfg, logger)
		if err != nil {
			tb.Fatal(err)
		}
		pub, err := wamqp.NewPublisher(cfg, logger)
		if err != nil {
			tb.Fatal(err)
		}
		var out message.Publisher = pub
		if hop.Group == "order" {
			out = settling{pub, f.settle}
		}
		// Declare the queue and its binding before anything is placed.
		if err := sub.SubscribeInitialize(hop.In); err != nil {
			tb.Fatal(err)
		}
		handle := func(msg *message.Message) ([]*message.Message, error) {
			data, orderID, err := hop.Handle(msg.Payload)
			if err != nil {
				return nil, err
			}
			if hop.Group == "order" {
				f.handle(orderID)
			}
			return []*message.Message{message.NewMessage(watermill.NewUUID(), data)}, nil
		}
		for i := range handlers {
			router.AddHandler(hop.Group+"-"+string(rune('a'+i)), hop.In, sub, hop.Out, out, handle)
		}
	}
	placer, err := wamqp.NewPublisher(config(ns, ""), logger)
	if err != nil {
		tb.Fatal(err)
	}
	f.placer = placer
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case err := <-ran:
		tb.Fatalf("router: %v", err)
	}
	tb.Cleanup(func() {
		router.Close()
		cancel()
		<-ran
		placer.Close()
		rabbitmq.Delete(tb, ns, queues...)
	})
	return f
}

func randHex() string {
	var r [6]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

func (f *flow) handle(orderID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.handled[orderID]; !ok {
		f.handled[orderID] = time.Since(f.placed[orderID])
	}
}

func (f *flow) settle(orderID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.settled[orderID]; ok {
		return
	}
	f.settled[orderID] = time.Since(f.placed[orderID])
	if len(f.settled) == f.want {
		close(f.done)
	}
}

// place publishes orders [from, from+n) in one Publish, noting each as
// placed at at (now when at is zero). Watermill's Publish sends each
// message and awaits its confirm before the next.
func (f *flow) place(tb testing.TB, from, n int, at time.Time) {
	msgs := make([]*message.Message, 0, n)
	now := time.Now()
	if at.IsZero() {
		at = now
	}
	f.mu.Lock()
	for i := from; i < from+n; i++ {
		data, orderID := orderwork.Order(i)
		m := message.NewMessage(watermill.NewUUID(), data)
		middleware.SetCorrelationID(orderID, m)
		msgs = append(msgs, m)
		f.placed[orderID] = at
	}
	f.mu.Unlock()
	if err := f.placer.Publish(orders.TypeOrderPlaced, msgs...); err != nil {
		tb.Error(err)
	}
}

func (f *flow) wait(tb testing.TB) {
	select {
	case <-f.done:
	case <-time.After(5 * time.Minute):
		f.mu.Lock()
		n := len(f.settled)
		f.mu.Unlock()
		tb.Fatalf("only %d of %d orders settled", n, f.want)
	}
}

func (f *flow) latencies(of map[string]time.Duration) (p50, p99, p999 time.Duration) {
	f.mu.Lock()
	ls := make([]time.Duration, 0, len(of))
	for _, d := range of {
		ls = append(ls, d)
	}
	f.mu.Unlock()
	return openloop.Percentiles(ls)
}

// BenchmarkWatermillOrderFlow places b.N orders of the order flow as fast as
// it can and reports orders/s from the first place until the order
// service's output for the last order is confirmed, the saturated
// latencies (placed to settled; they measure the queue), and the CPU
// seconds per 1,000 orders of this process, RabbitMQ and Redis. Orders are
// placed in batches of 100 from 16 placers (the publisher's pool): a
// Watermill publish holds one message in flight at a time, so 16 keep as
// many in flight as the pool allows, where Baton's 4 placers pipeline 100
// each.
//
//	go test -run '^$' -bench WatermillOrderFlow -benchtime 6000x .
func BenchmarkWatermillOrderFlow(b *testing.B) {
	f := openFlow(b, b.N)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuacct.Take()
	var wg sync.WaitGroup
	const placers, batch = pool, 100
	for p := range placers {
		wg.Go(func() {
			for i := p * batch; i < b.N; i += placers * batch {
				f.place(b, i, min(batch, b.N-i), time.Time{})
			}
		})
	}
	wg.Wait()
	f.wait(b)
	elapsed, cpu := time.Since(start), cpuacct.Take().Sub(cpu0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
	p50, p99, _ := f.latencies(f.settled)
	b.ReportMetric(float64(p50.Microseconds())/1000, "sat-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "sat-p99-ms")
	cpuacct.Report(b, cpu, b.N)
}

// BenchmarkWatermillOrderLatency offers the order flow a fixed load of 500
// orders/s, open-loop: order i is due at start + i × 2 ms and is placed then
// (by one of 16 senders, one order per publish), whatever happened to the
// orders before it, and its latency counts from its due time until the
// order service's handler returned (the point bench's
// BrokerOrderOpenLoop measures on Baton too). It reports p50/p99/p99.9, the
// achieved rate (orders over the time from the first due time to the last
// handled), and the CPU seconds per 1,000 orders of each process.
//
//	go test -run '^$' -bench WatermillOrderLatency -benchtime 6000x .
func BenchmarkWatermillOrderLatency(b *testing.B) {
	const rate = 500
	f := openFlow(b, b.N)
	b.ResetTimer()
	cpu0 := cpuacct.Take()
	sched, _ := openloop.Drive(b.N, rate, pool, func(i int, due time.Time) { f.place(b, i, 1, due) })
	f.wait(b)
	cpu := cpuacct.Take().Sub(cpu0)
	b.StopTimer()
	f.mu.Lock()
	last := sched.Start
	for id, d := range f.handled {
		if t := f.placed[id].Add(d); t.After(last) {
			last = t
		}
	}
	f.mu.Unlock()
	p50, p99, p999 := f.latencies(f.handled)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(p999.Microseconds())/1000, "p99.9-ms")
	b.ReportMetric(float64(b.N)/last.Sub(sched.Start).Seconds(), "achieved-orders/s")
	cpuacct.Report(b, cpu, b.N)
}
