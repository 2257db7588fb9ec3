package conformance

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/store"
)

// maxSuiteDeadCap is the largest dead-letter cap the suite checks by filling
// it: a backend's test opens its stores with a cap this small or smaller.
const maxSuiteDeadCap = 100

// sweeper is st as a store.Sweeper, or the case is skipped.
func sweeper(t *testing.T, st store.Store) (store.Sweeper, store.Retention) {
	t.Helper()
	sw, ok := st.(store.Sweeper)
	if !ok {
		t.Skip("the store is not a store.Sweeper: it keeps its journal, runs and dead letters forever")
	}
	return sw, sw.Retention()
}

// testRetention: a sweep at a chosen time removes exactly the journal
// entries, ended runs and dead letters older than the retention, with their
// indexes, and leaves everything else as it was.
func testRetention(t *testing.T, st store.Store) {
	sw, ret := sweeper(t, st)
	if ret.Age <= 0 {
		t.Skipf("the store keeps everything forever (retention age %v)", ret.Age)
	}
	ctx := t.Context()
	// Years ahead of the clock, so that the store's own sweeps, which go
	// by the clock, find none of it old.
	base := stamp(time.Now().AddDate(10, 0, 0))
	old, young := base, base.Add(2*time.Hour)
	at := base.Add(ret.Age + time.Hour) // the cutoff: base + 1h

	corrOld, corrMixed, corrYoung := unique("corr-old-"), unique("corr-mixed-"), unique("corr-young-")
	entry := func(corr string, when time.Time, n int) store.Entry {
		return store.Entry{Time: when.Add(time.Duration(n) * time.Millisecond), CorrelationID: corr, Outcome: store.Handled,
			EventID: unique("ev-"), EventType: "order.placed.v1", Group: "billing"}
	}
	olds := []store.Entry{entry(corrOld, old, 0), entry(corrMixed, old, 1), entry(corrOld, old, 2)}
	if err := st.Append(ctx, olds...); err != nil {
		t.Fatalf("append old entries: %v", err)
	}
	youngs := []store.Entry{entry(corrMixed, young, 0), entry(corrYoung, young, 1), entry(corrYoung, young, 2)}
	if err := st.Append(ctx, youngs...); err != nil {
		t.Fatalf("append young entries: %v", err)
	}

	flow := unique("flow-")
	run := func(name string, status store.RunStatus, created time.Time) store.Run {
		r := sampleRun(unique("run-"+name+"-"), flow, unique("key-"+name+"-"), created)
		r.Status, r.Updated, r.Wake = status, created, time.Time{}
		return createRun(t, st, r)
	}
	end := func(r store.Run, status store.RunStatus, at time.Time) store.Run {
		r.Status, r.Updated = status, at
		saved, err := st.SaveRun(ctx, r, nil)
		if err != nil {
			t.Fatalf("save run %s as %s: %v", r.ID, status, err)
		}
		return saved
	}
	ms := time.Millisecond
	completedOld := end(run("completed-old", store.RunRunning, old), store.RunCompleted, old.Add(time.Minute))
	cancelledOld := run("cancelled-old", store.RunCancelled, old.Add(ms))
	failedYoung := end(run("failed-young", store.RunRunning, old.Add(2*ms)), store.RunFailed, young)
	runningOld := run("running-old", store.RunRunning, old.Add(3*ms))
	waiting := sampleRun(unique("run-waiting-old-"), flow, unique("key-waiting-old-"), old.Add(4*ms))
	waiting.Status, waiting.Updated, waiting.Wake = store.RunCompensating, old.Add(4*ms), old.Add(time.Second)
	waitingOld := createRun(t, st, waiting)
	pendingYoung := run("pending-young", store.RunPending, young)

	var deadOld, deadYoung []store.DeadLetter
	for i := range 5 {
		d := deadLetter(i)
		d.Time = old.Add(time.Duration(i) * time.Millisecond)
		if i >= 3 {
			d.Time = young.Add(time.Duration(i) * time.Millisecond)
		}
		if err := st.AddDead(ctx, d); err != nil {
			t.Fatalf("add dead letter %d: %v", i, err)
		}
		if i < 3 {
			deadOld = append(deadOld, d)
		} else {
			deadYoung = append(deadYoung, d)
		}
	}
	before := sw.Swept()

	got, err := sw.Sweep(ctx, at)
	if err != nil {
		t.Fatalf("sweep at %v: %v", at, err)
	}
	want := store.Swept{Journal: len(olds), Runs: 2, Dead: len(deadOld)}
	if got != want {
		t.Errorf("sweep at %v removed %+v; want %+v", at, got, want)
	}

	// The journal: what was young is all there, in order, by correlation
	// id and in the feed.
	checkHistory := func(corr string, want []store.Entry) {
		t.Helper()
		h := history(t, st, corr)
		if len(h) != len(want) {
			t.Errorf("History(%s) after the sweep: %d entries (%s); want %d", corr, len(h), outcomes(h), len(want))
			return
		}
		for i := range want {
			w := want[i]
			w.Seq = h[i].Seq
			if diff := entryDiff(w, h[i]); diff != "" {
				t.Errorf("History(%s)[%d] after the sweep: %s", corr, i, diff)
			}
		}
	}
	checkHistory(corrOld, nil)
	checkHistory(corrMixed, youngs[:1])
	checkHistory(corrYoung, youngs[1:])
	feed, err := st.Since(ctx, 0, 100)
	if err != nil {
		t.Fatalf("since 0: %v", err)
	}
	var feedIDs, youngIDs []string
	for _, e := range feed {
		feedIDs = append(feedIDs, e.EventID)
	}
	for _, e := range youngs {
		youngIDs = append(youngIDs, e.EventID)
	}
	if !slices.Equal(feedIDs, youngIDs) {
		t.Errorf("Since(0) after the sweep: events %v; want the young ones, %v", feedIDs, youngIDs)
	}

	// The runs: the ended and old are gone, with their business keys; the
	// others are as they were, listed and due as before.
	for _, r := range []store.Run{completedOld, cancelledOld} {
		_, err := st.Run(ctx, r.ID)
		expectNotFound(t, "Run("+r.ID+") of a swept "+string(r.Status)+" run", err)
		byKey, err := st.ListRuns(ctx, store.RunQuery{Flow: r.Flow, Key: r.Key})
		if err != nil || len(byKey) != 0 {
			t.Errorf("ListRuns(flow %s, key %s) of a swept run: %v, %v; want none", r.Flow, r.Key, runIDs(byKey), err)
		}
	}
	kept := []store.Run{pendingYoung, waitingOld, runningOld, failedYoung} // newest first
	for _, r := range kept {
		checkRun(t, st, "a run the sweep keeps", r)
		byKey, err := st.ListRuns(ctx, store.RunQuery{Flow: r.Flow, Key: r.Key})
		if err != nil || len(byKey) != 1 || byKey[0].ID != r.ID {
			t.Errorf("ListRuns(flow %s, key %s) after the sweep: %v, %v; want %s", r.Flow, r.Key, runIDs(byKey), err, r.ID)
		}
	}
	listed, err := st.ListRuns(ctx, store.RunQuery{Flow: flow})
	if err != nil {
		t.Fatalf("list runs of %s: %v", flow, err)
	}
	wantIDs := runIDs(selectRuns(kept, store.RunQuery{Flow: flow}))
	if got := runIDs(listed); !slices.Equal(got, wantIDs) {
		t.Errorf("ListRuns(flow %s) after the sweep: %v; want %v", flow, got, wantIDs)
	}
	checkDue(t, "DueRuns after the sweep", []store.Run{waitingOld}, dueRuns(t, st, at, 10))
	// The business key of a swept run is free again.
	again := sampleRun(unique("run-again-"), flow, completedOld.Key, young)
	createRun(t, st, again)

	// The dead letters: the young are all there.
	dead := listDead(t, st, "", 100)
	if len(dead) != len(deadYoung) {
		t.Fatalf("ListDead after the sweep: %d dead letters; want the %d young ones", len(dead), len(deadYoung))
	}
	for i, d := range dead {
		w := deadYoung[i]
		w.ID = d.ID
		if diff := deadDiff(w, d); diff != "" {
			t.Errorf("dead letter %d after the sweep: %s", i, diff)
		}
	}

	// Nothing more is old: a second sweep removes nothing, and the total
	// counts the first.
	if got, err := sw.Sweep(ctx, at); err != nil || got != (store.Swept{}) {
		t.Errorf("second sweep at %v: removed %+v, %v; want nothing", at, got, err)
	}
	total := sw.Swept()
	total.Journal -= before.Journal
	total.Runs -= before.Runs
	total.Dead -= before.Dead
	total.DeadOverCap -= before.DeadOverCap
	if total != want {
		t.Errorf("Swept() grew by %+v over the two sweeps; want %+v", total, want)
	}
}

