package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(at string) *fakeClock {
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		panic(err)
	}
	return &fakeClock{t: t}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

var fakeRunIDs atomic.Int64

// runStarter stands in for the coordinator: it records a running run in
// the store, idempotently by key, as Coordinator.StartRun does.
type runStarter struct {
	runs store.Runs
	now  func() time.Time
}

func (f runStarter) StartRun(ctx context.Context, req StartRequest) (store.Run, bool, error) {
	r := store.Run{
		ID:      fmt.Sprintf("run-%d", fakeRunIDs.Add(1)),
		Flow:    req.Flow,
		Key:     req.Key,
		Status:  store.RunRunning,
		Input:   req.Input,
		Created: f.now(),
	}
	return f.runs.CreateRun(ctx, r, nil)
}

func openStore(t *testing.T) *embedded.Backend {
	t.Helper()
	// The schedulers here run on a fake clock months behind the real one:
	// the store's own retention sweep, which goes by the real clock, would
	// take their ended runs for old ones and remove them.
	st, err := embedded.Open(embedded.Config{Memory: true, Retention: store.KeepAll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newTestScheduler(t *testing.T, st *embedded.Backend, clock *fakeClock, starter Starter) *Scheduler {
	t.Helper()
	if starter == nil {
		starter = runStarter{runs: st, now: clock.Now}
	}
	s, err := NewScheduler(SchedulerConfig{Store: st, Starter: starter, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Scheduler, sc store.Schedule) store.Schedule {
	t.Helper()
	saved, err := s.Put(context.Background(), sc)
	if err != nil {
		t.Fatalf("put %s: %v", sc.Name, err)
	}
	return saved
}

func runDue(t *testing.T, s *Scheduler) int {
	t.Helper()
	n, err := s.RunDue(context.Background())
	if err != nil {
		t.Fatalf("run due: %v", err)
	}
	return n
}

// advance moves the clock by step until it reaches until, running a pass
// after each move, and returns how many runs the passes started. With
// finish, the runs are completed after each pass.
func advance(t *testing.T, s *Scheduler, st *embedded.Backend, clock *fakeClock, until time.Time, step time.Duration, finish bool) int {
	t.Helper()
	started := 0
	for clock.Now().Before(until) {
		next := clock.Now().Add(step)
		if next.After(until) {
			next = until
		}
		clock.Set(next)
		started += runDue(t, s)
		if finish {
			finishRuns(t, st)
		}
	}
	return started
}

// finishRuns completes every running run.
func finishRuns(t *testing.T, st *embedded.Backend) {
	t.Helper()
	ctx := context.Background()
	runs, err := st.ListRuns(ctx, store.RunQuery{Status: store.RunRunning})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		r.Status = store.RunCompleted
		if _, err := st.SaveRun(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func finishRun(t *testing.T, st *embedded.Backend, id string) {
	t.Helper()
	ctx := context.Background()
	r, err := st.Run(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r.Status = store.RunCompleted
	if _, err := st.SaveRun(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
}

// runKeys returns the keys of the runs of flow, oldest tick first.
func runKeys(t *testing.T, st *embedded.Backend, flow string) []string {
	t.Helper()
	runs, err := st.ListRuns(context.Background(), store.RunQuery{Flow: flow})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(runs))
	for i, r := range runs {
		keys[i] = r.Key
	}
	slices.Sort(keys)
	return keys
}

func schedule(t *testing.T, st *embedded.Backend, name string) store.Schedule {
	t.Helper()
	sc, err := st.Schedule(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// tickKeys returns the keys of the ticks from first to last, every d.
func tickKeys(name string, first, last time.Time, d time.Duration) []string {
	var keys []string
	for t := first; !t.After(last); t = t.Add(d) {
		keys = append(keys, TickKey(name, t))
	}
	return keys
}

func TestScheduleCronEveryMinuteForAnHour(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	put(t, s, store.Schedule{Name: "minutely", Flow: "report", Cron: "* * * * *", Input: json.RawMessage(`{"a":1}`)})

	started := advance(t, s, st, clock, mustTime("2026-03-01T11:00:00Z"), 7*time.Second, true)

	if started != 60 {
		t.Errorf("started %d runs in an hour, want 60", started)
	}
	want := tickKeys("minutely", mustTime("2026-03-01T10:01:00Z"), mustTime("2026-03-01T11:00:00Z"), time.Minute)
	if got := runKeys(t, st, "report"); !slices.Equal(got, want) {
		t.Errorf("run keys:\n got %v\nwant %v", got, want)
	}
	runs, _ := st.ListRuns(context.Background(), store.RunQuery{Flow: "report", Limit: 1})
	if len(runs) != 1 || string(runs[0].Input) != `{"a":1}` {
		t.Errorf("a run's input: %+v, want the schedule's", runs)
	}
	if sc := schedule(t, st, "minutely"); !sc.LastTick.Equal(mustTime("2026-03-01T11:00:00Z")) {
		t.Errorf("last tick %v, want 11:00", sc.LastTick)
	}
}

func TestScheduleEvery10Seconds(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	// Put between two ticks: an interval ticks on its multiples, not from
	// the time it was put.
	clock := newFakeClock("2026-03-01T10:00:03Z")
	s := newTestScheduler(t, st, clock, nil)
	put(t, s, store.Schedule{Name: "tensec", Flow: "poll", Every: 10 * time.Second})

	started := advance(t, s, st, clock, mustTime("2026-03-01T10:10:03Z"), 3*time.Second, true)

	if started != 60 {
		t.Errorf("started %d runs in ten minutes, want 60", started)
	}
	want := tickKeys("tensec", mustTime("2026-03-01T10:00:10Z"), mustTime("2026-03-01T10:10:00Z"), 10*time.Second)
	if got := runKeys(t, st, "poll"); !slices.Equal(got, want) {
		t.Errorf("run keys:\n got %v\nwant %v", got, want)
	}
}

func TestScheduleEveryDescriptorTicksLikeEvery(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	put(t, s, store.Schedule{Name: "quarter", Flow: "sync", Cron: "@every 15m"})

	started := advance(t, s, st, clock, mustTime("2026-03-01T12:00:00Z"), time.Minute, true)

	if started != 8 {
		t.Errorf("started %d runs in two hours, want 8", started)
	}
	want := tickKeys("quarter", mustTime("2026-03-01T10:15:00Z"), mustTime("2026-03-01T12:00:00Z"), 15*time.Minute)
	if got := runKeys(t, st, "sync"); !slices.Equal(got, want) {
		t.Errorf("run keys:\n got %v\nwant %v", got, want)
	}
}

// Two coordinators on one store, each with its scheduler, passing over the
// same ticks at the same time: one run per tick.
func TestScheduleTwoSchedulersOneRunPerTick(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	a := newTestScheduler(t, st, clock, nil)
	b := newTestScheduler(t, st, clock, nil)
	put(t, a, store.Schedule{Name: "shared", Flow: "report", Cron: "* * * * *", Overlap: store.OverlapAllow})

	total := 0
	until := mustTime("2026-03-01T10:30:00Z")
	for clock.Now().Before(until) {
		clock.Add(20 * time.Second)
		var wg sync.WaitGroup
		var counts [2]int
		var errs [2]error
		for i, s := range []*Scheduler{a, b} {
			wg.Go(func() { counts[i], errs[i] = s.RunDue(context.Background()) })
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatalf("at %v: %v", clock.Now(), err)
		}
		total += counts[0] + counts[1]
	}

	want := tickKeys("shared", mustTime("2026-03-01T10:01:00Z"), until, time.Minute)
	if got := runKeys(t, st, "report"); !slices.Equal(got, want) {
		t.Errorf("run keys:\n got %v\nwant %v", got, want)
	}
	if total != 30 {
		t.Errorf("the schedulers report %d runs started, want 30", total)
	}
}

// The race made deterministic: b handles the tick while a is starting it.
// a's start finds b's run, and a's save loses the compare-and-set, which is
// no error.
func TestScheduleTwoSchedulersConflictIsHarmless(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	b := newTestScheduler(t, st, clock, nil)
	plain := runStarter{runs: st, now: clock.Now}
	var bStarted int
	var bErr error
	var once sync.Once
	a := newTestScheduler(t, st, clock, StartFunc(func(ctx context.Context, req StartRequest) (store.Run, bool, error) {
		once.Do(func() { bStarted, bErr = b.RunDue(ctx) })
		return plain.StartRun(ctx, req)
	}))
	put(t, a, store.Schedule{Name: "raced", Flow: "report", Cron: "* * * * *"})
	clock.Set(mustTime("2026-03-01T10:01:00Z"))

	aStarted, aErr := a.RunDue(context.Background())

	if aErr != nil || bErr != nil {
		t.Fatalf("errors: a %v, b %v", aErr, bErr)
	}
	if aStarted != 0 || bStarted != 1 {
		t.Errorf("a started %d, b started %d; want 0 and 1", aStarted, bStarted)
	}
	if got := runKeys(t, st, "report"); !slices.Equal(got, []string{"raced@2026-03-01T10:01:00Z"}) {
		t.Errorf("runs %v, want one for 10:01", got)
	}
	sc := schedule(t, st, "raced")
	if sc.Rev != 2 {
		t.Errorf("rev %d, want 2 (put, b's save; a's save conflicted)", sc.Rev)
	}
	if !sc.LastTick.Equal(mustTime("2026-03-01T10:01:00Z")) || sc.LastRun == "" {
		t.Errorf("schedule %+v, want last tick 10:01 and its run", sc)
	}
	if n := runDue(t, a); n != 0 {
		t.Errorf("a's next pass started %d, want 0", n)
	}
}

func TestScheduleOverlapSkip(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	put(t, s, store.Schedule{Name: "long", Flow: "batch", Cron: "* * * * *"}) // skip by default

	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:01:00Z"), 30*time.Second, false); n != 1 {
		t.Fatalf("first tick started %d runs, want 1", n)
	}
	first := schedule(t, st, "long").LastRun
	// The run goes on over five more ticks: all skipped.
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:06:00Z"), 30*time.Second, false); n != 0 {
		t.Errorf("ticks during the long run started %d runs, want 0", n)
	}
	sc := schedule(t, st, "long")
	if !sc.LastTick.Equal(mustTime("2026-03-01T10:06:00Z")) || sc.LastRun != first || sc.Buffered {
		t.Errorf("after skipping: %+v", sc)
	}
	finishRun(t, st, first)
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:07:00Z"), 30*time.Second, false); n != 1 {
		t.Errorf("the tick after the run ended started %d runs, want 1", n)
	}
	want := []string{"long@2026-03-01T10:01:00Z", "long@2026-03-01T10:07:00Z"}
	if got := runKeys(t, st, "batch"); !slices.Equal(got, want) {
		t.Errorf("run keys %v, want %v", got, want)
	}
}

func TestScheduleOverlapBufferOne(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	put(t, s, store.Schedule{Name: "buf", Flow: "batch", Cron: "* * * * *", Overlap: store.OverlapBufferOne})

	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:01:00Z"), 30*time.Second, false); n != 1 {
		t.Fatalf("first tick started %d runs, want 1", n)
	}
	first := schedule(t, st, "buf").LastRun
	// 10:02 is buffered; 10:03 to 10:05 are dropped.
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:05:00Z"), 30*time.Second, false); n != 0 {
		t.Errorf("ticks during the long run started %d runs, want 0", n)
	}
	if sc := schedule(t, st, "buf"); !sc.Buffered || !sc.LastTick.Equal(mustTime("2026-03-01T10:02:00Z")) {
		t.Errorf("want 10:02 buffered: %+v", sc)
	}

	finishRun(t, st, first)
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:05:30Z"), 30*time.Second, false); n != 1 {
		t.Fatalf("after the long run, %d runs started, want the buffered one", n)
	}
	sc := schedule(t, st, "buf")
	if sc.Buffered || !sc.LastTick.Equal(mustTime("2026-03-01T10:05:00Z")) || sc.LastRun == first {
		t.Errorf("after the buffered start: %+v", sc)
	}
	want := []string{"buf@2026-03-01T10:01:00Z", "buf@2026-03-01T10:02:00Z"}
	if got := runKeys(t, st, "batch"); !slices.Equal(got, want) {
		t.Errorf("run keys %v, want %v", got, want)
	}

	// The buffered run is going: the next tick is buffered in turn.
	second := sc.LastRun
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:06:30Z"), 30*time.Second, false); n != 0 {
		t.Errorf("started %d, want 0", n)
	}
	finishRun(t, st, second)
	if n := runDue(t, s); n != 1 {
		t.Errorf("started %d, want 1", n)
	}
	want = append(want, "buf@2026-03-01T10:06:00Z")
	if got := runKeys(t, st, "batch"); !slices.Equal(got, want) {
		t.Errorf("run keys %v, want %v", got, want)
	}
}

func TestScheduleOverlapAllow(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	put(t, s, store.Schedule{Name: "all", Flow: "batch", Cron: "* * * * *", Overlap: store.OverlapAllow})

	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:05:00Z"), 30*time.Second, false); n != 5 {
		t.Errorf("five ticks with no run finished started %d runs, want 5", n)
	}
	runs, err := st.ListRuns(context.Background(), store.RunQuery{Flow: "batch", Status: store.RunRunning})
	if err != nil || len(runs) != 5 {
		t.Errorf("%d runs going (%v), want 5", len(runs), err)
	}
}

func TestScheduleCatchUpAfterDowntime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sc       store.Schedule
		wantKeys []string
	}{
		{
			name:     "cron catch up 3",
			sc:       store.Schedule{Cron: "* * * * *", CatchUp: 3, Overlap: store.OverlapAllow},
			wantKeys: []string{"s@2026-03-01T11:58:00Z", "s@2026-03-01T11:59:00Z", "s@2026-03-01T12:00:00Z"},
		},
		{
			name:     "cron catch up 0",
			sc:       store.Schedule{Cron: "* * * * *", Overlap: store.OverlapAllow},
			wantKeys: []string{"s@2026-03-01T12:00:00Z"},
		},
		{
			name:     "every catch up 3",
			sc:       store.Schedule{Every: 7 * time.Second, CatchUp: 3, Overlap: store.OverlapAllow},
			wantKeys: tickKeys("s", mustTime("2026-03-01T12:00:00Z").Truncate(7*time.Second).Add(-14*time.Second), mustTime("2026-03-01T12:00:00Z"), 7*time.Second),
		},
		{
			// Overlap applies to caught-up ticks too: the first one's run
			// is going when the next two come.
			name:     "catch up 3 with skip",
			sc:       store.Schedule{Cron: "* * * * *", CatchUp: 3},
			wantKeys: []string{"s@2026-03-01T11:58:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			clock := newFakeClock("2026-03-01T10:00:00Z")
			s := newTestScheduler(t, st, clock, nil)
			sc := tt.sc
			sc.Name, sc.Flow = "s", "report"
			put(t, s, sc)

			clock.Set(mustTime("2026-03-01T12:00:00Z")) // two hours down
			started := runDue(t, s)

			if started != len(tt.wantKeys) {
				t.Errorf("started %d, want %d", started, len(tt.wantKeys))
			}
			if got := runKeys(t, st, "report"); !slices.Equal(got, tt.wantKeys) {
				t.Errorf("run keys %v, want %v", got, tt.wantKeys)
			}
			if got := schedule(t, st, "s").LastTick; !got.Equal(clock.Now().Truncate(7*time.Second)) && !got.Equal(clock.Now()) {
				t.Errorf("last tick %v, want the latest due tick", got)
			}
			if n := runDue(t, s); n != 0 {
				t.Errorf("a second pass started %d, want 0", n)
			}
		})
	}
}

