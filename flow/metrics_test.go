package flow

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/store"
)

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
	// count gathers the registry, as a scrape would.
	count := func(outcome string) float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if f.GetName() == "baton_schedule_ticks_total" && labels["schedule"] == "m" && labels["outcome"] == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
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
