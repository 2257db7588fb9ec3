package rabbitbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
)

// Subscribe declares the group's queue, binds it to patterns (unbinding
// the keys a previous Subscribe of the group bound and these patterns no
// longer match), and starts a consumer on a channel of its own with
// Config.Prefetch un-acked deliveries at most. The consumer is restored
// after a lost connection or channel.
func (b *Bus) Subscribe(ctx context.Context, group string, patterns []string) (bus.Subscription, error) {
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	if len(patterns) == 0 {
		return nil, baton.Errorf(baton.Invalid, "subscribe", "group %s: no type patterns", group)
	}
	keys := make([]string, 0, len(patterns))
	for _, p := range patterns {
		k, err := bindingKey(p)
		if err != nil {
			return nil, baton.Errorf(baton.Invalid, "subscribe", "group %s: %w", group, err)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	select {
	case <-b.done:
		return nil, errClosed
	default:
	}
	if err := b.declareGroup(ctx, group, keys, true); err != nil {
		return nil, err
	}
	s := &subscription{
		b:       b,
		group:   group,
		queue:   b.queue(group),
		keys:    keys,
		stopped: make(chan struct{}),
		changed: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	b.mu.Lock()
	b.subs[s] = true
	b.mu.Unlock()
	first := make(chan error, 1)
	go s.run(first)
	select {
	case err := <-first:
		if err != nil {
			s.Close()
			return nil, baton.Errorf(baton.Unavailable, "subscribe "+group, "start a consumer: %w", err)
		}
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	return s, nil
}

var errSubClosed = baton.Errorf(baton.Unavailable, "rabbitbus", "subscription is closed")

type subscription struct {
	b            *Bus
	group, queue string
	keys         []string
	ctx          context.Context // ends run; cancelled by Close
	cancel       context.CancelFunc
	stopped      chan struct{} // closed when run returns

	mu         sync.Mutex
	ch         *amqp.Channel // the consumer's channel; nil while there is none
	tag        string
	deliveries <-chan amqp.Delivery
	changed    chan struct{}   // closed and replaced when ch changes
	gen        uint64          // counts channels
	pending    map[uint64]bool // delivery tags handed out on ch and not settled
	acks       acks            // settled deliveries on ch, acknowledged in batches
	closed     bool
}

// acks batches the acknowledgements of one channel. Tags on a channel count
// up from 1, and an ack with multiple=true acknowledges every tag up to its
// own, so once every delivery up to a tag is settled one frame acknowledges
// them all: the broker and the client then handle one ack frame where they
// handled up to every (see flush).
type acks struct {
	sent    uint64          // every tag up to sent is acknowledged
	done    uint64          // every tag up to done is settled
	settled map[uint64]bool // settled tags above done
	every   uint64          // how far done runs ahead of sent at most
}

// settle records tag as settled and reports whether an ack is due: when
// done has run every tags ahead of sent, or nothing handed out is left
// unsettled (nothing would move done on soon).
func (a *acks) settle(tag uint64, unsettled int) bool {
	if tag != a.done+1 {
		a.settled[tag] = true
		return false
	}
	a.done = tag
	for a.settled[a.done+1] {
		delete(a.settled, a.done+1)
		a.done++
	}
	return a.done-a.sent >= a.every || unsettled == 0
}

// ref is a Delivery's handle: the AMQP delivery and the channel it came on.
type ref struct {
	s       *subscription
	gen     uint64
	ch      *amqp.Channel
	d       amqp.Delivery
	typ     string
	attempt int
}

// run keeps a consumer going: on a lost channel or connection it waits for
// the connection to come back, declares the group again (the broker may
// have lost it) and consumes again. The first attempt's outcome goes to
// first.
func (s *subscription) run(first chan<- error) {
	defer close(s.stopped)
	for attempt, restore := 0, false; ; restore = true {
		conn, _, err := s.b.sub.wait(s.ctx)
		if err != nil {
			if first != nil {
				first <- err
			}
			return
		}
		if restore {
			err = s.b.declareGroup(s.ctx, s.group, s.keys, false)
		}
		var ch *amqp.Channel
		var deliveries <-chan amqp.Delivery
		tag := consumerTag(s.group)
		if err == nil {
			ch, deliveries, err = s.consume(conn, tag)
		}
		if first != nil {
			first <- err
			first = nil
			if err != nil {
				return
			}
		}
		if err != nil {
			s.b.log.Warn("restore consumer failed", "group", s.group, "attempt", attempt+1, "err", err)
			select {
			case <-time.After(backoff(attempt)):
			case <-s.ctx.Done():
				return
			}
			attempt++
			continue
		}
		attempt = 0
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		if !s.install(ch, tag, deliveries) {
			ch.Close()
			return
		}
		if restore {
			s.b.log.Info("consumer restored", "group", s.group)
		}
		select {
		case reason := <-closed:
			s.uninstall(ch)
			if s.ctx.Err() != nil {
				return
			}
			s.b.log.Warn("consumer channel closed; restoring it", "group", s.group, "reason", reason)
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *subscription) consume(conn *amqp.Connection, tag string) (*amqp.Channel, <-chan amqp.Delivery, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, err
	}
	if err := ch.Qos(s.b.cfg.Prefetch, 0, false); err != nil {
		ch.Close()
		return nil, nil, err
	}
	deliveries, err := ch.Consume(s.queue, tag, false, false, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, nil, err
	}
	return ch, deliveries, nil
}

func consumerTag(group string) string {
	var r [6]byte
	rand.Read(r[:])
	return "baton." + group + "." + hex.EncodeToString(r[:])
}

func (s *subscription) install(ch *amqp.Channel, tag string, deliveries <-chan amqp.Delivery) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.ch, s.tag, s.deliveries = ch, tag, deliveries
	s.pending = make(map[uint64]bool)
	s.acks = acks{settled: make(map[uint64]bool), every: ackEvery(s.b.cfg.Prefetch)}
	s.gen++
	close(s.changed)
	s.changed = make(chan struct{})
	return true
}

// uninstall forgets ch: what it handed out the broker hands back by itself.
func (s *subscription) uninstall(ch *amqp.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != ch {
		return
	}
	s.ch, s.deliveries, s.pending, s.acks = nil, nil, nil, acks{}
	s.gen++
	close(s.changed)
	s.changed = make(chan struct{})
}

// Receive hands out the next delivery, rebuilt in structured mode.
func (s *subscription) Receive(ctx context.Context) (bus.Delivery, error) {
	for {
		if err := ctx.Err(); err != nil {
			return bus.Delivery{}, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return bus.Delivery{}, errSubClosed
		}
		deliveries, changed, gen, ch := s.deliveries, s.changed, s.gen, s.ch
		s.mu.Unlock()
		select {
		case d, ok := <-deliveries:
			if !ok {
				// The channel closed; run installs the next one.
				select {
				case <-changed:
				case <-ctx.Done():
					return bus.Delivery{}, ctx.Err()
				}
				continue
			}
			if dl, ok := s.handOut(ctx, &d, gen, ch); ok {
				return dl, nil
			}
		case <-changed:
		case <-ctx.Done():
			return bus.Delivery{}, ctx.Err()
		}
	}
}

// handOut records d as handed out, unless its channel is gone already (the
// broker hands it back) or it is not due yet (it goes round the longest
// delay bucket again).
func (s *subscription) handOut(ctx context.Context, d *amqp.Delivery, gen uint64, ch *amqp.Channel) (bus.Delivery, bool) {
	s.mu.Lock()
	if s.gen != gen || s.closed {
		s.mu.Unlock()
		return bus.Delivery{}, false
	}
	s.pending[d.DeliveryTag] = true
	s.mu.Unlock()
	dl := decode(d, s.b.cfg.Namespace)
	r := &ref{s: s, gen: gen, ch: ch, d: *d, typ: dl.Type, attempt: attempt(d.Headers)}
	dl.Attempt, dl.Ref = r.attempt, r
	if due, ok := d.Headers[headerDue].(int64); ok {
		if wait := time.Until(time.UnixMilli(due)); wait > 0 {
			if err := s.delay(ctx, r, r.attempt, wait); err != nil {
				s.b.log.Warn("could not hold back a message that is not due yet; handing it out early", "group", s.group, "event", dl.ID, "err", err)
				return dl, true
			}
			return bus.Delivery{}, false
		}
	}
	return dl, true
}

func (s *subscription) ref(d bus.Delivery) (*ref, error) {
	r, ok := d.Ref.(*ref)
	if !ok || r.s != s {
		return nil, baton.Errorf(baton.Invalid, "settle", "delivery %q is not from this subscription", d.ID)
	}
	return r, nil
}

// settle forgets r as pending; false when it was settled already or its
// channel is gone (the broker then hands it back by itself).
func (s *subscription) settle(r *ref, ack bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tag := r.d.DeliveryTag
	if s.closed || s.gen != r.gen || !s.pending[tag] || r.ch.IsClosed() {
		return s.handedBack(r)
	}
	if !ack {
		return nil
	}
	delete(s.pending, tag)
	if !s.acks.settle(tag, len(s.pending)) {
		return nil
	}
	if err := s.flush(r.ch); err != nil {
		if errors.Is(err, amqp.ErrClosed) {
			return s.handedBack(r)
		}
		return baton.Errorf(baton.Unavailable, "ack", "message %s of group %s: %w", r.d.MessageId, s.group, err)
	}
	return nil
}

// ackEvery is how many settled deliveries share one ack frame at most: 16,
// or a quarter of the prefetch when that is smaller, so that the broker
// gets its credit back well before a consumer runs dry.
func ackEvery(prefetch int) uint64 {
	return uint64(max(1, min(16, prefetch/4)))
}

// flush acknowledges, in one frame, every delivery up to the last of the
// unbroken run of settled ones. A delivery settled after one still in
// hand waits for it: a crash in between redelivers it, and the group's
// inbox skips the copy, as with any ack lost on the way.
func (s *subscription) flush(ch *amqp.Channel) error {
	if s.acks.done == s.acks.sent {
		return nil
	}
	if err := ch.Ack(s.acks.done, true); err != nil {
		return err
	}
	s.acks.sent = s.acks.done
	return nil
}

func (s *subscription) handedBack(r *ref) error {
	return baton.Errorf(baton.Conflict, "settle",
		"message %s of group %s was already settled or handed back (its subscription or channel closed); if it was not settled it will be redelivered",
		r.d.MessageId, s.group)
}

// Ack acknowledges d on its channel.
func (s *subscription) Ack(ctx context.Context, d bus.Delivery) error {
	r, err := s.ref(d)
	if err != nil {
		return err
	}
	return s.settle(r, true)
}

// Nack publishes a copy of d with the next attempt number, to the group's
// queue or, after a delay, to the delay queue of the bucket the delay rounds
// up to; once the broker has confirmed the copy, it acks d.
func (s *subscription) Nack(ctx context.Context, d bus.Delivery, delay time.Duration) error {
	r, err := s.ref(d)
	if err != nil {
		return err
	}
	if err := s.settle(r, false); err != nil {
		return err
	}
	return s.delay(ctx, r, r.attempt+1, delay)
}

// delay sends a copy of r numbered attempt back to the group after delay,
// then acks r.
func (s *subscription) delay(ctx context.Context, r *ref, attempt int, delay time.Duration) error {
	pub := republish(&r.d, r.typ, attempt)
	key := s.queue
	if delay > 0 {
		i := bucket(delay)
		if delay > buckets[i].d {
			pub.Headers[headerDue] = time.Now().Add(delay).UnixMilli()
		}
		name, err := s.b.delayQueue(ctx, s.group, i)
		if err != nil {
			return err
		}
		key = name
	} else if err := s.b.declareGroupQueue(ctx, s.group); err != nil {
		return err
	}
	if err := s.b.send(ctx, "nack in "+s.group, []outgoing{{key: key, mandatory: true, pub: pub}}); err != nil {
		return err
	}
	return s.settle(r, true)
}

// Close cancels the consumer, hands back (nack with requeue) every delivery
// handed out and not settled, and closes the channel, which hands back the
// prefetched ones too; other consumers of the group get them.
func (s *subscription) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ch, tag, pending := s.ch, s.tag, s.pending
	if ch != nil {
		// What was settled is acknowledged before the rest goes back.
		s.flush(ch)
		for t := range s.acks.settled {
			ch.Ack(t, false)
		}
	}
	s.ch, s.deliveries, s.pending, s.acks = nil, nil, nil, acks{}
	close(s.changed)
	s.mu.Unlock()
	s.cancel()
	if ch != nil {
		ch.Cancel(tag, false)
		for t := range pending {
			ch.Nack(t, false, true)
		}
		ch.Close()
	}
	<-s.stopped
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	return nil
}
