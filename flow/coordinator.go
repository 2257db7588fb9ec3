package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/internal/jsonx"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// DefaultGroup is the consumer group the coordinator receives its replies
// in.
const DefaultGroup = "baton.coordinator"

// Store is the slice of the state store a Coordinator uses: its runs, and
// the journal, where it records how each run ended. A store.Store will do.
// What a store may offer beyond it is discovered: a store.Outbox (a store
// that is not the transport keeps what transitions send there, and the
// coordinator relays it), or a store that is also the transport saves a
// transition and acknowledges the reply that caused it in one write.
type Store interface {
	store.Runs
	Append(ctx context.Context, entries ...store.Entry) error
}

// Transport is what a Coordinator needs of the bus: to publish, to
// subscribe its reply group, and to send each step's command to the one
// group of the service that performs it (bus.GroupPublisher), which no
// step can do without. The embedded, RabbitMQ and NATS transports are all
// one.
type Transport interface {
	bus.Transport
	bus.GroupPublisher
}

// Config configures a Coordinator. Zero values mean the documented defaults.
type Config struct {
	Store Store // required
	// Transport is required. When it is a bus.Committer (the embedded
	// backend) Store must be the store its commits write to, the transport
	// itself: see bus.CheckStore.
	Transport Transport
	// Flows are the definitions the coordinator runs; several versions of
	// one flow may be given.
	Flows []Flow
	// Services say which service handles each event type a step sends:
	// the coordinator sends it to that service's consumer group.
	Services []baton.Service
	// Group is the consumer group replies come back to (default
	// DefaultGroup). Coordinators sharing a store share it.
	Group string
	// Concurrency is how many replies are handled at once (default 128:
	// each waits for its transition's write to be durable).
	Concurrency int
	// HTTP configures HTTP steps.
	HTTP HTTPConfig
	// Notifier hears about finished runs, refused starts and alerts.
	Notifier Notifier
	// Validate is the user's own check of a start, after the input schema.
	Validate func(ctx context.Context, req StartRequest) error
	// TimerPoll is how often runs with due timeouts, sleeps and retries are
	// looked for (default 20ms).
	TimerPoll time.Duration
	Logger    *slog.Logger
	// Metrics, when set, is where the coordinator registers its Prometheus
	// collectors (see docs/observability.md); nil records none.
	Metrics prometheus.Registerer
	// TracerProvider, when set, is where the coordinator's spans go (see
	// trace.go and docs/observability.md); nil makes none.
	TracerProvider trace.TracerProvider
}

// Coordinator runs flows. It is safe for concurrent use.
type Coordinator struct {
	cfg      Config
	flows    map[string][]*Flow // by name, ascending versions
	routes   map[string]string  // event type -> group
	waits    map[string]bool    // event types some Wait step waits for
	registry *event.Registry    // input schemas, as types flow.NAME.vN
	http     *HTTPClient
	seed     maphash.Seed
	metrics  *metrics
	tracer   *tracer
	// stripes serialise the transitions of a run in this process and cache
	// the runs they last saved, sparing a read and a decode per transition;
	// a save another coordinator made meanwhile shows as a conflict, and
	// the run is read again.
	stripes [256]stripe

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	subs    []bus.Subscription
	stopped chan struct{}
	stop    sync.Once
	kick    chan struct{} // a transition left messages in the store's outbox
	async   asyncAcker    // the store's, if it can save a transition before it is durable
}

var _ Starter = (*Coordinator)(nil)

type stripe struct {
	sync.Mutex
	runs map[string]store.Run
	// unsettled holds, for a run with a transition saved but not yet
	// durable, what is closed once that transition is settled: the next
	// transition of the run does what it asks (after) only then, so that a
	// run's notes, calls and metrics keep the order of its transitions.
	// It has a lock of its own: settling, which empties it, would wait
	// otherwise for the transitions that hold the stripe while the writer
	// takes their saves.
	settling  sync.Mutex
	unsettled map[string]chan struct{}
}

// maxCachedPerStripe bounds the cache: past it a stripe forgets its runs.
const maxCachedPerStripe = 1024

func (c *Coordinator) stripe(id string) *stripe {
	return &c.stripes[maphash.String(c.seed, id)%uint64(len(c.stripes))]
}

