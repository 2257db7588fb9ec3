package traffic_test

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/traffic"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// journal returns an embedded store holding entries, in order. It keeps
// everything: the entries are dated t0, months behind the real clock that
// the store's retention sweep reads.
func journal(t *testing.T, entries ...store.Entry) *embedded.Backend {
	t.Helper()
	b, err := embedded.Open(embedded.Config{Memory: true, Retention: store.KeepAll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Append(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}
	return b
}

func published(s int, id, typ, source string) store.Entry {
	return store.Entry{Time: at(s), CorrelationID: "c", Outcome: store.Published, EventID: id, EventType: typ, Source: source}
}

func by(s int, o store.Outcome, id, typ, group string, caused ...string) store.Entry {
	return store.Entry{Time: at(s), CorrelationID: "c", Outcome: o, EventID: id, EventType: typ, Group: group, Caused: caused}
}

// A hand-made journal: what is before the window or after its end is not
// drawn; counts, rates and hop latencies are those of the entries inside.
func TestBuild(t *testing.T) {
	t.Parallel()
	j := journal(t,
		// Before the window.
		published(0, "o0", "order.placed.v1", "shop"),
		by(1, store.Handled, "o0", "order.placed.v1", "payment"),
		// Inside: three orders, one paid after a retry, one declined, one
		// dead-lettered; the payment handled by inventory, and a copy of it
		// skipped.
		published(10, "o1", "order.placed.v1", "shop"),
		published(10, "o2", "order.placed.v1", "shop"),
		by(11, store.Failed, "o1", "order.placed.v1", "payment"),
		by(12, store.Handled, "o1", "order.placed.v1", "payment", "p1"),
		published(12, "p1", "payment.processed.v1", "payment"),
		by(13, store.Handled, "o2", "order.placed.v1", "payment", "f2"),
		published(13, "f2", "payment.failed.v1", "payment"),
		published(14, "o3", "order.placed.v1", "shop"),
		by(15, store.DeadLettered, "o3", "order.placed.v1", "payment"),
		by(20, store.Handled, "p1", "payment.processed.v1", "inventory"),
		by(21, store.Duplicate, "p1", "payment.processed.v1", "inventory"),
		store.Entry{Time: at(22), CorrelationID: "c", Outcome: store.RunEnded(store.RunCompleted), EventID: "r1", EventType: "order"},
		// After the window.
		published(100, "o4", "order.placed.v1", "shop"),
	)
	m, err := traffic.Build(context.Background(), j, traffic.Query{From: at(10), To: at(60)})
	if err != nil {
		t.Fatal(err)
	}
	want := []traffic.Edge{
		{Kind: traffic.Publishes, From: "shop", To: "order.placed.v1", Count: 3},
		{Kind: traffic.Consumes, From: "order.placed.v1", To: "payment", Count: 2, Failed: 1, DeadLettered: 1,
			ErrorRate: 0.5, DeadLetterRate: 1.0 / 3, Timed: 2, HopP50: 2 * time.Second, HopP99: 3 * time.Second},
		{Kind: traffic.Emits, From: "payment", To: "payment.processed.v1", Count: 1},
		{Kind: traffic.Emits, From: "payment", To: "payment.failed.v1", Count: 1},
		{Kind: traffic.Consumes, From: "payment.processed.v1", To: "inventory", Count: 1, Duplicates: 1,
			Timed: 1, HopP50: 8 * time.Second, HopP99: 8 * time.Second},
	}
	if !reflect.DeepEqual(m.Edges, want) {
		t.Errorf("edges:\n%s\nwant:\n%s", show(m.Edges), show(want))
	}
	if m.Entries != 12 || m.Truncated || !m.Last.Equal(at(22)) || !m.From.Equal(at(10)) || !m.To.Equal(at(60)) {
		t.Errorf("read %d entries up to %v (truncated %v) in %v..%v; want 12 up to %v, not truncated", m.Entries, m.Last, m.Truncated, m.From, m.To, at(22))
	}

	// Capped at 5 entries: the map says so, and how far it got.
	m, err = traffic.Build(context.Background(), j, traffic.Query{From: at(10), To: at(60), MaxEntries: 5})
	if err != nil {
		t.Fatal(err)
	}
	if m.Entries != 5 || !m.Truncated || !m.Last.Equal(at(12)) {
		t.Errorf("capped at 5: read %d entries up to %v, truncated %v; want 5 up to %v, truncated", m.Entries, m.Last, m.Truncated, at(12))
	}
	// A cap that the window fits in exactly is not a truncation.
	m, err = traffic.Build(context.Background(), j, traffic.Query{From: at(10), To: at(60), MaxEntries: 12})
	if err != nil {
		t.Fatal(err)
	}
	if m.Entries != 12 || m.Truncated {
		t.Errorf("capped at 12: read %d entries, truncated %v; want 12, not truncated", m.Entries, m.Truncated)
	}
}

func show(es []traffic.Edge) string {
	var s string
	for _, e := range es {
		s += fmt.Sprintf("  %+v\n", e)
	}
	return s
}

// counting counts the entries a journal hands out.
type counting struct {
	traffic.Journal
	read atomic.Int64
}

func (c *counting) Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error) {
	es, err := c.Journal.Since(ctx, after, limit)
	c.read.Add(int64(len(es)))
	return es, err
}

// The window's start is found without reading what comes before it, for
// every start: the first entry, one in the middle, the last, none.
func TestBuildReadsOnlyTheWindow(t *testing.T) {
	t.Parallel()
	const n = 5000
	entries := make([]store.Entry, n)
	for i := range entries {
		entries[i] = published(i, fmt.Sprint("e", i), "tick.v1", "clock")
	}
	j := journal(t, entries...)
	for _, first := range []int{0, 1, 1023, 1024, 1025, 2500, n - 1, n} {
		t.Run(fmt.Sprint(first), func(t *testing.T) {
			t.Parallel()
			c := &counting{Journal: j}
			m, err := traffic.Build(context.Background(), c, traffic.Query{From: at(first), To: at(n + 10)})
			if err != nil {
				t.Fatal(err)
			}
			inWindow := n - first
			if m.Entries != inWindow {
				t.Errorf("read %d entries of the window, want %d", m.Entries, inWindow)
			}
			if inWindow > 0 && (len(m.Edges) != 1 || m.Edges[0].Count != inWindow) {
				t.Errorf("edges %+v, want clock -> tick.v1 with %d", m.Edges, inWindow)
			}
			if got, most := c.read.Load(), int64(inWindow+2*14+2); got > most {
				t.Errorf("%d entries read from the journal for a window of %d; want at most %d", got, inWindow, most)
			}
		})
	}
}

func TestBuildEmptyAndInvalid(t *testing.T) {
	t.Parallel()
	j := journal(t)
	m, err := traffic.Build(context.Background(), j, traffic.Query{})
	if err != nil || m.Entries != 0 || len(m.Edges) != 0 || m.Truncated {
		t.Errorf("empty journal: %+v, %v; want no edges", m, err)
	}
	if _, err := traffic.Build(context.Background(), j, traffic.Query{From: at(10), To: at(5)}); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("a window that ends before it starts: %v, want invalid", err)
	}
}

