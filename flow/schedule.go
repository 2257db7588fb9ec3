package flow

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	// robfig/cron is the most used cron library in Go and is maintained; we
	// use only its parser and its next-activation arithmetic, not its job
	// runner: firing is ours, so that it can be shared by coordinators.
	"github.com/robfig/cron/v3"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Starter starts runs; *Coordinator implements it. Starting a key the flow
// already has must return that run with created false: the schedules rely
// on it to start one run per tick.
//
// The method is StartRun, not Start, because Start(ctx) is the lifecycle
// method of the coordinator, as of every long-lived part.
type Starter interface {
	StartRun(ctx context.Context, req StartRequest) (run store.Run, created bool, err error)
}

// StartFunc adapts a function to a Starter.
type StartFunc func(ctx context.Context, req StartRequest) (store.Run, bool, error)

// StartRun calls f.
func (f StartFunc) StartRun(ctx context.Context, req StartRequest) (store.Run, bool, error) {
	return f(ctx, req)
}

// ScheduleStore is what a Scheduler keeps its schedules in, and where it
// looks up the runs they started: whether a schedule's last run is still
// going (for its overlap policy), and whether a tick's run was already
// started. A store.Store will do.
type ScheduleStore interface {
	store.Schedules
	Run(ctx context.Context, id string) (store.Run, error)
	ListRuns(ctx context.Context, q store.RunQuery) ([]store.Run, error)
}

// SchedulerConfig configures a Scheduler. Zero values mean the documented
// defaults.
type SchedulerConfig struct {
	Store   ScheduleStore // required
	Starter Starter       // required: the coordinator
	// Tick is how often due schedules are looked at (default 1s). Ticks of
	// a schedule that fell due within the last two Ticks are on time, not
	// missed, so a pass that comes a little late drops none.
	Tick time.Duration
	// Now is the clock (default time.Now); tests drive a fake one.
	Now    func() time.Time
	Logger *slog.Logger // default: discarded
	// Metrics, when set, is where the scheduler registers the counter of
	// its ticks (docs/observability.md); nil records none.
	Metrics prometheus.Registerer
	// MaxSchedules bounds the schedules Put creates (default
	// DefaultMaxSchedules): each is looked at on every pass.
	MaxSchedules int
}

// DefaultScheduleTick is the default SchedulerConfig.Tick.
const DefaultScheduleTick = time.Second

// DefaultMaxSchedules is the default SchedulerConfig.MaxSchedules.
const DefaultMaxSchedules = 1000

// MaxCatchUp is the largest catch-up of a schedule: the missed ticks one
// pass starts runs for after a downtime.
const MaxCatchUp = 100

// Scheduler starts flows on cron expressions and at fixed intervals.
//
// Once per tick: a tick's run is started with the business key
// "<schedule name>@<tick time, RFC 3339, UTC>", and starting a key a flow
// already has returns the existing run. So when several coordinators share
// a store and each runs a Scheduler, any number of them may fire the same
// tick and one run is started. A schedule's progress (LastTick, LastRun,
// Buffered) is saved with compare-and-set; a scheduler that loses the race
// leaves the schedule to the winner, whose runs are the same ones it
// started (or found already started). A crash between starting a run and
// saving the schedule is repaired the same way: the next pass fires the tick
// again and finds its run.
//
// Ticks: a cron expression is evaluated in UTC unless it begins with
// CRON_TZ=Zone. An interval (Every, or the descriptor "@every 10s") ticks on
// the multiples of the interval counted from Go's zero time, so Every 10s
// ticks at :00, :10, :20 whatever the time the schedule was put.
//
// A Scheduler is safe for concurrent use.
type Scheduler struct {
	store   ScheduleStore
	starter Starter
	tick    time.Duration
	now     func() time.Time
	log     *slog.Logger
	ticks   tickCounter
	max     int

	mu      sync.Mutex
	started bool
	quit    chan struct{} // closed by Stop: take no more passes
	done    chan struct{} // closed when the loop has returned
	cancel  context.CancelFunc
	stop    sync.Once
	stopErr error
	stopped chan struct{}
}