// remember caches a saved run; call it with the stripe locked.
func (s *stripe) remember(r store.Run) {
	if r.Status.Terminal() {
		delete(s.runs, r.ID)
		return
	}
	if s.runs == nil || len(s.runs) >= maxCachedPerStripe {
		s.runs = make(map[string]store.Run)
	}
	s.runs[r.ID] = r
}

// clone copies a run deep enough for a transition to change it.
func clone(r store.Run) store.Run {
	steps := make(map[string]*store.StepState, len(r.Steps))
	for k, v := range r.Steps {
		st := *v
		steps[k] = &st
	}
	r.Steps = steps
	return r
}

// New validates cfg and the flows and returns a Coordinator.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Store == nil || cfg.Transport == nil {
		return nil, baton.Errorf(baton.Invalid, "flow.New", "a Store and a Transport are required")
	}
	if err := bus.CheckStore(cfg.Transport, cfg.Store); err != nil {
		return nil, baton.Errorf(baton.Invalid, "flow.New", "%w", err)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 128
	}
	if cfg.TimerPoll <= 0 {
		cfg.TimerPoll = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tr := newTracer(cfg.TracerProvider, cfg.Transport)
	httpCfg := cfg.HTTP
	httpCfg.Transport = tr.transport(httpCfg.Transport)
	c := &Coordinator{
		cfg: cfg, flows: map[string][]*Flow{}, routes: map[string]string{}, waits: map[string]bool{},
		registry: event.NewRegistry(), http: NewHTTPClient(httpCfg), seed: maphash.MakeSeed(),
		stopped: make(chan struct{}), kick: make(chan struct{}, 1), tracer: tr,
	}
	var err error
	if c.metrics, err = newMetrics(cfg); err != nil {
		return nil, fmt.Errorf("flow.New: metrics: %w", err)
	}
	if a, ok := cfg.Store.(asyncAcker); ok {
		c.async = c.metrics.timedAsync(a)
	}
	c.cfg.Store = c.metrics.timed(cfg.Store)
	for _, s := range cfg.Services {
		for _, h := range s.Handlers {
			if other, dup := c.routes[h.Type]; dup && other != s.Name {
				return nil, baton.Errorf(baton.Invalid, "flow.New", "%s is handled by both %s and %s: a step could not know where to send it", h.Type, other, s.Name)
			}
			c.routes[h.Type] = s.Name
		}
	}
	for i := range cfg.Flows {
		f := &cfg.Flows[i]
		if err := f.Validate(); err != nil {
			return nil, err
		}
		for _, g := range c.flows[f.Name] {
			if g.Version == f.Version {
				return nil, baton.Errorf(baton.Invalid, "flow.New", "flow %s v%d is given twice", f.Name, f.Version)
			}
		}
		c.flows[f.Name] = append(c.flows[f.Name], f)
		if len(f.InputSchema) > 0 {
			if err := c.registry.Schema(inputType(f), f.InputSchema); err != nil {
				return nil, fmt.Errorf("flow %s v%d: input schema: %w", f.Name, f.Version, err)
			}
		}
		for _, steps := range [][]Step{f.Steps, f.OnFailure} {
			walkSteps(steps, func(s *Step) {
				if s.Wait != nil {
					c.waits[s.Wait.Type] = true
				}
			})
		}
	}
	for _, fs := range c.flows {
		sortByVersion(fs)
	}
	return c, nil
}

func inputType(f *Flow) string {
	return fmt.Sprintf("flow.%s.v%d", strings.NewReplacer(".", "_").Replace(f.Name), f.Version)
}

func sortByVersion(fs []*Flow) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Version < fs[j-1].Version; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func walkSteps(steps []Step, fn func(*Step)) {
	for i := range steps {
		s := &steps[i]
		fn(s)
		if s.Parallel != nil {
			for _, b := range s.Parallel.Branches {
				walkSteps(b, fn)
			}
		}
		for _, b := range s.Choice {
			walkSteps(b.Steps, fn)
		}
		if s.Compensate != nil {
			walkSteps([]Step{*s.Compensate}, fn)
		}
	}
}

