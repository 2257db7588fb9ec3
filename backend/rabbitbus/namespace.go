package rabbitbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
)

// DeleteNamespace deletes the exchange of cfg.Namespace and every queue a
// Bus declares for the given consumer groups: the group's queue, its
// bindings record, its delay queues and its dead-letter queue, with the
// messages they hold. It returns the names of those that existed.
//
// AMQP cannot list a broker's queues, so the caller names the groups (the
// journal and the dead letters of the namespace's store know those that
// handled an event); a queue of a group not named is left, and the
// exchange's deletion unbinds it. Queues in use by a consumer are deleted
// too: stop the namespace's processes first.
func DeleteNamespace(ctx context.Context, cfg Config, groups []string) ([]string, error) {
	const op = "rabbitbus delete namespace"
	if cfg.URL == "" {
		return nil, baton.Errorf(baton.Invalid, op, "no broker URL given (Config.URL, such as amqp://guest:guest@127.0.0.1:5672/)")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "baton"
	}
	conn, err := amqp.DialConfig(cfg.URL, amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: 10 * time.Second}
			return d.DialContext(ctx, network, addr)
		},
	})
	if err != nil {
		return nil, baton.Errorf(baton.Unavailable, op, "cannot reach RabbitMQ at %s: %w", redact(cfg.URL), err)
	}
	defer conn.Close()

	var names []string
	for _, g := range groups {
		q := cfg.Namespace + "." + g // as Bus.queue names it
		names = append(names, q, q+".bindings", q+".dead")
		for _, bk := range buckets {
			names = append(names, q+".delay."+bk.name)
		}
	}
	var deleted []string
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return deleted, baton.Errorf(baton.Unavailable, op, "%w", err)
		}
		// A passive declare of a queue that does not exist closes the
		// channel: one channel per name.
		gone, err := deleteIfThere(conn, func(ch *amqp.Channel) error {
			if _, err := ch.QueueDeclarePassive(name, true, false, false, false, nil); err != nil {
				return err
			}
			_, err := ch.QueueDelete(name, false, false, false)
			return err
		})
		if err != nil {
			return deleted, baton.Errorf(baton.Unavailable, op, "delete queue %s: %w", name, err)
		}
		if gone {
			deleted = append(deleted, name)
		}
	}
	gone, err := deleteIfThere(conn, func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclarePassive(cfg.Namespace, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return err
		}
		return ch.ExchangeDelete(cfg.Namespace, false, false)
	})
	if err != nil {
		return deleted, baton.Errorf(baton.Unavailable, op, "delete exchange %s: %w", cfg.Namespace, err)
	}
	if gone {
		deleted = append(deleted, cfg.Namespace)
	}
	return deleted, nil
}

// deleteIfThere runs del on a channel of its own and reports whether it
// deleted something: false when the broker says the thing is not there.
func deleteIfThere(conn *amqp.Connection, del func(*amqp.Channel) error) (bool, error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	err = del(ch)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return false, nil
	}
	return err == nil, err
}
