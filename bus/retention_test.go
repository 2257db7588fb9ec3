package bus_test

import (
	"bytes"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// A dead letter whose body the store cut is refused by Replay, with a
// Conflict that says why and what to do, and kept; nothing is delivered.
func TestReplayRefusesATruncatedDeadLetter(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true, Retention: store.Retention{DeadBody: 64}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	sub, err := b.Subscribe(ctx, "billing", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	body := []byte(`{"specversion":"1.0","id":"ev-1","type":"order.placed.v1","source":"test","data":{"note":"` +
		strings.Repeat("x", 200) + `"}}`)
	if err := b.AddDead(ctx, store.DeadLetter{Group: "billing", Type: "order.placed.v1", EventID: "ev-1", Body: body, Reason: "boom"}); err != nil {
		t.Fatal(err)
	}
	dead, err := b.ListDead(ctx, "", 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("list dead: %v, %v", dead, err)
	}
	d := dead[0]
	if !d.Truncated || d.Size != len(body) || !bytes.Equal(d.Body, body[:64]) {
		t.Fatalf("stored dead letter: truncated %v, size %d, body %q; want truncated, size %d, the first 64 bytes", d.Truncated, d.Size, d.Body, len(body))
	}

	err = bus.Replay(ctx, b, b, d.ID)
	if baton.ErrorCode(err) != baton.Conflict {
		t.Fatalf("replay a truncated dead letter: %v (code %q); want a conflict", err, baton.ErrorCode(err))
	}
	for _, want := range []string{"64 of", "baton dlq show " + d.ID, "baton dlq drop " + d.ID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if _, err := b.Dead(ctx, d.ID); err != nil {
		t.Errorf("the dead letter after a refused replay: %v; want it kept", err)
	}
	if n, err := b.Backlog(ctx, "billing"); err != nil || n != 0 {
		t.Errorf("billing's backlog after a refused replay: %d, %v; want nothing delivered", n, err)
	}
}

// The runtime's metrics count what the store's retention sweeps removed, by
// kind.
func TestMetricsCountRetentionSweeps(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true, Retention: store.Retention{DeadCap: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := prometheus.NewRegistry()
	run(t, b, bus.Config{Metrics: reg})
	ctx := t.Context()
	old := time.Now().Add(-store.DefaultAge - time.Hour)
	for i := range 2 {
		if err := b.Append(ctx, store.Entry{Time: old, CorrelationID: "order-1", Outcome: store.Handled}); err != nil {
			t.Fatal(err)
		}
		if err := b.AddDead(ctx, store.DeadLetter{Group: "billing", Type: "order.placed.v1", Body: []byte("{}"), Time: old.Add(time.Duration(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := b.AddDead(ctx, store.DeadLetter{Group: "billing", Type: "order.placed.v1", Body: []byte("{}"), Time: time.Now().Add(time.Duration(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	// With the sweep at Open, which may come between the writes, if it
	// comes at all: each sweep removes the old first, then what is over
	// the cap, so the total is the same.
	if total := b.Swept(); total != (store.Swept{Journal: 2, Dead: 2, DeadOverCap: 2}) {
		t.Fatalf("sweeps removed %+v; want 2 journal entries, 2 old dead letters and 2 over the cap of 1", total)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "baton_retention_removed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"journal": 2, "runs": 0, "dead_letters": 2, "dead_letters_over_cap": 2}
	if !maps.Equal(got, want) {
		t.Errorf("baton_retention_removed_total by kind: %v; want %v", got, want)
	}
}