// NewScheduler validates cfg and returns a Scheduler; Start runs it, or
// call RunDue yourself.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	const op = "new scheduler"
	if cfg.Store == nil {
		return nil, baton.Errorf(baton.Invalid, op, "a store is required")
	}
	if cfg.Starter == nil {
		return nil, baton.Errorf(baton.Invalid, op, "a starter (the coordinator) is required")
	}
	if cfg.Tick < 0 || cfg.MaxSchedules < 0 {
		return nil, baton.Errorf(baton.Invalid, op, "tick %v or max schedules %d is negative", cfg.Tick, cfg.MaxSchedules)
	}
	if cfg.Tick == 0 {
		cfg.Tick = DefaultScheduleTick
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := newTicks(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", op, err)
	}
	return &Scheduler{
		store:   cfg.Store,
		starter: cfg.Starter,
		tick:    cfg.Tick,
		now:     cfg.Now,
		log:     cfg.Logger,
		ticks:   t,
		max:     cmp.Or(cfg.MaxSchedules, DefaultMaxSchedules),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}, nil
}

// saveAttempts bounds the read-modify-write retries of Put, Pause and
// Resume when a pass saves the same schedule meanwhile.
const saveAttempts = 10

// Put validates sc and creates it, or replaces the schedule of that name.
// A new schedule's first tick is the first one after now; a replaced one
// keeps its progress (LastTick, LastRun), so the ticks it already handled
// are not fired again. Put ignores the progress fields set in sc.
//
// sc needs a name, a flow, and exactly one of Cron (five fields, or a
// descriptor such as @hourly or "@every 90s", optionally after
// CRON_TZ=Zone) and Every (at least 1s); CatchUp is at most MaxCatchUp. An
// empty Overlap means skip. Creating a schedule when there are
// MaxSchedules already is a Conflict error (several processes putting at
// once may overshoot by a few).
func (s *Scheduler) Put(ctx context.Context, sc store.Schedule) (store.Schedule, error) {
	op := "put schedule " + sc.Name
	if err := validateSchedule(op, &sc); err != nil {
		return store.Schedule{}, err
	}
	for range saveAttempts {
		old, err := s.store.Schedule(ctx, sc.Name)
		switch {
		case errors.Is(err, baton.ErrNotFound):
			if err := s.room(ctx, op); err != nil {
				return store.Schedule{}, err
			}
			sc.LastTick, sc.LastRun, sc.Buffered, sc.Rev = s.now().UTC(), "", false, 0
		case err != nil:
			return store.Schedule{}, err
		default:
			sc.LastTick, sc.LastRun, sc.Buffered, sc.Rev = old.LastTick, old.LastRun, old.Buffered, old.Rev
			if sc.LastTick.IsZero() {
				sc.LastTick = s.now().UTC()
			}
			// A buffered tick belongs to buffer_one; under another policy
			// it counts as handled (dropped).
			sc.Buffered = sc.Buffered && sc.Overlap == store.OverlapBufferOne
		}
		saved, err := s.store.SaveSchedule(ctx, sc)
		if baton.ErrorCode(err) == baton.Conflict {
			continue
		}
		if err != nil {
			return store.Schedule{}, err
		}
		s.log.InfoContext(ctx, "schedule put", "schedule", saved.Name, "flow", saved.Flow, "cron", saved.Cron, "every", saved.Every)
		return saved, nil
	}
	return store.Schedule{}, baton.Errorf(baton.Conflict, op, "the schedule kept changing; try again")
}

// room checks that one more schedule may be created.
func (s *Scheduler) room(ctx context.Context, op string) error {
	all, err := s.store.ListSchedules(ctx)
	if err != nil {
		return err
	}
	if len(all) >= s.max {
		return baton.Errorf(baton.Conflict, op, "there are %d schedules, the limit: delete one first", len(all))
	}
	return nil
}

