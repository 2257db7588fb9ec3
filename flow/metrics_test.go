package flow

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

// gathered returns the value of the counter or gauge name with labels in
// reg, as a scrape would see it, and whether it is there.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// plainTransport is the embedded transport seen as a broker (not a
// Committer), so that the coordinator may have a store of its own.
type plainTransport struct{ Transport }

// failingSaves is the embedded store with saves that fail while fail is
// set: the fault that keeps a due run due.
type failingSaves struct {
	*embedded.Backend
	fail *atomic.Bool
}

func (f failingSaves) SaveRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, error) {
	if f.fail.Load() {
		return store.Run{}, baton.Errorf(baton.Unavailable, "save run", "injected fault")
	}
	return f.Backend.SaveRun(ctx, r, out)
}

// A run whose sleep is over is counted as due while the coordinator cannot
// save its next step, and no longer once it can.
func TestTimersDueMetric(t *testing.T) {
	t.Parallel()
	emb, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	var fail atomic.Bool
	fail.Store(true)
	reg := prometheus.NewRegistry()
	nap := Flow{Name: "nap", Version: 1, Steps: []Step{{Name: "nap", Sleep: Duration(time.Millisecond)}}}
	c, err := New(Config{Store: failingSaves{emb, &fail}, Transport: plainTransport{emb}, Flows: []Flow{nap},
		TimerPoll: 10 * time.Millisecond, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(ctx) })
	run, _, err := c.StartRun(ctx, StartRequest{Flow: "nap", Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	waitGauge := func(want float64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			got, ok := gathered(t, reg, "baton_timers_due", nil)
			if ok && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("baton_timers_due = %v (present: %v); want %v", got, ok, want)
			}
		}
	}
	waitGauge(1)
	fail.Store(false)
	waitGauge(0)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, err := c.Run(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == store.RunCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s; want completed once saves work", r.Status)
		}
	}
	// The saves that failed are timed with those that worked.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	saves := uint64(0)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "baton_store_operation_duration_seconds" && m.GetLabel()[0].GetValue() == "save_run" {
				saves = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if saves < 2 {
		t.Errorf("%d save_run observations; want the failed ones and the one that worked", saves)
	}
}

// The scheduler counts its ticks by outcome: one on time fired, one
// skipped while the previous run goes on, the missed ones of a downtime
// beyond the catch-up limit skipped, the caught-up one fired late.
func TestScheduleTickMetrics(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	clock := newFakeClock("2026-01-05T12:00:30Z")
	reg := prometheus.NewRegistry()
	s, err := NewScheduler(SchedulerConfig{Store: st, Starter: runStarter{runs: st, now: clock.Now}, Now: clock.Now, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, store.Schedule{Name: "m", Flow: "report", Cron: "* * * * *", CatchUp: 2, Overlap: store.OverlapSkip})
	count := func(outcome string) float64 {
		t.Helper()
		n, _ := gathered(t, reg, "baton_schedule_ticks_total", map[string]string{"schedule": "m", "outcome": outcome})
		return n
	}

	clock.Set(mustTime("2026-01-05T12:01:00Z"))
	runDue(t, s) // 12:01 starts a run, which goes on
	clock.Set(mustTime("2026-01-05T12:02:00Z"))
	runDue(t, s) // 12:02 is skipped: the run of 12:01 goes on
	if f, sk := count(tickFired), count(tickSkipped); f != 1 || sk != 1 {
		t.Fatalf("after two ticks: fired %v, skipped %v; want 1 and 1", f, sk)
	}

	finishRuns(t, st)
	clock.Set(mustTime("2026-01-05T12:10:00Z"))
	runDue(t, s)
	// 12:03 to 12:10 are due: 12:03 to 12:08 are beyond the catch-up limit
	// of two, 12:09 is caught up, and 12:10 finds its run going on.
	for outcome, want := range map[string]float64{tickFired: 1, tickCaughtUp: 1, tickSkipped: 1 + 6 + 1} {
		if got := count(outcome); got != want {
			t.Errorf("%s = %v; want %v", outcome, got, want)
		}
	}
}
