package flow_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// A run's end is journaled under its key, with how it ended and why, once:
// what reads only the journal tells a failed or a completed run from one in
// progress, whatever its events are named.
func TestRunEndIsJournaled(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := flow.Flow{Name: "ship", Version: 1, Steps: []flow.Step{
		{Name: "pack", Send: send("parcel.pack.v1", "parcel.lost.v1")},
		{Name: "wait", Wait: &flow.Wait{Type: "parcel.collected.v1"}},
	}}
	packer := service("packer", handler("parcel.pack.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		rec.add("pack", e)
		if e.CorrelationID == "p-lost" {
			return reply("parcel.lost.v1", e, nil), nil
		}
		return reply("parcel.packed.v1", e, nil), nil
	}))
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{packer}})
	ctx := context.Background()

	lost := h.waitStatus(h.start("ship", "p-lost", nil).ID, store.RunFailed)
	cancelled := h.start("ship", "p-cancelled", nil)
	h.waitRun(cancelled.ID, "waiting for the parcel", func(r store.Run) bool { return stepStatus(r, "wait") == store.StepWaiting })
	if _, err := h.co.Cancel(ctx, cancelled.ID, "customer changed their mind"); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(cancelled.ID, store.RunCancelled)
	done := h.start("ship", "p-done", nil)
	h.waitRun(done.ID, "waiting for the parcel", func(r store.Run) bool { return stepStatus(r, "wait") == store.StepWaiting })
	collected, _ := baton.NewEvent("parcel.collected.v1", "p-done", map[string]bool{"ok": true})
	if _, err := h.co.Signal(ctx, done.ID, collected); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(done.ID, store.RunCompleted)

	for _, c := range []struct {
		key    string
		id     string
		status store.RunStatus
		err    string
	}{
		{"p-lost", lost.ID, store.RunFailed, lost.Error},
		{"p-cancelled", cancelled.ID, store.RunCancelled, "customer changed their mind"},
		{"p-done", done.ID, store.RunCompleted, ""},
	} {
		var ends []store.Entry
		eventually(t, "the end of "+c.key+" journaled", func() bool {
			hist, err := h.b.History(ctx, c.key)
			if err != nil {
				t.Fatal(err)
			}
			ends = ends[:0]
			for _, e := range hist {
				if _, ok := e.Outcome.RunEnd(); ok {
					ends = append(ends, e)
				}
			}
			return len(ends) > 0
		})
		if len(ends) != 1 {
			t.Fatalf("%s: %d run ends journaled, want 1: %+v", c.key, len(ends), ends)
		}
		e := ends[0]
		if st, _ := e.Outcome.RunEnd(); st != c.status || e.Outcome != store.RunEnded(c.status) {
			t.Errorf("%s: journaled %q, want the run %s", c.key, e.Outcome, c.status)
		}
		got := fmt.Sprintf("%s %s %s %q", e.EventID, e.EventType, e.Source, e.Error)
		if want := fmt.Sprintf("%s ship baton.flow/ship %q", c.id, c.err); got != want {
			t.Errorf("%s: run end journaled as %s, want %s", c.key, got, want)
		}
	}
	if lost.Error == "" {
		t.Error("the failed run has no error to journal")
	}
}