func TestSchedulePauseResume(t *testing.T) {
	t.Parallel()
	for _, catchUp := range []int{0, 2} {
		t.Run(fmt.Sprintf("catch up %d", catchUp), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := openStore(t)
			clock := newFakeClock("2026-03-01T10:00:00Z")
			s := newTestScheduler(t, st, clock, nil)
			put(t, s, store.Schedule{Name: "p", Flow: "report", Cron: "* * * * *", CatchUp: catchUp, Overlap: store.OverlapAllow})
			if n := advance(t, s, st, clock, mustTime("2026-03-01T10:01:00Z"), 30*time.Second, true); n != 1 {
				t.Fatalf("started %d before pausing, want 1", n)
			}

			sc, err := s.Pause(ctx, "p")
			if err != nil || !sc.Paused {
				t.Fatalf("pause: %+v, %v", sc, err)
			}
			if n := advance(t, s, st, clock, mustTime("2026-03-01T10:20:00Z"), 30*time.Second, true); n != 0 {
				t.Errorf("a paused schedule started %d runs", n)
			}
			list, err := s.List(ctx)
			if err != nil || len(list) != 1 || !list[0].Paused {
				t.Errorf("list: %+v, %v", list, err)
			}

			sc, err = s.Resume(ctx, "p")
			if err != nil || sc.Paused {
				t.Fatalf("resume: %+v, %v", sc, err)
			}
			started := runDue(t, s)

			want := []string{"p@2026-03-01T10:01:00Z", "p@2026-03-01T10:20:00Z"}
			if catchUp == 2 {
				want = slices.Insert(want, 1, "p@2026-03-01T10:19:00Z")
			}
			if started != len(want)-1 {
				t.Errorf("resuming started %d runs, want %d", started, len(want)-1)
			}
			finishRuns(t, st)
			if got := runKeys(t, st, "report"); !slices.Equal(got, want) {
				t.Errorf("run keys %v, want %v", got, want)
			}
			if n := advance(t, s, st, clock, mustTime("2026-03-01T10:22:00Z"), 30*time.Second, true); n != 2 {
				t.Errorf("after resuming, started %d in two minutes, want 2", n)
			}
		})
	}
}

