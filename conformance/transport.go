package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
)

// TestTransport runs the transport suite. f is what the backend promises
// beyond the contract (see Features); open returns a fresh, isolated
// transport and registers its cleanup; it is called once per case.
func TestTransport(t *testing.T, f Features, open func(t *testing.T) bus.Transport) {
	cases := []struct {
		name string
		run  func(t *testing.T, tr bus.Transport)
	}{
		{"PublishReceive", testPublishReceive},
		{"PublishMeta", testPublishMeta},
		{"PublishRaw", testPublishRaw},
		{"KeptBeforeReceive", testKeptBeforeReceive},
		{"KeptWhileNoConsumer", testKeptWhileNoConsumer},
		{"Patterns", testPatterns},
		{"FanOut", testFanOut},
		{"CompetingConsumers", testCompetingConsumers},
		{"NackRedelivers", testNackRedelivers},
		{"NackDelay", testNackDelay},
		{"CloseRedelivers", testCloseRedelivers},
		{"Ordered", given(f, testOrdered)},
		{"Backlog", testBacklog},
		{"Backlogger", testBacklogger},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"ReceiveCancelled", testReceiveCancelled},
		{"PublishNothing", testPublishNothing},
		{"PublishAsync", testPublishAsync},
		{"CommitHandled", given(f, testCommitHandled)},
		{"CommitDuplicate", given(f, testCommitDuplicate)},
		{"CommitRetry", given(f, testCommitRetry)},
		{"CommitDead", given(f, testCommitDead)},
		{"CommitPublish", given(f, testCommitPublish)},
		{"CommitReplyTo", given(f, testCommitReplyTo)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}

// testPublishReceive: what is published comes back as it was sent, on its
// first attempt.
func testPublishReceive(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".placed.v1"
	sub := subscribe(t, tr, unique("roundtrip-"), typ)
	sent := []bus.Message{
		message(typ, unique("small-"), unique("corr-"), 1, 0),
		message(typ, unique("large-"), unique("corr-"), 2, 64<<10),
	}
	// The trace context travels with the event (CloudEvents' distributed
	// tracing extension).
	sent[0].TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sent[0].TraceState = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	publish(t, tr, sent...)

	got := receiveN(t, sub, len(sent), true, "the published messages")
	byID := make(map[string]bus.Message)
	for _, m := range sent {
		byID[m.ID] = m
	}
	if err := checkExactlyOnce(ids(sent), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		m := byID[d.ID]
		if d.Type != m.Type {
			t.Errorf("message %s: type %q, want %q", d.ID, d.Type, m.Type)
		}
		if !sameMessage(m, d.Message) || d.Err != nil {
			t.Errorf("message %s: delivered as %+v (error %v), which differs from the message sent", d.ID, d.Message, d.Err)
		}
		if d.Attempt != 1 {
			t.Errorf("message %s: Attempt %d on first delivery, want 1", d.ID, d.Attempt)
		}
	}
	expectQuiet(t, sub, "both messages were acked")
}

// testPublishMeta: a message's metadata travels beside its event, to a
// group bound to its type and to one group (PublishTo), and through a Nack.
func testPublishMeta(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".placed.v1"
	group := unique("meta-")
	sub := subscribe(t, tr, group, typ)
	m := message(typ, unique("meta-"), unique("corr-"), 1, 0)
	m.Meta = map[string]string{bus.MetaReplyTo: "coordinator", bus.MetaRun: "r-1", "step": "charge/card", "attempt": "2"}
	publish(t, tr, m)
	d := receive(t, sub, "the message with metadata")
	if !sameMessage(m, d.Message) || d.Err != nil {
		t.Fatalf("delivered %+v (error %v); want the message sent, metadata %v", d.Message, d.Err, m.Meta)
	}
	if err := sub.Nack(t.Context(), d, 0); err != nil {
		t.Fatalf("nack: %v", err)
	}
	if d = receive(t, sub, "the nacked message"); !sameMessage(m, d.Message) {
		t.Errorf("redelivered with metadata %v; want %v", d.Meta, m.Meta)
	}
	if err := sub.Ack(t.Context(), d); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if gp, ok := tr.(bus.GroupPublisher); ok {
		m2 := message(typ, unique("meta-to-"), unique("corr-"), 2, 0)
		m2.Meta = map[string]string{"step": "ship"}
		if err := gp.PublishTo(t.Context(), group, m2); err != nil {
			t.Fatalf("publish to %s: %v", group, err)
		}
		if d = receive(t, sub, "the message published to the group"); !sameMessage(m2, d.Message) {
			t.Errorf("delivered to the group with metadata %v; want %v", d.Meta, m2.Meta)
		}
		if err := sub.Ack(t.Context(), d); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	expectQuiet(t, sub, "the messages were acked")
}

// testPublishRaw: bytes published raw (a dead letter replayed as it was
// received) come back as those bytes, read in structured mode: as the event
// they are, or with the error of reading them and the message's id.
func testPublishRaw(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".placed.v1"
	sub := subscribe(t, tr, unique("raw-"), typ)
	good := message(typ, unique("raw-good-"), unique("corr-"), 1, 0)
	body, err := event.Marshal(good.Event)
	if err != nil {
		t.Fatal(err)
	}
	bad := bus.Message{Event: baton.Event{Type: typ, ID: unique("raw-bad-")}, Raw: []byte(`{"specversion":"1.0",`)}
	publish(t, tr, bus.Message{Event: baton.Event{Type: typ, ID: good.ID}, Raw: body}, bad)
	for range 2 {
		d := receive(t, sub, "a raw message")
		switch d.ID {
		case good.ID:
			if d.Err != nil || !sameMessage(good, d.Message) || string(d.Raw) != string(body) {
				t.Errorf("raw event delivered as %+v, raw %q, error %v; want the event it holds and its bytes", d.Event, d.Raw, d.Err)
			}
		case bad.ID:
			if d.Err == nil || string(d.Raw) != string(bad.Raw) || d.Type != typ {
				t.Errorf("raw bytes that are no event delivered as type %q, raw %q, error %v; want the bytes with an error", d.Type, d.Raw, d.Err)
			}
		default:
			t.Errorf("unexpected delivery %q", d.ID)
		}
		if err := sub.Ack(t.Context(), d); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	expectQuiet(t, sub, "both raw messages were acked")
}

// testKeptBeforeReceive: Subscribe alone declares the group, so what is
// published before the first Receive waits for it.
func testKeptBeforeReceive(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".kept.v1"
	sub := subscribe(t, tr, unique("kept-"), typ)
	sent := messages(typ, unique("m"), 5)
	publish(t, tr, sent...)
	got := receiveN(t, sub, len(sent), true, "messages published after Subscribe, before Receive")
	if err := checkExactlyOnce(ids(sent), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, sub, "all 5 were acked")
}

// testKeptWhileNoConsumer: a declared group keeps messages while none of its
// consumers runs.
func testKeptWhileNoConsumer(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".kept.v1"
	group := unique("idle-")
	first, err := tr.Subscribe(t.Context(), group, []string{typ})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close the only subscription: %v", err)
	}
	sent := messages(typ, unique("m"), 5)
	publish(t, tr, sent...)

	sub := subscribe(t, tr, group, typ)
	got := receiveN(t, sub, len(sent), true, "messages published while the group had no consumer")
	if err := checkExactlyOnce(ids(sent), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, sub, "all 5 were acked")
}

// testPatterns: each group receives exactly the types its patterns match,
// once each even when several of its patterns match.
func testPatterns(t *testing.T, tr bus.Transport) {
	p := unique("cf")
	other := unique("cf")
	types := []string{
		p + ".placed.v1",
		p + ".shipped.v1",
		p + ".placed.v2",
		p + ".item.added.v1",
		other + ".placed.v1",
	}
	groups := []struct {
		name     string
		patterns []string
		want     []string // types received
	}{
		{"exact", []string{p + ".placed.v1"}, types[:1]},
		{"star", []string{p + ".*.v1"}, types[:2]},
		{"star-first", []string{"*.placed.v1"}, []string{types[0], types[4]}},
		{"gt", []string{p + ".>"}, types[:4]},
		{"two", []string{p + ".placed.v2", p + ".item.added.v1"}, types[2:4]},
		{"overlap", []string{p + ".>", p + ".placed.v1", p + ".*.v1"}, types[:4]},
		{"none", []string{p + ".placed"}, nil},
	}
	subs := make([]bus.Subscription, len(groups))
	for i, g := range groups {
		subs[i] = subscribe(t, tr, unique("pattern-"+g.name+"-"), g.patterns...)
	}
	sent := make(map[string]bus.Message)
	for i, typ := range types {
		m := message(typ, unique(fmt.Sprintf("t%d-", i)), "", i, 0)
		sent[typ] = m
		publish(t, tr, m)
	}
	for i, g := range groups {
		var want []string
		for _, typ := range g.want {
			want = append(want, sent[typ].ID)
		}
		got := receiveN(t, subs[i], len(want), true, fmt.Sprintf("types matching %q", g.patterns))
		if err := checkExactlyOnce(want, deliveredIDs(got)); err != nil {
			t.Errorf("group bound to %q: %v", g.patterns, err)
		}
		for _, d := range got {
			if m := sent[d.Type]; m.ID != d.ID {
				t.Errorf("group bound to %q: delivery %s has type %q, published as %q", g.patterns, d.ID, d.Type, m.Type)
			}
		}
	}
	// Listening one group at a time would add up the quiet periods.
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), quietPeriod)
			defer cancel()
			if d, err := subs[i].Receive(ctx); err == nil {
				t.Errorf("group bound to %q received %s %q, which its patterns do not match or it already had", g.patterns, d.Type, d.ID)
			}
		})
	}
	wg.Wait()
}

