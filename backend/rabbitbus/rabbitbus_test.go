package rabbitbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/conformance"
)

func brokerURL() string {
	if u := os.Getenv("BATON_RABBITMQ_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

var (
	reachOnce sync.Once
	reachErr  error
)

// needBroker skips the test when RabbitMQ is not running, or fails it in CI,
// where it must be.
func needBroker(t *testing.T) {
	t.Helper()
	reachOnce.Do(func() {
		conn, err := amqp.Dial(brokerURL())
		if err != nil {
			reachErr = err
			return
		}
		conn.Close()
	})
	if reachErr == nil {
		return
	}
	msg := "RabbitMQ is not reachable at " + redact(brokerURL()) + " (" + reachErr.Error() +
		"); start it with `rabbitmq-server -detached`, or point BATON_RABBITMQ_URL at one"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func uniqueName(prefix string) string {
	var r [6]byte
	rand.Read(r[:])
	return prefix + hex.EncodeToString(r[:])
}

// open returns a Bus on a namespace of its own, whose exchange and queues
// are deleted when the test ends.
func open(t *testing.T, cfg Config) *Bus {
	t.Helper()
	needBroker(t)
	cfg.URL = brokerURL()
	cfg.Namespace = uniqueName("batontest-")
	b, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		b.Close()
		b.mu.Lock()
		names := make([]string, 0, len(b.names))
		for n := range b.names {
			names = append(names, n)
		}
		b.mu.Unlock()
		deleteAll(t, cfg.Namespace, names)
	})
	return b
}

func deleteAll(t *testing.T, exchange string, queues []string) {
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer ch.Close()
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Errorf("cleanup: delete queue %s: %v", q, err)
			return
		}
	}
	if err := ch.ExchangeDelete(exchange, false, false); err != nil {
		t.Errorf("cleanup: delete exchange %s: %v", exchange, err)
	}
}

// features: none. RabbitMQ keeps a queue in order, but a nacked message
// comes back behind newer ones and several consumers interleave, so Baton
// promises no order; and nothing is atomic with a store.
var features = conformance.Features{}

func TestConformance(t *testing.T) {
	conformance.TestTransport(t, features, func(t *testing.T) bus.Transport { return open(t, Config{}) })
}

func TestConformanceQuorum(t *testing.T) {
	conformance.TestTransport(t, features, func(t *testing.T) bus.Transport { return open(t, Config{QueueType: "quorum"}) })
}

func orderPlaced(id string) baton.Event {
	return baton.Event{
		ID:              id,
		Source:          "shop",
		SpecVersion:     baton.SpecVersion,
		Type:            "order.placed.v1",
		Subject:         "ORDER-101",
		Time:            time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		DataContentType: "application/json",
		CorrelationID:   "ORDER-101",
		Hops:            1,
		Data:            json.RawMessage(`{"order":"ORDER-101","total":42.5}`),
	}
}

func receiveOne(t *testing.T, sub bus.Subscription) bus.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := sub.Receive(ctx)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return d
}

