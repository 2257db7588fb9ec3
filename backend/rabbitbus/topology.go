package rabbitbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
)

// buckets are the delays Nack can wait, each a queue whose messages expire
// into the group's queue. A delay is rounded up to the next bucket, so a
// redelivery never comes sooner than asked; one longer than the last bucket
// goes round the last one until it is due (see headerDue).
var buckets = []struct {
	d    time.Duration
	name string
}{
	{50 * time.Millisecond, "50ms"},
	{100 * time.Millisecond, "100ms"},
	{250 * time.Millisecond, "250ms"},
	{500 * time.Millisecond, "500ms"},
	{time.Second, "1s"},
	{2500 * time.Millisecond, "2.5s"},
	{5 * time.Second, "5s"},
	{10 * time.Second, "10s"},
	{30 * time.Second, "30s"},
	{time.Minute, "1m"},
	{5 * time.Minute, "5m"},
	{15 * time.Minute, "15m"},
	{time.Hour, "1h"},
}

// bucket returns the index of the smallest bucket at least as long as d, or
// the last one.
func bucket(d time.Duration) int {
	for i, b := range buckets {
		if d <= b.d {
			return i
		}
	}
	return len(buckets) - 1
}

// maxNameLen is AMQP's limit on queue names.
const maxNameLen = 255

func checkGroup(group string) error {
	if group == "" || strings.ContainsRune(group, 0) {
		return baton.Errorf(baton.Invalid, "subscribe", "group name %q is empty or contains NUL", group)
	}
	return nil
}

// bindingKey maps a Baton type pattern to an AMQP topic binding key: "*" is
// the same in both, and a final ">" (one or more segments) becomes "*.#"
// (one segment, then zero or more).
func bindingKey(pattern string) (string, error) {
	segs := strings.Split(pattern, ".")
	for i, s := range segs {
		switch {
		case s == "":
			return "", fmt.Errorf("pattern %q has an empty segment", pattern)
		case s == ">":
			if i != len(segs)-1 {
				return "", fmt.Errorf("pattern %q: \">\" may only end a pattern", pattern)
			}
			segs[i] = "*.#"
		case s == "*":
		case strings.ContainsAny(s, "*>#"):
			return "", fmt.Errorf("pattern %q: segment %q mixes a wildcard with other characters", pattern, s)
		}
	}
	return strings.Join(segs, "."), nil
}

// topology runs fn on a short-lived channel of the consuming connection;
// declarations are rare, and an error in one closes only that channel.
func (b *Bus) topology(ctx context.Context, op string, fn func(ch *amqp.Channel, gen uint64) error) error {
	conn, gen, err := b.sub.wait(ctx)
	if err != nil {
		return baton.Errorf(baton.Unavailable, op, "no connection to RabbitMQ at %s: %w", b.redacted, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return baton.Errorf(baton.Unavailable, op, "open a channel: %w", err)
	}
	defer ch.Close()
	if err := fn(ch, gen); err != nil {
		code := baton.Unavailable
		var ae *amqp.Error
		if errors.As(err, &ae) && (ae.Code == amqp.PreconditionFailed || ae.Code == amqp.NotAllowed) {
			code = baton.Conflict
		}
		return baton.Errorf(code, op, "%w", err)
	}
	return nil
}

func checkQueueType(group, typ string) error {
	if typ == "classic" || typ == "quorum" {
		return nil
	}
	if group != "" {
		return baton.Errorf(baton.Invalid, "rabbitbus open", "queue type %q of group %s: want classic or quorum", typ, group)
	}
	return baton.Errorf(baton.Invalid, "rabbitbus open", "queue type %q: want classic or quorum", typ)
}

// quorum reports whether a group's queues are quorum queues.
func (b *Bus) quorum(group string) bool {
	if typ, ok := b.cfg.QueueTypes[group]; ok {
		return typ == "quorum"
	}
	return b.cfg.QueueType == "quorum"
}

// groupArgs are the arguments of a group's queue.
func (b *Bus) groupArgs(group string) amqp.Table {
	if b.quorum(group) {
		return amqp.Table{
			"x-queue-type":              "quorum",
			"x-delivery-limit":          int32(b.cfg.DeliveryLimit),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": b.queue(group) + ".dead",
			"x-dead-letter-strategy":    "at-least-once",
			"x-overflow":                "reject-publish",
		}
	}
	return amqp.Table{"x-queue-mode": "lazy"}
}

func (b *Bus) declareQueue(ch *amqp.Channel, gen uint64, name string, args amqp.Table) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("queue name %q is longer than AMQP's %d bytes", name, maxNameLen)
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", name, err)
	}
	b.mu.Lock()
	b.declared[name] = gen
	b.names[name] = true
	b.mu.Unlock()
	return nil
}

