package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// baton status says where a flow run that has not ended waits: the step,
// what for, and since when; runs that ended and the runs of expectations
// are left out.
func TestStatusSaysWhereARunWaits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A fixed date, so the store keeps everything: its retention sweep reads the real clock.
	b, err := embedded.Open(embedded.Config{Dir: dir, Retention: store.KeepAll})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	started := time.Date(2026, 12, 6, 21, 0, 0, 0, time.Local)
	runs := []store.Run{
		{ID: "run-open", Flow: "order", Key: "o-7", Status: store.RunRunning, Created: started, Updated: started,
			Steps: map[string]*store.StepState{
				"reserve": {Status: store.StepCompleted, Attempts: 1, Started: started, Ended: started.Add(time.Second)},
				"charge":  {Status: store.StepRunning, Attempts: 2, Started: started.Add(2 * time.Second), Due: started.Add(32 * time.Second)},
			}},
		{ID: "run-done", Flow: "refund", Key: "o-7", Status: store.RunCompleted, Created: started, Updated: started},
		{ID: "run-expect", Flow: flow.ReservedPrefix + "inventory-answers", Key: "o-7", Status: store.RunRunning, Created: started, Updated: started},
	}
	for _, r := range runs {
		if _, _, err := b.CreateRun(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Append(ctx, store.Entry{Time: started, CorrelationID: "o-7", Outcome: store.Handled, EventID: "e-1", EventType: "order.placed.v1", Group: "order"}); err != nil {
		t.Fatal(err)
	}
	b.Close()

	out := mustRun(t, "status", "--data", dir, "o-7")
	want := "run run-open of flow order: running since 2026-12-06 21:00:00.000; step charge (attempt 2) waits for its result since 21:00:02.000 ("
	if !strings.Contains(out, want) {
		t.Errorf("status prints no %q:\n%s", want, out)
	}
	if !strings.Contains(out, "due 21:00:32.000") {
		t.Errorf("status does not say when the step is due:\n%s", out)
	}
	for _, not := range []string{"run-done", "run-expect", "step reserve"} {
		if strings.Contains(out, not) {
			t.Errorf("status names %s, which waits for nothing:\n%s", not, out)
		}
	}
}
