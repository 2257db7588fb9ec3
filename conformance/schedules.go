package conformance

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

// scheduleDiff says how got differs from want, field by field.
func scheduleDiff(want, got store.Schedule) string {
	var d []string
	add := func(field string, g, w any) {
		d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w))
	}
	if got.Name != want.Name {
		add("Name", got.Name, want.Name)
	}
	if got.Flow != want.Flow {
		add("Flow", got.Flow, want.Flow)
	}
	if got.Cron != want.Cron {
		add("Cron", got.Cron, want.Cron)
	}
	if got.Every != want.Every {
		add("Every", got.Every, want.Every)
	}
	if !sameJSON(got.Input, want.Input) {
		add("Input", string(got.Input), string(want.Input))
	}
	if got.Overlap != want.Overlap {
		add("Overlap", got.Overlap, want.Overlap)
	}
	if got.CatchUp != want.CatchUp {
		add("CatchUp", got.CatchUp, want.CatchUp)
	}
	if got.Paused != want.Paused {
		add("Paused", got.Paused, want.Paused)
	}
	if !sameMilli(got.LastTick, want.LastTick) {
		add("LastTick", got.LastTick, want.LastTick)
	}
	if got.LastRun != want.LastRun {
		add("LastRun", got.LastRun, want.LastRun)
	}
	if got.Buffered != want.Buffered {
		add("Buffered", got.Buffered, want.Buffered)
	}
	if got.Rev != want.Rev {
		add("Rev", got.Rev, want.Rev)
	}
	return strings.Join(d, "; ")
}

// cronSchedule and everySchedule have every field set.
func cronSchedule(name string) store.Schedule {
	return store.Schedule{
		Name:     name,
		Flow:     "nightly-report",
		Cron:     "30 2 * * 1-5",
		Input:    json.RawMessage(`{ "region": "eu", "dry": false, "limits": [10, 20.5], "note": "<&>" }`),
		Overlap:  store.OverlapBufferOne,
		CatchUp:  3,
		Paused:   true,
		LastTick: stamp(time.Now()).Add(-26 * time.Hour),
		LastRun:  unique("run-"),
		Buffered: true,
	}
}

func everySchedule(name string) store.Schedule {
	return store.Schedule{
		Name:    name,
		Flow:    "sync-inventory",
		Every:   90*time.Minute + 15*time.Second + 250*time.Millisecond,
		Input:   json.RawMessage(`["a", {"b": null}]`),
		Overlap: store.OverlapAllow,
	}
}

func saveSchedule(t *testing.T, st store.Store, s store.Schedule) store.Schedule {
	t.Helper()
	saved, err := st.SaveSchedule(t.Context(), s)
	if err != nil {
		t.Fatalf("save schedule %s with Rev %d: %v", s.Name, s.Rev, err)
	}
	want := s
	want.Rev = s.Rev + 1
	if diff := scheduleDiff(want, saved); diff != "" {
		t.Errorf("SaveSchedule(%s) with Rev %d returned: %s", s.Name, s.Rev, diff)
	}
	return saved
}

// checkSchedule fails unless the stored schedule named want.Name is want.
func checkSchedule(t *testing.T, st store.Store, what string, want store.Schedule) {
	t.Helper()
	got, err := st.Schedule(t.Context(), want.Name)
	if err != nil {
		t.Errorf("%s: Schedule(%s): %v", what, want.Name, err)
		return
	}
	if diff := scheduleDiff(want, got); diff != "" {
		t.Errorf("%s: Schedule(%s): %s", what, want.Name, diff)
	}
}

// testScheduleSave: a new schedule is saved with Rev 0 and gets Rev 1; each
// save with the stored Rev increments it; Schedule returns every field.
func testScheduleSave(t *testing.T, st store.Store) {
	for _, s := range []store.Schedule{cronSchedule(unique("sched-cron-")), everySchedule(unique("sched-every-"))} {
		saved := saveSchedule(t, st, s)
		if saved.Rev != 1 {
			t.Errorf("new schedule %s saved with Rev 0: Rev %d, want 1", s.Name, saved.Rev)
		}
		checkSchedule(t, st, "after creating it", saved)

		next := saved
		next.Paused, next.Buffered, next.CatchUp = !next.Paused, !next.Buffered, 0
		next.LastTick = stamp(time.Now())
		next.LastRun = unique("run-")
		next.Input = json.RawMessage(`{"changed": true}`)
		next.Overlap = store.OverlapSkip
		saved = saveSchedule(t, st, next)
		if saved.Rev != 2 {
			t.Errorf("schedule %s saved with Rev 1: Rev %d, want 2", s.Name, saved.Rev)
		}
		checkSchedule(t, st, "after updating it", saved)
	}
}

