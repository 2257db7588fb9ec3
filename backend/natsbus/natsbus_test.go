package natsbus_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/conformance"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const startCommand = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- " +
	"-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"

func natsURL() string {
	if u := os.Getenv("BATON_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// The server is checked once per test binary.
var reachable = sync.OnceValue(func() error {
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	nc.Close()
	return nil
})

// requireNATS fails the test in CI and skips it elsewhere when no NATS
// server answers.
func requireNATS(t *testing.T) {
	t.Helper()
	if err := reachable(); err != nil {
		msg := "NATS with JetStream is not reachable at " + natsURL() + " (" + err.Error() + "); start it with: " + startCommand
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// openBus opens a bus on a namespace of its own and deletes its stream when
// the test ends.
func openBus(t *testing.T) *natsbus.Bus {
	t.Helper()
	return openBusWith(t, natsbus.Config{})
}

// openBusWith is openBus with cfg's settings besides URL and Namespace.
func openBusWith(t *testing.T, cfg natsbus.Config) *natsbus.Bus {
	t.Helper()
	requireNATS(t)
	cfg.URL, cfg.Namespace = natsURL(), "t"+strings.ToLower(rand.Text()[:12])
	b, err := natsbus.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open natsbus: %v", err)
	}
	t.Cleanup(func() {
		b.Close()
		nc, err := nats.Connect(natsURL())
		if err != nil {
			t.Errorf("cleanup: connect: %v", err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, b.Stream()); err != nil {
			t.Errorf("cleanup: delete stream %s: %v", b.Stream(), err)
		}
	})
	return b
}

// TestTransport declares no features: not ordered (a redelivery after
// AckWait or a Nak overtakes later messages, and the messages sent to a
// group come from a second consumer), not atomic (the broker is not the
// store).
func TestTransport(t *testing.T) {
	conformance.TestTransport(t, conformance.Features{}, func(t *testing.T) bus.Transport { return openBus(t) })
}

// TestPlainClient: an event published by a plain NATS client in CloudEvents
// binary mode reaches a Baton subscription as the same event, and what Baton
// publishes a plain client reads in binary mode.
func TestPlainClient(t *testing.T) {
	b := openBus(t)
	ns := strings.ToLower(b.Stream())
	sub, err := b.Subscribe(t.Context(), "billing", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })

	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{
		Subject: ns + ".ev.order.placed.v1",
		Header: nats.Header{
			"ce-specversion":   {"1.0"},
			"ce-id":            {"plain-1"},
			"ce-source":        {"/shop/python"},
			"ce-type":          {"order.placed.v1"},
			"ce-subject":       {"ORDER-7"},
			"ce-time":          {"2030-01-02T03:04:05Z"},
			"ce-correlationid": {"ORDER-7"},
			"content-type":     {"application/json"},
		},
		Data: []byte(`{"order":"ORDER-7","total":42.5}`),
	}
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatalf("plain publish: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := sub.Receive(ctx)
	if err != nil {
		t.Fatalf("receive the plain client's event: %v", err)
	}
	if err := sub.Ack(t.Context(), d); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if d.Err != nil {
		t.Fatalf("the plain client's event did not read: %v", d.Err)
	}
	got := d.Event
	want := baton.Event{
		ID: "plain-1", Source: "/shop/python", SpecVersion: "1.0", Type: "order.placed.v1",
		Subject: "ORDER-7", Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		DataContentType: "application/json", CorrelationID: "ORDER-7",
		Data: json.RawMessage(`{"order":"ORDER-7","total":42.5}`),
	}
	if d.ID != want.ID || d.Type != want.Type || d.Attempt != 1 {
		t.Errorf("delivery id %q type %q attempt %d; want %q %q 1", d.ID, d.Type, d.Attempt, want.ID, want.Type)
	}
	if !got.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", got.Time, want.Time)
	}
	got.Time = want.Time
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("received\n%s\nwant\n%s", gj, wj)
	}

	// The other way: Baton publishes, a plain client reads binary mode.
	raw, err := js.CreateOrUpdateConsumer(t.Context(), b.Stream(), jetstream.ConsumerConfig{
		Durable: "plain-reader", FilterSubject: ns + ".ev.payment.processed.v1",
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	pay := baton.Event{ID: "pay-1", Source: "baton", SpecVersion: baton.SpecVersion, Type: "payment.processed.v1",
		DataContentType: "application/json", Data: json.RawMessage(`{"ok":true}`)}
	if err := b.Publish(t.Context(), bus.Message{Event: pay, Meta: map[string]string{bus.MetaRun: "r-1"}}); err != nil {
		t.Fatal(err)
	}
	m, err := raw.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("plain read: %v", err)
	}
	h := m.Headers()
	if h.Get("ce-id") != "pay-1" || h.Get("ce-type") != "payment.processed.v1" || h.Get("content-type") != "application/json" {
		t.Errorf("headers %v; want ce-id pay-1, ce-type payment.processed.v1, content-type application/json", h)
	}
	if got := h["baton-run"]; len(got) != 1 || got[0] != "r-1" {
		t.Errorf("header baton-run %q; want the metadata r-1 beside the attributes", got)
	}
	if string(m.Data()) != `{"ok":true}` {
		t.Errorf("body %s; want the data alone", m.Data())
	}
	m.Ack()

	// What a plain client sends that is not an event reaches the consumer
	// with the reason, its id and type, for the runtime to dead-letter.
	for _, c := range []struct{ id, drop, body, reason string }{
		{"plain-badjson", "", `{"total":`, "not valid JSON"},
		{"plain-nosource", "ce-source", `{}`, `missing required attribute "source"`},
	} {
		bad := &nats.Msg{Subject: ns + ".ev.order.placed.v1", Header: nats.Header{}, Data: []byte(c.body)}
		for k, v := range msg.Header {
			if k != c.drop {
				bad.Header[k] = v
			}
		}
		bad.Header["ce-id"] = []string{c.id}
		if _, err := js.PublishMsg(t.Context(), bad); err != nil {
			t.Fatalf("plain publish: %v", err)
		}
		d := receiveOne(t, sub, c.id)
		if d.ID != c.id || d.Type != "order.placed.v1" || d.CorrelationID != "ORDER-7" || d.Err == nil ||
			!strings.Contains(d.Err.Error(), c.reason) || len(d.Raw) == 0 {
			t.Errorf("%s: delivered %q type %q correlation %q error %v raw %q; want its id, type and correlation, an error saying %q, and its bytes",
				c.id, d.ID, d.Type, d.CorrelationID, d.Err, d.Raw, c.reason)
		}
	}
}

// TestRawBody: a body that is not an event travels and comes back unchanged,
// for the consumer to dead-letter.
func TestRawBody(t *testing.T) {
	b := openBus(t)
	sub, err := b.Subscribe(t.Context(), "raw", []string{"junk.>"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	sent := bus.Message{Event: baton.Event{Type: "junk.sent.v1", ID: "j-1"}, Raw: []byte(`{"not": "an event"`)}
	if err := b.Publish(t.Context(), sent); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != sent.Type || d.ID != sent.ID || string(d.Raw) != string(sent.Raw) || d.Err == nil {
		t.Errorf("received %q %q %q (error %v); want it as sent, %q %q %q, with the error of reading it", d.Type, d.ID, d.Raw, d.Err, sent.Type, sent.ID, sent.Raw)
	}
	if err := sub.Ack(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// TestUnreachable: Open names the server it could not reach.
func TestUnreachable(t *testing.T) {
	_, err := natsbus.Open(t.Context(), natsbus.Config{URL: "nats://127.0.0.1:1"})
	if err == nil {
		t.Fatal("Open succeeded against a port where nothing listens")
	}
	if !strings.Contains(err.Error(), "cannot reach NATS at nats://127.0.0.1:1") {
		t.Errorf("error %q does not say which server could not be reached", err)
	}
	if baton.ErrorCode(err) != baton.Unavailable {
		t.Errorf("error code %q, want %q", baton.ErrorCode(err), baton.Unavailable)
	}
}

func receiveOne(t *testing.T, sub bus.Subscription, what string) bus.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := sub.Receive(ctx)
	if err != nil {
		t.Fatalf("expected %s: %v", what, err)
	}
	if err := sub.Ack(t.Context(), d); err != nil {
		t.Fatalf("ack %s: %v", d.ID, err)
	}
	return d
}

func expectNothing(t *testing.T, sub bus.Subscription, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if d, err := sub.Receive(ctx); err == nil {
		t.Errorf("received %s %q; expected nothing: %s", d.Type, d.ID, why)
	}
}

func eventMessage(t *testing.T, typ, id string) bus.Message {
	t.Helper()
	return bus.Message{Event: baton.Event{ID: id, Source: "test", SpecVersion: baton.SpecVersion, Type: typ, Data: json.RawMessage(`{}`)}}
}

// TestPublishTo: a message sent to one group reaches that group only, even
// one that has not subscribed yet, and is not taken for a duplicate of the
// same event published before (a replay).
func TestPublishTo(t *testing.T) {
	b := openBus(t)
	m := eventMessage(t, "order.placed.v1", "o-1")
	// Sent before the group first subscribes: it waits.
	if err := b.PublishTo(t.Context(), "coord.inator", m); err != nil {
		t.Fatal(err)
	}
	target, err := b.Subscribe(t.Context(), "coord.inator", []string{"flow.>"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	other, err := b.Subscribe(t.Context(), "billing", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if d := receiveOne(t, target, "the message sent to the group before it subscribed"); d.ID != m.ID || d.Type != m.Type {
		t.Errorf("got %s %q; want %s %q", d.Type, d.ID, m.Type, m.ID)
	}

	if err := b.Publish(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if d := receiveOne(t, other, "the published event"); d.ID != m.ID {
		t.Errorf("got %q; want %q", d.ID, m.ID)
	}
	// The replay of the same event to billing, within the duplicate window.
	if err := b.PublishTo(t.Context(), "billing", m); err != nil {
		t.Fatal(err)
	}
	if d := receiveOne(t, other, "the replayed event"); d.ID != m.ID {
		t.Errorf("got %q; want %q", d.ID, m.ID)
	}
	expectNothing(t, target, "the publish and the replay were not for this group")
	// Publishing the same event again is a duplicate the stream drops.
	if err := b.Publish(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, other, "the second publish of o-1 was within the duplicate window")
}

// TestChangePatterns: subscribing a group again with other patterns moves
// its filter.
func TestChangePatterns(t *testing.T) {
	b := openBus(t)
	s, err := b.Subscribe(t.Context(), "shipping", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = b.Subscribe(t.Context(), "shipping", []string{"order.paid.v1", "order.cancelled.v1"})
	if err != nil {
		t.Fatalf("subscribe with other patterns: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := b.Publish(t.Context(), eventMessage(t, "order.placed.v1", "p-1"), eventMessage(t, "order.paid.v1", "p-2"),
		eventMessage(t, "order.shipped.v1", "p-3"), eventMessage(t, "order.cancelled.v1", "p-4")); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 {
		got[receiveOne(t, s, "the types of the new patterns").ID] = true
	}
	if !got["p-2"] || !got["p-4"] {
		t.Errorf("received %v; want p-2 and p-4", got)
	}
	expectNothing(t, s, "order.placed.v1 and order.shipped.v1 match none of the new patterns")
}

// A message held longer than AckWait, by a slow handler, is kept alive by
// its subscription: JetStream does not redeliver it meanwhile.
func TestHeldMessageNotRedelivered(t *testing.T) {
	const ackWait = time.Second
	b := openBusWith(t, natsbus.Config{AckWait: ackWait})
	sub, err := b.Subscribe(t.Context(), "slow", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	if err := b.Publish(t.Context(), eventMessage(t, "order.placed.v1", "o-slow")); err != nil {
		t.Fatal(err)
	}
	first, cancelFirst := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelFirst()
	d, err := sub.Receive(first)
	if err != nil {
		t.Fatalf("expected the event: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*ackWait)
	defer cancel()
	if again, err := sub.Receive(ctx); err == nil {
		t.Fatalf("%s delivered again (attempt %d) while the first delivery was held; want it kept alive", again.ID, again.Attempt)
	}
	if err := sub.Ack(t.Context(), d); err != nil {
		t.Fatalf("ack after holding the message for %v: %v", 4*ackWait, err)
	}
}

// TestPublishAsyncWindows: messages past the publish window (512) are sent
// by PublishAsync a window at a time, and all of them arrive once the
// confirm returns; a confirm cut short by its context can be called again.
func TestPublishAsyncWindows(t *testing.T) {
	b := openBus(t)
	sub, err := b.Subscribe(t.Context(), "billing", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	msgs := make([]bus.Message, 1200)
	for i := range msgs {
		msgs[i] = eventMessage(t, "order.placed.v1", fmt.Sprintf("o-%d", i))
	}
	confirm := b.PublishAsync(t.Context(), "", msgs...)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := confirm(cancelled); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("confirm with a cancelled context: %v; want nil or context.Canceled", err)
	}
	if err := confirm(t.Context()); err != nil {
		t.Fatalf("confirm again: %v", err)
	}
	seen := make(map[string]bool, len(msgs))
	for range msgs {
		d := receiveOne(t, sub, "one of the messages published")
		if seen[d.ID] {
			t.Fatalf("%s delivered twice", d.ID)
		}
		seen[d.ID] = true
	}
	expectNothing(t, sub, "every message was delivered once")

	b.Close()
	if err := b.PublishAsync(t.Context(), "billing", msgs[0])(t.Context()); baton.ErrorCode(err) != baton.Unavailable {
		t.Errorf("PublishAsync after Close: %v; want an unavailable error", err)
	}
}