// isDeclared reports whether name was declared on the current consuming
// connection; after a reconnection queues are declared again, in case the
// broker lost them.
func (b *Bus) isDeclared(name string) bool {
	b.sub.mu.Lock()
	gen := b.sub.gen
	b.sub.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok := b.declared[name]
	return ok && g == gen
}

// declareGroupQueues declares a group's queue (and, for quorum queues, its
// dead-letter queue).
func (b *Bus) declareGroupQueues(ch *amqp.Channel, gen uint64, group string) error {
	if b.quorum(group) {
		dead := amqp.Table{"x-queue-type": "quorum"}
		if err := b.declareQueue(ch, gen, b.queue(group)+".dead", dead); err != nil {
			return err
		}
	}
	return b.declareQueue(ch, gen, b.queue(group), b.groupArgs(group))
}

// declareGroupQueue makes sure a group's queue exists, for PublishTo.
func (b *Bus) declareGroupQueue(ctx context.Context, group string) error {
	if b.isDeclared(b.queue(group)) {
		return nil
	}
	return b.topology(ctx, "publish to "+group, func(ch *amqp.Channel, gen uint64) error {
		return b.declareGroupQueues(ch, gen, group)
	})
}

// declareGroup declares a group's queue and binds it to keys. With record,
// it also unbinds the keys the group's previous Subscribe bound and no
// longer wants, and records keys for the next one.
func (b *Bus) declareGroup(ctx context.Context, group string, keys []string, record bool) error {
	q := b.queue(group)
	return b.topology(ctx, "subscribe "+group, func(ch *amqp.Channel, gen uint64) error {
		if err := ch.ExchangeDeclare(b.cfg.Namespace, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", b.cfg.Namespace, err)
		}
		if err := b.declareGroupQueues(ch, gen, group); err != nil {
			return err
		}
		for _, k := range keys {
			if err := ch.QueueBind(q, k, b.cfg.Namespace, false, nil); err != nil {
				return fmt.Errorf("bind %s to %q: %w", q, k, err)
			}
		}
		if !record {
			return nil
		}
		rec := q + ".bindings"
		if err := b.declareQueue(ch, gen, rec, amqp.Table{"x-max-length": int32(1)}); err != nil {
			return err
		}
		old, found, err := ch.Get(rec, false)
		if err != nil {
			return fmt.Errorf("read %s: %w", rec, err)
		}
		if found {
			var was []string
			if json.Unmarshal(old.Body, &was) == nil {
				for _, k := range was {
					if slices.Contains(keys, k) {
						continue
					}
					if err := ch.QueueUnbind(q, k, b.cfg.Namespace, nil); err != nil {
						return fmt.Errorf("unbind %s from %q: %w", q, k, err)
					}
				}
			}
		}
		body, _ := json.Marshal(keys)
		if err := ch.Confirm(false); err != nil {
			return err
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", rec, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: body,
		})
		if err != nil {
			return fmt.Errorf("record bindings in %s: %w", rec, err)
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("record bindings in %s: not confirmed (%v)", rec, err)
		}
		if found {
			return ch.Ack(old.DeliveryTag, false)
		}
		return nil
	})
}

// delayQueue declares, once per connection, the queue that holds a group's
// messages for bucket i and then dead-letters them into the group's queue.
func (b *Bus) delayQueue(ctx context.Context, group string, i int) (string, error) {
	name := b.queue(group) + ".delay." + buckets[i].name
	if b.isDeclared(name) {
		return name, nil
	}
	args := amqp.Table{
		"x-message-ttl":             int32(buckets[i].d / time.Millisecond),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": b.queue(group),
	}
	if b.quorum(group) {
		args["x-queue-type"] = "quorum"
		args["x-dead-letter-strategy"] = "at-least-once"
		args["x-overflow"] = "reject-publish"
	}
	err := b.topology(ctx, "nack in "+group, func(ch *amqp.Channel, gen uint64) error {
		return b.declareQueue(ch, gen, name, args)
	})
	return name, err
}

var _ bus.Backlogger = (*Bus)(nil)

// Backlog is the number of ready messages in group's queue, by a passive
// declare: messages delivered and not yet acked, and those waiting in the
// delay queues for a retry, are not counted.
func (b *Bus) Backlog(ctx context.Context, group string) (int64, error) {
	var n int64
	err := b.topology(ctx, "backlog of "+group, func(ch *amqp.Channel, _ uint64) error {
		q, err := ch.QueueDeclarePassive(b.queue(group), true, false, false, false, nil)
		n = int64(q.Messages)
		return err
	})
	return n, err
}