func TestSchedulePutRejects(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	tests := []struct {
		name string
		sc   store.Schedule
		want string // in the error
	}{
		{"minute out of range", store.Schedule{Cron: "61 * * * *"}, `cron expression "61 * * * *": end of range (61) above maximum (59)`},
		{"not cron", store.Schedule{Cron: "not cron"}, `cron expression "not cron": expected exactly 5 fields`},
		{"six fields", store.Schedule{Cron: "0 * * * * *"}, "expected exactly 5 fields"},
		{"unknown descriptor", store.Schedule{Cron: "@fortnightly"}, "unrecognized descriptor"},
		{"zone without expression", store.Schedule{Cron: "CRON_TZ=UTC"}, "cron expression"},
		{"never fires", store.Schedule{Cron: "0 0 30 2 *"}, "never fires"},
		{"both", store.Schedule{Cron: "@hourly", Every: time.Hour}, "either cron"},
		{"neither", store.Schedule{}, "needs a cron expression or an interval"},
		{"every too short", store.Schedule{Every: 500 * time.Millisecond}, "shorter than the smallest interval, 1s"},
		{"no name", store.Schedule{Name: " ", Every: time.Hour}, "needs a name"},
		{"no flow", store.Schedule{Name: "x", Flow: "-", Every: time.Hour}, "needs a flow"},
		{"bad overlap", store.Schedule{Every: time.Hour, Overlap: "queue"}, `overlap "queue"`},
		{"negative catch up", store.Schedule{Every: time.Hour, CatchUp: -1}, "catch_up -1"},
		{"bad input", store.Schedule{Every: time.Hour, Input: json.RawMessage(`{`)}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := tt.sc
			if sc.Name == "" {
				sc.Name = "bad"
			}
			switch sc.Flow {
			case "":
				sc.Flow = "report"
			case "-":
				sc.Flow = ""
			}
			_, err := s.Put(context.Background(), sc)
			if baton.ErrorCode(err) != baton.Invalid {
				t.Fatalf("err %v (code %q), want invalid", err, baton.ErrorCode(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %q does not say %q", err, tt.want)
			}
		})
	}
	if list, err := s.List(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("rejected schedules were stored: %+v, %v", list, err)
	}
}

func TestSchedulePutAccepts(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	for _, expr := range []string{"*/5 * * * *", "0 9 * * MON-FRI", "@hourly", "@daily", "@every 1h30m", "CRON_TZ=Europe/Paris 0 9 * * *"} {
		if _, err := s.Put(context.Background(), store.Schedule{Name: "ok", Flow: "report", Cron: expr}); err != nil {
			t.Errorf("put %q: %v", expr, err)
		}
	}
}

func TestSchedulePutReplaceKeepsProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s := newTestScheduler(t, st, clock, nil)
	first := put(t, s, store.Schedule{Name: "r", Flow: "report", Cron: "* * * * *"})
	if !first.LastTick.Equal(clock.Now()) || first.Overlap != store.OverlapSkip || first.Rev != 1 {
		t.Errorf("new schedule: %+v, want last tick now, overlap skip, rev 1", first)
	}
	advance(t, s, st, clock, mustTime("2026-03-01T10:03:00Z"), 30*time.Second, true)
	before := schedule(t, st, "r")

	// Progress set by the caller is ignored.
	replaced := put(t, s, store.Schedule{Name: "r", Flow: "report", Cron: "*/2 * * * *", Input: json.RawMessage(`{"v":2}`),
		LastTick: mustTime("2020-01-01T00:00:00Z"), LastRun: "bogus"})

	if !replaced.LastTick.Equal(before.LastTick) || replaced.LastRun != before.LastRun || replaced.Rev != before.Rev+1 {
		t.Errorf("replaced %+v, want the progress of %+v", replaced, before)
	}
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:10:00Z"), 30*time.Second, true); n != 4 {
		t.Errorf("*/2 after 10:03 until 10:10 started %d, want 4", n)
	}

	if err := s.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "r"); !errors.Is(err, baton.ErrNotFound) {
		t.Errorf("second delete: %v, want not found", err)
	}
	if _, err := s.Pause(ctx, "r"); !errors.Is(err, baton.ErrNotFound) {
		t.Errorf("pause of a deleted schedule: %v, want not found", err)
	}
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:15:00Z"), 30*time.Second, true); n != 0 {
		t.Errorf("a deleted schedule started %d runs", n)
	}
}