// testFanOut: every group whose patterns match gets every message once.
func testFanOut(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".fanned.v1"
	a := subscribe(t, tr, unique("fan-a-"), typ)
	b := subscribe(t, tr, unique("fan-b-"), typ)
	sent := messages(typ, unique("m"), 50)
	publish(t, tr, sent...)
	for name, sub := range map[string]bus.Subscription{"first": a, "second": b} {
		got := receiveN(t, sub, len(sent), true, "every message, in the "+name+" group")
		if err := checkExactlyOnce(ids(sent), deliveredIDs(got)); err != nil {
			t.Errorf("%s group: %v", name, err)
		}
	}
	expectQuiet(t, a, "first group had all 50")
	expectQuiet(t, b, "second group had all 50")
}

// testCompetingConsumers: two consumers of one group share its messages;
// together they see each exactly once. Each holds its first delivery until
// the other has one too, so a group that hands everything to one consumer
// fails deterministically.
func testCompetingConsumers(t *testing.T, tr bus.Transport) {
	const n = 200
	typ := unique("cf") + ".shared.v1"
	group := unique("compete-")
	subs := []bus.Subscription{subscribe(t, tr, group, typ), subscribe(t, tr, group, typ)}
	sent := messages(typ, unique("m"), n)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu      sync.Mutex
		got     []string
		per     [2]int
		total   atomic.Int64
		started [2]chan struct{}
		errs    = make(chan error, 2)
	)
	started[0], started[1] = make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() {
			for first := true; ; first = false {
				d, err := sub.Receive(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("consumer %d: receive: %w", i+1, err)
					}
					return
				}
				mu.Lock()
				got = append(got, d.ID)
				per[i]++
				mu.Unlock()
				if first {
					close(started[i])
					select {
					case <-started[1-i]:
					case <-ctx.Done():
						return
					case <-time.After(waitLimit):
						errs <- fmt.Errorf("consumer %d held a delivery un-acked for %v and consumer %d of the same group received nothing meanwhile; expected the group's %d messages to be shared",
							i+1, waitLimit, 2-i, n)
						return
					}
				}
				if err := sub.Ack(ctx, d); err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("consumer %d: ack %s: %w", i+1, d.ID, err)
					}
					return
				}
				total.Add(1)
			}
		})
	}
	publish(t, tr, sent...)

	// Wait for all n, failing when progress stalls.
	last, lastProgress := int64(-1), time.Now()
	for total.Load() < n {
		select {
		case err := <-errs:
			cancel()
			wg.Wait()
			t.Fatal(err)
		case <-time.After(10 * time.Millisecond):
		}
		if now := total.Load(); now != last {
			last, lastProgress = now, time.Now()
		} else if time.Since(lastProgress) > waitLimit {
			cancel()
			wg.Wait()
			t.Fatalf("expected %d messages shared by two consumers; acked %d (first %d, second %d), then nothing for %v",
				n, now, per[0], per[1], waitLimit)
		}
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if err := checkExactlyOnce(ids(sent), got); err != nil {
		t.Fatal(err)
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("expected both consumers to receive some of the %d messages; first got %d, second %d", n, per[0], per[1])
	}
	t.Logf("split %d/%d", per[0], per[1])
	var qw sync.WaitGroup
	for i, sub := range subs {
		qw.Go(func() {
			qctx, qcancel := context.WithTimeout(t.Context(), quietPeriod)
			defer qcancel()
			if d, err := sub.Receive(qctx); err == nil {
				t.Errorf("consumer %d received %q after all %d were acked", i+1, d.ID, n)
			}
		})
	}
	qw.Wait()
}

