package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Runtime. Zero values mean the documented defaults.
type Config struct {
	Transport Transport // required
	// Store is required. With a transport that is a Committer it must be
	// the store the commits write to (see CheckStore): the transport itself,
	// for the embedded backend.
	Store Store
	// Registry upcasts older versions and validates schemas; nil for none.
	Registry *event.Registry
	// MaxEventSize is the largest encoded event accepted, in bytes
	// (default event.DefaultMaxSize, 1 MiB).
	MaxEventSize int
	// MaxHops is the storm guard: an event that has passed through more
	// handlers is dead-lettered (default 32).
	MaxHops int
	// Concurrency is how many events each group handles at once (default 32).
	Concurrency int
	// Source is the source of events published with Publish (default "baton").
	Source string
	Logger *slog.Logger
	// Metrics, when set, is where the runtime registers its Prometheus
	// collectors (see docs/observability.md); nil records none.
	Metrics prometheus.Registerer
	// TracerProvider, when set, is where the runtime's spans go (see
	// trace.go and docs/observability.md); nil makes none.
	TracerProvider trace.TracerProvider
}

// Store is the slice of the state store the runtime uses: the inbox it
// consults before a handler runs and marks after, the journal of what it
// handled, and the dead letters. A store.Store will do; one that is also a
// store.Settler marks an event handled and journals it in one write. Only
// these are asked for, so that what the runtime depends on is plain, and a
// store for it is four methods.
type Store interface {
	Seen(ctx context.Context, group, id string) (bool, error)
	MarkSeen(ctx context.Context, group, id string) error
	Append(ctx context.Context, entries ...store.Entry) error
	AddDead(ctx context.Context, d store.DeadLetter) error
}

// CommitStorer is implemented by a Committer to name the store its commits
// write to, so that a value wrapping it (which promotes the method) is
// recognised as committing there too. A Committer that does not implement
// it is taken to be its own store.
type CommitStorer interface {
	CommitStore() Store
}

// CheckStore returns an error that says why when t is a Committer and s is
// not the store its commits write to. Such a transport writes each handled
// event's inbox mark, journal entries and dead letter to its own store; a
// consumer given another store would read the inbox and journal from that
// one, and the two would silently split: duplicates handled again, a
// journal missing what the commits wrote, dead letters no one lists. New
// and flow.New refuse such a pair with it.
func CheckStore(t Transport, s any) error {
	if _, ok := t.(Committer); !ok {
		return nil
	}
	own := any(t)
	if cs, ok := t.(CommitStorer); ok {
		own = cs.CommitStore()
	}
	if sameValue(own, s) {
		return nil
	}
	return fmt.Errorf("the transport %T commits the inbox, journal and dead letters of what it delivers to its own store, so the store given (%T) would not see them and the inbox and journal would split: give the transport itself as the store (backend.Open does), or a transport that is not a Committer, such as a broker", t, s)
}

// sameValue is a == b, without the panic of comparing two values of one
// type that is not comparable.
func sameValue(a, b any) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta != nil && ta.Comparable() && a == b
}

// Runtime runs services under choreography: each service is a consumer group
// subscribed to the types its handlers take, and their outputs are published.
type Runtime struct {
	cfg    Config
	commit func(context.Context, Subscription, Commit) error
	// A worker keeps a window of deliveries being settled when the
	// transport is one of these: an AsyncCommitter commits them while the
	// worker handles the next; an AsyncPublisher, when the transport is not
	// a Committer, sends their outputs and confirms them meanwhile.
	asyncCommit AsyncCommitter
	async       AsyncPublisher
	services    []baton.Service
	stats       Stats
	metrics     *metrics
	tracer      *tracer

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	subs    []Subscription
	wg      sync.WaitGroup
	stopped chan struct{}
	stop    sync.Once
}