// Flow returns the definition of a flow at a version (0: the latest).
func (c *Coordinator) Flow(name string, version int) (*Flow, error) {
	fs := c.flows[name]
	if len(fs) == 0 {
		return nil, &baton.Error{Code: baton.NotFound, Op: "flow " + name, Err: errors.New("no such flow")}
	}
	if version == 0 {
		return fs[len(fs)-1], nil
	}
	for _, f := range fs {
		if f.Version == version {
			return f, nil
		}
	}
	return nil, &baton.Error{Code: baton.NotFound, Op: fmt.Sprintf("flow %s v%d", name, version), Err: errors.New("no such version")}
}

// Flows lists the definitions, every version.
func (c *Coordinator) Flows() []Flow {
	var out []Flow
	for _, fs := range c.flows {
		for _, f := range fs {
			out = append(out, *f)
		}
	}
	return out
}

// Start subscribes to replies, starts the timer loop, and resumes the runs a
// previous coordinator left under way (timers, HTTP calls).
func (c *Coordinator) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return baton.Errorf(baton.Conflict, "start", "coordinator already started")
	}
	c.started = true
	patterns := []string{bus.TypeStepFailed}
	for t := range c.waits {
		patterns = append(patterns, t)
	}
	var subs []bus.Subscription
	for range c.cfg.Concurrency {
		sub, err := c.cfg.Transport.Subscribe(ctx, c.cfg.Group, patterns)
		if err != nil {
			for _, s := range subs {
				s.Close()
			}
			return fmt.Errorf("coordinator: subscribe %s: %w", c.cfg.Group, err)
		}
		subs = append(subs, sub)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel, c.subs = cancel, subs
	if err := c.resume(ctx); err != nil {
		cancel()
		return err
	}
	for _, sub := range subs {
		c.wg.Go(func() { c.receive(runCtx, sub) })
	}
	c.wg.Go(func() { c.timers(runCtx) })
	if ob, ok := c.cfg.Store.(store.Outbox); ok {
		c.wg.Go(func() { c.relay(runCtx, ob) })
	}
	return nil
}

// Stop stops taking replies and timers, waits for the transitions in flight
// (or ctx), and closes the subscriptions. Idempotent.
func (c *Coordinator) Stop(ctx context.Context) error {
	var err error
	c.stop.Do(func() {
		c.mu.Lock()
		cancel := c.cancel
		c.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		done := make(chan struct{})
		go func() { c.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("coordinator stop: transitions still in flight: %w", ctx.Err())
		}
		c.mu.Lock()
		for _, s := range c.subs {
			s.Close()
		}
		c.mu.Unlock()
		close(c.stopped)
	})
	return err
}

// Stopped is closed when Stop has finished.
func (c *Coordinator) Stopped() <-chan struct{} { return c.stopped }

// StartRun validates a request (the flow exists, the input satisfies the
// flow's schema, the user's Validate hook agrees), then records the run and
// dispatches its first steps in one write. Starting a key the flow already
// has returns that run, created false. A refused start is a baton.Invalid
// (or NotFound) error and is told to the notifier.
func (c *Coordinator) StartRun(ctx context.Context, req StartRequest) (store.Run, bool, error) {
	f, err := c.checkStart(ctx, req)
	if err != nil {
		if c.cfg.Notifier != nil {
			r := req
			c.cfg.Notifier.Notify(ctx, Notification{Kind: InputInvalid, Time: time.Now(), Message: err.Error(), Request: &r})
		}
		return store.Run{}, false, err
	}
	now := time.Now().UTC()
	id := "r-" + event.NewID()
	key := req.Key
	if key == "" {
		key = id
	}
	input := req.Input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	data, _ := json.Marshal(map[string]json.RawMessage{"input": input})
	run := store.Run{ID: id, Flow: f.Name, Version: f.Version, Key: key, Status: store.RunRunning,
		Created: now, Updated: now, Input: input, Data: data, Steps: map[string]*store.StepState{}}
	if span := c.tracer.start(ctx, &run); span != nil {
		defer span.End()
	}
	x := c.exec(&run, f, now)
	x.advance()
	stored, created, err := c.cfg.Store.CreateRun(ctx, run, x.sending())
	if err != nil || !created {
		if err == nil {
			x.endSpans(errors.New("the flow has a run of this key already"))
		} else {
			x.endSpans(err)
		}
		return stored, false, err
	}
	c.metrics.runStarted(stored.Flow)
	st := c.stripe(stored.ID)
	st.Lock()
	if _, moved := st.runs[stored.ID]; !moved { // a reply may have come first
		st.remember(stored)
	}
	st.Unlock()
	c.after(ctx, x, stored)
	return stored, true, nil
}