// Percentiles are nearest-rank, over the handlings of one edge.
func TestHopPercentiles(t *testing.T) {
	t.Parallel()
	var entries []store.Entry
	for i := 1; i <= 100; i++ {
		id := fmt.Sprint("e", i)
		entries = append(entries, published(0, id, "tick.v1", "clock"), by(i, store.Handled, id, "tick.v1", "g"))
	}
	m, err := traffic.Build(context.Background(), journal(t, entries...), traffic.Query{From: at(0), To: at(200)})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Edges) != 2 {
		t.Fatalf("edges %+v, want clock -> tick.v1 -> g", m.Edges)
	}
	if e := m.Edges[1]; e.Timed != 100 || e.HopP50 != 50*time.Second || e.HopP99 != 99*time.Second || e.ErrorRate != 0 {
		t.Errorf("tick.v1 -> g: %+v; want 100 timed, p50 50s, p99 99s, no errors", e)
	}
}

// On a transport that is not atomic a consumer may journal its handling of
// an event before the producer journals its publication; the hop is timed
// all the same. A copy published again counts once.
func TestBuildHandledBeforeItsPublication(t *testing.T) {
	t.Parallel()
	j := journal(t,
		by(5, store.Handled, "x", "tick.v1", "g"),
		by(3, store.Handled, "w", "tock.v1", "producer", "x"),
		published(3, "x", "tick.v1", "producer"),
		published(3, "x", "tick.v1", "producer"),
	)
	m, err := traffic.Build(context.Background(), j, traffic.Query{From: at(0), To: at(10)})
	if err != nil {
		t.Fatal(err)
	}
	want := []traffic.Edge{
		{Kind: traffic.Consumes, From: "tick.v1", To: "g", Count: 1, Timed: 1, HopP50: 2 * time.Second, HopP99: 2 * time.Second},
		{Kind: traffic.Consumes, From: "tock.v1", To: "producer", Count: 1},
		{Kind: traffic.Emits, From: "producer", To: "tick.v1", Count: 1},
	}
	if !reflect.DeepEqual(m.Edges, want) {
		t.Errorf("edges:\n%s\nwant:\n%s", show(m.Edges), show(want))
	}
}