// New validates cfg and returns a Runtime.
func New(cfg Config) (*Runtime, error) {
	if cfg.Transport == nil || cfg.Store == nil {
		return nil, baton.Errorf(baton.Invalid, "bus.New", "a Transport and a Store are required")
	}
	if err := CheckStore(cfg.Transport, cfg.Store); err != nil {
		return nil, baton.Errorf(baton.Invalid, "bus.New", "%w", err)
	}
	if cfg.MaxEventSize <= 0 {
		cfg.MaxEventSize = event.DefaultMaxSize
	}
	if cfg.MaxHops <= 0 {
		cfg.MaxHops = 32
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.Source == "" {
		cfg.Source = "baton"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{cfg: cfg, stopped: make(chan struct{}), stats: newStats(),
		tracer: newTracer(cfg.TracerProvider, cfg.Transport)}
	m, err := newMetrics(cfg, r.groups)
	if err != nil {
		return nil, fmt.Errorf("bus.New: metrics: %w", err)
	}
	r.metrics, r.cfg.Store = m, m.timed(cfg.Store)
	if c, ok := cfg.Transport.(Committer); ok {
		r.commit = func(ctx context.Context, _ Subscription, cm Commit) error { return c.Commit(ctx, cm) }
		r.asyncCommit, _ = cfg.Transport.(AsyncCommitter)
	} else {
		r.commit = r.commitInSteps
		r.async, _ = cfg.Transport.(AsyncPublisher)
	}
	return r, nil
}

// Register adds a service; call it before Start.
func (r *Runtime) Register(s baton.Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return baton.Errorf(baton.Conflict, "register "+s.Name, "runtime already started")
	}
	if s.Name == "" || len(s.Handlers) == 0 {
		return baton.Errorf(baton.Invalid, "register", "a service needs a name and at least one handler")
	}
	seen := map[string]bool{}
	for _, h := range s.Handlers {
		if _, _, err := event.ParseType(h.Type); err != nil {
			return baton.Errorf(baton.Invalid, "register "+s.Name, "handler type: %w", err)
		}
		if seen[h.Type] || h.Func == nil {
			return baton.Errorf(baton.Invalid, "register "+s.Name, "handler for %s is missing or declared twice", h.Type)
		}
		seen[h.Type] = true
	}
	for _, o := range r.services {
		if o.Name == s.Name {
			return baton.Errorf(baton.Conflict, "register", "service %s registered twice", s.Name)
		}
	}
	r.services = append(r.services, s)
	return nil
}

// groups are the names of the registered services.
func (r *Runtime) groups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.services))
	for i, s := range r.services {
		out[i] = s.Name
	}
	return out
}

