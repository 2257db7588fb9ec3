package expect_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// lockedBuffer is a log both the watcher and the coordinator write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// An answer that comes before the event it answers raises no alarm, while
// an event left unanswered does; and a coordinator sharing the store leaves
// the expectations' runs alone: it logs nothing of them when they come due
// (their flow is not one it knows), it still signals its own run waiting
// for an answer whose key an open instance shares, and it lists only its
// own runs.
func TestOutOfOrder(t *testing.T) {
	t.Parallel()
	b := open(t, "embedded")
	ctx := context.Background()
	var log lockedBuffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	answers := expect.Expectation{Name: "answers", After: []string{"question.asked.v1"}, Want: []string{"question.answered.v1"},
		Within: 300 * time.Millisecond}
	slow := answers
	slow.Name, slow.Within = "slow", time.Hour
	// One consumer takes the events in the order they were published.
	w, err := expect.New(expect.Config{Store: b.Store, Transport: b.Transport, Expectations: []expect.Expectation{answers, slow},
		Concurrency: 1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	tr := b.Transport.(flow.Transport)
	await := flow.Flow{Name: "await", Version: 1, Steps: []flow.Step{{Name: "answer", Wait: &flow.Wait{Type: "question.answered.v1"}}}}
	co, err := flow.New(flow.Config{Store: b.Store, Transport: tr, Flows: []flow.Flow{await}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := bus.New(bus.Config{Transport: b.Transport, Store: b.Store})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []interface {
		Start(context.Context) error
		Stop(context.Context) error
	}{w, co, rt} {
		if err := part.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { part.Stop(ctx) })
	}
	run, _, err := co.StartRun(ctx, flow.StartRequest{Flow: "await", Key: "q-3"})
	if err != nil {
		t.Fatal(err)
	}

	publish := func(typ, key string) {
		t.Helper()
		e, err := baton.NewEvent(typ, key, map[string]string{})
		if err != nil {
			t.Fatal(err)
		}
		e.CorrelationID = key
		if err := rt.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	publish("question.answered.v1", "q-1") // before its question
	publish("question.asked.v1", "q-1")
	publish("question.asked.v1", "q-2") // never answered
	publish("question.asked.v1", "q-3")

	instance := func(x, key string) store.Run {
		rs, err := b.Store.ListRuns(ctx, store.RunQuery{Flow: flow.ReservedPrefix + x, Key: key})
		if err != nil || len(rs) != 1 {
			t.Fatalf("the instances of %s for %s: %d, %v; want one", x, key, len(rs), err)
		}
		return rs[0]
	}
	broken := func(key string) int {
		h, err := b.Store.History(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range h {
			if e.Outcome == store.ExpectationBroken {
				n++
			}
		}
		return n
	}
	// q-1's deadline, had its question opened an instance, came before
	// q-2's.
	eventually(t, "q-2's question broke the expectation", func() (bool, string) { return broken("q-2") == 1, "" })
	if n := broken("q-1"); n != 0 {
		t.Errorf("q-1, answered before it was asked, broke the expectation %d times; want none", n)
	}
	if r := instance("answers", "q-1"); r.Status != store.RunCompleted {
		t.Errorf("q-1's instance is %s; want completed", r.Status)
	}

	// With the watcher stopped, q-3's slow instance stays open while the
	// coordinator handles its answer.
	eventually(t, "q-3's question opened an instance", func() (bool, string) {
		rs, err := b.Store.ListRuns(ctx, store.RunQuery{Flow: flow.ReservedPrefix + "slow", Key: "q-3"})
		return err == nil && len(rs) == 1, ""
	})
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	publish("question.answered.v1", "q-3")
	eventually(t, "the run waiting for q-3's answer got it", func() (bool, string) {
		r, err := co.Run(ctx, run.ID)
		return err == nil && r.Status == store.RunCompleted, string(r.Status)
	})
	if r := instance("slow", "q-3"); r.Status != store.RunRunning {
		t.Errorf("q-3's slow instance is %s; want running: the coordinator leaves it alone", r.Status)
	}

	listed, err := co.Runs(ctx, store.RunQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].ID != run.ID {
		t.Errorf("the coordinator lists %d runs; want only its own, %s", len(listed), run.ID)
	}
	if s := log.String(); s != "" {
		t.Errorf("logged:\n%s", s)
	}
}