// testScheduleConflict: a save from another Rev than the stored one, or a
// creation of a name that exists, is a Conflict and writes nothing.
func testScheduleConflict(t *testing.T, st store.Store) {
	ctx := t.Context()
	s := saveSchedule(t, st, cronSchedule(unique("sched-")))
	current := s
	current.LastRun = unique("run-")
	current = saveSchedule(t, st, current)

	for _, rev := range []int64{0, s.Rev, current.Rev + 1} {
		stale := s
		stale.Rev, stale.Paused, stale.LastRun = rev, !s.Paused, "stale"
		_, err := st.SaveSchedule(ctx, stale)
		what := fmt.Sprintf("SaveSchedule with Rev %d while %d is stored", rev, current.Rev)
		if rev == 0 {
			what = "SaveSchedule with Rev 0 (new) of a name that exists"
		}
		expectCode(t, what, err, baton.Conflict)
		checkSchedule(t, st, "after a refused save with Rev "+fmt.Sprint(rev), current)
	}

	unknown := everySchedule(unique("sched-unknown-"))
	unknown.Rev = 3
	_, err := st.SaveSchedule(ctx, unknown)
	expectCode(t, "SaveSchedule with Rev 3 of a name never saved", err, baton.Conflict)
	_, err = st.Schedule(ctx, unknown.Name)
	expectNotFound(t, "Schedule after a refused save of a new name with Rev 3", err)
}

// testScheduleSaveRace: of coordinators racing to save the same schedule
// from the same Rev, exactly one wins.
func testScheduleSaveRace(t *testing.T, st store.Store) {
	const racers = 8
	for _, from := range []string{"new", "existing"} {
		s := everySchedule(unique("sched-"))
		if from == "existing" {
			s = saveSchedule(t, st, s)
		}
		start := make(chan struct{})
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				mine := s
				mine.LastRun = fmt.Sprintf("racer-%d", i)
				<-start
				_, errs[i] = st.SaveSchedule(t.Context(), mine)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("%s schedule: racers %d and %d both saved from Rev %d; expected exactly one to win", from, winner, i, s.Rev)
			case err == nil:
				winner = i
			case baton.ErrorCode(err) != baton.Conflict:
				t.Errorf("%s schedule: racer %d: expected a conflict or success; got %v (code %q)", from, i, err, baton.ErrorCode(err))
			}
		}
		if winner < 0 {
			t.Fatalf("%s schedule: none of %d saves racing from Rev %d succeeded: %v", from, racers, s.Rev, errs)
		}
		want := s
		want.LastRun, want.Rev = fmt.Sprintf("racer-%d", winner), s.Rev+1
		checkSchedule(t, st, fmt.Sprintf("%s schedule, after the race won by racer %d", from, winner), want)
	}
}

func scheduleNames(l []store.Schedule) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Name
	}
	return out
}

// testScheduleList: ListSchedules returns every schedule, by name.
func testScheduleList(t *testing.T, st store.Store) {
	ctx := t.Context()
	prefix := unique("sched-")
	byName := map[string]store.Schedule{}
	for _, suffix := range []string{"c", "a", "e", "b", "d"} {
		s := cronSchedule(prefix + "-" + suffix)
		if suffix == "b" || suffix == "e" {
			s = everySchedule(prefix + "-" + suffix)
		}
		byName[s.Name] = saveSchedule(t, st, s)
	}
	upd := byName[prefix+"-d"]
	upd.Paused = !upd.Paused
	byName[upd.Name] = saveSchedule(t, st, upd)

	check := func(what string, names ...string) {
		t.Helper()
		l, err := st.ListSchedules(ctx)
		if err != nil {
			t.Fatalf("%s: ListSchedules: %v", what, err)
		}
		want := make([]string, len(names))
		for i, n := range names {
			want[i] = prefix + "-" + n
		}
		if got := scheduleNames(l); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: ListSchedules returned %q; expected %q, by name", what, got, want)
		}
		for _, s := range l {
			if diff := scheduleDiff(byName[s.Name], s); diff != "" {
				t.Errorf("%s: listed schedule %s: %s", what, s.Name, diff)
			}
		}
	}
	check("after saving 5 schedules out of order", "a", "b", "c", "d", "e")
	if err := st.DeleteSchedule(ctx, prefix+"-c"); err != nil {
		t.Fatalf("delete schedule: %v", err)
	}
	check("after deleting one", "a", "b", "d", "e")
}

// testScheduleDelete: DeleteSchedule removes one schedule; what is absent is
// baton.ErrNotFound; a deleted name can be created again.
func testScheduleDelete(t *testing.T, st store.Store) {
	ctx := t.Context()
	gone := saveSchedule(t, st, cronSchedule(unique("sched-gone-")))
	kept := saveSchedule(t, st, everySchedule(unique("sched-kept-")))
	if err := st.DeleteSchedule(ctx, gone.Name); err != nil {
		t.Fatalf("delete schedule %s: %v", gone.Name, err)
	}
	_, err := st.Schedule(ctx, gone.Name)
	expectNotFound(t, "Schedule of a deleted schedule", err)
	expectNotFound(t, "a second DeleteSchedule", st.DeleteSchedule(ctx, gone.Name))
	_, err = st.Schedule(ctx, unique("sched-unknown-"))
	expectNotFound(t, "Schedule of an unknown name", err)
	expectNotFound(t, "DeleteSchedule of an unknown name", st.DeleteSchedule(ctx, unique("sched-unknown-")))
	checkSchedule(t, st, "the schedule not deleted", kept)

	again := gone
	again.Rev = 0
	if saved := saveSchedule(t, st, again); saved.Rev != 1 {
		t.Errorf("schedule created again after its deletion: Rev %d, want 1", saved.Rev)
	}
}