// Start subscribes every service's group and starts handling. A group
// subscribes to every version of the types it handles, so an unsupported
// version is dead-lettered with a reason rather than never seen.
func (r *Runtime) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return baton.Errorf(baton.Conflict, "start", "runtime already started")
	}
	r.started = true
	// Every group is declared before any handler runs: an event emitted
	// for a group not yet declared would reach nobody.
	var workers []*worker
	for _, s := range r.services {
		var patterns []string
		for _, h := range s.Handlers {
			name, _, _ := event.ParseType(h.Type)
			p := name + ".*"
			if !contains(patterns, p) {
				patterns = append(patterns, p)
			}
		}
		for range r.cfg.Concurrency {
			sub, err := r.cfg.Transport.Subscribe(ctx, s.Name, patterns)
			if err != nil {
				for _, w := range workers {
					w.sub.Close()
				}
				return fmt.Errorf("start %s: %w", s.Name, err)
			}
			workers = append(workers, &worker{r: r, svc: s, sub: sub})
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, w := range workers {
		r.subs = append(r.subs, w.sub)
		r.wg.Go(func() { w.run(runCtx) })
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Stop stops taking work, waits for the events in flight to be settled (or
// for ctx to end), and closes the subscriptions; unsettled events are
// redelivered later. It is idempotent.
func (r *Runtime) Stop(ctx context.Context) error {
	var err error
	r.stop.Do(func() {
		r.mu.Lock()
		cancel := r.cancel
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("stop: events still in flight: %w", ctx.Err())
		}
		r.mu.Lock()
		for _, s := range r.subs {
			s.Close()
		}
		r.mu.Unlock()
		close(r.stopped)
	})
	return err
}

// Stopped is closed when Stop has finished.
func (r *Runtime) Stopped() <-chan struct{} { return r.stopped }

// Stats returns the runtime's counters.
func (r *Runtime) Stats() *Stats { return &r.stats }

// Publish fills in what the events leave empty (id, source, time, spec
// version, correlation id = id), checks them, and publishes them durably in
// one batch, journaling each. Nothing is published when one is refused.
func (r *Runtime) Publish(ctx context.Context, events ...baton.Event) error {
	now := time.Now()
	start := now
	msgs := make([]Message, len(events))
	entries := make([]store.Entry, len(events))
	var spans []trace.Span
	if r.tracer != nil {
		spans = make([]trace.Span, 0, len(events))
		defer func() {
			for _, s := range spans {
				s.End()
			}
		}()
	}
	for i, e := range events {
		if e.ID == "" {
			e.ID = event.NewID()
		}
		if e.Source == "" {
			e.Source = r.cfg.Source
		}
		if e.SpecVersion == "" {
			e.SpecVersion = baton.SpecVersion
		}
		if e.Time.IsZero() {
			e.Time = now
		}
		if e.CorrelationID == "" {
			e.CorrelationID = e.ID
		}
		if span := r.tracer.send(ctx, &e); span != nil {
			spans = append(spans, span)
		}
		m, err := r.encode(e, nil)
		if err != nil {
			r.stats.refused.Add(1)
			return fmt.Errorf("publish %s: %w", e.Type, err)
		}
		msgs[i] = m
		entries[i] = publishedEntry(e, now)
	}
	if err := r.commit(ctx, nil, Commit{Publish: msgs, Journal: entries}); err != nil {
		for _, s := range spans {
			s.SetStatus(codes.Error, err.Error())
		}
		return fmt.Errorf("publish: %w", err)
	}
	r.stats.published.Add(int64(len(msgs)))
	r.metrics.publishDone(len(msgs), time.Since(start))
	return nil
}

// encode validates e (attributes, schema, size) and makes it a message.
// Nothing is encoded here: the transport maps the event to its native form.
func (r *Runtime) encode(e baton.Event, meta map[string]string) (Message, error) {
	if err := event.Validate(e); err != nil {
		return Message{}, err
	}
	if r.cfg.Registry != nil {
		if _, err := r.cfg.Registry.Prepare(e, e.Type); err != nil {
			return Message{}, err
		}
	}
	if err := event.CheckData(e); err != nil {
		return Message{}, err
	}
	if err := event.CheckSize(event.Size(e), r.cfg.MaxEventSize); err != nil {
		return Message{}, err
	}
	return Message{Event: e, Meta: meta}, nil
}

func publishedEntry(e baton.Event, now time.Time) store.Entry {
	return store.Entry{
		Time: now, CorrelationID: e.CorrelationID, Outcome: store.Published,
		EventID: e.ID, EventType: e.Type, Subject: e.Subject, Source: e.Source, TraceID: event.TraceID(e.TraceParent),
	}
}

// commitInSteps applies a Commit on a transport that is not a Committer, in
// an order that is safe to interrupt: outputs first (a crash after them
// redelivers the input, whose handler emits the same ids, which the
// consumers' inboxes skip), the settlement last. The inbox was consulted
// before the handler ran; it is not again here, which would cost every
// event a round trip to the store to narrow, not close, the window in which
// two copies of one event are handled at once (both then publish the same
// ids, which the consumers' inboxes skip).
func (r *Runtime) commitInSteps(ctx context.Context, sub Subscription, c Commit) error {
	st := r.cfg.Store
	if err := r.publish(ctx, c.ReplyTo, c.Publish); err != nil {
		return err
	}
	// The inbox before the journal (or with it): once the journal says an
	// event was handled, a copy of it arriving later is already known as a
	// duplicate.
	if settler, ok := st.(store.Settler); ok && c.Handled != "" {
		if err := settler.Settle(ctx, c.Group, c.Handled, c.Journal...); err != nil {
			return err
		}
	} else {
		if c.Handled != "" {
			if err := st.MarkSeen(ctx, c.Group, c.Handled); err != nil {
				return err
			}
		}
		if err := st.Append(ctx, c.Journal...); err != nil {
			return err
		}
	}
	if c.Dead != nil {
		if err := st.AddDead(ctx, *c.Dead); err != nil {
			return err
		}
	}
	var err error
	switch {
	case c.Delivery == nil:
	case c.Retry:
		err = sub.Nack(ctx, *c.Delivery, c.RetryAfter)
	default:
		err = sub.Ack(ctx, *c.Delivery)
	}
	return err
}

// publish sends msgs to every subscriber of their types, or to group only.
func (r *Runtime) publish(ctx context.Context, group string, msgs []Message) error {
	if group == "" || len(msgs) == 0 {
		return r.cfg.Transport.Publish(ctx, msgs...)
	}
	gp, ok := r.cfg.Transport.(GroupPublisher)
	if !ok {
		return baton.Errorf(baton.Invalid, "reply to "+group, "the transport cannot send to one group")
	}
	return gp.PublishTo(ctx, group, msgs...)
}

// worker is one consumer of a service's group.
type worker struct {
	r   *Runtime
	svc baton.Service
	sub Subscription
}

// windowSize is how many deliveries a consumer may have handled and not
// yet settled while their commits wait for the disk (AsyncCommitter) or
// their outputs for the broker's confirms (AsyncPublisher).
const windowSize = 16

// inflight is a handled delivery on its way to being settled.
type inflight struct {
	d       Delivery
	c       Commit
	v       verdict
	confirm func(context.Context) error // of c.Publish, sent already; nil if not
	// committed waits for c, handed to an AsyncCommitter already; nil if not.
	committed func(context.Context) error
	sent      time.Time     // when c.Publish was sent, with metrics on
	settled   chan struct{} // closed once settled
	// process and send are the delivery's spans (see trace.go), ended
	// once it is settled; nil without tracing.
	process, send trace.Span
}

// settling is a worker's window on a transport that is an AsyncCommitter or
// an AsyncPublisher: the deliveries it handled, whose commits (or outputs)
// are under way, settled in the order received by a goroutine of their own.
type settling struct {
	pending chan inflight
	done    chan struct{}
	mu      sync.Mutex
	// unsettled maps the event ids in the window to their settled channel:
	// a copy of one of them received meanwhile waits for it to be settled,
	// and is then found in the inbox.
	unsettled map[string]chan struct{}
}

func (w *worker) startSettling(ctx context.Context) *settling {
	s := &settling{pending: make(chan inflight, windowSize), done: make(chan struct{}), unsettled: map[string]chan struct{}{}}
	go func() {
		defer close(s.done)
		free := context.WithoutCancel(ctx)
		for f := range s.pending {
			w.settle(ctx, free, f)
			s.mu.Lock()
			if s.unsettled[f.d.ID] == f.settled {
				delete(s.unsettled, f.d.ID)
			}
			s.mu.Unlock()
			close(f.settled)
		}
	}()
	return s
}

// add starts f's commit, or sends its outputs, and puts f in the window,
// waiting for room. free is not cancelled: work taken is finished.
func (s *settling) add(free context.Context, r *Runtime, f inflight) {
	switch {
	case r.asyncCommit != nil:
		f.committed = r.asyncCommit.CommitAsync(free, f.c)
	case len(f.c.Publish) > 0:
		f.confirm = r.async.PublishAsync(free, f.c.ReplyTo, f.c.Publish...)
	}
	f.settled = make(chan struct{})
	if f.d.ID != "" {
		s.mu.Lock()
		s.unsettled[f.d.ID] = f.settled
		s.mu.Unlock()
	}
	s.pending <- f
}

// waitFor waits until a delivery of event id in the window, if any, is
// settled.
func (s *settling) waitFor(id string) {
	s.mu.Lock()
	earlier := s.unsettled[id]
	s.mu.Unlock()
	if earlier != nil {
		<-earlier
	}
}

// close settles what is in the window and stops.
func (s *settling) close() {
	close(s.pending)
	<-s.done
}

func (w *worker) run(ctx context.Context) {
	var window *settling
	if w.r.asyncCommit != nil || w.r.async != nil {
		window = w.startSettling(ctx)
		defer window.close()
	}
	// The handler and the settlement are not cancelled by Stop: work taken
	// is finished. (Made once: a context per delivery is garbage.)
	free := context.WithoutCancel(ctx)
	backoff := 10 * time.Millisecond
	for {
		// A transport may hand out a ready message even to a cancelled
		// Receive; a stopping worker takes no new work.
		if ctx.Err() != nil {
			return
		}
		d, err := w.sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.r.cfg.Logger.ErrorContext(ctx, "receive failed; retrying", "group", w.svc.Name, "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		if window != nil {
			window.waitFor(d.ID)
		}
		hctx, span := w.r.tracer.process(free, w.svc.Name, &d)
		c, v := w.handle(hctx, d)
		journalTrace(span, &d.Event, c.Journal)
		f := inflight{d: d, c: c, v: v}
		if span != nil {
			f.process, f.send = span, w.r.tracer.outputs(span, c.Publish)
		}
		if window != nil {
			if w.r.metrics != nil {
				f.sent = time.Now()
			}
			window.add(free, w.r, f)
		} else {
			w.settle(ctx, free, f)
		}
	}
}

// settle applies a handled delivery's commit, once its outputs, if sent
// already, are confirmed (or sent again, if they were not); a commit handed
// to an AsyncCommitter already is waited for, and applied again only if it
// failed. free is ctx without its cancellation.
func (w *worker) settle(ctx, free context.Context, f inflight) {
	c, d, v := f.c, f.d, f.v
	published := len(c.Publish)
	if f.confirm != nil && f.confirm(free) == nil {
		w.r.metrics.confirmed(f.sent)
		c.Publish = nil
	}
	for attempt := 1; ; attempt++ {
		var err error
		if attempt == 1 && f.committed != nil {
			err = f.committed(free)
		} else {
			err = w.r.commit(free, w.sub, c)
		}
		if err == nil || errors.Is(err, ErrDuplicate) {
			if err != nil {
				v = verdict{duplicate: true}
			}
			endSpans(f.process, f.send, &c, v, nil)
			w.r.stats.count(v, published)
			w.r.metrics.count(w.svc.Name, v, published)
			return
		}
		// A store or broker that is away is waited for while the runtime
		// runs: the delivery stays held, and is settled once it is back.
		// Otherwise, after a few tries, the delivery is handed back, to be
		// handled again (its outputs keep their ids); a delivery neither
		// settled nor handed back would stay with this consumer, and its
		// order would never end.
		code := baton.ErrorCode(err)
		if code == baton.Invalid || code == baton.Conflict {
			// Already settled, or not this transport's: nothing to hand back.
			w.r.cfg.Logger.ErrorContext(ctx, "settle failed", "group", w.svc.Name, "event", d.ID, "err", err)
			endSpans(f.process, f.send, &c, v, err)
			return
		}
		if attempt >= 5 && (code != baton.Unavailable || ctx.Err() != nil) {
			w.r.cfg.Logger.ErrorContext(ctx, "settle failed; handing the event back for redelivery", "group", w.svc.Name, "event", d.ID, "err", err)
			w.handBack(ctx, d)
			endSpans(f.process, f.send, &c, v, err)
			return
		}
		if attempt == 5 {
			w.r.cfg.Logger.WarnContext(ctx, "settle failed; retrying until the backend is back", "group", w.svc.Name, "event", d.ID, "err", err)
		}
		time.Sleep(min(time.Duration(attempt)*50*time.Millisecond, 2*time.Second))
	}
}

// handBack returns a delivery that could not be settled to its group. If
// that fails too, the broker redelivers it when the consumer's connection
// ends.
func (w *worker) handBack(ctx context.Context, d Delivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.sub.Nack(ctx, d, 0); err != nil {
		w.r.cfg.Logger.WarnContext(ctx, "handing the event back failed; the broker redelivers it when the connection ends", "group", w.svc.Name, "event", d.ID, "err", err)
	}
}

// verdict is what handling a delivery came to, counted once it is settled.
type verdict struct {
	dead      DeadReason // "" unless dead-lettered
	retried   bool
	duplicate bool
	handler   string // the type the handler declares, for metrics
}

// handle runs the pipeline for one delivery and returns how to settle it.
func (w *worker) handle(ctx context.Context, d Delivery) (Commit, verdict) {
	r, group := w.r, w.svc.Name
	c := Commit{Group: group, Delivery: &d}
	dead := func(kind DeadReason, e *baton.Event, reason string) (Commit, verdict) {
		dl := &store.DeadLetter{Group: group, Type: d.Type, Body: d.Raw, Meta: d.Meta, EventID: d.ID,
			Attempts: d.Attempt, Reason: reason, Time: time.Now()}
		if dl.Body == nil && d.Err == nil {
			// Kept in structured mode, which a replay republishes and a
			// person can read; encoded only here, on the way out.
			dl.Body, _ = event.Marshal(d.Event)
		}
		if e != nil {
			if e.ID != "" {
				dl.EventID = e.ID
			}
			dl.CorrelationID = cmp.Or(e.CorrelationID, e.ID)
		}
		// The group is done with the event: a copy published again is a
		// duplicate, until a replay forgets the mark.
		c.Dead, c.Handled = dl, dl.EventID
		// A coordinator waiting for the outputs hears that none will come.
		if replyTo := d.Meta[MetaReplyTo]; e != nil && replyTo != "" {
			if m, err := w.failureReply(ctx, e, d.Meta, reason); err == nil {
				c.Publish, c.ReplyTo = []Message{m}, replyTo
			}
		}
		c.Journal = []store.Entry{{Time: dl.Time, CorrelationID: dl.CorrelationID, Outcome: store.DeadLettered,
			EventID: dl.EventID, EventType: d.Type, Group: group, Attempt: d.Attempt, Error: reason}}
		if e != nil {
			c.Journal[0].Subject = e.Subject
		}
		r.cfg.Logger.WarnContext(ctx, "dead-lettered", "group", group, "type", d.Type, "event", dl.EventID, "reason", reason)
		return c, verdict{dead: kind}
	}

	size := len(d.Raw)
	if d.Raw == nil {
		size = event.Size(d.Event)
	}
	if err := event.CheckSize(size, r.cfg.MaxEventSize); err != nil {
		return dead(ReasonTooLarge, nil, err.Error())
	}
	e := d.Event
	if err := d.Err; err != nil {
		kind := ReasonInvalid
		if strings.Contains(err.Error(), "malformed JSON") {
			kind = ReasonMalformed
		}
		// When only validation failed, the event still names its id and
		// correlation id, so the dead letter shows in its history.
		var decoded *baton.Event
		if e.ID != "" || e.CorrelationID != "" {
			decoded = &e
		}
		return dead(kind, decoded, err.Error())
	}
	// An event published without a correlation id starts its own
	// transaction, as with Publish: its entries and its outputs share it.
	if e.CorrelationID == "" {
		e.CorrelationID = e.ID
	}
	if e.Hops > r.cfg.MaxHops {
		return dead(ReasonStorm, &e, fmt.Sprintf("storm guard: the event has passed through %d handlers, over the limit of %d; is there a cycle of events?", e.Hops, r.cfg.MaxHops))
	}
	h, err := w.handlerFor(&e)
	if err != nil {
		return dead(ReasonUnsupported, &e, err.Error())
	}
	// A copy of an event the group already handled is skipped before its
	// handler runs, on every transport: a handler that charges a card
	// without an idempotency key must not be called again for a copy
	// published a minute later. An atomic transport checks the inbox again
	// in the commit, for two copies handled at once.
	if !d.Unique {
		if seen, err := r.cfg.Store.Seen(ctx, group, e.ID); err == nil && seen {
			c.Journal = []store.Entry{{Time: time.Now(), CorrelationID: e.CorrelationID, Outcome: store.Duplicate,
				EventID: e.ID, EventType: e.Type, Subject: e.Subject, Group: group, Attempt: d.Attempt}}
			return c, verdict{duplicate: true}
		}
	}

	start := time.Now()
	ran := r.metrics.running(group, h.Type)
	outs, err := call(baton.WithAttempt(ctx, d.Attempt), h.Func, e)
	took := time.Since(start)
	ran(took)
	var msgs []Message
	if err == nil {
		msgs, err = w.outputs(ctx, &e, replyMeta(d.Meta), outs, start)
	}
	if err != nil {
		policy := w.svc.Retry
		if h.Retry != nil {
			policy = *h.Retry
		}
		policy = policy.OrDefault()
		var p *panicError
		switch {
		case errors.As(err, &p):
			return dead(ReasonPanic, &e, err.Error())
		case baton.IsPermanent(err):
			return dead(ReasonPermanent, &e, "permanent error: "+err.Error())
		case d.Attempt >= policy.MaxAttempts:
			return dead(ReasonExhausted, &e, fmt.Sprintf("gave up after %d attempts: %v", d.Attempt, err))
		}
		delay, ok := baton.RetryDelay(err)
		if !ok {
			delay = policy.Backoff(d.Attempt, rand.Float64)
		}
		c.Retry, c.RetryAfter = true, delay
		c.Journal = []store.Entry{{Time: time.Now(), CorrelationID: e.CorrelationID, Outcome: store.Failed,
			EventID: e.ID, EventType: e.Type, Subject: e.Subject, Group: group, Attempt: d.Attempt,
			Duration: took, Error: fmt.Sprintf("%v (retry in %v)", err, delay.Round(time.Millisecond))}}
		return c, verdict{retried: true, handler: h.Type}
	}

	c.Publish, c.Handled, c.ReplyTo = msgs, e.ID, d.Meta[MetaReplyTo]
	c.Journal = make([]store.Entry, 0, 1+len(msgs))
	handled := store.Entry{Time: time.Now(), CorrelationID: e.CorrelationID, Outcome: store.Handled,
		EventID: e.ID, EventType: e.Type, Subject: e.Subject, Group: group, Attempt: d.Attempt, Duration: took}
	for _, m := range msgs {
		handled.Caused = append(handled.Caused, m.ID)
	}
	c.Journal = append(c.Journal, handled)
	for _, o := range outs {
		c.Journal = append(c.Journal, publishedEntry(o, handled.Time))
	}
	return c, verdict{handler: h.Type}
}

// handlerFor finds the handler of e's type, upcasting e to the version the
// handler takes when it is older.
func (w *worker) handlerFor(e *baton.Event) (*baton.Handler, error) {
	hs := w.svc.Handlers
	pick := -1
	for i := range hs {
		if hs[i].Type == e.Type {
			pick = i
			break
		}
	}
	if pick < 0 {
		name, _, _ := event.ParseType(e.Type)
		newest := 0
		for i := range hs {
			if hn, v, _ := event.ParseType(hs[i].Type); hn == name && v > newest {
				pick, newest = i, v // the newest version wins: handlers of one name are few
			}
		}
	}
	if pick < 0 {
		return nil, baton.Errorf(baton.Invalid, "route", "service %s has no handler for %s (it handles %s)",
			w.svc.Name, e.Type, strings.Join(w.svc.Types(), ", "))
	}
	up, err := w.r.cfg.Registry.Prepare(*e, hs[pick].Type)
	if err != nil {
		return nil, err
	}
	*e = up
	return &hs[pick], nil
}

// replyMeta is the metadata of the outputs of an event that came with
// meta: a step's command is answered with its own routing (the run, the
// step), by which the coordinator knows what the reply is for, less the
// group to reply to, which is where the reply goes. Outputs of an event
// without it carry none.
func replyMeta(meta map[string]string) map[string]string {
	if meta[MetaReplyTo] == "" {
		return nil
	}
	out := make(map[string]string, len(meta)-1)
	for k, v := range meta {
		if k != MetaReplyTo {
			out[k] = v
		}
	}
	return out
}

// outputs completes the events a handler returned: deterministic ids, the
// same correlation, causation by the input, one more hop, the trace context
// of the process span in ctx (or the input's, without tracing); meta goes
// with each.
func (w *worker) outputs(ctx context.Context, in *baton.Event, meta map[string]string, outs []baton.Event, now time.Time) ([]Message, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	msgs := make([]Message, len(outs))
	for i := range outs {
		o := &outs[i]
		o.ID = event.OutputID(in.ID, w.svc.Name, i)
		o.Source = w.svc.Name
		o.SpecVersion = baton.SpecVersion
		o.Time = now
		o.CorrelationID = in.CorrelationID
		if o.CorrelationID == "" {
			o.CorrelationID = in.ID
		}
		o.CausationID = in.ID
		o.TraceParent, o.TraceState = in.TraceParent, in.TraceState
		w.r.tracer.stamp(ctx, o)
		o.Hops = in.Hops + 1
		if o.Subject == "" {
			o.Subject = in.Subject
		}
		m, err := w.r.encode(*o, meta)
		if err != nil {
			return nil, baton.Permanent(fmt.Errorf("handler emitted an invalid event %s: %w", o.Type, err))
		}
		msgs[i] = m
	}
	return msgs, nil
}

// TypeStepFailed is the event a service's runtime sends back to the
// coordinator that sent it an event when it dead-letters that event: to
// the group its MetaReplyTo names, with its metadata, as any reply.
const TypeStepFailed = "baton.step.failed.v1"

// StepFailed is the data of a TypeStepFailed event.
type StepFailed struct {
	Group   string `json:"group"`
	EventID string `json:"event_id"`
	Reason  string `json:"reason"`
}

func (w *worker) failureReply(ctx context.Context, in *baton.Event, meta map[string]string, reason string) (Message, error) {
	f, err := baton.NewEvent(TypeStepFailed, in.Subject, StepFailed{Group: w.svc.Name, EventID: in.ID, Reason: reason})
	if err != nil {
		return Message{}, err
	}
	msgs, err := w.outputs(ctx, in, replyMeta(meta), []baton.Event{f}, time.Now())
	if err != nil {
		return Message{}, err
	}
	return msgs[0], nil
}

type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("handler panicked: %v", p.value)
}

// call runs the handler, turning a panic into an error.
func call(ctx context.Context, fn baton.HandlerFunc, e baton.Event) (outs []baton.Event, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return fn(ctx, e)
}