func (c *Coordinator) checkStart(ctx context.Context, req StartRequest) (*Flow, error) {
	f, err := c.Flow(req.Flow, req.Version)
	if err != nil {
		return nil, err
	}
	if len(req.Input) > 0 && !jsonx.Valid(req.Input) {
		return nil, baton.Errorf(baton.Invalid, "start "+f.Name, "the input is not valid JSON")
	}
	if len(f.InputSchema) > 0 {
		in := req.Input
		if len(in) == 0 {
			in = json.RawMessage("null")
		}
		t := inputType(f)
		if _, err := c.registry.Prepare(baton.Event{Type: t, Data: in}, t); err != nil {
			return nil, baton.Errorf(baton.Invalid, "start "+f.Name, "the input does not satisfy the flow's schema: %v", err)
		}
	}
	if c.cfg.Validate != nil {
		if err := c.cfg.Validate(ctx, req); err != nil {
			return nil, &baton.Error{Code: baton.Invalid, Op: "start " + f.Name, Err: err}
		}
	}
	return f, nil
}

// Run returns one run.
func (c *Coordinator) Run(ctx context.Context, id string) (store.Run, error) {
	return c.cfg.Store.Run(ctx, id)
}

// Runs lists runs; see ListRuns.
func (c *Coordinator) Runs(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	return ListRuns(ctx, c.cfg.Store, q)
}

// RunLister lists runs: a store.Runs will do.
type RunLister interface {
	ListRuns(ctx context.Context, q store.RunQuery) ([]store.Run, error)
}

// ListRuns lists the runs q selects, as the store does, without the runs of
// expectations (Reserved) unless q.Flow names one: those are not flows a
// user started. It reads on past them to fill q.Limit (or, when zero, a
// page as long as the store's first).
func ListRuns(ctx context.Context, s RunLister, q store.RunQuery) ([]store.Run, error) {
	if q.Flow != "" {
		return s.ListRuns(ctx, q)
	}
	var out []store.Run
	want := q.Limit
	for {
		page, err := s.ListRuns(ctx, q)
		if err != nil {
			return nil, err
		}
		if want <= 0 {
			want = len(page)
		}
		for _, r := range page {
			if !Reserved(r.Flow) && len(out) < want {
				out = append(out, r)
			}
		}
		if len(page) == 0 || len(out) >= want {
			return out, nil
		}
		q.After = page[len(page)-1].ID
	}
}

// Cancel cancels a run: the steps under way are abandoned, the completed
// steps are compensated, and the run ends cancelled. Cancelling a finished
// run, or one already compensating (after a failure or an earlier cancel),
// is a Conflict error.
func (c *Coordinator) Cancel(ctx context.Context, id, reason string) (store.Run, error) {
	return c.transition(ctx, id, func(x *exec) error {
		if x.run.Status.Terminal() {
			return baton.Errorf(baton.Conflict, "cancel "+id, "the run already ended %s", x.run.Status)
		}
		if x.run.Status == store.RunCompensating {
			// Abandoning the compensation under way would leave its step
			// undone yet marked compensated.
			return baton.Errorf(baton.Conflict, "cancel "+id, "the run is already compensating its completed steps")
		}
		if reason == "" {
			reason = "cancelled on request"
		}
		x.cancel(reason)
		return nil
	})
}

// Signal delivers an external event to a run waiting for its type. A run
// not waiting for it is a Conflict error.
func (c *Coordinator) Signal(ctx context.Context, id string, e baton.Event) (store.Run, error) {
	if _, _, err := event.ParseType(e.Type); err != nil {
		return store.Run{}, err
	}
	if len(e.Data) > 0 && !jsonx.Valid(e.Data) {
		return store.Run{}, baton.Errorf(baton.Invalid, "signal "+id, "the event's data is not valid JSON")
	}
	return c.transition(ctx, id, func(x *exec) error {
		if !x.signal(e) {
			return baton.Errorf(baton.Conflict, "signal "+id, "the run is not waiting for %s", e.Type)
		}
		return nil
	})
}

