package rabbitbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
)

// outgoing is one message on its way to the broker.
type outgoing struct {
	exchange, key string
	// mandatory is set for messages sent to a queue by name: the broker
	// returns them if the queue is missing, and the returns are logged.
	mandatory bool
	pub       amqp.Publishing
}

// Publish sends msgs to the namespace's exchange, routed by type, and
// returns once the broker has confirmed every one of them (persistent
// messages in durable queues are confirmed once written to disk). Through an
// outage it keeps trying for up to Config.PublishTimeout.
func (b *Bus) Publish(ctx context.Context, msgs ...bus.Message) error {
	return b.PublishAsync(ctx, "", msgs...)(ctx)
}

// PublishTo sends msgs to one group's queue only, through the default
// exchange, declaring the queue if it does not exist yet (so that what is
// sent to a group that has not subscribed yet waits for it).
func (b *Bus) PublishTo(ctx context.Context, group string, msgs ...bus.Message) error {
	return b.PublishAsync(ctx, group, msgs...)(ctx)
}

// PublishAsync sends msgs as Publish does or, when group is set, as
// PublishTo does, without waiting for the broker's confirms; the function
// it returns waits for them, and sends again what the broker did not take.
func (b *Bus) PublishAsync(ctx context.Context, group string, msgs ...bus.Message) func(context.Context) error {
	if len(msgs) == 0 {
		return func(context.Context) error { return nil }
	}
	out := make([]outgoing, len(msgs))
	op := "publish " + msgs[0].Type
	if group == "" {
		for i, m := range msgs {
			if m.Type == "" {
				return failed(baton.Errorf(baton.Invalid, "publish", "message %q has no type to route by", m.ID))
			}
			out[i] = outgoing{exchange: b.cfg.Namespace, key: m.Type, pub: encode(m)}
		}
	} else {
		if err := checkGroup(group); err != nil {
			return failed(err)
		}
		if err := b.declareGroupQueue(ctx, group); err != nil {
			return failed(err)
		}
		q := b.queue(group)
		for i, m := range msgs {
			out[i] = outgoing{key: q, mandatory: true, pub: encode(m)}
		}
		op = "publish to " + group
	}
	return b.sendAsync(ctx, op, out)
}

