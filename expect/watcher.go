package expect

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultGroup is the consumer group a Watcher receives events in.
const DefaultGroup = "baton.expect"

// Store is the slice of the state store a Watcher uses: the run index,
// where it keeps the instances it watches, and the journal. A store.Store
// will do.
type Store interface {
	store.Runs
	Append(ctx context.Context, entries ...store.Entry) error
}

// Config configures a Watcher. Zero values mean the documented defaults.
type Config struct {
	Store     Store         // required
	Transport bus.Transport // required
	// Expectations are watched here; at least one. Each is Validated.
	Expectations []Expectation
	// Notifier hears of broken expectations (flow.ExpectationBroken) and
	// of those met late (flow.ExpectationCleared); nil for none.
	Notifier flow.Notifier
	// Metrics, when set, is where the watcher registers its Prometheus
	// collectors (docs/observability.md); nil records none.
	Metrics prometheus.Registerer
	// Group is the consumer group events come in (default DefaultGroup).
	// Watchers sharing a store share it.
	Group string
	// Concurrency is how many events are handled at once (default 8).
	Concurrency int
	// Poll is how often instances past their deadline are looked for
	// (default 100ms).
	Poll   time.Duration
	Logger *slog.Logger
}

// Watcher watches expectations. Several watchers, in one process or many,
// may share a store and a transport: each event is handled by one of them,
// and each broken instance fires once.
type Watcher struct {
	cfg     Config
	byType  map[string][]*Expectation // event type -> the expectations it opens or meets
	metrics *metrics

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	subs    []bus.Subscription
	wg      sync.WaitGroup
	stop    sync.Once
	stopped chan struct{}
}

// New checks cfg and returns a Watcher; nothing runs until Start.
func New(cfg Config) (*Watcher, error) {
	if cfg.Store == nil || cfg.Transport == nil {
		return nil, baton.Errorf(baton.Invalid, "expect.New", "a Store and a Transport are required")
	}
	if len(cfg.Expectations) == 0 {
		return nil, baton.Errorf(baton.Invalid, "expect.New", "no expectations to watch")
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg, byType: map[string][]*Expectation{}, stopped: make(chan struct{})}
	names := map[string]bool{}
	for i := range cfg.Expectations {
		x := &cfg.Expectations[i]
		if err := x.Validate(); err != nil {
			return nil, err
		}
		if names[x.Name] {
			return nil, baton.Errorf(baton.Invalid, "expect.New", "expectation %s is given twice", x.Name)
		}
		names[x.Name] = true
		for _, t := range slices.Concat(x.After, x.Want) {
			w.byType[t] = append(w.byType[t], x)
		}
	}
	var err error
	if w.metrics, err = newMetrics(cfg.Metrics, cfg.Store, cfg.Expectations); err != nil {
		return nil, fmt.Errorf("expect.New: metrics: %w", err)
	}
	return w, nil
}

// Start subscribes the watcher's group to the types the expectations name
// and starts looking for instances past their deadline.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return baton.Errorf(baton.Conflict, "expect start", "watcher already started")
	}
	w.started = true
	patterns := make([]string, 0, len(w.byType))
	for t := range w.byType {
		patterns = append(patterns, t)
	}
	slices.Sort(patterns)
	for range w.cfg.Concurrency {
		sub, err := w.cfg.Transport.Subscribe(ctx, w.cfg.Group, patterns)
		if err != nil {
			for _, s := range w.subs {
				s.Close()
			}
			w.subs = nil
			return fmt.Errorf("expectations: subscribe %s: %w", w.cfg.Group, err)
		}
		w.subs = append(w.subs, sub)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for _, sub := range w.subs {
		w.wg.Go(func() { w.receive(runCtx, sub) })
	}
	w.wg.Go(func() { w.poll(runCtx) })
	return nil
}

// Stop stops taking events and deadlines, waits for what is in flight (or
// ctx), and closes the subscriptions. Idempotent.
func (w *Watcher) Stop(ctx context.Context) error {
	var err error
	w.stop.Do(func() {
		w.mu.Lock()
		if w.cancel != nil {
			w.cancel()
		}
		w.mu.Unlock()
		done := make(chan struct{})
		go func() { w.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("expectations stop: events still in flight: %w", ctx.Err())
		}
		w.mu.Lock()
		for _, s := range w.subs {
			s.Close()
		}
		w.mu.Unlock()
		close(w.stopped)
	})
	return err
}

