package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/store"
)

// The runtime's promises: retries with backoff, dead letters, replay,
// deterministic outputs, the inbox, graceful stop and bounded concurrency.
// Every test runs on the embedded backend; those about settlement run in
// each mode below: with its atomic commits made while the worker handles
// its next deliveries, with each commit waited for, and with the commit
// hidden, so that the runtime applies each settlement in steps as it does
// on other brokers (with and without publisher confirms).

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m mode) {
		b := openMemory(t)
		var calls atomic.Int64
		flaky := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			if calls.Add(1) <= 2 {
				return nil, errors.New("warehouse busy")
			}
			return nil, nil
		}
		rt := run(t, b, bus.Config{Transport: m.transport(b)},
			baton.Service{Name: "stock", Retry: fastRetry(5), Handlers: []baton.Handler{{Type: "order.placed.v1", Func: flaky}}})
		publish(t, rt, orderEvent(t, "retry-1", 1))

		waitTrail(t, b, "retry-1", "stock", "failed/1 failed/2 handled/3")
		if got := calls.Load(); got != 3 {
			t.Errorf("handler calls: got %d, want 3 (two failures, one success)", got)
		}
		st := rt.Stats()
		eventually(t, "retried 2, handled 1, no dead letters", func() (bool, string) {
			return st.Retried() == 2 && st.Handled() == 1 && len(st.DeadLettered()) == 0,
				fmt.Sprintf("retried %d handled %d dead %v", st.Retried(), st.Handled(), st.DeadLettered())
		})
		for _, e := range history(t, b, "retry-1") {
			if e.Outcome == store.Failed && !strings.Contains(e.Error, "warehouse busy") {
				t.Errorf("failed entry of attempt %d: error %q does not carry the handler's error", e.Attempt, e.Error)
			}
		}
	})
}

func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		service baton.RetryPolicy
		handler *baton.RetryPolicy
		want    int
	}{
		{"service policy", fastRetry(3), nil, 3},
		{"handler policy overrides the service's", fastRetry(5), ptr(fastRetry(2)), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachMode(t, func(t *testing.T, m mode) {
				b := openMemory(t)
				var calls atomic.Int64
				failing := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
					calls.Add(1)
					return nil, errors.New("warehouse busy")
				}
				rt := run(t, b, bus.Config{Transport: m.transport(b)}, baton.Service{Name: "stock", Retry: tc.service,
					Handlers: []baton.Handler{{Type: "order.placed.v1", Func: failing, Retry: tc.handler}}})
				e := orderEvent(t, "exhaust-1", 1)
				publish(t, rt, e)

				dl := waitDead(t, b, 1)[0]
				checkDead(t, dl, "stock", "order.placed.v1", nil, tc.want,
					fmt.Sprintf("gave up after %d attempts", tc.want), "warehouse busy")
				if dl.EventID != "exhaust-1" || dl.CorrelationID != "exhaust-1" {
					t.Errorf("dead letter names event %q correlation %q; want exhaust-1 for both", dl.EventID, dl.CorrelationID)
				}
				if got := calls.Load(); got != int64(tc.want) {
					t.Errorf("handler calls: got %d, want %d", got, tc.want)
				}
				var want []string
				for i := 1; i < tc.want; i++ {
					want = append(want, fmt.Sprintf("failed/%d", i))
				}
				want = append(want, fmt.Sprintf("dead-lettered/%d", tc.want))
				if got := trail(history(t, b, "exhaust-1"), "stock"); got != strings.Join(want, " ") {
					t.Errorf("journal of stock: got %q, want %q", got, strings.Join(want, " "))
				}
				wantDeadStats(t, rt, bus.ReasonExhausted)
				wantCount(t, "Retried", rt.Stats().Retried, int64(int64(tc.want-1)))
			})
		})
	}
}

