package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Retention says how long a store keeps what only grows: the journal (with
// its index by correlation id), the runs that have ended (with their index
// by business key) and the dead letters. The zero value of each field means
// its default; a negative value turns that bound off (kept forever, no cap,
// whole bodies).
type Retention struct {
	// Age is how long journal entries, ended runs (counted from their
	// last update: when they ended) and dead letters are kept (default
	// DefaultAge). A run that is pending, running or compensating is kept
	// however old it is.
	Age time.Duration
	// DeadCap is the most dead letters kept (default DefaultDeadCap): a
	// sweep drops the oldest beyond it.
	DeadCap int
	// DeadBody is the most bytes of a dead letter's body kept (default
	// DefaultDeadBody): a longer body is cut to it when it is stored, and
	// the dead letter says so (DeadLetter.Truncated).
	DeadBody int
}

// The defaults of a Retention's zero fields.
const (
	// DefaultAge, 30 days, covers a monthly review and most disputes
	// while bounding the journal to a month of traffic.
	DefaultAge = 30 * 24 * time.Hour
	// DefaultDeadCap, 100,000 dead letters, is far more than anyone reads
	// one by one, and enough to replay a whole outage's worth.
	DefaultDeadCap = 100_000
	// DefaultDeadBody, 256 KiB, keeps a typical event (a few KiB) whole
	// many times over, while a dead letter of an oversized message costs
	// at most that: with the cap, at most about 25 GiB of bodies.
	DefaultDeadBody = 256 << 10
)

// KeepAll is the Retention that bounds nothing: for a process that opens a
// store to read it (a command-line tool), and leaves the sweeps to those
// that run the parts.
var KeepAll = Retention{Age: -1, DeadCap: -1, DeadBody: -1}

// SweepEvery is how often a store applies its Retention in the background,
// starting when it is opened.
const SweepEvery = 10 * time.Minute

// WithDefaults returns r with its zero fields set to their defaults.
func (r Retention) WithDefaults() Retention {
	if r.Age == 0 {
		r.Age = DefaultAge
	}
	if r.DeadCap == 0 {
		r.DeadCap = DefaultDeadCap
	}
	if r.DeadBody == 0 {
		r.DeadBody = DefaultDeadBody
	}
	return r
}

// Cutoff is the time before which data is old at now, and whether the age
// bound is on.
func (r Retention) Cutoff(now time.Time) (time.Time, bool) {
	if r.Age < 0 {
		return time.Time{}, false
	}
	return now.Add(-r.Age), true
}

// Bound cuts d's body to r.DeadBody bytes when it is longer, recording its
// size as received; a store calls it on every dead letter it adds.
func (r Retention) Bound(d *DeadLetter) {
	if r.DeadBody < 0 || len(d.Body) <= r.DeadBody {
		return
	}
	d.Size = len(d.Body)
	d.Truncated = true
	d.Body = d.Body[:r.DeadBody:r.DeadBody]
}

// Swept counts what sweeps removed.
type Swept struct {
	Journal     int // journal entries older than the age
	Runs        int // ended runs older than the age
	Dead        int // dead letters older than the age
	DeadOverCap int // dead letters dropped, oldest first, beyond the cap
}

// Add adds the counts of o to s.
func (s *Swept) Add(o Swept) {
	s.Journal += o.Journal
	s.Runs += o.Runs
	s.Dead += o.Dead
	s.DeadOverCap += o.DeadOverCap
}

// Sweeper is implemented by stores that apply a Retention: in the
// background every SweepEvery, and on request, so that retention can be
// tested and forced.
type Sweeper interface {
	// Retention is the store's, defaults applied.
	Retention() Retention
	// Sweep removes what is older than the retention at now, and the dead
	// letters beyond the cap, and says how many of each it removed.
	// The journal and the dead letters are swept oldest first, up to the
	// first entry that is not old: they are written in time order.
	Sweep(ctx context.Context, now time.Time) (Swept, error)
	// Swept is what every sweep since the store was opened removed.
	Swept() Swept
}

// SweepSteps are what one store does of a sweep; Sweeps does them in order
// and adds up what they removed. Each removes, oldest first, what it names:
// journal entries (with their indexes), ended runs (with theirs) and dead
// letters older than cutoff, and the oldest dead letters beyond the cap.
type SweepSteps struct {
	Journal, Runs, DeadBefore func(ctx context.Context, cutoff time.Time) (int, error)
	DeadOverCap               func(ctx context.Context) (int, error)
}

// Sweeps runs a store's sweeps, in the background and on request (a
// store's Sweep), one at a time, and adds up what they removed. The zero
// value is not ready: use NewSweeps.
type Sweeps struct {
	name      string
	log       *slog.Logger
	retention Retention
	steps     SweepSteps

	// sweeping makes the sweeps of one process one at a time: a sweep
	// counts the dead letters, then drops the excess.
	sweeping sync.Mutex

	mu    sync.Mutex
	total Swept
}

// NewSweeps returns the sweeps of the store called name (for the log),
// which keeps r (defaults applied), each done by steps.
func NewSweeps(name string, log *slog.Logger, r Retention, steps SweepSteps) *Sweeps {
	return &Sweeps{name: name, log: log, retention: r, steps: steps}
}

// Sweep does the steps for a sweep at now and counts what they removed, up
// to the first that failed.
func (s *Sweeps) Sweep(ctx context.Context, now time.Time) (got Swept, err error) {
	s.sweeping.Lock()
	defer s.sweeping.Unlock()
	defer func() { s.count(got) }()
	if cutoff, ok := s.retention.Cutoff(now); ok {
		if got.Journal, err = s.steps.Journal(ctx, cutoff); err != nil {
			return got, err
		}
		if got.Runs, err = s.steps.Runs(ctx, cutoff); err != nil {
			return got, err
		}
		if got.Dead, err = s.steps.DeadBefore(ctx, cutoff); err != nil {
			return got, err
		}
	}
	got.DeadOverCap, err = s.steps.DeadOverCap(ctx)
	return got, err
}

// count adds what one sweep removed to the total.
func (s *Sweeps) count(o Swept) {
	s.mu.Lock()
	s.total.Add(o)
	s.mu.Unlock()
}

// Total is what the sweeps counted so far.
func (s *Sweeps) Total() Swept {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Run sweeps at once, then every SweepEvery, until stop is closed; each
// sweep is cancelled when stop closes. What a sweep removed is logged at
// info (the dead letters over the cap at warn: they were not read), and a
// failure at error; a store that is closing (closed reports it) is not a
// failure.
func (s *Sweeps) Run(stop <-chan struct{}, closed func(error) bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(SweepEvery)
	defer t.Stop()
	for {
		got, err := s.Sweep(ctx, time.Now())
		switch {
		case err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled) || closed(err)):
			return
		case err != nil:
			s.log.Error(s.name+": retention sweep failed; it is tried again later", "err", err, "every", SweepEvery)
		}
		if got.DeadOverCap > 0 {
			s.log.Warn(s.name+": dead letters over the cap dropped, oldest first", "dropped", got.DeadOverCap)
		}
		if got != (Swept{}) {
			s.log.Info(s.name+": retention sweep", "journal", got.Journal, "runs", got.Runs, "dead_letters", got.Dead, "dead_letters_over_cap", got.DeadOverCap)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