// Stopped is closed when Stop has finished.
func (w *Watcher) Stopped() <-chan struct{} { return w.stopped }

// instance is what a run of an expectation keeps in its Input: enough for
// any watcher to fire it, whether it declares the expectation or not.
type instance struct {
	Expectation string        `json:"expectation"`
	After       string        `json:"after"`    // the type that opened it
	AfterID     string        `json:"after_id"` // the id of that event
	Want        []string      `json:"want"`
	Within      time.Duration `json:"within"`
}

func (in instance) awaited() string {
	x := Expectation{Want: in.Want, Within: in.Within}
	return x.awaited(in.After)
}

// met is what a run of an expectation keeps in its Result once met.
type met struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func (w *Watcher) receive(ctx context.Context, sub bus.Subscription) {
	for ctx.Err() == nil {
		d, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Logger.Error("expectations: receive", "err", err)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		work := context.WithoutCancel(ctx)
		if err := w.handle(work, d); err != nil {
			w.cfg.Logger.Error("expectations: handle an event; it will be redelivered", "type", d.Type, "id", d.ID, "err", err)
			sub.Nack(work, d, time.Second)
			continue
		}
		if err := sub.Ack(work, d); err != nil {
			w.cfg.Logger.Error("expectations: ack an event", "type", d.Type, "id", d.ID, "err", err)
		}
	}
}

// handle opens the instances an event starts and meets those it answers.
// Both are idempotent, so a redelivered event changes nothing.
func (w *Watcher) handle(ctx context.Context, d bus.Delivery) error {
	if d.Err != nil || d.CorrelationID == "" {
		// The services' groups dead-letter what cannot be read; an event
		// with no correlation id can meet no instance.
		return nil
	}
	for _, x := range w.byType[d.Type] {
		var err error
		if slices.Contains(x.After, d.Type) {
			err = w.open(ctx, x, d.Event)
		} else {
			err = w.meet(ctx, x, d.Event)
		}
		if err != nil {
			return fmt.Errorf("expectation %s: %w", x.Name, err)
		}
	}
	return nil
}

// open records an instance of x that e opens, due when x's time is up
// from now: the clock starts when the watcher receives e, so that a watcher
// catching up on a backlog does not raise alarms for answers still in it.
// An instance already recorded for e's correlation id (met before it was
// opened, as events may come out of order, or opened by an earlier event)
// is left as it is.
func (w *Watcher) open(ctx context.Context, x *Expectation, e baton.Event) error {
	now := time.Now().UTC()
	in, _ := json.Marshal(instance{Expectation: x.Name, After: e.Type, AfterID: e.ID, Want: x.Want, Within: x.Within})
	run := store.Run{ID: "x-" + event.NewID(), Flow: x.flowName(), Version: 1, Key: e.CorrelationID,
		Status: store.RunRunning, Created: now, Updated: now, Wake: now.Add(x.Within), Input: in}
	_, _, err := w.cfg.Store.CreateRun(ctx, run, nil)
	return err
}

// meet marks x's instance for e's correlation id met. One not yet opened
// is recorded met, so that its opening event, if it comes later, raises
// no false alarm. One already broken is cleared.
func (w *Watcher) meet(ctx context.Context, x *Expectation, e baton.Event) error {
	result, _ := json.Marshal(met{Type: e.Type, ID: e.ID})
	for attempt := 1; ; attempt++ {
		runs, err := w.cfg.Store.ListRuns(ctx, store.RunQuery{Flow: x.flowName(), Key: e.CorrelationID, Limit: 1})
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if len(runs) == 0 {
			run := store.Run{ID: "x-" + event.NewID(), Flow: x.flowName(), Version: 1, Key: e.CorrelationID,
				Status: store.RunCompleted, Created: now, Updated: now, Result: result}
			if _, created, err := w.cfg.Store.CreateRun(ctx, run, nil); err != nil || created {
				return err
			}
			continue // opened meanwhile
		}
		run := runs[0]
		if run.Status == store.RunCompleted {
			return nil
		}
		broken := run.Status == store.RunFailed
		run.Status, run.Wake, run.Updated, run.Result = store.RunCompleted, time.Time{}, now, result
		saved, err := w.cfg.Store.SaveRun(ctx, run, nil)
		if baton.ErrorCode(err) == baton.Conflict && attempt < 10 {
			continue // fired or met meanwhile: look again
		}
		if err != nil || !broken {
			return err
		}
		w.cleared(ctx, saved, e)
		return nil
	}
}

