// Package traffic draws the choreography map from what was observed: which
// consumer group handled which event type, which types each group emitted,
// and which types were published from outside any handler, with counts,
// error and dead-letter rates and the hop latency of each edge, over a
// window of time.
//
// It reads the journal alone (store.Journal's Since), so it works the same
// on every backend and knows nothing of how the services are deployed. It
// never loads the whole journal: a binary search over Since(after, 1) finds
// the window's first entry (sequence numbers grow with time), and the window
// is read in pages up to a cap, past which the map says it is truncated.
//
// What it draws is what the journal holds. A flow's coordinator sends its
// step commands without journaling them, so under orchestration a service's
// group shows the commands it handled and the replies it emitted, and the
// commands have no hop latency.
package traffic

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

// Journal is the slice of store.Journal the map reads; any store.Store,
// and the API client, will do.
type Journal interface {
	// Since returns up to limit entries with Seq > after, in order.
	Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error)
}

// Defaults of a Query.
const (
	DefaultWindow     = 15 * time.Minute
	DefaultMaxEntries = 200_000
)

// page is how many entries one Since call reads.
const page = 1000

// Query says which part of the journal to draw.
type Query struct {
	// From is the start of the window: entries journaled before it are
	// not drawn. Zero means DefaultWindow before now.
	From time.Time
	// To is the end of the window; zero means now.
	To time.Time
	// MaxEntries bounds the entries read (default DefaultMaxEntries); a map
	// that stopped there is Truncated.
	MaxEntries int
}

// Kind is what an Edge records.
type Kind string

const (
	// Consumes goes from an event type to a consumer group that handled
	// it, failed at it, dead-lettered it or skipped a copy of it.
	Consumes Kind = "consumes"
	// Emits goes from a group to a type its handlers emitted.
	Emits Kind = "emits"
	// Publishes goes from a source to a type published from outside any
	// handler (a client, the API, a program's Publish).
	Publishes Kind = "publishes"
)

// Edge is one arrow of the map.
type Edge struct {
	Kind Kind   `json:"kind"`
	From string `json:"from"` // a type (Consumes), a group (Emits), a source (Publishes)
	To   string `json:"to"`   // a group (Consumes), a type (Emits, Publishes)
	// Count is, for Consumes, the events the group handled; for Emits and
	// Publishes, the events published.
	Count int `json:"count"`

	// The rest is set for Consumes only.

	Failed       int `json:"failed,omitempty"`        // failed attempts that were retried
	DeadLettered int `json:"dead_lettered,omitempty"` // events the group gave up on
	Duplicates   int `json:"duplicates,omitempty"`    // copies skipped by the inbox
	// ErrorRate is the share of attempts that failed: (Failed +
	// DeadLettered) / (Count + Failed + DeadLettered).
	ErrorRate float64 `json:"error_rate,omitempty"`
	// DeadLetterRate is the share of events that ended dead-lettered:
	// DeadLettered / (Count + DeadLettered).
	DeadLetterRate float64 `json:"dead_letter_rate,omitempty"`
	// Timed is how many of the handled events were also published inside
	// the window, which the latencies are measured on.
	Timed int `json:"timed,omitempty"`
	// HopP50 and HopP99 are percentiles of the time from an event's
	// publication to its handling by the group (its queueing, delivery and
	// handler).
	HopP50 time.Duration `json:"hop_p50_ns,omitempty"`
	HopP99 time.Duration `json:"hop_p99_ns,omitempty"`
}

// Map is the graph of the traffic in a window.
type Map struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Entries is how many journal entries were read.
	Entries int `json:"entries"`
	// Truncated is set when reading stopped at the query's MaxEntries
	// before To: the map covers From up to Last.
	Truncated bool `json:"truncated"`
	// Last is the time of the last entry read (zero when none was).
	Last time.Time `json:"last,omitzero"`
	// Edges, in the order traffic first took them.
	Edges []Edge `json:"edges"`
}

// Build draws the map of the window q names from j.
func Build(ctx context.Context, j Journal, q Query) (Map, error) {
	if q.To.IsZero() {
		q.To = time.Now()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-DefaultWindow)
	}
	if q.MaxEntries == 0 {
		q.MaxEntries = DefaultMaxEntries
	}
	if q.MaxEntries < 0 || !q.From.Before(q.To) {
		return Map{}, baton.Errorf(baton.Invalid, "traffic.Build", "window %s to %s with at most %d entries: give a start before the end and a positive cap",
			q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), q.MaxEntries)
	}
	after, err := firstAfter(ctx, j, q.From)
	if err != nil {
		return Map{}, fmt.Errorf("find the start of the window in the journal: %w", err)
	}
	d := newDrawing()
	m := Map{From: q.From, To: q.To}
	for {
		n := min(page, q.MaxEntries-m.Entries)
		if n == 0 {
			rest, err := j.Since(ctx, after, 1)
			if err != nil {
				return Map{}, fmt.Errorf("read the journal after entry %d: %w", after, err)
			}
			m.Truncated = len(rest) > 0 && !rest[0].Time.After(q.To)
			break
		}
		entries, err := j.Since(ctx, after, n)
		if err != nil {
			return Map{}, fmt.Errorf("read the journal after entry %d: %w", after, err)
		}
		done := len(entries) < n
		for _, e := range entries {
			if e.Time.After(q.To) {
				done = true
				break
			}
			m.Entries++
			m.Last = e.Time
			after = e.Seq
			if !e.Time.Before(q.From) {
				d.add(e)
			}
		}
		if done {
			break
		}
	}
	m.Edges = d.edges()
	return m, nil
}

