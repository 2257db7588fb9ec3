package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish sends msgs to every group whose patterns match their types and
// returns once JetStream has stored every one.
func (b *Bus) Publish(ctx context.Context, msgs ...bus.Message) error {
	return b.PublishAsync(ctx, "", msgs...)(ctx)
}

// PublishTo sends msgs to one consumer group only, declaring the group's
// directed consumer if needed so that they wait for it. They carry no
// Nats-Msg-Id: this is how a dead letter is replayed, and a replay must not
// be taken for a duplicate of the original.
func (b *Bus) PublishTo(ctx context.Context, group string, msgs ...bus.Message) error {
	if group == "" {
		// PublishAsync would take it for Publish.
		return baton.Errorf(baton.Invalid, "natsbus publish to group", "no group given")
	}
	return b.PublishAsync(ctx, group, msgs...)(ctx)
}

// PublishAsync sends msgs as Publish does or, when group is set, as
// PublishTo does, and returns a function that waits for JetStream's acks.
// Beyond publishWindow messages, it waits for the acks of each full window
// before it sends the next, so it blocks while it sends the rest; the acks
// of the last window are left to the function.
func (b *Bus) PublishAsync(ctx context.Context, group string, msgs ...bus.Message) func(context.Context) error {
	if group == "" {
		const op = "natsbus publish"
		out := make([]*nats.Msg, len(msgs))
		for i, m := range msgs {
			if err := checkType(op, m.Type); err != nil {
				return failed(err)
			}
			out[i] = encode(b.eventSubject(m.Type), m)
			if m.ID != "" {
				out[i].Header.Set(jetstream.MsgIDHeader, m.ID)
			}
		}
		return b.sendAsync(ctx, op, out)
	}
	const op = "natsbus publish to group"
	if len(msgs) == 0 {
		return confirmed
	}
	out := make([]*nats.Msg, len(msgs))
	prefix := b.directedPrefix(group)
	for i, m := range msgs {
		if err := checkType(op, m.Type); err != nil {
			return failed(err)
		}
		out[i] = encode(prefix+m.Type, m)
	}
	b.mu.Lock()
	declared, closed := b.directed[group], b.closed
	b.mu.Unlock()
	if closed {
		return failed(errClosed)
	}
	if !declared {
		if _, err := b.declareDirected(ctx, group); err != nil {
			return failed(err)
		}
	}
	return b.sendAsync(ctx, op+" "+group, out)
}

func confirmed(context.Context) error { return nil }

func failed(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

// sendAsync publishes msgs asynchronously, a window at a time, waiting for
// the acks of every window but the last, and returns acks.wait for those.
func (b *Bus) sendAsync(ctx context.Context, op string, msgs []*nats.Msg) func(context.Context) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return failed(errClosed)
	}
	if len(msgs) == 0 {
		return confirmed
	}
	a := &acks{b: b, op: op, futures: make([]jetstream.PubAckFuture, 0, min(len(msgs), publishWindow))}
	for start := 0; start < len(msgs); start += publishWindow {
		if start > 0 {
			if err := a.wait(ctx); err != nil {
				return failed(err)
			}
		}
		for _, m := range msgs[start:min(start+publishWindow, len(msgs))] {
			f, err := b.js.PublishMsgAsync(m)
			for errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				// Other publishers fill the connection's window: wait for
				// ours, then try again.
				if err := a.wait(ctx); err != nil {
					return failed(err)
				}
				if err := ctx.Err(); err != nil {
					return failed(fmt.Errorf("%s: waiting for room to publish %s: %w", op, m.Subject, err))
				}
				f, err = b.js.PublishMsgAsync(m)
			}
			if err != nil {
				return failed(unavailable(op, fmt.Errorf("%s: %w", m.Subject, err)))
			}
			a.futures = append(a.futures, f)
		}
	}
	return a.wait
}

// acks are the futures of messages published asynchronously, waited for in
// the order sent. A wait cut short by its context can be taken up again.
type acks struct {
	b       *Bus
	op      string
	mu      sync.Mutex
	futures []jetstream.PubAckFuture
	acked   int   // futures[:acked] are acked
	err     error // why one of them was not, once known
}

// wait waits until every future is acked and then empties the list, or
// until one is refused, or ctx is done, or the bus is closed (a future may
// then never be answered).
func (a *acks) wait(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.err == nil && a.acked < len(a.futures) {
		f := a.futures[a.acked]
		select {
		case <-f.Ok():
			a.acked++
		case err := <-f.Err():
			a.err = unavailable(a.op, fmt.Errorf("%s: %w", f.Msg().Subject, err))
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for JetStream to ack %s: %w", a.op, f.Msg().Subject, ctx.Err())
		case <-a.b.gone:
			select {
			case <-f.Ok(): // answered as the connection closed
				a.acked++
			default:
				a.err = errClosed
			}
		}
	}
	if a.err != nil {
		return a.err
	}
	a.futures, a.acked = a.futures[:0], 0
	return nil
}