// testRetentionDeadCap: a sweep drops the oldest dead letters beyond the
// cap, and counts them.
func testRetentionDeadCap(t *testing.T, st store.Store) {
	sw, ret := sweeper(t, st)
	if ret.DeadCap < 0 {
		t.Skip("the store keeps any number of dead letters")
	}
	if ret.DeadCap > maxSuiteDeadCap {
		t.Fatalf("the store's dead-letter cap is %d: open the suite's stores with a Retention.DeadCap of at most %d, so that the cap is checked", ret.DeadCap, maxSuiteDeadCap)
	}
	ctx := t.Context()
	const over = 3
	before := sw.Swept()
	var all []store.DeadLetter
	for i := range ret.DeadCap + over {
		d := deadLetter(i)
		if err := st.AddDead(ctx, d); err != nil {
			t.Fatalf("add dead letter %d: %v", i, err)
		}
		all = append(all, d)
	}
	if _, err := sw.Sweep(ctx, time.Now()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	// Counted by the store's totals, which include its own sweeps in the
	// background: one of them may have come first (it sweeps once when
	// opened), and the two together must not drop more than the excess.
	if got := sw.Swept().DeadOverCap - before.DeadOverCap; got != over {
		t.Errorf("sweeps of %d dead letters with a cap of %d removed %d over the cap; want %d", len(all), ret.DeadCap, got, over)
	}
	dead := listDead(t, st, "", 2*maxSuiteDeadCap)
	if len(dead) != ret.DeadCap {
		t.Fatalf("ListDead after the sweep: %d dead letters; want the cap, %d", len(dead), ret.DeadCap)
	}
	for i, d := range dead {
		w := all[over+i]
		w.ID = d.ID
		if diff := deadDiff(w, d); diff != "" {
			t.Errorf("dead letter %d after the sweep (the oldest %d dropped): %s", i, over, diff)
		}
	}
}

// testDeadBodyBound: a dead letter keeps at most Retention.DeadBody bytes of
// its body, and says that it was cut and how long the body was.
func testDeadBodyBound(t *testing.T, st store.Store) {
	_, ret := sweeper(t, st)
	if ret.DeadBody < 0 {
		t.Skip("the store keeps whole dead-letter bodies")
	}
	ctx := t.Context()
	fits := deadLetter(1)
	fits.Body = bytes.Repeat([]byte{'a'}, ret.DeadBody)
	long := deadLetter(2)
	long.Body = bytes.Repeat([]byte("0123456789"), ret.DeadBody/10+10)
	for _, d := range []store.DeadLetter{fits, long} {
		if err := st.AddDead(ctx, d); err != nil {
			t.Fatalf("add a dead letter of %d bytes: %v", len(d.Body), err)
		}
	}
	dead := listDead(t, st, "", 10)
	if len(dead) != 2 {
		t.Fatalf("ListDead: %d dead letters; want 2", len(dead))
	}
	fits.ID = dead[0].ID
	if diff := deadDiff(fits, dead[0]); diff != "" {
		t.Errorf("a dead letter of %d bytes, the bound: %s", ret.DeadBody, diff)
	}
	cut := long
	cut.ID, cut.Body, cut.Truncated, cut.Size = dead[1].ID, long.Body[:ret.DeadBody], true, len(long.Body)
	one, err := st.Dead(ctx, dead[1].ID)
	if err != nil {
		t.Fatalf("dead %s: %v", dead[1].ID, err)
	}
	for what, got := range map[string]store.DeadLetter{"ListDead": dead[1], "Dead": one} {
		if diff := deadDiff(cut, got); diff != "" {
			t.Errorf("%s: a dead letter of %d bytes, over the bound of %d: %s", what, len(long.Body), ret.DeadBody, diff)
		}
	}
}
