package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/store"
)

// Config configures a Monitor. Zero values mean the defaults.
type Config struct {
	// Dir is the data directory of the embedded backend; the readings are
	// appended to Dir/readings.jsonl. Set Memory instead to keep everything
	// in memory.
	Dir    string
	Memory bool
	// Sensor is the sensor's name (default "boiler-1"); Values gives its
	// readings (default: Drift around 72 °C from a random seed).
	Sensor string
	Values func() float64
	// Threshold is the temperature, in °C, over which a reading raises an
	// alert (default 80).
	Threshold float64
	// Every is how often the sensor is read (default 1s, the smallest the
	// scheduler takes); Cron, when set, is used instead.
	Every time.Duration
	Cron  string
	// Tick is how often the scheduler looks for due ticks (default 100ms).
	Tick time.Duration
	// Now is the scheduler's clock (default time.Now): tests drive a fake one.
	Now    func() time.Time
	Logger *slog.Logger // default: discarded
}

// Event is something a Monitor saw: a reading stored by one tick's run, an
// alert that run raised, or a run that failed.
type Event struct {
	Run     string   // the run's id
	Tick    string   // the run's business key: "SCHEDULE@TIME"
	Reading *Reading // the run's result: the reading stored
	Alert   string   // an alert's message
	Failed  string   // why the run failed
}

func (e Event) String() string {
	switch {
	case e.Reading != nil:
		r := e.Reading
		s := fmt.Sprintf("stored #%-3d %s  %5.1f °C  %5.1f °F  (tick %s, sensor reading %d)",
			r.Number, r.Sensor, r.Celsius, r.Fahrenheit, tickTime(r.Tick), r.Seq)
		if r.OverLimit {
			s += fmt.Sprintf("  over %g °C", r.Limit)
		}
		return s
	case e.Alert != "":
		return "ALERT      " + e.Alert
	default:
		return fmt.Sprintf("FAILED     tick %s: %s", tickTime(e.Tick), e.Failed)
	}
}

// tickTime is the time part of a tick's business key.
func tickTime(key string) string {
	if _, t, ok := strings.Cut(key, "@"); ok {
		if at, err := time.Parse(time.RFC3339, t); err == nil {
			return at.Format("15:04:05Z")
		}
		return t
	}
	return key
}

// Summary counts what a Monitor did since it started.
type Summary struct {
	Stored int // readings stored
	Over   int // of those, over the threshold
	Alerts int // alerts raised
	Failed int // runs that failed
}

// Monitor is the monitoring example, running: the sensor API, the storage
// service, the coordinator and the scheduler on the embedded backend, with a
// notify.Hub as the alert channel.
type Monitor struct {
	Sensor      *Sensor
	SensorURL   string // where the flow reads the sensor
	Storage     *Storage
	Coordinator *flow.Coordinator
	Scheduler   *flow.Scheduler
	Schedule    store.Schedule

	cfg     Config
	server  *server
	backend *embedded.Backend
	runtime *bus.Runtime
	hub     *notify.Hub

	events         chan Event
	alerts, failed atomic.Int64
	before         int // readings the storage had at the start (from a kept data directory)

	stop    sync.Once
	stopErr error
}

// eventBuffer is how many events a Monitor holds for a slow reader.
const eventBuffer = 4096

