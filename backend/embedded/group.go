package embedded

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/cockroachdb/pebble/v2"
)

// group is the in-memory side of a consumer group's queue: a window of the
// messages on disk, loaded ahead of its consumers.
//
// Invariant: every message of the group with a sequence number below readSeq
// is in ready, in flight with a subscription, or settled. Messages at or past
// readSeq are on disk and, when behind is false, not yet durable (their
// arrival hook will add them).
type group struct {
	b    *Backend
	name string

	mu       sync.Mutex
	patterns []string
	ready    []record
	head     int
	readSeq  uint64
	behind   bool
	shut     bool
	notify   chan struct{} // a token: some consumer should look at ready
}

func newGroup(b *Backend, name string, patterns []string, behind bool) *group {
	return &group{b: b, name: name, patterns: patterns, behind: behind, notify: make(chan struct{}, 1)}
}

func (g *group) matches(typ string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.patterns {
		if bus.Match(p, typ) {
			return true
		}
	}
	return false
}

func (g *group) setPatterns(p []string) {
	g.mu.Lock()
	g.patterns = p
	g.mu.Unlock()
}

func (g *group) signal() {
	select {
	case g.notify <- struct{}{}:
	default:
	}
}

// arrived is the hook of a durable enqueue.
func (g *group) arrived(rec record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case rec.seq < g.readSeq:
		// Already loaded from disk.
	case !g.behind && len(g.ready)-g.head < g.b.cfg.Window:
		g.ready = append(g.ready, rec)
		g.readSeq = rec.seq + 1
		g.signal()
	default:
		g.behind = true
		g.signal()
	}
}

// fill loads the next window from disk. Called with mu held and ready empty.
func (g *group) fill() error {
	horizon := g.b.horizon.Load()
	if g.readSeq > horizon {
		g.behind = false
		return nil
	}
	lo, hi := queueBounds(g.name, g.readSeq, horizon+1)
	iter, err := g.b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return unavailable("read queue "+g.name, err)
	}
	defer iter.Close()
	g.ready, g.head = g.ready[:0], 0
	n := 0
	for iter.First(); iter.Valid() && n < g.b.cfg.Window; iter.Next() {
		k := iter.Key()
		seq := uint64FromKey(k)
		rec, err := decodeRecord(seq, iter.Value())
		if err != nil {
			// Cannot happen unless the disk is corrupt; skip the message
			// and keep the others flowing.
			g.b.cfg.Logger.Error("embedded: skipping corrupt queue record", "group", g.name, "seq", seq)
			continue
		}
		g.ready = append(g.ready, rec)
		n++
		g.readSeq = seq + 1
	}
	if err := iter.Error(); err != nil {
		return unavailable("read queue "+g.name, err)
	}
	if n < g.b.cfg.Window {
		g.behind = false
		g.readSeq = horizon + 1
	}
	return nil
}

func uint64FromKey(k []byte) uint64 {
	var v uint64
	for _, c := range k[len(k)-8:] {
		v = v<<8 | uint64(c)
	}
	return v
}

func (g *group) subscribe() *subscription {
	return &subscription{g: g, inflight: make(map[uint64]*inflight), done: make(chan struct{})}
}

func (g *group) shutdown() {
	g.mu.Lock()
	g.shut = true
	g.mu.Unlock()
	g.signal()
}

// subscription is one consumer of a group.
type subscription struct {
	g        *group
	inflight map[uint64]*inflight // guarded by g.mu
	closed   bool                 // guarded by g.mu
	done     chan struct{}
	once     sync.Once
}

// inflight is a delivery's handle.
type inflight struct {
	sub      *subscription
	rec      record
	settling bool
}

var _ bus.Subscription = (*subscription)(nil)

var errSubClosed = baton.Errorf(baton.Unavailable, "embedded", "subscription is closed")