// testNackRedelivers: a Nack with no delay hands the message back with the
// next attempt number, once.
func testNackRedelivers(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".retried.v1"
	sub := subscribe(t, tr, unique("nack-"), typ)
	m := message(typ, unique("m"), "", 1, 0)
	publish(t, tr, m)

	for attempt := 1; attempt <= 3; attempt++ {
		d := receive(t, sub, fmt.Sprintf("attempt %d of %s", attempt, m.ID))
		if d.ID != m.ID || d.Attempt != attempt {
			t.Fatalf("expected %s attempt %d; got %q attempt %d", m.ID, attempt, d.ID, d.Attempt)
		}
		if !sameMessage(m, d.Message) || d.Type != m.Type {
			t.Errorf("attempt %d: type or body changed by redelivery", attempt)
		}
		if attempt == 3 {
			if err := sub.Ack(t.Context(), d); err != nil {
				t.Fatalf("ack: %v", err)
			}
			break
		}
		if err := sub.Nack(t.Context(), d, 0); err != nil {
			t.Fatalf("nack attempt %d: %v", attempt, err)
		}
	}
	expectQuiet(t, sub, "the message was acked on attempt 3")
}

// testNackDelay: a Nack with a delay redelivers once, not before the delay.
// The lower bound is the contract; the upper bound is only the usual wait.
func testNackDelay(t *testing.T, tr bus.Transport) {
	const delay = 300 * time.Millisecond
	typ := unique("cf") + ".delayed.v1"
	sub := subscribe(t, tr, unique("nackdelay-"), typ)
	m := message(typ, unique("m"), "", 1, 0)
	other := message(typ, unique("other-"), "", 2, 0)
	publish(t, tr, m)

	d := receive(t, sub, "the first delivery")
	if d.ID != m.ID || d.Attempt != 1 {
		t.Fatalf("expected %s attempt 1; got %q attempt %d", m.ID, d.ID, d.Attempt)
	}
	nacked := time.Now()
	if err := sub.Nack(t.Context(), d, delay); err != nil {
		t.Fatalf("nack with delay %v: %v", delay, err)
	}
	// A message published meanwhile is delivered too, in either order: the
	// delayed one must not hold up the group, nor come back twice.
	publish(t, tr, other)
	seen := map[string]int{}
	for range 2 {
		r := receive(t, sub, fmt.Sprintf("the redelivery after a %v nack and a message published after it", delay))
		elapsed := time.Since(nacked)
		seen[r.ID]++
		switch r.ID {
		case other.ID:
			if r.Attempt != 1 {
				t.Errorf("%s: Attempt %d on first delivery, want 1", r.ID, r.Attempt)
			}
		case m.ID:
			if r.Attempt != 2 {
				t.Errorf("redelivered %s with Attempt %d, want 2", r.ID, r.Attempt)
			}
			// Allow for a backend that keeps due times to the millisecond.
			if elapsed < delay-10*time.Millisecond {
				t.Errorf("redelivered %v after a Nack with delay %v; expected no sooner than the delay", elapsed, delay)
			}
		default:
			t.Errorf("unexpected delivery %q", r.ID)
		}
		if err := sub.Ack(t.Context(), r); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if seen[m.ID] != 1 || seen[other.ID] != 1 {
		t.Fatalf("expected %s once (redelivered) and %s once; got %v", m.ID, other.ID, seen)
	}
	expectQuiet(t, sub, "the redelivery was acked")
}

// testCloseRedelivers: what a consumer received but did not settle goes to
// the next consumer of the group when it closes; what it acked does not.
func testCloseRedelivers(t *testing.T, tr bus.Transport) {
	const n, acked = 10, 4
	typ := unique("cf") + ".abandoned.v1"
	group := unique("close-")
	first := subscribe(t, tr, group, typ)
	sent := messages(typ, unique("m"), n)
	publish(t, tr, sent...)

	got := receiveN(t, first, n, false, "all messages, by the first consumer")
	if err := checkExactlyOnce(ids(sent), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	var unsettled []string
	for i, d := range got {
		if i < acked {
			if err := first.Ack(t.Context(), d); err != nil {
				t.Fatalf("ack: %v", err)
			}
			continue
		}
		unsettled = append(unsettled, d.ID)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close with %d deliveries un-acked: %v", n-acked, err)
	}

	second := subscribe(t, tr, group, typ)
	again := receiveN(t, second, n-acked, true, "the un-acked messages, by the next consumer")
	if err := checkExactlyOnce(unsettled, deliveredIDs(again)); err != nil {
		t.Fatalf("after the first consumer closed with %d of %d acked: %v", acked, n, err)
	}
	for _, d := range again {
		if d.Attempt < 1 {
			t.Errorf("redelivered %s with Attempt %d", d.ID, d.Attempt)
		}
	}
	expectQuiet(t, second, "the acked messages must not come back")
}

// testOrdered: an Ordered transport delivers to a lone consumer in publish
// order, within and across Publish calls.
func testOrdered(t *testing.T, tr bus.Transport, f Features) {
	if !f.Ordered {
		t.Skip("the backend's test does not declare Features.Ordered")
	}
	const n, batch = 100, 10
	typ := unique("cf") + ".ordered.v1"
	sub := subscribe(t, tr, unique("ordered-"), typ)
	sent := messages(typ, unique("m"), n)
	for i := 0; i < n; i += batch {
		publish(t, tr, sent[i:i+batch]...)
	}
	got := receiveN(t, sub, n, true, "messages in order")
	for i, d := range got {
		if d.ID != sent[i].ID {
			t.Fatalf("delivery %d is %q; expected %q (publish order)", i, d.ID, sent[i].ID)
		}
	}
	expectQuiet(t, sub, "all were acked")
}

// testBacklog: a large backlog is consumed completely, each message once.
func testBacklog(t *testing.T, tr bus.Transport) {
	const n, batch = 20_000, 500
	typ := unique("cf") + ".backlog.v1"
	sub := subscribe(t, tr, unique("backlog-"), typ)
	sent := messages(typ, unique("m"), n)
	for i := 0; i < n; i += batch {
		publish(t, tr, sent[i:i+batch]...)
	}
	got := receiveN(t, sub, n, true, "the backlog")
	if err := checkExactlyOnce(ids(sent), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, sub, "the whole backlog was acked")
}

// testBacklogger: a transport that counts a group's backlog counts the
// messages published to it while no consumer ran, and none once they are
// consumed.
func testBacklogger(t *testing.T, tr bus.Transport) {
	bl, ok := tr.(bus.Backlogger)
	if !ok {
		t.Skip("the transport is not a bus.Backlogger")
	}
	typ := unique("cf") + ".waiting.v1"
	group := unique("lag-")
	first, err := tr.Subscribe(t.Context(), group, []string{typ})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close the only subscription: %v", err)
	}
	const n = 7
	publish(t, tr, messages(typ, unique("m"), n)...)
	backlogIs := func(want int64, when string) {
		t.Helper()
		var got int64
		for deadline := time.Now().Add(waitLimit); ; time.Sleep(50 * time.Millisecond) {
			got, err = bl.Backlog(t.Context(), group)
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Backlog %s = %d, %v; want %d", when, got, err, want)
			}
		}
	}
	backlogIs(n, "with no consumer")
	sub := subscribe(t, tr, group, typ)
	receiveN(t, sub, n, true, "the messages waiting")
	backlogIs(0, "once they are consumed")
}

