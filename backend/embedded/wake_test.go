package embedded

import (
	"testing"
	"time"

	"github.com/batonhq/baton/store"
	"github.com/cockroachdb/pebble/v2"
)

// wakeKeys lists the times run id is indexed under in the wake index.
func wakeKeys(t *testing.T, b *Backend, id string) []time.Time {
	t.Helper()
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindWake}, UpperBound: []byte{kindWake + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer iter.Close()
	var out []time.Time
	for iter.First(); iter.Valid(); iter.Next() {
		if string(iter.Key()[9:]) == id {
			out = append(out, time.Unix(0, int64(decodeU64(iter.Key()[1:9]))).UTC())
		}
	}
	return out
}

func decodeU64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// TestWakeIndexIsALowerBound checks that a save pushing a run's Wake out
// leaves its wake index key where it is (no write), that DueRuns does not
// return the run before its Wake but moves its key there, and that a Wake
// brought earlier, or the run's end, moves or removes the key, also once
// the writer has forgotten the run (read from its document).
func TestWakeIndexIsALowerBound(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	run, _, err := b.CreateRun(ctx, store.Run{ID: "r-1", Flow: "ship", Key: "p-1", Status: store.RunRunning, Created: base, Wake: base.Add(time.Second)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	save := func(wake time.Time, status store.RunStatus) {
		t.Helper()
		run.Wake, run.Status = wake, status
		if run, err = b.SaveRun(ctx, run, nil); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, want ...time.Time) {
		t.Helper()
		got := wakeKeys(t, b, run.ID)
		if len(got) != len(want) || len(got) == 1 && !got[0].Equal(want[0]) {
			t.Fatalf("%s: indexed under %v, want %v", what, got, want)
		}
	}
	due := func(at time.Time) int {
		t.Helper()
		runs, err := b.DueRuns(ctx, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(runs)
	}

	save(base.Add(time.Minute), store.RunRunning)
	expect("Wake pushed out", base.Add(time.Second))
	if n := due(base.Add(2 * time.Second)); n != 0 {
		t.Fatalf("DueRuns before the run's Wake returned %d runs", n)
	}
	expect("after DueRuns before the Wake", base.Add(time.Minute))
	if n := due(base.Add(time.Minute)); n != 1 {
		t.Fatalf("DueRuns at the run's Wake returned %d runs, want 1", n)
	}

	save(base.Add(time.Hour), store.RunRunning)
	clear(b.revs) // as after a restart: read from the document
	save(base.Add(2*time.Hour), store.RunRunning)
	expect("Wake pushed out twice, the writer forgetting between", base.Add(time.Minute))
	if n := due(base.Add(time.Hour)); n != 0 {
		t.Fatalf("DueRuns before the run's Wake returned %d runs", n)
	}
	clear(b.revs)
	save(base.Add(30*time.Minute), store.RunRunning)
	expect("Wake brought earlier", base.Add(30*time.Minute))
	if n := due(base.Add(30 * time.Minute)); n != 1 {
		t.Fatalf("DueRuns at the earlier Wake returned %d runs, want 1", n)
	}
	save(base.Add(2*time.Hour), store.RunRunning)
	save(time.Time{}, store.RunCompleted)
	expect("run ended")
	got, err := b.Run(ctx, run.ID)
	if err != nil || got.Rev != run.Rev || got.Status != store.RunCompleted {
		t.Fatalf("run after its end: %+v, %v", got, err)
	}
}
