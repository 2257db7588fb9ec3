package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// subscription is one consumer of a group: it pulls from the group's two
// durable consumers, a batch at a time, and hands their messages to Receive
// one by one.
//
// Pull requests are short (pullExpiry) because a request still pending on
// the server when a subscription closes would take the messages handed back
// by the close, and hold them until AckWait: Close hands them back only once
// its last requests have ended.
//
// Every message pulled and not yet settled is kept alive: a keeper tells
// JetStream it is in progress every third of AckWait, so AckWait can be
// short (a crashed process's messages come back within it) while a slow
// handler, or a message waiting its turn, is not redelivered meanwhile.
type subscription struct {
	b        *Bus
	group    string
	patterns []string // reduced; the events consumer's filter may be wider

	in   chan jetstream.Msg // from the pullers to Receive
	stop chan struct{}      // closed by Close
	wg   sync.WaitGroup     // the pullers

	mu     sync.Mutex
	out    map[jetstream.Msg]struct{} // pulled, not yet settled
	closed bool
	once   sync.Once
}

var errSubClosed = baton.Errorf(baton.Unavailable, "natsbus receive", "subscription is closed")

func newSubscription(b *Bus, group string, patterns []string, events, directed jetstream.Consumer) *subscription {
	s := &subscription{
		b: b, group: group, patterns: patterns,
		in:   make(chan jetstream.Msg),
		stop: make(chan struct{}),
		out:  make(map[jetstream.Msg]struct{}),
	}
	s.wg.Add(2)
	go s.pull(events, true)
	go s.pull(directed, false)
	go s.keepAlive()
	return s
}

// keepAlive marks the messages pulled and not settled as in progress, every
// third of AckWait, until Close.
func (s *subscription) keepAlive() {
	t := time.NewTicker(s.b.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(s.out))
		for m := range s.out {
			msgs = append(msgs, m)
		}
		s.mu.Unlock()
		for _, m := range msgs {
			// A message settled meanwhile answers an error: nothing to do.
			m.InProgress()
		}
	}
}

// pull hands the messages of consumer c to Receive until Close. An events
// message that only the consumer's wider filter matched is acked and
// skipped. When pulling fails because the consumer is gone, pull declares it
// again; other failures (a lost connection) are retried with backoff.
func (s *subscription) pull(c jetstream.Consumer, events bool) {
	defer s.wg.Done()
	cfg := c.CachedInfo().Config
	backoff := 50 * time.Millisecond
	retry := func(err error) bool {
		s.b.log.Warn("pulling messages failed; retrying", "group", s.group, "consumer", cfg.Durable, "err", err, "in", backoff)
		select {
		case <-s.stop:
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		return true
	}
	for !s.stopped() {
		batch, err := c.Fetch(pullBatch, jetstream.FetchMaxWait(pullExpiry))
		if err != nil {
			if !retry(err) {
				return
			}
			continue
		}
		for m := range batch.Messages() {
			if events && !s.wanted(m.Subject()) {
				if err := m.Ack(); err != nil {
					s.b.log.Warn("ack of a skipped message failed", "group", s.group, "subject", m.Subject(), "err", err)
				}
				continue
			}
			// Kept in out from now on, so that it is kept alive, and handed
			// back by Close if Receive never takes it.
			s.mu.Lock()
			s.out[m] = struct{}{}
			s.mu.Unlock()
			select {
			case s.in <- m:
			case <-s.stop:
			}
		}
		switch err := batch.Error(); {
		case err == nil:
			backoff = 50 * time.Millisecond
		case errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted):
			if !retry(err) {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			nc, err := s.b.js.CreateOrUpdateConsumer(ctx, s.b.stream, cfg)
			cancel()
			if err == nil {
				c = nc
				s.b.log.Info("consumer declared again", "group", s.group, "consumer", cfg.Durable)
			}
		default:
			if !retry(err) {
				return
			}
		}
	}
}

func (s *subscription) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *subscription) wanted(subject string) bool {
	typ := strings.TrimPrefix(subject, s.b.cfg.Namespace+".ev.")
	for _, p := range s.patterns {
		if bus.Match(p, typ) {
			return true
		}
	}
	return false
}

func (s *subscription) nak(m jetstream.Msg) {
	if err := m.Nak(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		s.b.log.Warn("nak failed; the message comes back after AckWait", "group", s.group, "subject", m.Subject(), "err", err)
	}
}

// Receive hands out the next message of the group.
func (s *subscription) Receive(ctx context.Context) (bus.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return bus.Delivery{}, err
	}
	select {
	case m := <-s.in:
		return s.deliver(m)
	case <-ctx.Done():
		return bus.Delivery{}, ctx.Err()
	case <-s.stop:
		return bus.Delivery{}, errSubClosed
	}
}

func (s *subscription) deliver(m jetstream.Msg) (bus.Delivery, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return bus.Delivery{}, errSubClosed // Close handed m back
	}

	attempt := 1
	if meta, err := m.Metadata(); err == nil && meta.NumDelivered > 0 {
		attempt = int(meta.NumDelivered)
	}
	subject := m.Subject()
	typ, ok := strings.CutPrefix(subject, s.b.cfg.Namespace+".ev.")
	if !ok {
		typ = strings.TrimPrefix(subject, s.b.directedPrefix(s.group))
	}
	d := decode(typ, m.Headers(), m.Data())
	d.Attempt, d.Ref = attempt, m
	return d, nil
}

func (s *subscription) settle(d bus.Delivery, op string) (jetstream.Msg, error) {
	m, ok := d.Ref.(jetstream.Msg)
	if !ok {
		return nil, baton.Errorf(baton.Invalid, op, "delivery %s was not received from a natsbus subscription", d.ID)
	}
	s.mu.Lock()
	delete(s.out, m)
	s.mu.Unlock()
	return m, nil
}

// Ack settles d and waits for JetStream to confirm it, so that an acked
// message does not come back.
func (s *subscription) Ack(ctx context.Context, d bus.Delivery) error {
	const op = "natsbus ack"
	m, err := s.settle(d, op)
	if err != nil {
		return err
	}
	if err := m.DoubleAck(ctx); err != nil {
		if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return baton.Errorf(baton.Conflict, op, "%s %s was already settled", d.Type, d.ID)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s %s: %w", op, d.Type, d.ID, ctx.Err())
		}
		return unavailable(op, fmt.Errorf("%s %s: %w", d.Type, d.ID, err))
	}
	return nil
}

// Nack hands d back to the group: JetStream redelivers it after delay, with
// its delivery count, and so Attempt, one higher.
func (s *subscription) Nack(ctx context.Context, d bus.Delivery, delay time.Duration) error {
	const op = "natsbus nack"
	m, err := s.settle(d, op)
	if err != nil {
		return err
	}
	if delay > 0 {
		err = m.NakWithDelay(delay)
	} else {
		err = m.Nak()
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return baton.Errorf(baton.Conflict, op, "%s %s was already settled", d.Type, d.ID)
		}
		return unavailable(op, fmt.Errorf("%s %s: %w", d.Type, d.ID, err))
	}
	return nil
}

// Close stops handing out messages. Once the subscription's last pull
// requests have ended, in the background, what it pulled and did not settle
// goes back to the group for immediate redelivery. The group's consumers
// stay.
func (s *subscription) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.b.bg.Add(1)
		go func() {
			defer s.b.bg.Done()
			s.wg.Wait()
			s.mu.Lock()
			s.closed = true
			out := s.out
			s.out = nil
			s.mu.Unlock()
			for m := range out {
				s.nak(m)
			}
			s.b.forget(s)
		}()
	})
	return nil
}