// testConcurrentPublishers: publishes racing each other all land, once.
func testConcurrentPublishers(t *testing.T, tr bus.Transport) {
	const publishers, each = 8, 250
	typ := unique("cf") + ".raced.v1"
	sub := subscribe(t, tr, unique("concurrent-"), typ)
	var all []bus.Message
	batches := make([][]bus.Message, publishers)
	for p := range batches {
		batches[p] = messages(typ, unique(fmt.Sprintf("p%d-", p)), each)
		all = append(all, batches[p]...)
	}
	errs := make(chan error, publishers)
	var wg sync.WaitGroup
	for p, msgs := range batches {
		wg.Go(func() {
			for _, m := range msgs {
				if err := tr.Publish(t.Context(), m); err != nil {
					errs <- fmt.Errorf("publisher %d: publish %s: %w", p, m.ID, err)
					return
				}
			}
		})
	}
	// Consume while they publish.
	got := receiveN(t, sub, len(all), true, "messages from 8 concurrent publishers")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := checkExactlyOnce(ids(all), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, sub, "all were acked")
}

// testReceiveCancelled: Receive gives up with ctx.Err() when its context is
// cancelled or expires, and a cancelled Receive loses nothing.
func testReceiveCancelled(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".awaited.v1"
	sub := subscribe(t, tr, unique("cancel-"), typ)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		d, err := sub.Receive(ctx)
		if err == nil {
			err = fmt.Errorf("received %q from an empty group", d.ID)
		}
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive after cancel returned %v; expected context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Receive did not return within %v of its context being cancelled", waitLimit)
	}

	dctx, dcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer dcancel()
	go func() {
		_, err := sub.Receive(dctx)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Receive past its deadline returned %v; expected context.DeadlineExceeded", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Receive did not return within %v of its context's deadline", waitLimit)
	}

	gone, gcancel := context.WithCancel(t.Context())
	gcancel()
	if _, err := sub.Receive(gone); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive with a context already cancelled returned %v; expected context.Canceled", err)
	}

	m := message(typ, unique("m"), "", 1, 0)
	publish(t, tr, m)
	if d := receive(t, sub, "a message published after the cancelled receives"); d.ID != m.ID {
		t.Errorf("expected %s; got %q", m.ID, d.ID)
	} else if err := sub.Ack(t.Context(), d); err != nil {
		t.Errorf("ack: %v", err)
	}
}