func (s *subscription) Receive(ctx context.Context) (bus.Delivery, error) {
	g := s.g
	for {
		g.mu.Lock()
		if s.closed || g.shut {
			g.mu.Unlock()
			g.signal() // pass the token on to consumers still open
			if f := g.b.failure.Load(); f != nil {
				return bus.Delivery{}, f
			}
			return bus.Delivery{}, errSubClosed
		}
		if g.head == len(g.ready) && g.behind {
			if err := g.fill(); err != nil {
				g.mu.Unlock()
				return bus.Delivery{}, err
			}
		}
		if g.head < len(g.ready) {
			rec := g.ready[g.head]
			g.ready[g.head] = record{}
			g.head++
			if g.head == len(g.ready) {
				g.ready, g.head = g.ready[:0], 0
			}
			if g.head < len(g.ready) || g.behind {
				g.signal()
			}
			inf := &inflight{sub: s, rec: rec}
			s.inflight[rec.seq] = inf
			g.mu.Unlock()
			// What a handler's commit or a run's transition wrote is written
			// once; only what came from outside can repeat an event.
			d := rec.delivery()
			d.Attempt, d.Unique, d.Ref = rec.attempt, !rec.external, inf
			return d, nil
		}
		g.mu.Unlock()
		select {
		case <-g.notify:
		case <-s.done:
		case <-ctx.Done():
			return bus.Delivery{}, ctx.Err()
		}
	}
}

// claim marks a delivery as being settled, so it is settled once.
func (s *subscription) claim(inf *inflight) error {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	if s.inflight[inf.rec.seq] != inf || inf.settling {
		return baton.Errorf(baton.Conflict, "settle", "message %s of group %s was already settled or handed back", inf.rec.msg.ID, s.g.name)
	}
	inf.settling = true
	return nil
}

// release ends a settlement: done when err is nil, back in flight otherwise.
func (s *subscription) release(seq uint64, err error) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	if err == nil {
		delete(s.inflight, seq)
		return
	}
	if inf, ok := s.inflight[seq]; ok {
		inf.settling = false
		if s.closed {
			s.handBack(inf)
		}
	}
}

func (s *subscription) Ack(ctx context.Context, d bus.Delivery) error {
	return s.g.b.Commit(ctx, bus.Commit{Group: s.g.name, Delivery: &d})
}

func (s *subscription) Nack(ctx context.Context, d bus.Delivery, delay time.Duration) error {
	return s.g.b.Commit(ctx, bus.Commit{Group: s.g.name, Delivery: &d, Retry: true, RetryAfter: delay})
}

// Close hands the deliveries not being settled back to the group, first in
// line, in their order.
func (s *subscription) Close() error {
	s.once.Do(func() {
		g := s.g
		g.mu.Lock()
		s.closed = true
		var back []*inflight
		for _, inf := range s.inflight {
			if !inf.settling {
				back = append(back, inf)
			}
		}
		slices.SortFunc(back, func(a, b *inflight) int { return cmpSeq(b.rec.seq, a.rec.seq) })
		for _, inf := range back {
			s.handBack(inf)
		}
		g.mu.Unlock()
		close(s.done)
		g.signal()
	})
	return nil
}

// handBack puts inf at the front of the ready queue. Called with g.mu held.
func (s *subscription) handBack(inf *inflight) {
	g := s.g
	delete(s.inflight, inf.rec.seq)
	if g.head > 0 {
		g.head--
		g.ready[g.head] = inf.rec
	} else {
		g.ready = slices.Insert(g.ready, 0, inf.rec)
	}
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var _ bus.Backlogger = (*Backend)(nil)

// Backlog counts the messages in group's queue that are durable and not yet
// settled, those in flight included; a message waiting to be retried is
// not counted until it is due. It reads the group's keys, so it costs time
// in proportion to the backlog: it is meant for a scrape, not a hot path.
func (b *Backend) Backlog(ctx context.Context, group string) (int64, error) {
	done, err := b.reader()
	if err != nil {
		return 0, err
	}
	defer done()
	lo, hi := queueBounds(group, 0, b.horizon.Load()+1)
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, unavailable("backlog of "+group, err)
	}
	defer iter.Close()
	var n int64
	for iter.First(); iter.Valid(); iter.Next() {
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	if err := iter.Error(); err != nil {
		return 0, unavailable("backlog of "+group, err)
	}
	return n, nil
}