// validateSchedule checks sc and fills in its defaults.
func validateSchedule(op string, sc *store.Schedule) error {
	sc.Name = strings.TrimSpace(sc.Name)
	sc.Cron = strings.TrimSpace(sc.Cron)
	switch {
	case sc.Name == "":
		return baton.Errorf(baton.Invalid, op, "a schedule needs a name")
	case sc.Flow == "":
		return baton.Errorf(baton.Invalid, op, "a schedule needs a flow to start")
	case sc.Cron != "" && sc.Every != 0:
		return baton.Errorf(baton.Invalid, op, "set either cron (%q) or every (%v), not both", sc.Cron, sc.Every)
	case sc.Cron == "" && sc.Every == 0:
		return baton.Errorf(baton.Invalid, op, "a schedule needs a cron expression or an interval (every)")
	case sc.Every != 0 && sc.Every < time.Second:
		return baton.Errorf(baton.Invalid, op, "every %v is shorter than the smallest interval, 1s", sc.Every)
	case sc.CatchUp < 0 || sc.CatchUp > MaxCatchUp:
		return baton.Errorf(baton.Invalid, op, "catch_up %d is not from 0 to %d", sc.CatchUp, MaxCatchUp)
	case len(sc.Input) > 0 && !json.Valid(sc.Input):
		return baton.Errorf(baton.Invalid, op, "the input is not valid JSON")
	}
	switch sc.Overlap {
	case "":
		sc.Overlap = store.OverlapSkip
	case store.OverlapSkip, store.OverlapBufferOne, store.OverlapAllow:
	default:
		return baton.Errorf(baton.Invalid, op, "overlap %q is none of skip, buffer_one, allow", sc.Overlap)
	}
	if _, err := parseSchedule(*sc); err != nil {
		return &baton.Error{Code: baton.Invalid, Op: op, Err: err}
	}
	return nil
}

// Pause stops a schedule from firing. The ticks that pass while it is
// paused are treated on Resume like those of a downtime: at most CatchUp of
// them start runs.
func (s *Scheduler) Pause(ctx context.Context, name string) (store.Schedule, error) {
	return s.setPaused(ctx, name, true)
}

// Resume lets a paused schedule fire again.
func (s *Scheduler) Resume(ctx context.Context, name string) (store.Schedule, error) {
	return s.setPaused(ctx, name, false)
}

func (s *Scheduler) setPaused(ctx context.Context, name string, paused bool) (store.Schedule, error) {
	for range saveAttempts {
		sc, err := s.store.Schedule(ctx, name)
		if err != nil || sc.Paused == paused {
			return sc, err
		}
		sc.Paused = paused
		saved, err := s.store.SaveSchedule(ctx, sc)
		if baton.ErrorCode(err) == baton.Conflict {
			continue
		}
		if err == nil {
			s.log.InfoContext(ctx, "schedule paused", "schedule", name, "paused", paused)
		}
		return saved, err
	}
	return store.Schedule{}, baton.Errorf(baton.Conflict, "pause schedule "+name, "the schedule kept changing; try again")
}

// List returns every schedule, by name.
func (s *Scheduler) List(ctx context.Context) ([]store.Schedule, error) {
	return s.store.ListSchedules(ctx)
}

// Delete removes a schedule; its runs go on. baton.ErrNotFound if absent.
func (s *Scheduler) Delete(ctx context.Context, name string) error {
	return s.store.DeleteSchedule(ctx, name)
}

// TickKey is the business key of the run a schedule starts for a tick.
func TickKey(schedule string, tick time.Time) string {
	return schedule + "@" + tick.UTC().Format(time.RFC3339)
}

// RunDue makes one pass over the schedules: for each that is not paused, it
// fires the ticks due since its last tick up to now, within its catch-up
// limit and its overlap policy, and saves its progress. It returns how many
// runs it created (a tick whose run another coordinator started is not
// counted). A schedule that fails does not stop the others; the errors are
// joined.
func (s *Scheduler) RunDue(ctx context.Context) (started int, err error) {
	list, err := s.store.ListSchedules(ctx)
	if err != nil {
		return 0, fmt.Errorf("schedules: %w", err)
	}
	var errs []error
	for _, sc := range list {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if sc.Paused {
			continue
		}
		n, err := s.runSchedule(ctx, sc)
		started += n
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", sc.Name, err))
		}
	}
	return started, errors.Join(errs...)
}