// A start the coordinator refuses (no such flow) skips the tick instead of
// retrying it every pass.
func TestScheduleRefusedStartSkipsTick(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	var calls atomic.Int32
	s := newTestScheduler(t, st, clock, StartFunc(func(ctx context.Context, req StartRequest) (store.Run, bool, error) {
		calls.Add(1)
		return store.Run{}, false, baton.Errorf(baton.NotFound, "start "+req.Flow, "no such flow")
	}))
	put(t, s, store.Schedule{Name: "gone", Flow: "missing", Cron: "* * * * *"})
	clock.Set(mustTime("2026-03-01T10:01:00Z"))

	n, err := s.RunDue(context.Background())
	if n != 0 || !errors.Is(err, baton.ErrNotFound) {
		t.Errorf("pass: %d, %v; want 0 and the refusal", n, err)
	}
	if n, err := s.RunDue(context.Background()); n != 0 || err != nil || calls.Load() != 1 {
		t.Errorf("second pass: %d, %v, %d calls; want the tick not retried", n, err, calls.Load())
	}
	if sc := schedule(t, st, "gone"); !sc.LastTick.Equal(clock.Now()) {
		t.Errorf("last tick %v, want 10:01", sc.LastTick)
	}
}

// A store that fails: the tick is retried by the next pass, and still
// starts one run.
func TestScheduleUnavailableStartIsRetried(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	plain := runStarter{runs: st, now: clock.Now}
	var fail atomic.Bool
	fail.Store(true)
	s := newTestScheduler(t, st, clock, StartFunc(func(ctx context.Context, req StartRequest) (store.Run, bool, error) {
		if fail.Load() {
			return store.Run{}, false, baton.Errorf(baton.Unavailable, "start", "store away")
		}
		return plain.StartRun(ctx, req)
	}))
	put(t, s, store.Schedule{Name: "flaky", Flow: "report", Cron: "* * * * *"})
	clock.Set(mustTime("2026-03-01T10:01:00Z"))
	if _, err := s.RunDue(context.Background()); baton.ErrorCode(err) != baton.Unavailable {
		t.Fatalf("err %v, want unavailable", err)
	}
	fail.Store(false)
	clock.Add(500 * time.Millisecond)
	if n := runDue(t, s); n != 1 {
		t.Errorf("retry started %d, want 1", n)
	}
	if got := runKeys(t, st, "report"); !slices.Equal(got, []string{"flaky@2026-03-01T10:01:00Z"}) {
		t.Errorf("run keys %v", got)
	}
}

