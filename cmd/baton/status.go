package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	expectation "github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	f := newFlags("status", "show where one order is, and why it stopped",
		"[flags] ORDER-ID", `
Prints the timeline of one business transaction from the journal, one line
per entry: the time since its first entry, the outcome (published, handled,
failed, dead-lettered, duplicate, replayed; run-completed, run-failed,
run-cancelled for a flow run's end), the event type and id, the group
that handled it (or the source that published it), the attempt, how long the
handler took, and the error or the ids of the events it caused. Then a
verdict: for a flow run, how the run ended (completed, failed or cancelled,
with the reason) as the coordinator journaled it; otherwise completed or
cancelled (an event named *.completed or *.cancelled was published),
dead-lettered (with the reason), or in progress (with the last step).
For a flow run of ORDER-ID that has not ended, a line says the step it
waits at, what the step waits for, and since when.
When a declared expectation was broken for it (expectation-broken), a line
says which and what was awaited, and whether it was met late since
(expectation-met-late); the verdict names those still broken.
Last, when the events carried a W3C trace context, the id of the trace
(of each, when there were several) to open in a tracing tool.

ORDER-ID is any correlation id; the demo's orders are o-000000, o-000001, ...

It reads the data directory --data DIR (directly, or through the control
socket of the process that holds it), the store of a broker deployment
directly with --bus URL --store URL --namespace NAME (or BATON_BUS,
BATON_STORE and BATON_NAMESPACE), or asks a baton server's API with
--server URL.`,
		"baton status --data ./baton-data o-000017",
		"baton status --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0 o-000017",
		"baton status --server http://127.0.0.1:7070 o-000017",
		"baton status --data ./baton-data --json o-000017 | jq '.[].outcome'")
	tgt := f.targetFlags(e, false)
	asJSON := f.Bool("json", false, "print the journal entries as JSON")
	wide := f.Bool("wide", false, "show event ids whole (default: the part that tells them apart)")
	args, err := f.parseArgs(e, args, 1, 1, "ORDER-ID")
	if err != nil {
		return err
	}
	id := args[0]
	src, _, err := tgt.open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	h, err := src.History(ctx, id)
	if err != nil {
		return tgt.explain(err)
	}
	if len(h) == 0 {
		return fmt.Errorf("nothing journaled for %q in %s: no event has that correlation id (an event published without one takes its subject; the demo's orders are o-000000, o-000001, ...)", id, tgt.where())
	}
	if *asJSON {
		return printJSON(e.stdout, h)
	}
	fmt.Fprintf(e.stdout, "%s: %d journal entries from %s\n\n", id, len(h), h[0].Time.Local().Format("2006-01-02 15:04:05.000"))
	rows := [][]string{append([]string{"TIME"}, columnNames...)}
	for _, en := range h {
		rows = append(rows, append([]string{since(en.Time.Sub(h[0].Time))}, columns(en, idFormat(*wide))...))
	}
	if err := table(e.stdout, rows); err != nil {
		return err
	}
	lines, broken := brokenExpectations(h)
	if len(lines) > 0 {
		fmt.Fprintf(e.stdout, "\nexpectations:\n")
		for _, l := range lines {
			fmt.Fprintf(e.stdout, "  %s\n", l)
		}
	}
	// The verdict is the transaction's; the watcher's entries are about it.
	var steps []store.Entry
	for _, en := range h {
		if _, ok := expectation.Name(en); !ok {
			steps = append(steps, en)
		}
	}
	v := verdict(steps)
	if len(broken) > 0 {
		v += "; expectation " + strings.Join(broken, ", ") + " broken"
	}
	fmt.Fprintf(e.stdout, "\nverdict: %s\n", v)
	waits, err := waiting(ctx, src, id, time.Now())
	if err != nil {
		return err
	}
	for _, w := range waits {
		fmt.Fprintf(e.stdout, "%s\n", w)
	}
	if ids := traceIDs(h); len(ids) > 0 {
		fmt.Fprintf(e.stdout, "trace: %s\n", strings.Join(ids, ", "))
	}
	return nil
}

// brokenExpectations describes the expectations the journal h says were broken,
// one line each in the order they broke, and names those not met since.
func brokenExpectations(h []store.Entry) (lines, broken []string) {
	var names []string
	last := map[string]store.Entry{}
	first := map[string]store.Entry{}
	for _, e := range h {
		name, ok := expectation.Name(e)
		if !ok {
			continue
		}
		if _, seen := first[name]; !seen {
			names = append(names, name)
			first[name] = e
		}
		last[name] = e
	}
	for _, name := range names {
		b, l := first[name], last[name]
		if l.Outcome == store.ExpectationMetLate {
			lines = append(lines, fmt.Sprintf("%s: broken, then met late: %s", name, l.Error))
			continue
		}
		broken = append(broken, name)
		lines = append(lines, fmt.Sprintf("%s: broken: %s (event %s)", name, b.Error, shortID(b.EventID)))
	}
	return lines, broken
}

// waiting says, for each run with the business key that has not ended,
// the steps it waits at and since when. A process that runs no
// coordinator has no runs: nothing to say.
func waiting(ctx context.Context, src source, key string, now time.Time) ([]string, error) {
	runs, err := src.Runs(ctx, store.RunQuery{Key: key, Limit: 20})
	if baton.ErrorCode(err) == baton.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the runs of %s: %w", key, err)
	}
	var out []string
	for _, r := range runs {
		if r.Status.Terminal() || flow.Reserved(r.Flow) {
			continue
		}
		var at []string
		for _, name := range slices.Sorted(maps.Keys(r.Steps)) {
			st := r.Steps[name]
			if st.Status != store.StepRunning && st.Status != store.StepWaiting {
				continue
			}
			what := "its result"
			switch {
			case st.Status == store.StepWaiting:
				what = "an event"
			case st.Backoff:
				what = "its next attempt"
			}
			line := fmt.Sprintf("step %s (attempt %d) waits for %s since %s (%s ago)", name, max(st.Attempts, 1), what,
				st.Started.Local().Format("15:04:05.000"), now.Sub(st.Started).Round(time.Millisecond))
			if !st.Due.IsZero() {
				line += fmt.Sprintf(", due %s", st.Due.Local().Format("15:04:05.000"))
			}
			at = append(at, line)
		}
		head := fmt.Sprintf("run %s of flow %s: %s since %s", r.ID, r.Flow, r.Status, r.Updated.Local().Format("2006-01-02 15:04:05.000"))
		if len(at) == 0 {
			out = append(out, head)
			continue
		}
		out = append(out, head+"; "+strings.Join(at, "; "))
	}
	return out, nil
}