// runSchedule fires the due ticks of one schedule and saves its progress.
func (s *Scheduler) runSchedule(ctx context.Context, sc store.Schedule) (int, error) {
	spec, err := parseSchedule(sc)
	if err != nil {
		return 0, &baton.Error{Code: baton.Invalid, Op: "fire", Err: err}
	}
	p := pass{s: s, sc: sc, log: s.log.With("schedule", sc.Name, "flow", sc.Flow)}
	now := s.now().UTC()
	if sc.Buffered {
		err = p.startBuffered(ctx, now, spec)
	} else {
		err = p.fire(ctx, now, spec)
	}
	if err != nil {
		p.errs = append(p.errs, err)
	}
	if p.changes {
		if _, err := s.store.SaveSchedule(ctx, p.sc); err != nil {
			if baton.ErrorCode(err) != baton.Conflict {
				return p.started, errors.Join(append(p.errs, fmt.Errorf("save: %w", err))...)
			}
			// Another coordinator handled the schedule (its runs have the
			// same keys as ours), or it was changed meanwhile: the next
			// pass reloads it.
			p.log.DebugContext(ctx, "schedule saved meanwhile; leaving it to the other save", "error", err)
		}
	}
	return p.started, errors.Join(p.errs...)
}

// lastRunning reports whether the last run a schedule started is still
// going. A run that is gone is not.
func (s *Scheduler) lastRunning(ctx context.Context, sc store.Schedule) (bool, error) {
	if sc.LastRun == "" {
		return false, nil
	}
	r, err := s.store.Run(ctx, sc.LastRun)
	if errors.Is(err, baton.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("last run: %w", err)
	}
	return !r.Status.Terminal(), nil
}

// pass is the handling of one schedule in one RunDue: sc is updated as
// ticks are handled, and saved at the end if it changed.
type pass struct {
	s       *Scheduler
	sc      store.Schedule
	log     *slog.Logger
	started int
	errs    []error
	changes bool
}

// fire starts the due ticks of a schedule without a buffered tick.
func (p *pass) fire(ctx context.Context, now time.Time, spec tickSpec) error {
	ticks, skipped := p.s.due(spec, p.sc.LastTick, now, p.sc.CatchUp)
	if len(ticks) == 0 {
		return nil
	}
	if skipped > 0 {
		p.log.InfoContext(ctx, "schedule skipped missed ticks (catch-up limit)", "skipped", skipped, "catch_up", p.sc.CatchUp, "since", p.sc.LastTick)
		p.s.ticks.add(p.sc.Name, tickSkipped, skipped)
		// Just before the first tick to fire: the skipped ones are handled.
		p.sc.LastTick, p.changes = ticks[0].Add(-time.Nanosecond), true
	}
	running, err := p.s.lastRunning(ctx, p.sc)
	if err != nil {
		return err
	}
	for i, t := range ticks {
		if running && p.sc.Overlap != store.OverlapAllow {
			if r, ok := p.existing(ctx, t); ok {
				// Started by a pass whose save was lost: adopt it.
				p.handled(t, r.ID)
				running = !r.Status.Terminal()
				continue
			}
			if p.sc.Overlap == store.OverlapBufferOne {
				// LastTick is the buffered tick until its run starts;
				// the ticks after it are dropped then.
				p.handled(t, p.sc.LastRun)
				p.sc.Buffered = true
				p.log.InfoContext(ctx, "schedule buffered tick (previous run still going)", "tick", t, "last_run", p.sc.LastRun, "dropped", len(ticks)-i-1)
				return nil
			}
			p.handled(t, p.sc.LastRun)
			p.log.InfoContext(ctx, "schedule skipped tick (previous run still going)", "tick", t, "last_run", p.sc.LastRun)
			p.s.ticks.add(p.sc.Name, tickSkipped, 1)
			continue
		}
		r, err := p.start(ctx, t)
		switch {
		case refused(err):
			p.errs = append(p.errs, err)
			p.handled(t, p.sc.LastRun)
		case err != nil:
			// Retried by the next pass.
			return err
		default:
			p.handled(t, r.ID)
			running = !r.Status.Terminal()
		}
	}
	return nil
}