// transition applies fn to the run under a per-run lock, advances it and
// saves it with what it sends; a concurrent save by another coordinator
// makes it start over from the stored run.
func (c *Coordinator) transition(ctx context.Context, id string, fn func(*exec) error) (store.Run, error) {
	run, _, _, err := c.transitionAcking(ctx, id, fn, nil, false)
	return run, err
}

// acker is implemented by stores that are also the transport: a transition
// and the acknowledgement of the reply that caused it are then one write,
// with the journal entries given (the end of the run, when the transition
// ends it).
type acker interface {
	SaveRunAcking(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, error)
}

// asyncAcker is an acker whose save returns once the store has taken it,
// in order, and is waited for apart (the embedded backend: its writer
// groups the saves waiting into one fsync). The coordinator then handles
// its next replies while the saves of earlier ones wait for the disk; see
// settle.
type asyncAcker interface {
	SaveRunAckingAsync(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, func(context.Context) error, error)
}

// unsettled is a transition saved by an asyncAcker and not yet durable.
type unsettled struct {
	id      string
	x       *exec
	run     store.Run
	durable func(context.Context) error
	prev    <-chan struct{} // the run's transition before, if unsettled when this one was saved
	done    chan struct{}
	span    trace.Span
	path    string
	d       bus.Delivery
}

// transitionAcking is transition for a reply d, which it acknowledges with
// the save when the store can (acked says whether it did). With early set
// and an asyncAcker, it returns once the save is taken, before it is
// durable: u is then to be settled (settle), and acked is true. The stripe
// is locked until the save is taken, so the transitions of a run are
// saved in order, each from the one before.
func (c *Coordinator) transitionAcking(ctx context.Context, id string, fn func(*exec) error, d *bus.Delivery, early bool) (_ store.Run, acked bool, _ *unsettled, _ error) {
	run, acked, u, err := c.save(ctx, id, fn, d, early)
	if u == nil || u.durable != nil {
		return run, acked, u, err
	}
	// Durable already; settled here, with the stripe unlocked: settling
	// waits for the run's transition before, which may be unsettled still.
	c.settle(ctx, u)
	return run, acked, nil, err
}

// save is transitionAcking's transition and save, under the stripe's lock:
// u is the saved transition, not yet settled, durable or not.
func (c *Coordinator) save(ctx context.Context, id string, fn func(*exec) error, d *bus.Delivery, early bool) (_ store.Run, acked bool, u *unsettled, _ error) {
	s := c.stripe(id)
	s.Lock()
	defer s.Unlock()
	for attempt := 1; ; attempt++ {
		run, cached := s.runs[id]
		if cached {
			run = clone(run)
		} else {
			var err error
			if run, err = c.cfg.Store.Run(ctx, id); err != nil {
				return run, false, nil, err
			}
		}
		f, err := c.Flow(run.Flow, run.Version)
		if err != nil {
			return run, false, nil, fmt.Errorf("run %s: %w", id, err)
		}
		now := time.Now().UTC()
		x := c.exec(&run, f, now)
		if err := fn(x); err != nil {
			if cached {
				// Judged on a copy another coordinator may have moved on
				// from: judge again on the stored run.
				delete(s.runs, id)
				continue
			}
			return run, false, nil, err
		}
		if !x.changed {
			if cached {
				delete(s.runs, id)
				continue
			}
			return run, false, nil, nil
		}
		x.advance()
		run.Updated = now
		var saved store.Run
		var durable func(context.Context) error
		a, ok := c.cfg.Store.(acker)
		if ok && d != nil {
			var end []store.Entry
			if x.ended {
				end = append(end, endEntry(run))
				x.journaled = true
			}
			if early && c.async != nil {
				saved, durable, err = c.async.SaveRunAckingAsync(ctx, run, x.sending(), *d, end...)
			} else {
				saved, err = a.SaveRunAcking(ctx, run, x.sending(), *d, end...)
			}
		} else {
			saved, err = c.cfg.Store.SaveRun(ctx, run, x.sending())
		}
		if baton.ErrorCode(err) == baton.Conflict && attempt < 10 {
			delete(s.runs, id)
			x.endSpans(err)
			continue
		}
		if err != nil {
			delete(s.runs, id)
			x.endSpans(err)
			return run, false, nil, err
		}
		// Remembered before it is durable: the next transition of the run
		// is saved after this one, and fails with it.
		s.remember(saved)
		s.settling.Lock()
		u := &unsettled{id: id, x: x, run: saved, durable: durable, prev: s.unsettled[id], done: make(chan struct{})}
		if s.unsettled == nil {
			s.unsettled = make(map[string]chan struct{})
		}
		s.unsettled[id] = u.done
		s.settling.Unlock()
		return saved, ok && d != nil, u, nil
	}
}

