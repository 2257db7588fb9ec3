package rabbitbus

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
)

// DeleteNamespace deletes the exchange and the queues of the groups named,
// delay and quorum dead-letter queues included, and leaves nothing behind.
func TestDeleteNamespace(t *testing.T) {
	needBroker(t)
	ns := uniqueName("batontest-")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	groups := []string{"payment", "audit"}
	t.Cleanup(func() { DeleteNamespace(context.Background(), Config{URL: brokerURL(), Namespace: ns}, groups) })
	b, err := Open(ctx, Config{URL: brokerURL(), Namespace: ns, QueueTypes: map[string]string{"audit": "quorum"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		sub, err := b.Subscribe(ctx, g, []string{"order.>"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, bus.Message{Event: baton.Event{Type: "order.placed.v1", ID: "e-" + g, Source: "test", SpecVersion: baton.SpecVersion, Data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
		d, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// A delay queue, holding the message for a minute.
		if err := sub.Nack(ctx, d, time.Minute); err != nil {
			t.Fatal(err)
		}
		sub.Close()
	}
	b.Close()

	deleted, err := DeleteNamespace(ctx, Config{URL: brokerURL(), Namespace: ns}, groups)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ns + ".payment", ns + ".payment.bindings", ns + ".payment.delay.1m",
		ns + ".audit", ns + ".audit.dead", ns + ".audit.delay.1m", ns} {
		if !slices.Contains(deleted, want) {
			t.Errorf("deleted %v; want %s among them", deleted, want)
		}
	}
	conn, err := amqp.Dial(brokerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gone := func(what string, declare func(*amqp.Channel) error) {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		var ae *amqp.Error
		if err := declare(ch); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
			t.Errorf("%s: passive declare says %v; want not found", what, err)
		}
	}
	for _, q := range deleted[:len(deleted)-1] {
		gone("queue "+q, func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			return err
		})
	}
	gone("exchange "+ns, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(ns, amqp.ExchangeTopic, true, false, false, false, nil)
	})

	// Again: nothing is left to delete.
	if again, err := DeleteNamespace(ctx, Config{URL: brokerURL(), Namespace: ns}, groups); err != nil || len(again) != 0 {
		t.Errorf("second delete: %v, %v; want nothing deleted", again, err)
	}
}