func TestNewSchedulerRejects(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	starter := runStarter{runs: st, now: time.Now}
	for _, cfg := range []SchedulerConfig{
		{Starter: starter},
		{Store: st},
		{Store: st, Starter: starter, Tick: -time.Second},
	} {
		if _, err := NewScheduler(cfg); baton.ErrorCode(err) != baton.Invalid {
			t.Errorf("%+v: err %v, want invalid", cfg, err)
		}
	}
}

func TestSchedulerStartStop(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	s, err := NewScheduler(SchedulerConfig{Store: st, Starter: runStarter{runs: st, now: time.Now}, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put(t, s, store.Schedule{Name: "live", Flow: "heartbeat", Cron: "@every 1s", Overlap: store.OverlapAllow})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("second start: %v, want conflict", err)
	}

	deadline := time.Now().Add(10 * time.Second)
	for len(runKeys(t, st, "heartbeat")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no run started within 10s by an @every 1s schedule")
		}
		time.Sleep(10 * time.Millisecond)
	}

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.Stop(stopCtx); err != nil {
		t.Errorf("second stop: %v", err)
	}
	select {
	case <-s.Stopped():
	default:
		t.Error("Stopped not closed after Stop")
	}
	if err := s.Start(ctx); err == nil {
		t.Error("start after stop succeeded")
	}
}