// testPublishNothing: publishing no messages succeeds and delivers nothing.
func testPublishNothing(t *testing.T, tr bus.Transport) {
	typ := unique("cf") + ".nothing.v1"
	sub := subscribe(t, tr, unique("empty-"), typ)
	if err := tr.Publish(t.Context()); err != nil {
		t.Errorf("Publish() with no messages: %v", err)
	}
	if err := tr.Publish(t.Context(), []bus.Message{}...); err != nil {
		t.Errorf("Publish with an empty slice: %v", err)
	}
	m := message(typ, unique("m"), "", 1, 0)
	publish(t, tr, m)
	got := receiveN(t, sub, 1, true, "the one real message")
	if got[0].ID != m.ID {
		t.Errorf("expected %s first; got %q", m.ID, got[0].ID)
	}
	expectQuiet(t, sub, "empty publishes deliver nothing")
}

// testPublishAsync: on an AsyncPublisher, messages published without
// waiting are delivered once each, to every group, or to the one group
// named; many publishes may be under way before the first is confirmed.
func testPublishAsync(t *testing.T, tr bus.Transport) {
	ap, ok := tr.(bus.AsyncPublisher)
	if !ok {
		t.Skip("the transport is not a bus.AsyncPublisher")
	}
	typ := unique("cf") + ".sent.v1"
	named, other := unique("named-"), unique("other-")
	subNamed, subOther := subscribe(t, tr, named, typ), subscribe(t, tr, other, typ)

	var routed []bus.Message
	var confirms []func(context.Context) error
	for b := range 10 {
		batch := messages(typ, unique(fmt.Sprintf("b%d-", b)), 10)
		routed = append(routed, batch...)
		confirms = append(confirms, ap.PublishAsync(t.Context(), "", batch...))
	}
	toNamed := messages(typ, unique("to-named-"), 5)
	confirms = append(confirms, ap.PublishAsync(t.Context(), named, toNamed...))
	for i, confirm := range confirms {
		if err := confirm(t.Context()); err != nil {
			t.Fatalf("confirm of publish %d of %d: %v", i+1, len(confirms), err)
		}
	}

	got := receiveN(t, subNamed, len(routed)+len(toNamed), true, "the routed messages and those sent to the group by name")
	if err := checkExactlyOnce(append(ids(routed), ids(toNamed)...), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	got = receiveN(t, subOther, len(routed), true, "the routed messages only")
	if err := checkExactlyOnce(ids(routed), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, subOther, "what was sent to another group by name is not delivered here")
	expectQuiet(t, subNamed, "all were acked")
}