func TestPermanentErrorSkipsRetries(t *testing.T) {
	t.Parallel()
	declined := errors.New("card declined")
	for _, tc := range []struct {
		name   string
		result func() ([]baton.Event, error)
		reason []string
	}{
		{"permanent", func() ([]baton.Event, error) { return nil, baton.Permanent(declined) },
			[]string{"permanent error", "card declined"}},
		{"wrapped permanent", func() ([]baton.Event, error) { return nil, fmt.Errorf("charge: %w", baton.Permanent(declined)) },
			[]string{"permanent error", "charge: card declined"}},
		{"invalid output event", func() ([]baton.Event, error) {
			return []baton.Event{{Type: "Payment", Data: []byte(`{}`)}}, nil
		}, []string{"handler emitted an invalid event", `bad event type "Payment"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := openMemory(t)
			var calls atomic.Int64
			fn := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
				calls.Add(1)
				return tc.result()
			}
			rt := run(t, b, bus.Config{}, baton.Service{Name: "billing", Retry: fastRetry(5),
				Handlers: []baton.Handler{{Type: "order.placed.v1", Func: fn}}})
			publish(t, rt, orderEvent(t, "perm-1", 1))

			dl := waitDead(t, b, 1)[0]
			checkDead(t, dl, "billing", "order.placed.v1", nil, 1, tc.reason...)
			if got := calls.Load(); got != 1 {
				t.Errorf("handler calls: got %d, want 1", got)
			}
			if got := trail(history(t, b, "perm-1"), "billing"); got != "dead-lettered/1" {
				t.Errorf("journal of billing: got %q, want %q", got, "dead-lettered/1")
			}
			wantCount(t, "Retried", rt.Stats().Retried, int64(0))
			wantDeadStats(t, rt, bus.ReasonPermanent)
			wantCount(t, "Published", rt.Stats().Published, int64(1))
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	var calls atomic.Int64
	fn := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		if calls.Add(1) == 1 {
			return nil, baton.RetryAfter(25*time.Millisecond, errors.New("rate limited"))
		}
		return nil, nil
	}
	// The policy's own backoff is at most 1ms, so the journal's "retry in"
	// says which delay the runtime chose.
	rt := run(t, b, bus.Config{}, baton.Service{Name: "mailer", Retry: fastRetry(3),
		Handlers: []baton.Handler{{Type: "order.placed.v1", Func: fn}}})
	publish(t, rt, orderEvent(t, "later-1", 1))

	waitTrail(t, b, "later-1", "mailer", "failed/1 handled/2")
	for _, e := range history(t, b, "later-1") {
		if e.Outcome == store.Failed && !strings.Contains(e.Error, "rate limited (retry in 25ms)") {
			t.Errorf("failed entry: error %q; want the handler's error and the delay it asked for, 25ms", e.Error)
		}
	}
	wantCount(t, "Retried", rt.Stats().Retried, int64(1))
}

func TestBackoffStaysWithinFullJitterRange(t *testing.T) {
	t.Parallel()
	attempts := []int{math.MinInt, -5, 0, 1000, 1 << 20, math.MaxInt}
	for n := 1; n <= 80; n++ {
		attempts = append(attempts, n)
	}
	justBelowOne := math.Nextafter(1, 0)
	for _, tc := range []struct {
		name   string
		policy baton.RetryPolicy
	}{
		{"zero policy means the default", baton.RetryPolicy{}},
		{"default", baton.DefaultRetry},
		{"fast", baton.RetryPolicy{MaxAttempts: 3, Base: time.Millisecond, Cap: time.Second}},
		{"one nanosecond base", baton.RetryPolicy{MaxAttempts: 3, Base: 1, Cap: time.Hour}},
		{"cap below base", baton.RetryPolicy{MaxAttempts: 3, Base: time.Second, Cap: time.Millisecond}},
		{"odd base", baton.RetryPolicy{MaxAttempts: 3, Base: 7 * time.Millisecond, Cap: 10 * time.Minute}},
		{"a day's cap", baton.RetryPolicy{MaxAttempts: 3, Base: 250 * time.Millisecond, Cap: 24 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(1, 2))
			for _, n := range attempts {
				ceiling := backoffCeiling(tc.policy, n)
				for range 200 {
					if d := tc.policy.Backoff(n, rng.Float64); d < 0 || d > ceiling {
						t.Fatalf("Backoff(%d) = %v, outside [0, %v]", n, d, ceiling)
					}
				}
				if d := tc.policy.Backoff(n, func() float64 { return 0 }); d != 0 {
					t.Errorf("Backoff(%d) with a draw of 0 = %v, want 0", n, d)
				}
				// Full jitter spans the whole range: the largest draw comes
				// within a float's rounding of the ceiling.
				if d := tc.policy.Backoff(n, func() float64 { return justBelowOne }); d > ceiling || d < ceiling-ceiling/1e6-1 {
					t.Errorf("Backoff(%d) with a draw just below 1 = %v, want about %v", n, d, ceiling)
				}
			}
		})
	}
}

// backoffCeiling is min(Cap, Base*2^(n-1)) without overflow.
func backoffCeiling(p baton.RetryPolicy, n int) time.Duration {
	p = p.OrDefault()
	n = max(n, 1)
	if shift := n - 1; shift < 63 && p.Base <= p.Cap>>shift {
		return p.Base << shift
	}
	return p.Cap
}

func TestOutputsAreDerivedFromTheInput(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	emit := func(ctx context.Context, in baton.Event) ([]baton.Event, error) {
		paid, err := baton.NewEvent("payment.processed.v1", "", map[string]int{"cents": 1250})
		if err != nil {
			return nil, err
		}
		receipt, err := baton.NewEvent("receipt.sent.v1", "receipt-9", map[string]string{"to": "a@example.com"})
		if err != nil {
			return nil, err
		}
		return []baton.Event{paid, receipt}, nil
	}
	sink := newRecorder()
	rt := run(t, b, bus.Config{},
		baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: emit}}},
		baton.Service{Name: "sink", Handlers: []baton.Handler{
			{Type: "payment.processed.v1", Func: sink.handle},
			{Type: "receipt.sent.v1", Func: sink.handle},
		}})
	in := orderEvent(t, "out-1", 1)
	in.CorrelationID = "txn-7"
	in.Hops = 4
	in.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	publish(t, rt, in)

	wantIDs := []string{event.OutputID("out-1", "billing", 0), event.OutputID("out-1", "billing", 1)}
	sink.wait(t, wantIDs...)
	for i, want := range []struct{ typ, subject string }{
		{"payment.processed.v1", in.Subject},
		{"receipt.sent.v1", "receipt-9"},
	} {
		got, _ := sink.last(wantIDs[i])
		if got.Type != want.typ || got.Subject != want.subject || got.CorrelationID != "txn-7" ||
			got.CausationID != "out-1" || got.Hops != 5 || got.Source != "billing" ||
			got.TraceParent != in.TraceParent || got.SpecVersion != baton.SpecVersion || got.Time.IsZero() {
			t.Errorf("output %d: got type %q subject %q correlation %q causation %q hops %d source %q trace %q spec %q time %v;\n"+
				"want type %q subject %q correlation txn-7 causation out-1 hops 5 source billing, the input's trace, spec 1.0, a time",
				i, got.Type, got.Subject, got.CorrelationID, got.CausationID, got.Hops, got.Source, got.TraceParent,
				got.SpecVersion, got.Time, want.typ, want.subject)
		}
	}
	if n := sink.distinct(); n != 2 {
		t.Errorf("sink received %d distinct events, want 2", n)
	}
	var caused []string
	published := map[string]int{}
	for _, e := range history(t, b, "txn-7") {
		if e.Outcome == store.Handled && e.Group == "billing" {
			caused = e.Caused
		}
		if e.Outcome == store.Published {
			published[e.EventID]++
			if e.EventID != "out-1" && e.Source != "billing" {
				t.Errorf("journal: output %s published with source %q, want billing", e.EventID, e.Source)
			}
		}
	}
	if !slices.Equal(caused, wantIDs) {
		t.Errorf("journal: billing's handled entry caused %q, want %q", caused, wantIDs)
	}
	for _, id := range wantIDs {
		if published[id] != 1 {
			t.Errorf("journal: output %s published %d times, want once", id, published[id])
		}
	}
}

func TestUncorrelatedInputStartsItsOwnTransaction(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	emit := func(ctx context.Context, in baton.Event) ([]baton.Event, error) {
		o, err := baton.NewEvent("payment.processed.v1", "", map[string]int{"cents": 1})
		return []baton.Event{o}, err
	}
	sink := newRecorder()
	rt := run(t, b, bus.Config{},
		baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: emit}}},
		baton.Service{Name: "sink", Handlers: []baton.Handler{{Type: "payment.processed.v1", Func: sink.handle}}})
	// Published around the runtime, without a correlation id.
	for _, e := range []baton.Event{
		typedEvent(t, "order.placed.v1", "loose-1", map[string]int{"n": 1}),
		typedEvent(t, "order.placed.v9", "loose-9", map[string]int{"n": 9}),
	} {
		e.Source, e.SpecVersion = "raw-publisher", baton.SpecVersion
		if err := b.Publish(t.Context(), bus.Message{Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	out := event.OutputID("loose-1", "billing", 0)
	sink.wait(t, out)
	if o, _ := sink.last(out); o.CorrelationID != "loose-1" {
		t.Errorf("output correlation %q, want loose-1 (the id of the uncorrelated input)", o.CorrelationID)
	}
	waitTrail(t, b, "loose-1", "billing", "handled/1")
	waitTrail(t, b, "loose-1", "sink", "handled/1")
	dl := waitDead(t, b, 1)[0]
	if dl.CorrelationID != "loose-9" {
		t.Errorf("dead letter of an uncorrelated event: correlation %q, want its id loose-9", dl.CorrelationID)
	}
	checkJournaled(t, b, dl)
	wantDeadStats(t, rt, bus.ReasonUnsupported)
}

func TestReplayGoesBackToTheGroupThatGaveUp(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m mode) {
		b := openMemory(t)
		tr := m.transport(b)
		var fixed atomic.Bool
		billing, audit := newRecorder(), newRecorder()
		charge := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			if !fixed.Load() {
				return nil, baton.Permanent(errors.New("payment provider rejected the key"))
			}
			return billing.handle(ctx, e)
		}
		// One consumer per group keeps each group's deliveries in publish
		// order, so the sentinel below arrives after anything replayed.
		rt := run(t, b, bus.Config{Transport: tr, Concurrency: 1},
			baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: charge}}},
			baton.Service{Name: "audit", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: audit.handle}}})
		publish(t, rt, orderEvent(t, "replay-1", 1))
		dl := waitDead(t, b, 1)[0]
		checkDead(t, dl, "billing", "order.placed.v1", nil, 1, "payment provider rejected the key")
		audit.wait(t, "replay-1")

		fixed.Store(true)
		if err := bus.Replay(t.Context(), tr, b, dl.ID); err != nil {
			t.Fatalf("replay dead letter %s: %v", dl.ID, err)
		}
		billing.wait(t, "replay-1")
		publish(t, rt, orderEvent(t, "replay-sentinel", 2))
		billing.wait(t, "replay-sentinel")
		audit.wait(t, "replay-sentinel")

		if n := audit.times("replay-1"); n != 1 {
			t.Errorf("audit handled the replayed event %d times, want 1: replay belongs to billing", n)
		}
		if n := billing.times("replay-1"); n != 1 {
			t.Errorf("billing handled the replayed event %d times, want 1", n)
		}
		// Replay publishes before it journals (a crash in between leaves the
		// dead letter to replay again), so its entry may follow the handling;
		// on an asynchronous transport the handling is journaled when it is
		// settled, which may follow the sentinel's handler call.
		var h []store.Entry
		eventually(t, `journal of billing "dead-lettered/1 replayed handled/1" (or the last two swapped)`, func() (bool, string) {
			h = history(t, b, "replay-1")
			got := trail(h, "billing")
			return got == "dead-lettered/1 replayed handled/1" || got == "dead-lettered/1 handled/1 replayed", got
		})
		if got := count(h, store.Handled, "audit"); got != 1 {
			t.Errorf("journal: audit handled replay-1 %d times, want 1", got)
		}
		if _, err := b.Dead(t.Context(), dl.ID); !errors.Is(err, baton.ErrNotFound) {
			t.Errorf("dead letter %s after replay: got %v, want it dropped (not found)", dl.ID, err)
		}
		if left := deadLetters(t, b); len(left) != 0 {
			t.Errorf("dead letters after replay: %d, want 0", len(left))
		}
	})
}

func TestDuplicatePublishIsHandledOncePerGroup(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m mode) {
		b := openMemory(t)
		billing, audit, sink := newRecorder(), newRecorder(), newRecorder()
		charge := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			billing.handle(ctx, e)
			o, err := baton.NewEvent("payment.processed.v1", "", map[string]string{"for": e.ID})
			return []baton.Event{o}, err
		}
		rt := run(t, b, bus.Config{Transport: m.transport(b), Concurrency: 1},
			baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: charge}}},
			// audit emits nothing: its inbox must be marked all the same.
			baton.Service{Name: "audit", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: audit.handle}}},
			baton.Service{Name: "sink", Handlers: []baton.Handler{{Type: "payment.processed.v1", Func: sink.handle}}})
		e := orderEvent(t, "dup-1", 1)
		publish(t, rt, e)
		publish(t, rt, e)
		publish(t, rt, orderEvent(t, "dup-sentinel", 2))
		out := event.OutputID("dup-1", "billing", 0)
		sink.wait(t, out, event.OutputID("dup-sentinel", "billing", 0))
		eventually(t, "a duplicate entry of dup-1 for billing and for audit", func() (bool, string) {
			h := history(t, b, "dup-1")
			return count(h, store.Duplicate, "billing") == 1 && count(h, store.Duplicate, "audit") == 1, describe(h)
		})
		// audit's sentinel settles after its duplicate (one consumer).
		eventually(t, "audit handled dup-sentinel", func() (bool, string) {
			h := history(t, b, "dup-sentinel")
			return count(h, store.Handled, "audit") == 1, describe(h)
		})

		h := history(t, b, "dup-1")
		for _, g := range []string{"billing", "audit"} {
			if n := count(h, store.Handled, g); n != 1 {
				t.Errorf("journal: %s handled dup-1 %d times, want once; history %s", g, n, describe(h))
			}
		}
		if n := sink.times(out); n != 1 {
			t.Errorf("sink received billing's output %d times, want once", n)
		}
		published := 0
		for _, e := range h {
			if e.Outcome == store.Published && e.EventID == out {
				published++
			}
		}
		if published != 1 {
			t.Errorf("journal: output %s published %d times, want once", out, published)
		}
		// One consumer per group: the copy arrives once the first is
		// settled, and the inbox skips it before the handler, in every mode.
		for name, r := range map[string]*recorder{"billing": billing, "audit": audit} {
			if n := r.times("dup-1"); n != 1 {
				t.Errorf("%s's handler ran %d times for dup-1, want once", name, n)
			}
		}
		wantCount(t, "Duplicates", rt.Stats().Duplicates, int64(2))
	})
}

// A copy of an event published long after the first was handled (a
// producer that re-sends what it is unsure of) does not reach the handler
// again, with many consumers per group, in every mode.
func TestLateCopyDoesNotCallTheHandler(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m mode) {
		b := openMemory(t)
		billing, sink := newRecorder(), newRecorder()
		charge := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			billing.handle(ctx, e)
			o, err := baton.NewEvent("payment.processed.v1", "", map[string]string{"for": e.ID})
			return []baton.Event{o}, err
		}
		rt := run(t, b, bus.Config{Transport: m.transport(b)},
			baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: charge}}},
			baton.Service{Name: "sink", Handlers: []baton.Handler{{Type: "payment.processed.v1", Func: sink.handle}}})
		var ids []string
		for i := range 20 {
			ids = append(ids, fmt.Sprintf("late-%d", i))
			publish(t, rt, orderEvent(t, ids[i], i))
		}
		billing.wait(t, ids...)
		eventually(t, "every order handled in billing's journal", func() (bool, string) {
			for _, id := range ids {
				if h := history(t, b, id); count(h, store.Handled, "billing") != 1 {
					return false, id + ": " + describe(h)
				}
			}
			return true, ""
		})
		for _, id := range ids {
			publish(t, rt, orderEvent(t, id, 0))
		}
		eventually(t, "a duplicate entry for every copy", func() (bool, string) {
			for _, id := range ids {
				if h := history(t, b, id); count(h, store.Duplicate, "billing") != 1 {
					return false, id + ": " + describe(h)
				}
			}
			return true, ""
		})
		for _, id := range ids {
			if n := billing.times(id); n != 1 {
				t.Errorf("billing's handler ran %d times for %s, want once: its copy came after it was handled", n, id)
			}
			if n := sink.times(event.OutputID(id, "billing", 0)); n != 1 {
				t.Errorf("sink received billing's output for %s %d times, want once", id, n)
			}
		}
		eventually(t, fmt.Sprintf("%d duplicates counted", len(ids)), func() (bool, string) {
			n := rt.Stats().Duplicates()
			return n == int64(len(ids)), fmt.Sprint(n)
		})
	})
}

func TestStopFinishesInFlightWork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer b.Close()
	entered := make(chan struct{})
	release := make(chan struct{})
	first := newRecorder()
	slow := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		if e.ID == "slow-1" {
			close(entered)
			<-release
		}
		return first.handle(ctx, e)
	}
	// The idle group's consumer waits in Receive, where the watched
	// transport sees Stop cancel the runtime's work.
	tr := &watched{Backend: b, cancelled: make(chan struct{})}
	idle := func(ctx context.Context, e baton.Event) ([]baton.Event, error) { return nil, nil }
	rt, err := bus.New(bus.Config{Transport: tr, Store: b, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []baton.Service{
		{Name: "packing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: slow}}},
		{Name: "idle", Handlers: []baton.Handler{{Type: "idle.nothing.v1", Func: idle}}},
	} {
		if err := rt.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	publish(t, rt, orderEvent(t, "slow-1", 1))
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatalf("waited %v for the handler to receive slow-1", waitLimit)
	}
	// Queued behind the one in flight: Stop must not take them.
	queued := []string{"queued-1", "queued-2", "queued-3"}
	for i, id := range queued {
		publish(t, rt, orderEvent(t, id, i))
	}

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		stopped <- rt.Stop(ctx)
	}()
	select {
	case <-tr.cancelled:
	case <-time.After(waitLimit):
		t.Fatalf("waited %v for Stop to cancel the runtime's consumers", waitLimit)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a handler was still running", err)
	case <-rt.Stopped():
		t.Fatal("Stopped() closed while a handler was still running")
	default:
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v, want nil", err)
		}
	case <-time.After(2 * waitLimit):
		t.Fatalf("Stop did not return within %v of the handler finishing", 2*waitLimit)
	}
	select {
	case <-rt.Stopped():
	default:
		t.Error("Stop returned but Stopped() is not closed")
	}
	if err := rt.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v, want nil (Stop is idempotent)", err)
	}
	if n := first.times("slow-1"); n != 1 {
		t.Errorf("slow-1 handled %d times before Stop returned, want 1", n)
	}
	for _, id := range queued {
		if n := first.times(id); n != 0 {
			t.Errorf("%s was handled after Stop began (%d times): a stopping runtime takes no new work", id, n)
		}
	}
	if got := trail(history(t, b, "slow-1"), "packing"); got != "handled/1" {
		t.Errorf("journal of slow-1: got %q, want %q (settled before Stop returned)", got, "handled/1")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close backend: %v", err)
	}

	// A restart on the same directory: the settled event is not delivered
	// again, the queued ones are, each once.
	b2, err := embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		t.Fatalf("reopen %s: %v", dir, err)
	}
	defer b2.Close()
	second := newRecorder()
	rt2 := run(t, b2, bus.Config{Concurrency: 1},
		baton.Service{Name: "packing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: second.handle}}})
	publish(t, rt2, orderEvent(t, "after-restart", 9))
	second.wait(t, append(queued, "after-restart")...)
	if n := second.times("slow-1"); n != 0 {
		t.Errorf("slow-1 was delivered again after the restart (%d times); it was settled before Stop returned", n)
	}
	for _, id := range append(queued, "after-restart") {
		if n := second.times(id); n != 1 {
			t.Errorf("%s handled %d times after the restart, want 1", id, n)
		}
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	const limit, total = 3, 50
	b := openMemory(t)
	var cur, peak, arrivals atomic.Int64
	gate := make(chan struct{})
	rec := newRecorder()
	fn := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		// The first calls wait for each other, so the test also sees the
		// runtime use all the concurrency it is given.
		if arrivals.Add(1) == limit {
			close(gate)
		}
		select {
		case <-gate:
		case <-time.After(waitLimit):
			return nil, baton.Permanent(fmt.Errorf("waited %v for %d handlers to run at once", waitLimit, limit))
		}
		time.Sleep(time.Millisecond) // give other calls a chance to overlap
		return rec.handle(ctx, e)
	}
	rt := run(t, b, bus.Config{Concurrency: limit},
		baton.Service{Name: "packing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: fn}}})
	ids := make([]string, total)
	for i := range ids {
		ids[i] = fmt.Sprintf("conc-%02d", i)
		publish(t, rt, orderEvent(t, ids[i], i))
	}
	rec.wait(t, ids...)
	if p := peak.Load(); p != limit {
		t.Errorf("at most %d handler calls ran at once, want exactly %d (Concurrency)", p, limit)
	}
	if dl := deadLetters(t, b); len(dl) != 0 {
		t.Errorf("dead letters: %d, first %q", len(dl), dl[0].Reason)
	}
	wantCount(t, "Handled", rt.Stats().Handled, int64(total))
}

func TestRegisterAndStartErrors(t *testing.T) {
	t.Parallel()
	ok := func(ctx context.Context, e baton.Event) ([]baton.Event, error) { return nil, nil }
	b := openMemory(t)
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(baton.Service{Name: "orders", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: ok}}}); err != nil {
		t.Fatalf("register orders: %v", err)
	}
	for _, tc := range []struct {
		name string
		svc  baton.Service
		code baton.Code
		says string
	}{
		{"duplicate service", baton.Service{Name: "orders", Handlers: []baton.Handler{{Type: "order.paid.v1", Func: ok}}},
			baton.Conflict, "service orders registered twice"},
		{"no name", baton.Service{Handlers: []baton.Handler{{Type: "order.paid.v1", Func: ok}}},
			baton.Invalid, "needs a name"},
		{"no handlers", baton.Service{Name: "empty"}, baton.Invalid, "at least one handler"},
		{"upper-case type", baton.Service{Name: "x", Handlers: []baton.Handler{{Type: "Order.Placed.v1", Func: ok}}},
			baton.Invalid, `bad event type "Order.Placed.v1": upper-case`},
		{"unversioned type", baton.Service{Name: "x", Handlers: []baton.Handler{{Type: "order.placed", Func: ok}}},
			baton.Invalid, `bad event type "order.placed"`},
		{"empty type", baton.Service{Name: "x", Handlers: []baton.Handler{{Func: ok}}},
			baton.Invalid, `bad event type ""`},
		{"nil handler", baton.Service{Name: "x", Handlers: []baton.Handler{{Type: "order.paid.v1"}}},
			baton.Invalid, "handler for order.paid.v1 is missing"},
		{"type declared twice", baton.Service{Name: "x", Handlers: []baton.Handler{
			{Type: "order.paid.v1", Func: ok}, {Type: "order.paid.v1", Func: ok}}},
			baton.Invalid, "order.paid.v1 is missing or declared twice"},
	} {
		err := rt.Register(tc.svc)
		if err == nil || baton.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: Register = %v (code %q); want a %s error saying %q", tc.name, err, baton.ErrorCode(err), tc.code, tc.says)
		}
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { rt.Stop(context.Background()) })
	if err := rt.Start(t.Context()); baton.ErrorCode(err) != baton.Conflict || !strings.Contains(fmt.Sprint(err), "already started") {
		t.Errorf("second Start = %v; want a conflict saying the runtime already started", err)
	}
	err = rt.Register(baton.Service{Name: "late", Handlers: []baton.Handler{{Type: "order.paid.v1", Func: ok}}})
	if baton.ErrorCode(err) != baton.Conflict || !strings.Contains(fmt.Sprint(err), "already started") {
		t.Errorf("Register after Start = %v; want a conflict saying the runtime already started", err)
	}
	if _, err := bus.New(bus.Config{Store: b}); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("New without a transport = %v; want an invalid error", err)
	}
}

// watched is the embedded backend with its subscriptions' Receive watched:
// cancelled is closed when a Receive returns after its context ended.
type watched struct {
	*embedded.Backend
	cancelled chan struct{}
	once      sync.Once
}

func (w *watched) Subscribe(ctx context.Context, group string, patterns []string) (bus.Subscription, error) {
	sub, err := w.Backend.Subscribe(ctx, group, patterns)
	if err != nil {
		return nil, err
	}
	return watchedSub{sub, w}, nil
}

type watchedSub struct {
	bus.Subscription
	w *watched
}

func (s watchedSub) Receive(ctx context.Context) (bus.Delivery, error) {
	d, err := s.Subscription.Receive(ctx)
	if ctx.Err() != nil {
		s.w.once.Do(func() { close(s.w.cancelled) })
	}
	return d, err
}

// ---- shared by the tests of this package ----

// waitLimit bounds every wait for something that should happen.
const waitLimit = 10 * time.Second

// mode is how the runtime settles deliveries on the embedded backend.
type mode struct {
	name      string
	transport func(*embedded.Backend) bus.Transport
}

// stepwise hides the embedded backend's Commit and PublishTo, so the runtime
// settles in steps, as it does on a broker that is not its store, and Replay
// publishes to every group.
type stepwise struct{ bus.Transport }

// committing hides the embedded backend's CommitAsync: the runtime waits
// for each delivery's commit before it takes the next.
type committing struct {
	bus.Transport
	b *embedded.Backend
}

func (c committing) Commit(ctx context.Context, cm bus.Commit) error { return c.b.Commit(ctx, cm) }

func (c committing) CommitStore() bus.Store { return c.b }

func (c committing) PublishTo(ctx context.Context, group string, msgs ...bus.Message) error {
	return c.b.PublishTo(ctx, group, msgs...)
}

// async is stepwise with publishes confirmed later, as on a broker with
// publisher confirms: the runtime handles the next deliveries while the
// outputs of earlier ones wait for theirs.
type async struct{ stepwise }

func (a async) PublishAsync(ctx context.Context, group string, msgs ...bus.Message) func(context.Context) error {
	if group != "" {
		return func(context.Context) error { return errors.New("stepwise: the transport cannot send to one group") }
	}
	done := make(chan error, 1)
	go func() { done <- a.Publish(ctx, msgs...) }()
	return func(ctx context.Context) error {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var modes = []mode{
	{"atomic", func(b *embedded.Backend) bus.Transport { return b }},
	{"committing", func(b *embedded.Backend) bus.Transport { return committing{b, b} }},
	{"stepwise", func(b *embedded.Backend) bus.Transport { return stepwise{b} }},
	{"async", func(b *embedded.Backend) bus.Transport { return async{stepwise{b}} }},
}

func forEachMode(t *testing.T, fn func(*testing.T, mode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			fn(t, m)
		})
	}
}

func openMemory(t *testing.T) *embedded.Backend {
	t.Helper()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatalf("open embedded backend: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// run starts a runtime with services; cfg's Transport and Store default to
// b. The runtime is stopped when the test ends, before b is closed.
func run(t *testing.T, b *embedded.Backend, cfg bus.Config, services ...baton.Service) *bus.Runtime {
	t.Helper()
	if cfg.Transport == nil {
		cfg.Transport = b
	}
	if cfg.Store == nil {
		cfg.Store = b
	}
	rt, err := bus.New(cfg)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	for _, s := range services {
		if err := rt.Register(s); err != nil {
			t.Fatalf("register %s: %v", s.Name, err)
		}
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return rt
}

func fastRetry(attempts int) baton.RetryPolicy {
	return baton.RetryPolicy{MaxAttempts: attempts, Base: time.Millisecond, Cap: time.Millisecond}
}

func ptr[T any](v T) *T { return &v }

// orderEvent is an order.placed.v1 event with id (also its correlation id
// once published) and data {"n": n}.
func orderEvent(t *testing.T, id string, n int) baton.Event {
	t.Helper()
	return typedEvent(t, "order.placed.v1", id, map[string]int{"n": n})
}

func typedEvent(t *testing.T, typ, id string, data any) baton.Event {
	t.Helper()
	e, err := baton.NewEvent(typ, "order-"+id, data)
	if err != nil {
		t.Fatal(err)
	}
	e.ID = id
	return e
}

func publish(t *testing.T, rt *bus.Runtime, events ...baton.Event) {
	t.Helper()
	if err := rt.Publish(t.Context(), events...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// eventually polls check until it reports true, failing the test after
// waitLimit with what was expected and what check last saw.
func eventually(t *testing.T, expected string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ok, seen := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v: expected %s; saw %s", waitLimit, expected, seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder remembers the events a handler was given.
type recorder struct {
	mu    sync.Mutex
	calls map[string]int
	byID  map[string]baton.Event
}

func newRecorder() *recorder {
	return &recorder{calls: map[string]int{}, byID: map[string]baton.Event{}}
}

// handle is a handler that records e and emits nothing.
func (r *recorder) handle(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[e.ID]++
	r.byID[e.ID] = e
	return nil, nil
}

func (r *recorder) times(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

func (r *recorder) last(id string) (baton.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[id]
	return e, ok
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// wait waits until every id was handled at least once.
func (r *recorder) wait(t *testing.T, ids ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d events handled", len(ids)), func() (bool, string) {
		var missing []string
		for _, id := range ids {
			if r.times(id) == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d not handled: %s", len(missing), sample(missing))
	})
}

// exactlyOnce fails t unless each id was handled exactly once.
func (r *recorder) exactlyOnce(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if n := r.times(id); n != 1 {
			t.Errorf("%s handled %d times, want once", id, n)
		}
	}
}

func sample(ids []string) string {
	if len(ids) > 5 {
		return fmt.Sprintf("%q...", ids[:5])
	}
	return fmt.Sprintf("%q", ids)
}

func deadLetters(t *testing.T, b *embedded.Backend) []store.DeadLetter {
	t.Helper()
	dl, err := b.ListDead(t.Context(), "", 10000)
	if err != nil {
		t.Fatalf("list dead letters: %v", err)
	}
	return dl
}

// waitDead waits until there are n dead letters and returns them.
func waitDead(t *testing.T, b *embedded.Backend, n int) []store.DeadLetter {
	t.Helper()
	var dl []store.DeadLetter
	eventually(t, fmt.Sprintf("%d dead letters", n), func() (bool, string) {
		dl = deadLetters(t, b)
		reasons := make([]string, len(dl))
		for i, d := range dl {
			reasons[i] = d.Group + ": " + d.Reason
		}
		return len(dl) == n, fmt.Sprintf("%d %q", len(dl), reasons)
	})
	return dl
}

// checkDead fails t unless d names group, type, attempts and a reason that
// contains each of reason, and carries body (any body when nil).
func checkDead(t *testing.T, d store.DeadLetter, group, typ string, body []byte, attempts int, reason ...string) {
	t.Helper()
	if d.ID == "" || d.Group != group || d.Type != typ || d.Attempts != attempts || d.Time.IsZero() {
		t.Errorf("dead letter: id %q group %q type %q attempts %d time %v; want an id, group %q type %q attempts %d, a time",
			d.ID, d.Group, d.Type, d.Attempts, d.Time, group, typ, attempts)
	}
	if body != nil && !bytes.Equal(d.Body, body) {
		t.Errorf("dead letter body: got %q, want %q", truncate(d.Body), truncate(body))
	}
	if body == nil && len(d.Body) == 0 {
		t.Error("dead letter has no body")
	}
	for _, r := range reason {
		if !strings.Contains(d.Reason, r) {
			t.Errorf("dead letter reason %q does not say %q", d.Reason, r)
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// wantDeadStats fails t unless the runtime counted exactly one dead letter,
// of kind.
func wantDeadStats(t *testing.T, rt *bus.Runtime, kind bus.DeadReason) {
	t.Helper()
	want := map[bus.DeadReason]int64{kind: 1}
	eventually(t, fmt.Sprintf("Stats().DeadLettered() = %v", want), func() (bool, string) {
		got := rt.Stats().DeadLettered()
		return maps.Equal(got, want), fmt.Sprint(got)
	})
}

// wantCount waits for a counter of the runtime's Stats, which counts a
// delivery once its settlement has returned, to reach want.
func wantCount(t *testing.T, name string, get func() int64, want int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("Stats().%s() = %d", name, want), func() (bool, string) {
		got := get()
		return got == want, fmt.Sprint(got)
	})
}

func history(t *testing.T, b *embedded.Backend, correlationID string) []store.Entry {
	t.Helper()
	h, err := b.History(t.Context(), correlationID)
	if err != nil {
		t.Fatalf("history of %s: %v", correlationID, err)
	}
	return h
}

// checkJournaled fails t unless the journal has the dead-lettered entry of
// d: in the history of its correlation id when it has one, else anywhere.
func checkJournaled(t *testing.T, b *embedded.Backend, d store.DeadLetter) {
	t.Helper()
	var entries []store.Entry
	if d.CorrelationID != "" {
		entries = history(t, b, d.CorrelationID)
	} else {
		all, err := b.Since(t.Context(), 0, 1<<20)
		if err != nil {
			t.Fatalf("journal: %v", err)
		}
		entries = all
	}
	for _, e := range entries {
		if e.Outcome == store.DeadLettered && e.Group == d.Group && e.EventType == d.Type &&
			e.EventID == d.EventID && e.Attempt == d.Attempts && e.Error == d.Reason {
			return
		}
	}
	t.Errorf("journal (correlation %q) has no dead-lettered entry for group %s type %s event %q attempt %d reason %q; it has %s",
		d.CorrelationID, d.Group, d.Type, d.EventID, d.Attempts, d.Reason, describe(entries))
}

// trail lists one group's outcomes with their attempts, and the replays of
// its dead letters, in journal order: "failed/1 handled/2".
func trail(entries []store.Entry, group string) string {
	var out []string
	for _, e := range entries {
		if e.Group != group {
			continue
		}
		if e.Attempt == 0 {
			out = append(out, string(e.Outcome))
		} else {
			out = append(out, fmt.Sprintf("%s/%d", e.Outcome, e.Attempt))
		}
	}
	return strings.Join(out, " ")
}

func waitTrail(t *testing.T, b *embedded.Backend, correlationID, group, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("journal of %s for %s: %q", correlationID, group, want), func() (bool, string) {
		got := trail(history(t, b, correlationID), group)
		return got == want, fmt.Sprintf("%q", got)
	})
}

func count(entries []store.Entry, outcome store.Outcome, group string) int {
	n := 0
	for _, e := range entries {
		if e.Outcome == outcome && e.Group == group {
			n++
		}
	}
	return n
}

func describe(entries []store.Entry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = fmt.Sprintf("%s %s %s/%d", e.EventID, e.Group, e.Outcome, e.Attempt)
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// A publisher's retry of an event the group dead-lettered is a duplicate,
// not a second dead letter.
func TestRepublishedDeadLetterIsADuplicate(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m mode) {
		b := openMemory(t)
		fail := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			return nil, errors.New("always down")
		}
		run(t, b, bus.Config{Transport: m.transport(b)},
			baton.Service{Name: "pay", Retry: fastRetry(2), Handlers: []baton.Handler{{Type: "order.placed.v1", Func: fail}}})
		rt2 := publisherOf(t, b)
		e := orderEvent(t, "again-1", 1)
		publish(t, rt2, e)
		waitDead(t, b, 1)
		publish(t, rt2, e)
		eventually(t, "the copy settled as a duplicate", func() (bool, string) {
			h := history(t, b, "again-1")
			return count(h, store.Duplicate, "pay") == 1, describe(h)
		})
		if n := len(deadLetters(t, b)); n != 1 {
			t.Errorf("%d dead letters after publishing a dead-lettered event again, want 1", n)
		}
	})
}

// An event the group already handled is acknowledged as a duplicate when it
// arrives again, even if its handler would now fail.
func TestHandledEventArrivingAgainIsNotRetried(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m mode) {
		b := openMemory(t)
		var mu sync.Mutex
		calls := 0
		once := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			mu.Lock()
			defer mu.Unlock()
			if calls++; calls > 1 {
				return nil, errors.New("the outside world changed")
			}
			return nil, nil
		}
		run(t, b, bus.Config{Transport: m.transport(b)},
			baton.Service{Name: "pay", Retry: fastRetry(2), Handlers: []baton.Handler{{Type: "order.placed.v1", Func: once}}})
		rt2 := publisherOf(t, b)
		e := orderEvent(t, "twice-1", 1)
		publish(t, rt2, e)
		eventually(t, "handled once", func() (bool, string) {
			h := history(t, b, "twice-1")
			return count(h, store.Handled, "pay") == 1, describe(h)
		})
		publish(t, rt2, e)
		eventually(t, "the copy settled as a duplicate", func() (bool, string) {
			h := history(t, b, "twice-1")
			return count(h, store.Duplicate, "pay") == 1, describe(h)
		})
		if n := len(deadLetters(t, b)); n != 0 {
			t.Errorf("%d dead letters for an event handled before, want none", n)
		}
	})
}

// publisherOf is a runtime with no services, to publish with.
func publisherOf(t *testing.T, b *embedded.Backend) *bus.Runtime {
	t.Helper()
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// lossy is async, except that the first lose publishes it is given are
// lost: the broker never confirms them.
type lossy struct {
	async
	mu   sync.Mutex
	lose int
}

func (l *lossy) PublishAsync(ctx context.Context, group string, msgs ...bus.Message) func(context.Context) error {
	l.mu.Lock()
	lost := l.lose > 0
	l.lose--
	l.mu.Unlock()
	if lost {
		return func(context.Context) error {
			return baton.Errorf(baton.Unavailable, "publish", "the connection closed before the broker confirmed %d messages", len(msgs))
		}
	}
	return l.async.PublishAsync(ctx, group, msgs...)
}

// Outputs sent ahead whose confirms fail are published again when their
// input is settled: each arrives once, and each input is handled once.
func TestUnconfirmedOutputsArePublishedAgain(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	tr := &lossy{async: async{stepwise{b}}, lose: 5}
	charged, sink := newRecorder(), newRecorder()
	charge := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		charged.handle(ctx, e)
		o, err := baton.NewEvent("payment.processed.v1", "", map[string]string{"for": e.ID})
		return []baton.Event{o}, err
	}
	rt := run(t, b, bus.Config{Transport: tr, Concurrency: 2},
		baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: charge}}},
		baton.Service{Name: "sink", Handlers: []baton.Handler{{Type: "payment.processed.v1", Func: sink.handle}}})
	var in, out []string
	for i := range 20 {
		id := fmt.Sprintf("lost-%d", i)
		publish(t, rt, orderEvent(t, id, i))
		in, out = append(in, id), append(out, event.OutputID(id, "billing", 0))
	}
	sink.wait(t, out...)
	wantCount(t, "Handled", rt.Stats().Handled, 40)
	charged.exactlyOnce(t, in...)
	sink.exactlyOnce(t, out...)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.lose > 0 {
		t.Errorf("%d of the 5 lost publishes were never attempted", tr.lose)
	}
}