// firstAfter returns the after from which Since reads the window: the
// smallest x whose next entry is at or after from (or missing). Sequence
// numbers grow with time, so that is false below x and true from x on;
// about twice log2(seq) calls of Since(x, 1) find it.
func firstAfter(ctx context.Context, j Journal, from time.Time) (uint64, error) {
	// in reports whether the entry after x is in the window (or missing),
	// and when it is not, its seq.
	in := func(x uint64) (bool, uint64, error) {
		es, err := j.Since(ctx, x, 1)
		if err != nil || len(es) == 0 {
			return true, 0, err
		}
		return !es[0].Time.Before(from), es[0].Seq, nil
	}
	ok, seq, err := in(0)
	if err != nil || ok {
		return 0, err
	}
	// Invariant: in(lo) is false, in(hi) true (once the doubling found it).
	lo, hi := seq-1, uint64(1024)
	for hi <= lo {
		hi *= 2
	}
	for {
		ok, seq, err := in(hi)
		if err != nil {
			return 0, err
		}
		if ok {
			break
		}
		lo = seq - 1
		if seq >= math.MaxInt64/2 {
			hi = math.MaxInt64
			break
		}
		hi = 2 * seq
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, seq, err := in(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		} else {
			// Every entry up to seq is before from. Clocks of several
			// processes may disagree a little; stay below hi.
			lo = min(seq-1, hi-1)
		}
	}
	return hi, nil
}

// drawing accumulates the edges of a map, entry by entry.
type drawing struct {
	byKey     map[edgeKey]*edge
	published map[string]time.Time  // event id -> when it was published
	caused    map[string]string     // id of an emitted event -> the group that emitted it
	waiting   map[string][]handling // event id -> its handlings journaled before its publication
	next      int
}

// handling is the handling of an event by the group of an edge, at a time.
type handling struct {
	edge *edge
	at   time.Time
}

type edgeKey struct {
	kind     Kind
	from, to string
}

type edge struct {
	Edge
	order int
	hops  []time.Duration
}

func newDrawing() *drawing {
	return &drawing{byKey: map[edgeKey]*edge{}, published: map[string]time.Time{}, caused: map[string]string{},
		waiting: map[string][]handling{}}
}

func (d *drawing) edge(kind Kind, from, to string) *edge {
	k := edgeKey{kind, from, to}
	e := d.byKey[k]
	if e == nil {
		e = &edge{Edge: Edge{Kind: kind, From: from, To: to}, order: d.next}
		d.next++
		d.byKey[k] = e
	}
	return e
}

func (d *drawing) add(e store.Entry) {
	switch e.Outcome {
	case store.Published:
		if _, again := d.published[e.EventID]; again {
			return // a copy, published again after a redelivery
		}
		d.published[e.EventID] = e.Time
		for _, h := range d.waiting[e.EventID] {
			h.edge.hops = append(h.edge.hops, max(h.at.Sub(e.Time), 0))
		}
		delete(d.waiting, e.EventID)
		// A handler's outputs are journaled right after its handled entry,
		// in the same write, so the group that emitted an event is known
		// by the time its published entry is read.
		if g, ok := d.caused[e.EventID]; ok {
			delete(d.caused, e.EventID)
			d.edge(Emits, g, e.EventType).Count++
			return
		}
		d.edge(Publishes, cmp.Or(e.Source, "(unknown source)"), e.EventType).Count++
	case store.Handled:
		ed := d.edge(Consumes, e.EventType, e.Group)
		ed.Count++
		if at, ok := d.published[e.EventID]; ok {
			ed.hops = append(ed.hops, max(e.Time.Sub(at), 0))
		} else {
			// A transport that is not atomic publishes a handler's outputs
			// before it journals them, so a consumer may journal its
			// handling first.
			d.waiting[e.EventID] = append(d.waiting[e.EventID], handling{ed, e.Time})
		}
		for _, id := range e.Caused {
			d.caused[id] = e.Group
		}
	case store.Failed:
		d.edge(Consumes, e.EventType, e.Group).Failed++
	case store.DeadLettered:
		d.edge(Consumes, e.EventType, e.Group).DeadLettered++
	case store.Duplicate:
		d.edge(Consumes, e.EventType, e.Group).Duplicates++
	}
}

func (d *drawing) edges() []Edge {
	all := make([]*edge, 0, len(d.byKey))
	for _, e := range d.byKey {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *edge) int { return cmp.Compare(a.order, b.order) })
	out := make([]Edge, len(all))
	for i, e := range all {
		if e.Kind == Consumes {
			if attempts := e.Count + e.Failed + e.DeadLettered; attempts > 0 {
				e.ErrorRate = float64(e.Failed+e.DeadLettered) / float64(attempts)
			}
			if ended := e.Count + e.DeadLettered; ended > 0 {
				e.DeadLetterRate = float64(e.DeadLettered) / float64(ended)
			}
			if len(e.hops) > 0 {
				slices.Sort(e.hops)
				e.Timed = len(e.hops)
				e.HopP50, e.HopP99 = percentile(e.hops, 50), percentile(e.hops, 99)
			}
		}
		out[i] = e.Edge
	}
	return out
}

// percentile is the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}