// settle waits until u is durable, then does what it asks (after), in the
// order of its run's transitions; it returns the save's error otherwise
// (the reply was not acknowledged, and the run is read again from the
// store at its next transition).
func (c *Coordinator) settle(ctx context.Context, u *unsettled) error {
	var err error
	if u.durable != nil {
		err = u.durable(ctx)
	}
	if u.prev != nil {
		<-u.prev
	}
	if err != nil {
		u.x.endSpans(err)
	} else {
		c.after(ctx, u.x, u.run)
	}
	replied(u.span, u.run, u.path, err)
	// Settling waits for nothing with a lock held, and saving (which holds
	// the stripe) waits for no settling: the two cannot deadlock.
	close(u.done)
	s := c.stripe(u.id)
	s.settling.Lock()
	if s.unsettled[u.id] == u.done {
		delete(s.unsettled, u.id)
	}
	s.settling.Unlock()
	if err != nil {
		s.Lock()
		delete(s.runs, u.id) // it holds what was not saved, or what followed it
		s.Unlock()
	}
	return err
}

// after does what a saved transition asks: timers, HTTP calls,
// notifications, and the journal entry of a run's end.
func (c *Coordinator) after(ctx context.Context, x *exec, run store.Run) {
	c.metrics.saved(x, run.Flow, string(run.Status), run.Updated.Sub(run.Created))
	x.endSpans(nil)
	if x.ended {
		c.tracer.ended(run)
		if !x.journaled {
			c.journalEnd(ctx, run)
		}
	}
	// Neither the calls nor the notes take run's address: it would move
	// every transition's run to the heap, where few have either.
	id := run.ID
	for _, call := range x.calls {
		c.wg.Go(func() { c.callHTTP(id, call) })
	}
	if c.cfg.Notifier != nil && len(x.notes) > 0 {
		r := run
		for _, n := range x.notes {
			n.Run = &r
			c.cfg.Notifier.Notify(ctx, n)
		}
	}
	if run.Status.Terminal() {
		c.http.Forget(run.ID)
	}
	if len(x.out) > 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// endEntry is the journal entry of how run ended, under its key beside its
// steps' events, so that what reads the journal alone (baton status) tells
// a failed or completed run from one in progress, whatever its events are
// named.
func endEntry(run store.Run) store.Entry {
	return store.Entry{Time: run.Updated, CorrelationID: run.Key, Outcome: store.RunEnded(run.Status),
		EventID: run.ID, EventType: run.Flow, Subject: run.Key, Source: "baton.flow/" + run.Flow, Error: run.Error,
		TraceID: event.TraceID(run.TraceParent)}
}

// journalEnd journals the end of run when the save that ended it could not
// (an acker writes it with the save). It follows the save: a crash in
// between loses the entry, not the run's status, which the store keeps
// (baton run get).
func (c *Coordinator) journalEnd(ctx context.Context, run store.Run) {
	if err := c.cfg.Store.Append(context.WithoutCancel(ctx), endEntry(run)); err != nil {
		c.cfg.Logger.ErrorContext(ctx, "coordinator: journal the end of a run", "run", run.ID, "status", run.Status, "err", err)
	}
}

// relayPoll is how often the outbox is looked at when no transition has
// said it holds something: what a crashed coordinator left is sent then.
// relayLease is how long a relay's claim on what it sends lasts: what a
// crashed coordinator claimed is sent by another after it.
const (
	relayPoll  = time.Second
	relayLease = 10 * time.Second
)

// relay publishes what transitions left in a store's outbox: a store that is
// not the transport keeps the messages a transition sends, written with it,
// until they are sent. Relays claim what they send, so coordinators sharing
// a store send each message once; a message sent twice (a crash before
// MarkSent, a claim that lapsed) keeps its id, and the consumers' inboxes
// skip the copy. Messages go out in batches, one per group, in order.
func (c *Coordinator) relay(ctx context.Context, ob store.Outbox) {
	t := time.NewTicker(relayPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		work := context.WithoutCancel(ctx)
		for {
			pending, err := ob.ClaimOutbound(work, 256, relayLease)
			if err != nil {
				c.cfg.Logger.ErrorContext(work, "coordinator: read the outbox; retrying", "err", err)
				break
			}
			if len(pending) == 0 {
				break
			}
			ids := make([]string, 0, len(pending))
			for start := 0; start < len(pending) && err == nil; {
				// A run of messages to one group (or to every group) goes
				// out in one call.
				group, end := pending[start].Group, start+1
				for end < len(pending) && pending[end].Group == group {
					end++
				}
				msgs := make([]bus.Message, 0, end-start)
				for _, p := range pending[start:end] {
					m, perr := bus.ParseRecord(p.Body)
					if perr != nil {
						// Written by a coordinator of another version: it
						// cannot be sent, and is dropped with a word.
						c.cfg.Logger.ErrorContext(work, "coordinator: an outbox message is not a bus record; dropping it", "id", p.Outbound.ID, "type", p.Type, "err", perr)
						continue
					}
					msgs = append(msgs, m)
				}
				if group != "" {
					err = c.cfg.Transport.PublishTo(work, group, msgs...)
				} else {
					err = c.cfg.Transport.Publish(work, msgs...)
				}
				if err == nil {
					for _, p := range pending[start:end] {
						ids = append(ids, p.ID)
					}
				}
				start = end
			}
			if merr := ob.MarkSent(work, ids...); merr != nil && err == nil {
				err = merr
			}
			if err != nil {
				c.cfg.Logger.ErrorContext(work, "coordinator: send the outbox; retrying", "err", err)
				break
			}
		}
	}
}

func (c *Coordinator) callHTTP(runID string, call pendingCall) {
	ctx := context.Background()
	spanCtx, span := c.tracer.call(runID, call)
	callCtx, cancel := context.WithTimeout(spanCtx, call.timeout)
	result, vars, err := c.http.Call(callCtx, runID, call.call, call.hosts, call.data)
	cancel()
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	_, terr := c.transition(ctx, runID, func(x *exec) error {
		x.httpDone(call.path, call.attempt, result, vars, err)
		return nil
	})
	if terr != nil {
		c.cfg.Logger.ErrorContext(ctx, "record an HTTP step's result", "run", runID, "step", call.path, "err", terr)
	}
}

// replyWindow is how many replies a subscription's receiver has saved and
// not yet settled, with an asyncAcker: it handles the next while the saves
// of these wait for the disk. With Concurrency receivers, up to
// Concurrency*replyWindow transitions wait for the disk at once.
const replyWindow = 8

// receive handles replies and external events.
func (c *Coordinator) receive(ctx context.Context, sub bus.Subscription) {
	var window chan *unsettled
	if c.async != nil {
		window = make(chan *unsettled, replyWindow-1)
		settled := make(chan struct{})
		go func() {
			defer close(settled)
			for u := range window {
				work := context.WithoutCancel(ctx)
				if err := c.settle(work, u); err != nil {
					c.cfg.Logger.ErrorContext(work, "coordinator: save a reply's transition; it will be redelivered", "run", u.id, "err", err)
					sub.Nack(work, u.d, time.Second)
				}
			}
		}()
		defer func() { close(window); <-settled }()
	}
	for ctx.Err() == nil {
		d, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.cfg.Logger.ErrorContext(ctx, "coordinator receive", "err", err)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		work := context.WithoutCancel(ctx)
		acked, u, err := c.deliver(work, d, window != nil)
		if u != nil {
			window <- u
			continue
		}
		if err != nil {
			c.cfg.Logger.ErrorContext(work, "coordinator: handle a reply; it will be redelivered", "type", d.Type, "id", d.ID, "err", err)
			sub.Nack(work, d, time.Second)
			continue
		}
		if acked {
			continue
		}
		if err := sub.Ack(work, d); err != nil {
			c.cfg.Logger.ErrorContext(work, "coordinator: ack a reply", "type", d.Type, "id", d.ID, "err", err)
		}
	}
}

// deliver routes one message: a step's reply (its metadata names the run
// and step), or an external event for the runs waiting for its type.
// It reports whether the delivery was acknowledged with the transition;
// with early set, a reply's transition may be returned unsettled instead
// (see transitionAcking), to be settled by the caller.
func (c *Coordinator) deliver(ctx context.Context, d bus.Delivery, early bool) (bool, *unsettled, error) {
	if d.Err != nil {
		c.cfg.Logger.WarnContext(ctx, "coordinator: dropping an undecodable message", "type", d.Type, "err", d.Err)
		return false, nil, nil
	}
	e := d.Event
	if runID, path, attempt, ok := replyTo(d.Meta); ok {
		ctx, span := c.tracer.reply(ctx, c.cfg.Group, &d, runID, path)
		run, acked, u, err := c.transitionAcking(ctx, runID, func(x *exec) error {
			x.reply(path, attempt, e)
			return nil
		}, &d, early)
		if u != nil {
			u.span, u.path, u.d = span, path, d
			return true, u, nil
		}
		replied(span, run, path, err)
		if errors.Is(err, baton.ErrNotFound) {
			return false, nil, nil
		}
		return acked, nil, err
	}
	if !c.waits[e.Type] || e.CorrelationID == "" {
		return false, nil, nil
	}
	runs, err := c.cfg.Store.ListRuns(ctx, store.RunQuery{Key: e.CorrelationID})
	if err != nil {
		return false, nil, err
	}
	for _, r := range runs {
		if r.Status.Terminal() || Reserved(r.Flow) {
			continue
		}
		if _, err := c.Signal(ctx, r.ID, e); err != nil && baton.ErrorCode(err) != baton.Conflict {
			return false, nil, err
		}
	}
	return false, nil, nil
}

// timers wakes the runs whose timeouts, sleeps or retries have come due.
func (c *Coordinator) timers(ctx context.Context) {
	t := time.NewTicker(c.cfg.TimerPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The runs of expectations share the index: their watcher wakes
		// them.
		due, err := store.DueRunsOf(ctx, c.cfg.Store, time.Now(), 256, func(r store.Run) bool { return !Reserved(r.Flow) })
		if err != nil {
			c.cfg.Logger.ErrorContext(ctx, "coordinator: due runs", "err", err)
			continue
		}
		c.metrics.timersDue(len(due))
		work := context.WithoutCancel(ctx)
		for _, r := range due {
			_, err := c.transition(work, r.ID, func(x *exec) error {
				x.tick()
				return nil
			})
			if err != nil && !errors.Is(err, baton.ErrNotFound) {
				c.cfg.Logger.ErrorContext(work, "coordinator: wake run", "run", r.ID, "err", err)
			}
		}
	}
}

// resume restarts the HTTP calls a stopped coordinator left in flight.
func (c *Coordinator) resume(ctx context.Context) error {
	for _, status := range []store.RunStatus{store.RunRunning, store.RunCompensating} {
		after := ""
		for {
			runs, err := c.cfg.Store.ListRuns(ctx, store.RunQuery{Status: status, After: after, Limit: 500})
			if err != nil {
				return fmt.Errorf("coordinator: resume runs: %w", err)
			}
			for i := range runs {
				run := &runs[i]
				if Reserved(run.Flow) {
					continue
				}
				f, err := c.Flow(run.Flow, run.Version)
				if err != nil {
					c.cfg.Logger.ErrorContext(ctx, "coordinator: cannot resume a run of an unknown flow version", "run", run.ID, "flow", run.Flow, "version", run.Version)
					continue
				}
				x := c.exec(run, f, time.Now().UTC())
				x.resume()
				c.after(ctx, x, *run)
			}
			if len(runs) < 500 {
				break
			}
			after = runs[len(runs)-1].ID
		}
	}
	return nil
}