// Start starts the example: the sensor API on a free loopback port, the
// embedded backend, the storage service, the coordinator, and the schedule
// that reads the sensor. Read Events until it is closed, and Stop it.
func Start(ctx context.Context, cfg Config) (*Monitor, error) {
	if cfg.Sensor == "" {
		cfg.Sensor = "boiler-1"
	}
	if cfg.Values == nil {
		cfg.Values = Drift(uint64(time.Now().UnixNano()), 72)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = 80
	}
	if cfg.Every == 0 && cfg.Cron == "" {
		cfg.Every = time.Second
	}
	if cfg.Tick == 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, events: make(chan Event, eventBuffer)}
	ok := false
	defer func() {
		if !ok {
			m.shutdown(context.Background())
		}
	}()

	m.Sensor = NewSensor(cfg.Sensor, cfg.Values)
	var err error
	if m.server, err = serve(m.Sensor.Handler()); err != nil {
		return nil, fmt.Errorf("sensor API: %w", err)
	}
	m.SensorURL = m.server.URL + "/readings/" + cfg.Sensor

	if m.backend, err = embedded.Open(embedded.Config{Dir: cfg.Dir, Memory: cfg.Memory, Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	readings := ""
	if !cfg.Memory {
		readings = filepath.Join(cfg.Dir, "readings.jsonl")
	}
	if m.Storage, err = NewStorage(readings, cfg.Threshold); err != nil {
		return nil, err
	}
	m.before = m.Storage.Len()
	services := []baton.Service{m.Storage.Service()}
	if m.runtime, err = bus.New(bus.Config{Transport: m.backend, Store: m.backend, Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	for _, s := range services {
		if err := m.runtime.Register(s); err != nil {
			return nil, err
		}
	}
	if err := m.runtime.Start(ctx); err != nil {
		return nil, err
	}

	// The hub is the alert channel: the flow's Notify step reaches it, and
	// so do finished runs. A webhook could be configured here as well.
	if m.hub, err = notify.New(notify.Config{Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	notes, _ := m.hub.Subscribe(flow.Alert, flow.RunCompleted, flow.RunFailed, flow.RunCancelled)
	go m.translate(notes)
	if err := m.hub.Start(ctx); err != nil {
		return nil, err
	}

	if m.Coordinator, err = flow.New(flow.Config{
		Store: m.backend, Transport: m.backend,
		Flows:    []flow.Flow{Flow(cfg.Threshold)},
		Services: services,
		Notifier: m.hub,
		Logger:   cfg.Logger,
	}); err != nil {
		return nil, err
	}
	if err := m.Coordinator.Start(ctx); err != nil {
		return nil, err
	}

	if m.Scheduler, err = flow.NewScheduler(flow.SchedulerConfig{
		Store: m.backend, Starter: m.Coordinator, Tick: cfg.Tick, Now: cfg.Now, Logger: cfg.Logger,
	}); err != nil {
		return nil, err
	}
	if m.Schedule, err = m.Scheduler.Put(ctx, Schedule(FlowName+"-"+cfg.Sensor, m.SensorURL, cfg.Every, cfg.Cron)); err != nil {
		return nil, err
	}
	if err := m.Scheduler.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// translate turns the hub's notifications into Events: a completed run's
// stored reading, then the alerts it raised.
func (m *Monitor) translate(notes <-chan flow.Notification) {
	defer close(m.events)
	alerts := map[string][]string{} // run id -> messages
	for n := range notes {
		if n.Run == nil || n.Run.Flow != FlowName {
			continue
		}
		run := n.Run
		switch n.Kind {
		case flow.Alert:
			m.alerts.Add(1)
			alerts[run.ID] = append(alerts[run.ID], n.Message)
			continue
		case flow.RunCompleted:
			var r Reading
			if err := json.Unmarshal(run.Result, &r); err != nil {
				m.events <- Event{Run: run.ID, Tick: run.Key, Failed: "the run's result is not a reading: " + err.Error()}
				break
			}
			m.events <- Event{Run: run.ID, Tick: run.Key, Reading: &r}
		default: // failed or cancelled
			m.failed.Add(1)
			m.events <- Event{Run: run.ID, Tick: run.Key, Failed: run.Error}
		}
		for _, msg := range alerts[run.ID] {
			m.events <- Event{Run: run.ID, Tick: run.Key, Alert: msg}
		}
		delete(alerts, run.ID)
	}
	// Alerts of runs that had not finished when the hub stopped.
	for id, msgs := range alerts {
		for _, msg := range msgs {
			m.events <- Event{Run: id, Alert: msg}
		}
	}
}

// Events is the stream of stored readings, alerts and failures. It is
// closed once Stop has stopped the hub and the last events are in it; a
// reader that falls a few thousand events behind loses the stream.
func (m *Monitor) Events() <-chan Event { return m.events }

// Summary counts the readings stored and the alerts and failures seen; read
// it after Events is closed for the final figures.
func (m *Monitor) Summary() Summary {
	s := Summary{Alerts: int(m.alerts.Load()), Failed: int(m.failed.Load())}
	for _, r := range m.Storage.Readings()[m.before:] {
		s.Stored++
		if r.OverLimit {
			s.Over++
		}
	}
	return s
}

// Stop stops the schedule, lets the runs under way finish (until ctx is
// done), then stops the coordinator, the storage service, the hub (which
// closes Events), the sensor API and the backend. It is idempotent.
func (m *Monitor) Stop(ctx context.Context) error {
	m.stop.Do(func() { m.stopErr = m.shutdown(ctx) })
	return m.stopErr
}

func (m *Monitor) shutdown(ctx context.Context) error {
	var errs []error
	if m.Scheduler != nil {
		errs = append(errs, m.Scheduler.Stop(ctx))
	}
	if m.Coordinator != nil {
		errs = append(errs, m.finishRuns(ctx))
		errs = append(errs, m.Coordinator.Stop(ctx))
	}
	if m.runtime != nil {
		errs = append(errs, m.runtime.Stop(ctx))
	}
	if m.hub != nil {
		errs = append(errs, m.hub.Stop(ctx))
	} else {
		close(m.events)
	}
	if m.server != nil {
		errs = append(errs, m.server.shutdown(ctx))
	}
	if m.backend != nil {
		errs = append(errs, m.backend.Close())
	}
	if m.Storage != nil {
		errs = append(errs, m.Storage.Close())
	}
	return errors.Join(errs...)
}

// finishRuns waits for the runs under way to end, or for ctx.
func (m *Monitor) finishRuns(ctx context.Context) error {
	for {
		var open int
		for _, st := range []store.RunStatus{store.RunRunning, store.RunCompensating} {
			runs, err := m.Coordinator.Runs(ctx, store.RunQuery{Flow: FlowName, Status: st, Limit: 1})
			if err != nil {
				return err
			}
			open += len(runs)
		}
		if open == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runs still under way: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