func TestSchedulerStopWithoutStart(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	s, err := NewScheduler(SchedulerConfig{Store: st, Starter: runStarter{runs: st, now: time.Now}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-s.Stopped()
}

// A pass whose save is lost (here to a Put that changes the overlap policy
// meanwhile) leaves a started run the schedule does not know of; the next
// pass adopts it as the last run, so overlap is judged against it.
func TestScheduleAdoptsRunOfLostSave(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	plain := runStarter{runs: st, now: clock.Now}
	var s *Scheduler
	var lost store.Run
	s = newTestScheduler(t, st, clock, StartFunc(func(ctx context.Context, req StartRequest) (store.Run, bool, error) {
		r, created, err := plain.StartRun(ctx, req)
		if req.Key == "adopt@2026-03-01T10:02:00Z" && created {
			lost = r
			if _, err := s.Put(ctx, store.Schedule{Name: "adopt", Flow: "batch", Cron: "* * * * *", Overlap: store.OverlapSkip}); err != nil {
				t.Error(err)
			}
		}
		return r, created, err
	}))
	put(t, s, store.Schedule{Name: "adopt", Flow: "batch", Cron: "* * * * *", Overlap: store.OverlapAllow})
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:02:00Z"), 30*time.Second, false); n != 2 {
		t.Fatalf("started %d, want 2", n)
	}
	first := schedule(t, st, "adopt")
	if !first.LastTick.Equal(mustTime("2026-03-01T10:01:00Z")) || first.LastRun == lost.ID {
		t.Fatalf("the 10:02 save was not lost: %+v", first)
	}

	clock.Add(30 * time.Second)
	if n := runDue(t, s); n != 0 {
		t.Errorf("started %d, want 0", n)
	}
	sc := schedule(t, st, "adopt")
	if sc.LastRun != lost.ID || !sc.LastTick.Equal(mustTime("2026-03-01T10:02:00Z")) {
		t.Errorf("schedule %+v, want the 10:02 run adopted", sc)
	}
	// The 10:01 run ends, the adopted one goes on: 10:03 is skipped.
	finishRun(t, st, first.LastRun)
	if n := advance(t, s, st, clock, mustTime("2026-03-01T10:03:00Z"), 30*time.Second, false); n != 0 {
		t.Errorf("started %d while the adopted run is going, want 0", n)
	}
	if got := len(runKeys(t, st, "batch")); got != 2 {
		t.Errorf("%d runs, want 2", got)
	}
}

// Catch-up and the number of schedules are bounded: both are keyed by
// outside input (the API's POST /v1/schedules), and each costs work on
// every pass.
func TestScheduleLimits(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-03-01T10:00:00Z")
	s, err := NewScheduler(SchedulerConfig{Store: st, Starter: runStarter{runs: st, now: clock.Now}, Now: clock.Now, MaxSchedules: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = s.Put(ctx, store.Schedule{Name: "greedy", Flow: "batch", Every: time.Second, CatchUp: MaxCatchUp + 1})
	if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "catch_up") {
		t.Errorf("catch_up %d: %v, want Invalid naming catch_up", MaxCatchUp+1, err)
	}
	put(t, s, store.Schedule{Name: "a", Flow: "batch", Every: time.Minute, CatchUp: MaxCatchUp})
	put(t, s, store.Schedule{Name: "b", Flow: "batch", Every: time.Minute})
	_, err = s.Put(ctx, store.Schedule{Name: "c", Flow: "batch", Every: time.Minute})
	if baton.ErrorCode(err) != baton.Conflict || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a third schedule over a limit of 2: %v, want Conflict naming the limit", err)
	}
	// Replacing one that exists is no new schedule.
	put(t, s, store.Schedule{Name: "b", Flow: "batch", Every: 2 * time.Minute})
	if all, _ := s.List(ctx); len(all) != 2 {
		t.Errorf("%d schedules, want 2", len(all))
	}
}