// A plain AMQP client publishes order.placed.v1 in binary mode; a Baton
// subscription receives the same event.
func TestPlainClientPublishes(t *testing.T) {
	b := open(t, Config{})
	sub, err := b.Subscribe(t.Context(), "billing", []string{"order.*.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	ch := plainChannel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm(b.cfg.Namespace, "order.placed.v1", false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  "application/json",
		Headers: amqp.Table{
			"cloudEvents_specversion":   "1.0",
			"cloudEvents_id":            "plain-1",
			"cloudEvents_source":        "shop",
			"cloudEvents_type":          "order.placed.v1",
			"cloudEvents_subject":       "ORDER-101",
			"cloudEvents_time":          "2030-01-02T03:04:05Z",
			"cloudEvents_correlationid": "ORDER-101",
			"cloudEvents_hops":          "1",
		},
		Body: []byte(`{"order":"ORDER-101","total":42.5}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !dc.Wait() {
		t.Fatal("the broker did not confirm the plain publish")
	}

	d := receiveOne(t, sub)
	if d.Type != "order.placed.v1" || d.ID != "plain-1" || d.Attempt != 1 {
		t.Errorf("received %s %s attempt %d; want order.placed.v1 plain-1 attempt 1", d.Type, d.ID, d.Attempt)
	}
	if d.Err != nil {
		t.Fatalf("the plain client's event did not read: %v", d.Err)
	}
	got := d.Event
	want := orderPlaced("plain-1")
	if !sameEvent(got, want) {
		t.Errorf("received %+v\nwant     %+v", got, want)
	}
	if err := sub.Ack(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// What a plain AMQP client sends that is not an event (data that is not the
// JSON its content type says, a missing attribute) reaches the consumer
// with the reason, its id and type, and its body, for the runtime to
// dead-letter.
func TestPlainClientMalformedReachesConsumer(t *testing.T) {
	b := open(t, Config{})
	sub, err := b.Subscribe(t.Context(), "billing", []string{"order.*.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch := plainChannel(t)
	headers := func(id string) amqp.Table {
		return amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": id, "cloudEvents_source": "shop",
			"cloudEvents_type": "order.placed.v1", "cloudEvents_correlationid": "ORDER-7"}
	}
	noSource := headers("plain-nosource")
	delete(noSource, "cloudEvents_source")
	cases := map[string]struct {
		pub    amqp.Publishing
		reason string
	}{
		"plain-badjson":  {amqp.Publishing{ContentType: "application/json", Headers: headers("plain-badjson"), Body: []byte(`{"total":`)}, "not valid JSON"},
		"plain-nosource": {amqp.Publishing{ContentType: "application/json", Headers: noSource, Body: []byte(`{}`)}, `missing required attribute "source"`},
	}
	for _, c := range cases {
		if err := ch.Publish(b.cfg.Namespace, "order.placed.v1", false, false, c.pub); err != nil {
			t.Fatal(err)
		}
	}
	for range cases {
		d := receiveOne(t, sub)
		c, ok := cases[d.ID]
		if !ok {
			t.Fatalf("received %q; want one of the malformed messages, by the id its header names", d.ID)
		}
		if d.Err == nil || !strings.Contains(d.Err.Error(), c.reason) || d.Type != "order.placed.v1" ||
			d.CorrelationID != "ORDER-7" || !bytes.Equal(d.Raw, c.pub.Body) {
			t.Errorf("%s: type %q correlation %q raw %q error %v; want the type, correlation and body with an error saying %q",
				d.ID, d.Type, d.CorrelationID, d.Raw, d.Err, c.reason)
		}
		sub.Ack(t.Context(), d)
	}
}

// plainChannel is a channel of a plain AMQP client on the test broker,
// closed when t ends.
func plainChannel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func sameEvent(a, b baton.Event) bool {
	ad, bd := a.Data, b.Data
	a.Data, b.Data = nil, nil
	var av, bv any
	json.Unmarshal(ad, &av)
	json.Unmarshal(bd, &bv)
	aj, _ := json.Marshal(av)
	bj, _ := json.Marshal(bv)
	return a.ID == b.ID && a.Source == b.Source && a.Type == b.Type && a.Subject == b.Subject &&
		a.Time.Equal(b.Time) && a.DataContentType == b.DataContentType && a.CorrelationID == b.CorrelationID &&
		a.Hops == b.Hops && bytes.Equal(aj, bj)
}

// A plain AMQP consumer of a group's queue reads what Baton publishes, in
// binary mode.
func TestPlainClientConsumes(t *testing.T) {
	b := open(t, Config{})
	// Subscribe declares the group's queue and binds it; the plain client
	// then consumes from it instead.
	sub, err := b.Subscribe(t.Context(), "audit", []string{"order.>"})
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	e := orderPlaced("baton-1")
	if err := b.Publish(t.Context(), bus.Message{Event: e, Meta: map[string]string{bus.MetaRun: "r-1"}}); err != nil {
		t.Fatal(err)
	}

	ch := plainChannel(t)
	deliveries, err := ch.Consume(b.cfg.Namespace+".audit", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var d amqp.Delivery
	select {
	case d = <-deliveries:
	case <-time.After(10 * time.Second):
		t.Fatal("the plain consumer received nothing")
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cloudEvents_specversion":   "1.0",
		"cloudEvents_id":            "baton-1",
		"cloudEvents_source":        "shop",
		"cloudEvents_type":          "order.placed.v1",
		"cloudEvents_subject":       "ORDER-101",
		"cloudEvents_time":          "2030-01-02T03:04:05Z",
		"cloudEvents_correlationid": "ORDER-101",
		"cloudEvents_hops":          "1",
		"baton-run":                 "r-1", // metadata, beside the attributes
	}
	for k, v := range want {
		if got, _ := d.Headers[k].(string); got != v {
			t.Errorf("header %s = %#v; want %q", k, d.Headers[k], v)
		}
	}
	if d.ContentType != "application/json" {
		t.Errorf("content-type %q; want application/json", d.ContentType)
	}
	if d.DeliveryMode != amqp.Persistent {
		t.Errorf("delivery mode %d; want persistent (2)", d.DeliveryMode)
	}
	if d.RoutingKey != "order.placed.v1" {
		t.Errorf("routing key %q; want the type", d.RoutingKey)
	}
	if string(d.Body) != string(e.Data) {
		t.Errorf("body %s; want the data %s", d.Body, e.Data)
	}
}

// A body that is not an event still reaches the consumer, unchanged, for its
// runtime to dead-letter.
func TestUnreadableBodyReachesConsumer(t *testing.T) {
	b := open(t, Config{})
	sub, err := b.Subscribe(t.Context(), "strict", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	bad := []byte(`{"id": "broken", "type": "order.placed.v1", "data": {`)
	if err := b.Publish(t.Context(), bus.Message{Event: baton.Event{Type: "order.placed.v1", ID: "broken"}, Raw: bad}); err != nil {
		t.Fatal(err)
	}
	d := receiveOne(t, sub)
	if !bytes.Equal(d.Raw, bad) || d.Type != "order.placed.v1" || d.ID != "broken" || d.Err == nil {
		t.Errorf("received %s %q %q (error %v); want the bytes sent back unchanged, with the error of reading them", d.Type, d.ID, d.Raw, d.Err)
	}
	// A Nack keeps it unchanged too.
	if err := sub.Nack(t.Context(), d, 0); err != nil {
		t.Fatal(err)
	}
	d = receiveOne(t, sub)
	if !bytes.Equal(d.Raw, bad) || d.Type != "order.placed.v1" || d.Attempt != 2 {
		t.Errorf("redelivered %s %q attempt %d; want the bytes sent, attempt 2", d.Type, d.Raw, d.Attempt)
	}
	sub.Ack(t.Context(), d)
}

// Subscribing a group with a changed pattern set unbinds the patterns it no
// longer has.
func TestResubscribeUnbinds(t *testing.T) {
	b := open(t, Config{})
	old, err := b.Subscribe(t.Context(), "shipping", []string{"order.placed.v1", "order.paid.v1"})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	sub, err := b.Subscribe(t.Context(), "shipping", []string{"order.paid.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, typ := range []string{"order.placed.v1", "order.paid.v1"} {
		e := orderPlaced(typ + "-1")
		e.Type = typ
		if err := b.Publish(t.Context(), bus.Message{Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	d := receiveOne(t, sub)
	if d.Type != "order.paid.v1" {
		t.Fatalf("received %s; want order.paid.v1 only", d.Type)
	}
	sub.Ack(t.Context(), d)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if d, err := sub.Receive(ctx); err == nil {
		t.Errorf("received %s %s, which the group no longer subscribes to", d.Type, d.ID)
	}
}

// PublishTo reaches one group only, and waits in its queue when the group
// has not subscribed yet.
func TestPublishTo(t *testing.T) {
	b := open(t, Config{})
	other, err := b.Subscribe(t.Context(), "other", []string{"order.>"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e := orderPlaced("direct-1")
	if err := b.PublishTo(t.Context(), "coordinator", bus.Message{Event: e}); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(t.Context(), "coordinator", []string{"flow.reply.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d := receiveOne(t, sub)
	if d.ID != "direct-1" || d.Type != "order.placed.v1" {
		t.Errorf("received %s %s; want order.placed.v1 direct-1", d.Type, d.ID)
	}
	sub.Ack(t.Context(), d)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if d, err := other.Receive(ctx); err == nil {
		t.Errorf("group other received %s, sent to group coordinator only", d.ID)
	}
}

func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	_, err := Open(ctx, Config{URL: "amqp://guest:s3cret@127.0.0.1:1/"})
	if err == nil {
		t.Fatal("Open succeeded with no broker")
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/") {
		t.Errorf("error %q does not say which broker could not be reached", msg)
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error %q shows the password", msg)
	}
	if baton.ErrorCode(err) != baton.Unavailable {
		t.Errorf("error code %q; want unavailable", baton.ErrorCode(err))
	}
}

func TestBindingKey(t *testing.T) {
	for _, c := range []struct{ pattern, key string }{
		{"order.placed.v1", "order.placed.v1"},
		{"order.*.v1", "order.*.v1"},
		{"*.placed.v1", "*.placed.v1"},
		{"order.>", "order.*.#"},
		{">", "*.#"},
		{"order.>.v1", ""},
		{"order..v1", ""},
		{"order.pl*", ""},
		{"order.#", ""},
	} {
		key, err := bindingKey(c.pattern)
		if c.key == "" {
			if err == nil {
				t.Errorf("bindingKey(%q) = %q; want an error", c.pattern, key)
			}
			continue
		}
		if err != nil || key != c.key {
			t.Errorf("bindingKey(%q) = %q, %v; want %q", c.pattern, key, err, c.key)
		}
	}
}

func TestBucketRoundsUp(t *testing.T) {
	for _, c := range []struct {
		delay time.Duration
		want  string
	}{
		{time.Millisecond, "50ms"},
		{50 * time.Millisecond, "50ms"},
		{51 * time.Millisecond, "100ms"},
		{300 * time.Millisecond, "500ms"},
		{2 * time.Second, "2.5s"},
		{time.Hour, "1h"},
		{3 * time.Hour, "1h"}, // goes round until due
	} {
		if got := buckets[bucket(c.delay)].name; got != c.want {
			t.Errorf("bucket(%v) = %s; want %s", c.delay, got, c.want)
		}
	}
}

// dropConnections closes the bus's two connections under it, as a broker
// restart or a network fault would.
func dropConnections(t *testing.T, b *Bus) {
	t.Helper()
	for _, l := range []*link{b.pub, b.sub} {
		l.mu.Lock()
		conn := l.conn
		l.mu.Unlock()
		if conn == nil {
			t.Fatalf("%s connection is down already", l.name)
		}
		conn.Close()
	}
}

// After the connections are lost, the bus reconnects by itself, publishing
// works again and the subscription's consumer is restored; a delivery held
// across the loss comes back (with the same attempt number) instead of being
// lost, and acking the stale one says so.
func TestReconnects(t *testing.T) {
	b := open(t, Config{})
	sub, err := b.Subscribe(t.Context(), "resilient", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	msg := func(id string) bus.Message {
		return bus.Message{Event: orderPlaced(id)}
	}
	if err := b.Publish(t.Context(), msg("before")); err != nil {
		t.Fatal(err)
	}
	held := receiveOne(t, sub)

	dropConnections(t, b)
	if err := b.Publish(t.Context(), msg("after")); err != nil {
		t.Fatalf("publish after the connections were lost: %v", err)
	}
	if err := sub.Ack(t.Context(), held); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("ack of a delivery from a lost channel returned %v; want a conflict error", err)
	}
	seen := map[string]int{}
	for len(seen) < 2 {
		d := receiveOne(t, sub)
		seen[d.ID]++
		if d.Attempt != 1 {
			t.Errorf("%s: attempt %d after a hand-back; want 1 (attempts count nacks only)", d.ID, d.Attempt)
		}
		if err := sub.Ack(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	if seen["before"] != 1 || seen["after"] != 1 {
		t.Errorf("received %v; want before and after once each", seen)
	}
}

// A publish during an outage fails after PublishTimeout, saying why.
func TestPublishTimeout(t *testing.T) {
	b := open(t, Config{PublishTimeout: 200 * time.Millisecond})
	b.cfg.URL = "amqp://guest:guest@127.0.0.1:1/" // reconnections now fail
	dropConnections(t, b)
	e := orderPlaced("lost")
	err := b.Publish(t.Context(), bus.Message{Event: e})
	if err == nil {
		t.Fatal("publish succeeded with no broker")
	}
	if baton.ErrorCode(err) != baton.Unavailable || !strings.Contains(err.Error(), "within the publish timeout") {
		t.Errorf("publish during an outage returned %v; want an unavailable error naming the publish timeout", err)
	}
}

// QueueTypes chooses the type of some groups' queues.
func TestQueueTypePerGroup(t *testing.T) {
	b := open(t, Config{QueueTypes: map[string]string{"ledger": "quorum"}})
	for _, group := range []string{"ledger", "mail"} {
		sub, err := b.Subscribe(t.Context(), group, []string{"order.placed.v1"})
		if err != nil {
			t.Fatalf("subscribe %s: %v", group, err)
		}
		defer sub.Close()
	}
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Declaring a queue again with the arguments of a quorum queue
	// succeeds on a quorum queue only.
	asQuorum := func(queue string) error {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_, err = ch.QueueDeclare(queue, true, false, false, false, amqp.Table{
			"x-queue-type": "quorum", "x-delivery-limit": int32(100),
			"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue + ".dead",
			"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
		})
		return err
	}
	if err := asQuorum(b.queue("ledger")); err != nil {
		t.Errorf("the ledger group's queue is not a quorum queue: %v", err)
	}
	var amqpErr *amqp.Error
	if err := asQuorum(b.queue("mail")); !errors.As(err, &amqpErr) || amqpErr.Code != amqp.PreconditionFailed {
		t.Errorf("declaring the mail group's queue as quorum: %v; want PRECONDITION_FAILED, as it is classic", err)
	}
	if _, err := Open(t.Context(), Config{URL: brokerURL(), QueueTypes: map[string]string{"ledger": "stream"}}); baton.ErrorCode(err) != baton.Invalid ||
		!strings.Contains(err.Error(), `queue type "stream" of group ledger`) {
		t.Errorf("Open with a stream queue type: %v; want an invalid error naming the group and the type", err)
	}
}
