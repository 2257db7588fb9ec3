package flow_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// A durable sleep outlives the coordinator: the run sleeps, the coordinator
// stops and the backend closes; a new coordinator on the same data
// directory ends the sleep when it is due and finishes the run, sending
// nothing twice.
func TestSleepSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := &recorder{}
	s := setup{dir: dir,
		flows: []flow.Flow{{Name: "nap", Version: 1, Steps: []flow.Step{
			{Name: "before", Send: send("nap.before.v1")},
			{Name: "sleep", Sleep: flow.Duration(time.Second)},
			{Name: "after", Send: send("nap.after.v1")},
		}}},
		services: []baton.Service{service("napper",
			handler("nap.before.v1", answer(rec, "before", "nap.ready.v1", nil)),
			handler("nap.after.v1", answer(rec, "after", "nap.done.v1", nil)),
		)},
	}
	h := launch(t, s)
	run := h.start("nap", "k", nil)
	h.waitRun(run.ID, "the run to sleep", func(r store.Run) bool { return stepStatus(r, "sleep") == store.StepRunning })
	if err := h.co.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := h.run(run.ID)
	if r.Status != store.RunRunning || stepStatus(r, "sleep") != store.StepRunning || r.Wake.IsZero() {
		t.Fatalf("when the coordinator stopped, the run was not sleeping with a wake time: %s", describe(r))
	}
	h.stop()

	h2 := launch(t, s)
	r = h2.waitStatus(run.ID, store.RunCompleted)
	st := r.Steps["sleep"]
	if st.Status != store.StepCompleted || st.Ended.Sub(st.Started) < time.Second {
		t.Errorf("sleep step %+v: want completed no earlier than a second after it started", st)
	}
	if got := rec.names(); !slices.Equal(got, []string{"before", "after"}) {
		t.Errorf("commands handled %v, want [before after]: each once across the restart", got)
	}
	h2.waitNotes(run.ID, flow.RunCompleted)
}

// A run pins the version it started on: after a restart with version 2
// added, the run goes on with version 1's steps, while new starts take
// version 2 (or the version asked for).
func TestRunKeepsItsVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := &recorder{}
	v1 := flow.Flow{Name: "ship", Version: 1, Steps: []flow.Step{
		{Name: "label", Send: send("ship.label.v1")},
		{Name: "hold", Wait: &flow.Wait{Type: "ship.go.v1"}},
		{Name: "post", Send: send("ship.post.v1")},
	}}
	v2 := flow.Flow{Name: "ship", Version: 2, Steps: []flow.Step{
		{Name: "label", Send: send("ship.label.v1")},
		{Name: "hold", Wait: &flow.Wait{Type: "ship.go.v1"}},
		{Name: "courier", Send: send("ship.courier.v1")},
	}}
	services := []baton.Service{service("shipping",
		handler("ship.label.v1", answer(rec, "label", "ship.labelled.v1", nil)),
		handler("ship.post.v1", answer(rec, "post", "ship.posted.v1", nil)),
		handler("ship.courier.v1", answer(rec, "courier", "ship.couriered.v1", nil)),
	)}
	h := launch(t, setup{dir: dir, flows: []flow.Flow{v1}, services: services})
	old := h.start("ship", "parcel-1", nil)
	if old.Version != 1 {
		t.Fatalf("run started on version %d, want 1", old.Version)
	}
	h.waitRun(old.ID, "the v1 run to wait", func(r store.Run) bool { return stepStatus(r, "hold") == store.StepWaiting })
	h.stop()

	h2 := launch(t, setup{dir: dir, flows: []flow.Flow{v1, v2}, services: services})
	ctx := context.Background()
	if _, err := h2.co.Signal(ctx, old.ID, baton.Event{Type: "ship.go.v1"}); err != nil {
		t.Fatal(err)
	}
	r := h2.waitStatus(old.ID, store.RunCompleted)
	if r.Version != 1 || stepStatus(r, "post") != store.StepCompleted || stepStatus(r, "courier") != "" {
		t.Errorf("the v1 run did not keep v1's steps: %s", describe(r))
	}

	latest := h2.start("ship", "parcel-2", nil)
	pinned, created, err := h2.co.StartRun(ctx, flow.StartRequest{Flow: "ship", Version: 1, Key: "parcel-3"})
	if err != nil || !created {
		t.Fatalf("start on version 1: %v (created %v)", err, created)
	}
	for _, want := range []struct {
		run     store.Run
		version int
		last    string
	}{{latest, 2, "courier"}, {pinned, 1, "post"}} {
		if want.run.Version != want.version {
			t.Errorf("run %s started on version %d, want %d", want.run.Key, want.run.Version, want.version)
		}
		h2.waitRun(want.run.ID, "the run to wait", func(r store.Run) bool { return stepStatus(r, "hold") == store.StepWaiting })
		if _, err := h2.co.Signal(ctx, want.run.ID, baton.Event{Type: "ship.go.v1"}); err != nil {
			t.Fatal(err)
		}
		r := h2.waitStatus(want.run.ID, store.RunCompleted)
		if stepStatus(r, want.last) != store.StepCompleted {
			t.Errorf("run %s on version %d: step %s did not run: %s", want.run.Key, want.version, want.last, describe(r))
		}
		if n := rec.countKey(want.last, want.run.Key); n != 1 {
			t.Errorf("run %s: %s handled %d times, want once", want.run.Key, want.last, n)
		}
	}
	if n := rec.countKey("courier", "parcel-1"); n != 0 {
		t.Errorf("the v1 run sent version 2's courier step %d times", n)
	}
}

// A reply that arrives while no coordinator runs is taken by the next one:
// the service answers after the coordinator stopped.
func TestReplyWhileStopped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := &recorder{}
	slow := newGate()
	s := setup{dir: dir,
		flows: []flow.Flow{{Name: "slow", Version: 1, Steps: []flow.Step{
			{Name: "ask", Send: send("slow.ask.v1")},
			{Name: "next", Send: send("slow.next.v1")},
		}}},
		services: []baton.Service{service("slowpoke",
			handler("slow.ask.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
				rec.add("ask", e)
				slow.wait()
				return reply("slow.answered.v1", e, map[string]int{"n": 1}), nil
			}),
			handler("slow.next.v1", answer(rec, "next", "slow.done.v1", nil)),
		)},
	}
	h := launch(t, s)
	run := h.start("slow", "k", nil)
	eventually(t, "the service to get the command", func() bool { return rec.count("ask") == 1 })
	if err := h.co.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	slow.open() // the service answers; the runtime settles it before it stops
	h.stop()

	h2 := launch(t, s)
	r := h2.waitStatus(run.ID, store.RunCompleted)
	if got := lookup(r, "steps.ask.n"); got != "1" {
		t.Errorf("steps.ask.n = %q, want the reply given while the coordinator was down", got)
	}
	if got := rec.names(); !slices.Equal(got, []string{"ask", "next"}) {
		t.Errorf("commands handled %v, want [ask next]", got)
	}
}