// poll fires the instances whose deadline has passed.
func (w *Watcher) poll(ctx context.Context) {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		work := context.WithoutCancel(ctx)
		due, err := store.DueRunsOf(work, w.cfg.Store, time.Now(), 256, func(r store.Run) bool { return flow.Reserved(r.Flow) })
		if err != nil {
			w.cfg.Logger.Error("expectations: due instances", "err", err)
			continue
		}
		for _, run := range due {
			if err := w.fire(work, run); err != nil {
				w.cfg.Logger.Error("expectations: fire", "run", run.ID, "flow", run.Flow, "key", run.Key, "err", err)
			}
		}
	}
}

// fire marks an instance broken and raises its alert. The save compares
// the run's revision, so of the watchers that find it due, one fires it;
// an answer that came meanwhile wins too.
func (w *Watcher) fire(ctx context.Context, run store.Run) error {
	if run.Status != store.RunRunning {
		return nil
	}
	var in instance
	if err := json.Unmarshal(run.Input, &in); err != nil {
		return fmt.Errorf("not an instance of an expectation: %w", err)
	}
	now := time.Now().UTC()
	run.Status, run.Wake, run.Updated = store.RunFailed, time.Time{}, now
	run.Error = "no " + in.awaited()
	saved, err := w.cfg.Store.SaveRun(ctx, run, nil)
	if baton.ErrorCode(err) == baton.Conflict {
		return nil
	}
	if err != nil {
		return err
	}
	w.metrics.broken(in.Expectation)
	msg := fmt.Sprintf("expectation %s broken for %s: %s", in.Expectation, saved.Key, saved.Error)
	// After the save: a crash in between loses the entry and the
	// notification, never fires twice.
	w.journal(ctx, store.Entry{Time: now, CorrelationID: saved.Key, Outcome: store.ExpectationBroken,
		EventID: in.AfterID, EventType: in.After, Subject: saved.Key, Source: sourcePrefix + in.Expectation, Error: saved.Error})
	w.notify(ctx, flow.Notification{Kind: flow.ExpectationBroken, Time: now, Message: msg, Run: &saved})
	return nil
}

// cleared tells that a broken instance was met late by e.
func (w *Watcher) cleared(ctx context.Context, run store.Run, e baton.Event) {
	var in instance
	json.Unmarshal(run.Input, &in)
	late := run.Updated.Sub(run.Created) - in.Within
	detail := fmt.Sprintf("%s came %v late (awaited %s)", e.Type, late.Round(time.Millisecond), in.awaited())
	w.journal(ctx, store.Entry{Time: run.Updated, CorrelationID: run.Key, Outcome: store.ExpectationMetLate,
		EventID: e.ID, EventType: e.Type, Subject: run.Key, Source: sourcePrefix + in.Expectation, Error: detail})
	w.notify(ctx, flow.Notification{Kind: flow.ExpectationCleared, Time: run.Updated,
		Message: fmt.Sprintf("expectation %s met late for %s: %s", in.Expectation, run.Key, detail), Run: &run})
}

func (w *Watcher) journal(ctx context.Context, e store.Entry) {
	if err := w.cfg.Store.Append(ctx, e); err != nil {
		w.cfg.Logger.Error("expectations: journal", "outcome", e.Outcome, "key", e.CorrelationID, "err", err)
	}
}

func (w *Watcher) notify(ctx context.Context, n flow.Notification) {
	if w.cfg.Notifier != nil {
		w.cfg.Notifier.Notify(ctx, n)
	}
}
