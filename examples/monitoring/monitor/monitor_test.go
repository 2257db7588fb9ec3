package monitor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/monitoring/monitor"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// clock is the scheduler's fake clock: a test moves it one interval at a
// time, and each move is one tick.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Over a fixed number of ticks, each tick stores its reading exactly once,
// and an alert is raised exactly for the readings over the threshold.
func TestEachTickStoresOnceAndAlertsOverThreshold(t *testing.T) {
	values := []float64{71.5, 79.9, 80, 80.1, 85.2, 60, 92.3, 75, 80.05, 72}
	const threshold = 80
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	ctx := context.Background()
	m, err := monitor.Start(ctx, monitor.Config{
		Memory: true, Values: monitor.Sequence(values...), Threshold: threshold,
		Every: time.Second, Tick: 5 * time.Millisecond, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)

	var events []monitor.Event
	for i := 1; i <= len(values); i++ {
		clk.Add(time.Second)
		// Wait for this tick's reading before the next tick, as a real
		// interval would: a tick coming while a run is under way is
		// skipped (the schedule's overlap policy).
		deadline := time.After(20 * time.Second)
		for stored := false; !stored; {
			select {
			case e := <-m.Events():
				events = append(events, e)
				stored = e.Reading != nil && e.Reading.Number == i
			case <-deadline:
				t.Fatalf("tick %d: no reading stored; events so far: %v", i, events)
			}
		}
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	for e := range m.Events() {
		events = append(events, e)
	}

	if got := m.Sensor.Served(); !slices.Equal(got, values) {
		t.Errorf("the sensor served %v, want each value once: %v", got, values)
	}
	readings := m.Storage.Readings()
	if len(readings) != len(values) {
		t.Fatalf("%d readings stored, want %d: %+v", len(readings), len(values), readings)
	}
	var wantAlerts []string
	for i, r := range readings {
		tick := flow.TickKey(m.Schedule.Name, start.Add(time.Duration(i+1)*time.Second))
		over := values[i] > threshold
		if r.Number != i+1 || r.Tick != tick || r.Celsius != values[i] || r.OverLimit != over || r.Seq != i+1 {
			t.Errorf("reading %d = %+v, want number %d, tick %s, %v °C, over %v", i+1, r, i+1, tick, values[i], over)
		}
		if want := values[i]*9/5 + 32; r.Fahrenheit < want-0.05 || r.Fahrenheit > want+0.05 {
			t.Errorf("reading %d: %v °F, want %.2f", i+1, r.Fahrenheit, want)
		}
		if over {
			wantAlerts = append(wantAlerts, fmt.Sprintf("%s | boiler-1 at %v C, over the 80 C threshold", tick, values[i]))
		}
	}

	var gotAlerts, gotTicks []string
	for _, e := range events {
		switch {
		case e.Reading != nil:
			gotTicks = append(gotTicks, e.Tick)
		case e.Alert != "":
			gotAlerts = append(gotAlerts, e.Tick+" | "+e.Alert)
		default:
			t.Errorf("run %s failed: %s", e.Run, e.Failed)
		}
	}
	if len(gotTicks) != len(values) || len(slices.Compact(slices.Clone(gotTicks))) != len(values) {
		t.Errorf("completed runs for ticks %v, want one per tick (%d)", gotTicks, len(values))
	}
	if !slices.Equal(gotAlerts, wantAlerts) {
		t.Errorf("alerts:\n%q\nwant exactly:\n%q", gotAlerts, wantAlerts)
	}
	if s := m.Summary(); s != (monitor.Summary{Stored: len(values), Over: len(wantAlerts), Alerts: len(wantAlerts)}) {
		t.Errorf("summary %+v", s)
	}
}

// On the real clock, as the command runs it: an interval schedule keeps
// storing readings.
func TestScheduleOnTheRealClock(t *testing.T) {
	ctx := context.Background()
	m, err := monitor.Start(ctx, monitor.Config{Memory: true, Values: monitor.Sequence(70, 90), Every: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	var readings, alerts int
	deadline := time.After(30 * time.Second)
	for readings < 2 {
		select {
		case e := <-m.Events():
			switch {
			case e.Reading != nil:
				readings++
			case e.Alert != "":
				alerts++
			default:
				t.Fatalf("run failed: %s", e.Failed)
			}
		case <-deadline:
			t.Fatalf("%d readings stored in 30s, want 2", readings)
		}
	}
	runs, err := m.Coordinator.Runs(ctx, store.RunQuery{Flow: monitor.FlowName})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Key != flow.TickKey(m.Schedule.Name, mustTick(t, r.Key)) {
			t.Errorf("run %s has key %q, want SCHEDULE@TICK", r.ID, r.Key)
		}
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for e := range m.Events() {
		if e.Alert != "" {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("%d alerts for readings 70 and 90 °C over 80, want 1", alerts)
	}
}

// The storage service stores a tick once, however often it is asked, and
// refuses what is not a reading; its file survives a restart.
func TestStorage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readings.jsonl")
	s, err := monitor.NewStorage(path, 80)
	if err != nil {
		t.Fatal(err)
	}
	handle := s.Service().Handlers[0].Func
	ask := func(id, tick, data string) ([]baton.Event, error) {
		return handle(context.Background(), baton.Event{ID: id, Type: monitor.TypeReadingReceived, Subject: tick, Data: []byte(data)})
	}
	first, err := ask("e1", "monitor@t1", `{"sensor":"boiler-1","celsius":81.5,"seq":1}`)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ask("e2", "monitor@t1", `{"sensor":"boiler-1","celsius":81.5,"seq":1}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].Type != monitor.TypeReadingStored || string(first[0].Data) != string(again[0].Data) {
		t.Errorf("stored %v, then %v: want the same readings.stored.v1", first, again)
	}
	for _, bad := range []string{`{"celsius":70}`, `{"sensor":"boiler-1","celsius":-300}`, `not json`} {
		if _, err := ask("e3", "monitor@t2", bad); !baton.IsPermanent(err) {
			t.Errorf("%s: err %v, want a permanent error (to the dead letters)", bad, err)
		}
	}
	if _, err := ask("e4", "monitor@t2", `{"sensor":"boiler-1","celsius":20,"seq":2}`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = monitor.NewStorage(path, 80)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := s.Readings()
	if len(got) != 2 || got[0].Number != 1 || !got[0].OverLimit || got[0].Fahrenheit != 178.7 || got[1].Number != 2 || got[1].OverLimit {
		t.Errorf("reloaded %+v", got)
	}
	if _, err := ask("e5", "monitor@t2", `{"sensor":"boiler-1","celsius":20,"seq":2}`); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Errorf("after a restart, a stored tick was stored again: %d readings", s.Len())
	}
}

func mustTick(t *testing.T, key string) time.Time {
	t.Helper()
	_, at, _ := strings.Cut(key, "@")
	tick, err := time.Parse(time.RFC3339, at)
	if err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	return tick
}