func failed(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

// send publishes out and waits for the broker to confirm all of them.
func (b *Bus) send(ctx context.Context, op string, out []outgoing) error {
	return b.sendAsync(ctx, op, out)(ctx)
}

// sendAsync publishes out on the long-lived confirm channel, all at once,
// and returns a function that waits for their confirms; what the broker
// nacks or what a lost connection leaves unconfirmed is sent again, until
// the publish timeout, counted from now. A message sent twice this way is a
// duplicate the consumers' inbox absorbs.
func (b *Bus) sendAsync(ctx context.Context, op string, out []outgoing) func(context.Context) error {
	deadline := time.Now().Add(b.cfg.PublishTimeout)
	first := b.sendOnce(ctx, deadline, out)
	return func(parent context.Context) error {
		// Most often the confirms are back by the time the caller waits
		// for them (the runtime waits once it has handled the next
		// deliveries): then nothing needs a deadline.
		if first.confirmed() {
			return nil
		}
		ctx, cancel := context.WithDeadline(parent, deadline)
		defer cancel()
		s := first
		var lastErr error
		for attempt := 0; ; attempt++ {
			again, err := s.unconfirmed(ctx)
			if s.err != nil {
				lastErr = s.err
			}
			if err != nil {
				return b.sendError(parent, op, len(s.pending), len(out), err, lastErr)
			}
			if len(again) == 0 {
				return nil
			}
			select {
			case <-time.After(backoff(attempt)):
			case <-ctx.Done():
				return b.sendError(parent, op, len(again), len(out), ctx.Err(), lastErr)
			case <-b.done:
				return errClosed
			}
			s = b.sendOnce(ctx, deadline, again)
		}
	}
}

// sending is one try at publishing pending.
type sending struct {
	pending []outgoing
	confs   []*amqp.DeferredConfirmation // of pending[:len(confs)]
	err     error                        // why the rest were not sent, or the broker's refusal
}

// sendOnce publishes pending on the confirm channel without waiting; it
// waits for a channel until deadline at most.
func (b *Bus) sendOnce(ctx context.Context, deadline time.Time, pending []outgoing) sending {
	s := sending{pending: pending}
	ch := b.livePubChannel()
	if ch == nil {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		var err error
		if ch, err = b.pubChannel(ctx); err != nil {
			s.err = err
			return s
		}
	}
	s.confs = make([]*amqp.DeferredConfirmation, 0, len(pending))
	for _, o := range pending {
		dc, err := ch.PublishWithDeferredConfirm(o.exchange, o.key, o.mandatory, false, o.pub)
		if err != nil {
			s.err = err
			break
		}
		s.confs = append(s.confs, dc)
	}
	return s
}

// confirmed reports, without waiting, whether every message of s was sent
// and the broker has confirmed it.
func (s *sending) confirmed() bool {
	if s.err != nil || len(s.confs) != len(s.pending) {
		return false
	}
	for _, dc := range s.confs {
		select {
		case <-dc.Done():
			if !dc.Acked() {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// unconfirmed waits for the confirms of s and returns what must be sent
// again: what was not sent, what the broker nacked and what a closed
// channel left unconfirmed.
func (s *sending) unconfirmed(ctx context.Context) ([]outgoing, error) {
	var again []outgoing
	for i, dc := range s.confs {
		select {
		case <-dc.Done():
			if !dc.Acked() {
				again = append(again, s.pending[i])
				s.err = errors.New("the broker did not confirm a message (nack, or the channel closed)")
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return append(again, s.pending[len(s.confs):]...), nil
}

func (b *Bus) sendError(parent context.Context, op string, unconfirmed, total int, err, last error) error {
	if errors.Is(err, errClosed) {
		return err
	}
	if parent.Err() != nil {
		return fmt.Errorf("%s: %d of %d messages not confirmed by RabbitMQ: %w", op, unconfirmed, total, parent.Err())
	}
	if last == nil {
		last = err
	}
	return baton.Errorf(baton.Unavailable, op,
		"RabbitMQ at %s did not confirm %d of %d messages within the publish timeout (%v): %v",
		b.redacted, unconfirmed, total, b.cfg.PublishTimeout, last)
}

// livePubChannel returns the long-lived confirm channel if it is open on
// the current connection, and nil otherwise, without waiting.
func (b *Bus) livePubChannel() *amqp.Channel {
	b.pub.mu.Lock()
	conn := b.pub.conn
	b.pub.mu.Unlock()
	if conn == nil || conn.IsClosed() {
		return nil
	}
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if b.pch != nil && !b.pch.IsClosed() && b.pchConn == conn {
		return b.pch
	}
	return nil
}

// pubChannel returns the long-lived confirm channel, opening it on the
// current connection when there is none or the one there was has closed.
func (b *Bus) pubChannel(ctx context.Context) (*amqp.Channel, error) {
	for {
		conn, _, err := b.pub.wait(ctx)
		if err != nil {
			return nil, err
		}
		b.pmu.Lock()
		if b.pch != nil && !b.pch.IsClosed() && b.pchConn == conn {
			ch := b.pch
			b.pmu.Unlock()
			return ch, nil
		}
		ch, err := openConfirmChannel(conn)
		if err == nil {
			b.pch, b.pchConn = ch, conn
			go b.logReturns(ch.NotifyReturn(make(chan amqp.Return, 16)))
		}
		b.pmu.Unlock()
		if err == nil {
			return ch, nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("open a channel: %w (%w)", err, ctx.Err())
		}
	}
}

func openConfirmChannel(conn *amqp.Connection) (*amqp.Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, err
	}
	return ch, nil
}

// logReturns reports messages the broker could not route to the queue they
// were sent to by name; it ends when their channel closes.
func (b *Bus) logReturns(returns <-chan amqp.Return) {
	for r := range returns {
		b.log.Error("RabbitMQ returned a message sent to a queue that does not exist",
			"queue", r.RoutingKey, "type", r.Type, "event", r.MessageId, "reply", r.ReplyText)
	}
}