// handled records that tick t is done with, and which run is the last.
func (p *pass) handled(t time.Time, lastRun string) {
	p.sc.LastTick, p.sc.LastRun, p.changes = t, lastRun, true
}

// startBuffered starts the buffered tick (LastTick) of a buffer_one
// schedule once its last run has ended, and drops the ticks that came while
// it waited.
func (p *pass) startBuffered(ctx context.Context, now time.Time, spec tickSpec) error {
	running, err := p.s.lastRunning(ctx, p.sc)
	if err != nil || running {
		// Ticks coming while the buffer is full are dropped when the
		// buffered run starts; nothing to write until then.
		return err
	}
	tick := p.sc.LastTick
	r, err := p.start(ctx, tick)
	switch {
	case refused(err):
		p.errs = append(p.errs, err)
		p.handled(tick, p.sc.LastRun)
	case err != nil:
		return err
	default:
		p.handled(tick, r.ID)
	}
	p.sc.Buffered = false
	ticks, skipped := p.s.due(spec, tick, now, 0)
	if len(ticks) > 0 {
		p.sc.LastTick = ticks[len(ticks)-1]
		p.log.InfoContext(ctx, "schedule dropped ticks that came while one was buffered", "dropped", skipped+len(ticks), "until", p.sc.LastTick)
		p.s.ticks.add(p.sc.Name, tickSkipped, skipped+len(ticks))
	}
	return nil
}

// start starts the run of tick t.
func (p *pass) start(ctx context.Context, t time.Time) (store.Run, error) {
	key := TickKey(p.sc.Name, t)
	r, created, err := p.s.starter.StartRun(ctx, StartRequest{Flow: p.sc.Flow, Key: key, Input: p.sc.Input})
	switch {
	case err != nil:
		err = fmt.Errorf("start %s: %w", key, err)
		if refused(err) {
			p.log.WarnContext(ctx, "schedule tick refused by the coordinator; skipped", "tick", t, "error", err)
		}
		return r, err
	case created:
		p.started++
		p.log.InfoContext(ctx, "schedule started run", "tick", t, "run", r.ID)
		outcome := tickFired
		if t.Before(p.s.now().Add(-2 * p.s.tick)) {
			outcome = tickCaughtUp
		}
		p.s.ticks.add(p.sc.Name, outcome, 1)
	default:
		p.log.DebugContext(ctx, "schedule tick already started", "tick", t, "run", r.ID)
	}
	return r, nil
}

// refused reports whether the coordinator refused a start for good (no
// such flow, an input its schema rejects): the tick is skipped rather than
// retried, as retrying would not help.
func refused(err error) bool {
	code := baton.ErrorCode(err)
	return code == baton.Invalid || code == baton.NotFound
}

// existing returns the run of tick t if it was started already.
func (p *pass) existing(ctx context.Context, t time.Time) (store.Run, bool) {
	runs, err := p.s.store.ListRuns(ctx, store.RunQuery{Flow: p.sc.Flow, Key: TickKey(p.sc.Name, t), Limit: 1})
	if err != nil || len(runs) == 0 {
		return store.Run{}, false
	}
	return runs[0], true
}

