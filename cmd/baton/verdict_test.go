package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/runner"
	"github.com/batonhq/baton/store"
)

// After the orchestrated demo, replaying every dead letter refuses the
// charges of the runs that failed, one line each and a count, replays the
// others, and exits 0; status says those runs failed, and why.
func TestReplayAllAfterOrchestratedRunsFailed(t *testing.T) {
	t.Parallel()
	const n, rate = 60, 0.3
	dir := t.TempDir()
	want, deadIDs := expect(n, rate)
	if want.dead == 0 {
		t.Fatalf("a fault rate of %v gives no dead-lettered order among %d", rate, n)
	}
	mustRun(t, "demo", "--style", styleOrchestration, "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate), "--data", dir)

	// A dead letter that is no flow's step: replayed as before.
	b, err := embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	loose, err := orders.NewOrder(n + 1).Event()
	if err != nil {
		t.Fatal(err)
	}
	loose.ID, loose.Source, loose.SpecVersion, loose.CorrelationID = "loose-1", "test", baton.SpecVersion, "loose-1"
	body, err := event.Marshal(loose)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddDead(t.Context(), store.DeadLetter{Group: "payment", Type: loose.Type, Body: body,
		EventID: loose.ID, CorrelationID: loose.CorrelationID, Attempts: 1, Reason: "permanent error: test"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	r := batonCmd(t, context.Background(), "dlq", "replay", "--data", dir, "--all")
	if r.code != 0 {
		t.Fatalf("dlq replay --all: exit %d, want 0 (refusals alone do not fail it)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	refusal := regexp.MustCompile(`(?m)^refused: replay dead letter \d+: it is the order\.placed\.v1 command \S+/charge#1 of run r-\S+ of flow order for o-\d+, which ended failed \(step charge: service payment gave up: .*\): .*drop it with baton dlq drop \d+`)
	if got := len(refusal.FindAllString(r.stdout, -1)); got != want.dead {
		t.Errorf("%d refusals, want one per failed run's charge (%d):\n%s", got, want.dead, r.stdout)
	}
	for _, s := range []string{
		"replayed 1 dead letters\n",
		fmt.Sprintf("refused %d dead letters: steps of flow runs that have ended; drop them with baton dlq drop", want.dead),
		"replayed dead letter ",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("dlq replay --all does not say %q:\n%s", s, r.stdout)
		}
	}
	if dead := deadLetters(t, dir); len(dead) != want.dead {
		t.Errorf("%d dead letters after the replay, want the %d refused kept", len(dead), want.dead)
	}

	out := mustRun(t, "status", "--data", dir, deadIDs[0])
	verdict := regexp.MustCompile(`(?m)^verdict: failed: step charge: service payment gave up: gave up after 4 attempts: .*gateway unavailable.* \(run r-\S+ of flow order; see baton run get r-\S+\)$`)
	if !verdict.MatchString(out) {
		t.Errorf("status of %s, whose run failed, does not say so:\n%s", deadIDs[0], out)
	}
}

// A completed run of a flow of one's own, whose events are not named
// *.completed, is reported completed, not in progress.
func TestStatusOfACompletedGenericRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	label := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		out, err := baton.NewEvent("label.printed.v1", e.Subject, map[string]string{"label": "L-1"})
		return []baton.Event{out}, err
	}
	services := []baton.Service{{Name: "printer", Handlers: []baton.Handler{{Type: "label.print.v1", Func: label}}}}
	f := flow.Flow{Name: "labels", Version: 1, Steps: []flow.Step{{Name: "print", Send: &flow.Send{Type: "label.print.v1"}}}}
	r, err := runner.New(runner.Config{Transport: b, Store: b, Services: services, Flows: []flow.Flow{f}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	co := r.Coordinator()
	run, _, err := co.StartRun(ctx, flow.StartRequest{Flow: "labels", Key: "parcel-7"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, err := co.Run(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == store.RunCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s after 20s, want completed", run.ID, got.Status)
		}
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	out := mustRun(t, "status", "--data", dir, "parcel-7")
	if want := fmt.Sprintf("\nverdict: completed (run %s of flow labels)\n", run.ID); !strings.HasSuffix(out, want) {
		t.Errorf("status of a completed run does not end with %q:\n%s", want, out)
	}
}