// due returns the ticks after last up to now, oldest first: the on-time
// ones (due within the last two Ticks) and enough of the most recent
// missed ones to make max(catchUp, 1); and how many older ones it left out.
func (s *Scheduler) due(spec tickSpec, last, now time.Time, catchUp int) (ticks []time.Time, skipped int) {
	keep := max(catchUp, 1)
	onTime := now.Add(-2 * s.tick)
	from := last
	if iv, ok := spec.(interval); ok {
		// Jump over a long backlog instead of walking it.
		d := time.Duration(iv)
		if n := int64(keep) + int64(2*s.tick/d) + 1; n < int64(now.Sub(from)/d) {
			if jump := now.Truncate(d).Add(-time.Duration(n) * d); jump.After(from) {
				skipped = int(jump.Sub(from.Truncate(d)) / d)
				from = jump
			}
		}
	}
	for t := spec.next(from); !t.IsZero() && !t.After(now); t = spec.next(t) {
		ticks = append(ticks, t)
		if len(ticks) > keep && !ticks[0].After(onTime) {
			ticks = ticks[1:]
			skipped++
		}
	}
	return ticks, skipped
}

// tickSpec gives the tick after a time.
type tickSpec interface {
	next(after time.Time) time.Time
}

// interval ticks on the multiples of itself since the zero time.
type interval time.Duration

func (iv interval) next(after time.Time) time.Time {
	d := time.Duration(iv)
	return after.Truncate(d).Add(d)
}

// cronSpec ticks on a cron expression, in UTC unless the expression names
// a zone.
type cronSpec struct{ cron.Schedule }

func (c cronSpec) next(after time.Time) time.Time {
	return c.Next(after.UTC()).UTC()
}

// parseSchedule returns the ticks of sc. Cron expressions are parsed by
// robfig/cron's standard parser: minute, hour, day of month, month, day of
// week, or a descriptor (@yearly, @monthly, @weekly, @daily, @hourly,
// @every <duration>).
func parseSchedule(sc store.Schedule) (tickSpec, error) {
	if sc.Cron == "" {
		if sc.Every < time.Second {
			return nil, fmt.Errorf("every %v is shorter than the smallest interval, 1s", sc.Every)
		}
		return interval(sc.Every), nil
	}
	parsed, err := parseCron(sc.Cron)
	if err != nil {
		return nil, fmt.Errorf("cron expression %q: %w", sc.Cron, err)
	}
	if cd, ok := parsed.(cron.ConstantDelaySchedule); ok {
		// "@every" ticks like Every: on fixed multiples, not relative to
		// whenever a pass happened to run.
		return interval(cd.Delay), nil
	}
	spec := cronSpec{parsed}
	if spec.next(time.Now()).IsZero() {
		return nil, fmt.Errorf("cron expression %q never fires", sc.Cron)
	}
	return spec, nil
}

// parseCron parses with the standard parser, which panics on a few inputs
// (a zone prefix with nothing after it).
func parseCron(expr string) (s cron.Schedule, err error) {
	if (strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=")) && !strings.Contains(expr, " ") {
		return nil, errors.New("a time zone needs an expression after it")
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("malformed: %v", r)
		}
	}()
	return cron.ParseStandard(expr)
}

// Start runs RunDue every Tick, the first time now, until Stop, or until
// ctx is cancelled (which also cancels the pass under way). A pass's error
// is logged: the next pass tries again.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return baton.Errorf(baton.Conflict, "start scheduler", "already started")
	}
	select {
	case <-s.quit:
		return baton.Errorf(baton.Conflict, "start scheduler", "stopped")
	default:
	}
	s.started = true
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	go s.loop(runCtx)
	return nil
}

func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		if n, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "schedules: pass failed", "started", n, "error", err)
		}
		select {
		case <-s.quit:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop stops the passes and waits for the one under way, until ctx is
// done: then that pass is cancelled and Stop returns ctx's error. Stop is
// idempotent, and a Scheduler that was never started stops at once.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.stop.Do(func() {
		s.mu.Lock()
		close(s.quit)
		started, cancel := s.started, s.cancel
		s.mu.Unlock()
		if started {
			select {
			case <-s.done:
			case <-ctx.Done():
				s.stopErr = fmt.Errorf("scheduler stop: pass still in flight: %w", ctx.Err())
			}
			cancel()
		}
		close(s.stopped)
	})
	return s.stopErr
}

// Stopped is closed when Stop has finished.
func (s *Scheduler) Stopped() <-chan struct{} { return s.stopped }
