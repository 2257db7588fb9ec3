package store

import (
	"context"
	"encoding/json"
	"time"
)

// RunStatus is where a flow run is.
type RunStatus string

const (
	RunPending      RunStatus = "pending"      // recorded, first step not yet dispatched
	RunRunning      RunStatus = "running"      // steps under way
	RunCompensating RunStatus = "compensating" // a step failed; undoing the completed ones
	RunCompleted    RunStatus = "completed"    // every step succeeded
	RunFailed       RunStatus = "failed"       // a step failed; compensation (if any) ran
	RunCancelled    RunStatus = "cancelled"    // cancelled on request
)

// Terminal reports whether a run in this status is over.
func (s RunStatus) Terminal() bool {
	return s == RunCompleted || s == RunFailed || s == RunCancelled
}

// StepStatus is where one step of a run is.
type StepStatus string

const (
	StepRunning     StepStatus = "running"     // dispatched (or sleeping, or calling out); waiting for its result
	StepWaiting     StepStatus = "waiting"     // waiting for an external event
	StepCompleted   StepStatus = "completed"   // succeeded
	StepFailed      StepStatus = "failed"      // failed for good
	StepCompensated StepStatus = "compensated" // undone after a later failure
	StepSkipped     StepStatus = "skipped"     // not needed (the other branches of a first-wins join)
)

// StepState is one step's progress. Steps are named by their path in the
// flow: "charge", "checks/1/fetch" (branch 1 of the parallel step checks).
// What a step produced is in the run's Data, under steps.NAME.
type StepState struct {
	Status   StepStatus `json:"status"`
	Attempts int        `json:"attempts,omitempty"`
	Error    string     `json:"error,omitempty"`
	Started  time.Time  `json:"started,omitzero"`
	Ended    time.Time  `json:"ended,omitzero"`
	Branch   int        `json:"branch,omitempty"` // a condition's chosen branch, counted from 1
	// Due is when the step needs the coordinator again: its attempt's
	// deadline, the end of its sleep, or, with Backoff, its next attempt.
	Due     time.Time `json:"due,omitzero"`
	Backoff bool      `json:"backoff,omitempty"`
}

// Run is one execution of a flow. The store indexes ID, Flow, Key, Status
// and Created, and keeps the rest as a document.
type Run struct {
	ID      string    `json:"id"`
	Flow    string    `json:"flow"`
	Version int       `json:"version"` // the flow's version, pinned at start
	Key     string    `json:"key"`     // the business key: one run per flow and key
	Status  RunStatus `json:"status"`
	Error   string    `json:"error,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Rev counts the saves; SaveRun compares it.
	Rev int64 `json:"rev"`
	// Wake is the earliest Due of its steps: the store indexes it, so that
	// timeouts, sleeps and retries are durable with the transition that set
	// them. Zero when only a reply can move the run.
	Wake time.Time `json:"wake,omitzero"`
	// TraceParent and TraceState are the W3C trace context of the run's
	// span, which its steps' commands carry on: one trace per run.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`

	Input  json.RawMessage       `json:"input,omitempty"`
	Result json.RawMessage       `json:"result,omitempty"`
	Data   json.RawMessage       `json:"data,omitempty"` // what the steps have produced, for later steps
	Steps  map[string]*StepState `json:"steps,omitempty"`
}

// Outbound is a message a run transition sends: to one consumer group, or,
// with Group empty, to every group whose patterns match its type. Body is
// the message as bus.AppendRecord writes it, which a store keeps as it is
// (a store that is also the transport queues it).
type Outbound struct {
	Group string `json:"group,omitempty"`
	Type  string `json:"type"`
	ID    string `json:"id"`
	Body  []byte `json:"body"`
}

// Outbox is implemented by stores that are not also the transport: the
// messages a run transition sends are written in the transition's own
// transaction and wait here until a relay has published them. Relays claim
// what they send, so that several coordinators sharing the store do not all
// send the same messages. A relay that publishes a message twice (its claim
// lapsed, or it crashed before MarkSent) sends the same id, which the
// consumers' inboxes skip.
type Outbox interface {
	// ClaimOutbound returns up to limit messages not yet marked sent and not
	// under another claim, oldest first, and claims them for lease: until it
	// lapses, no other ClaimOutbound returns them. A claim that lapses (its
	// holder crashed, or could not publish) makes them claimable again.
	// Relays sharing a store use one lease: a store may measure a claim by
	// the lease of the caller that would take it over.
	ClaimOutbound(ctx context.Context, limit int, lease time.Duration) ([]Pending, error)
	// MarkSent removes sent messages; unknown ids are not an error.
	MarkSent(ctx context.Context, ids ...string) error
}

// Pending is an outbound message waiting in an Outbox, under an id the store
// assigned.
type Pending struct {
	ID string `json:"id"`
	Outbound
}

// RunQuery selects runs; zero fields select all. Runs come newest first.
type RunQuery struct {
	Flow   string
	Status RunStatus
	Key    string
	Since  time.Time // created at or after
	Until  time.Time // created before
	After  string    // the id of the last run of the previous page
	Limit  int       // at most this many (the store caps it)
}

// Runs keeps flow runs. A transition and the messages it sends are one
// atomic write (a transactional outbox): a store that is also the transport
// delivers them in that write; any other keeps them until they are sent.
type Runs interface {
	// CreateRun stores r with Rev 1 and sends out, unless the flow already
	// has a run with r.Key: then it returns that run, created false, and
	// sends nothing.
	CreateRun(ctx context.Context, r Run, out []Outbound) (stored Run, created bool, err error)
	// Run returns the run with id, or an error that is baton.ErrNotFound.
	Run(ctx context.Context, id string) (Run, error)
	// SaveRun stores r if the stored run's Rev equals r.Rev, and sends out;
	// the saved run has Rev+1. A different Rev is a baton.Conflict error and
	// nothing is written.
	SaveRun(ctx context.Context, r Run, out []Outbound) (Run, error)
	// ListRuns returns the runs q selects, newest first.
	ListRuns(ctx context.Context, q RunQuery) ([]Run, error)
	// DueRuns returns up to limit runs whose Wake is set and not after now,
	// earliest first.
	DueRuns(ctx context.Context, now time.Time, limit int) ([]Run, error)
}

// DueRunsOf returns the due runs (Runs.DueRuns) that mine accepts, about
// limit of them, earliest first. It serves the parts that share the run
// index, the coordinator and an expectation's watcher, each taking only its
// own: when fewer than half of the earliest due runs are its own, it reads
// further, up to 16 times limit, so that the other part's backlog of due
// runs (its process is down) does not hide its own.
func DueRunsOf(ctx context.Context, r Runs, now time.Time, limit int, mine func(Run) bool) ([]Run, error) {
	for n := limit; ; n *= 4 {
		due, err := r.DueRuns(ctx, now, n)
		if err != nil {
			return nil, err
		}
		own := due[:0]
		for _, run := range due {
			if mine(run) {
				own = append(own, run)
			}
		}
		if len(due) < n || len(own) >= limit/2 || n >= 16*limit {
			return own, nil
		}
	}
}

// Overlap says what a schedule does when a tick comes while its previous
// run is still going.
type Overlap string

const (
	OverlapSkip      Overlap = "skip"       // drop the tick
	OverlapBufferOne Overlap = "buffer_one" // start one run when the current ends; later ticks are dropped
	OverlapAllow     Overlap = "allow"      // start a run for every tick
)

// Schedule starts a flow on a cron expression or at a fixed interval.
type Schedule struct {
	Name     string          `json:"name"`
	Flow     string          `json:"flow"`
	Cron     string          `json:"cron,omitempty"`  // five fields, or a descriptor such as @hourly
	Every    time.Duration   `json:"every,omitempty"` // instead of Cron
	Input    json.RawMessage `json:"input,omitempty"`
	Overlap  Overlap         `json:"overlap,omitempty"`  // default skip
	CatchUp  int             `json:"catch_up,omitempty"` // missed ticks started after downtime, at most
	Paused   bool            `json:"paused,omitempty"`
	LastTick time.Time       `json:"last_tick,omitzero"` // the last tick handled
	LastRun  string          `json:"last_run,omitempty"` // the id of the last run started
	Buffered bool            `json:"buffered,omitempty"` // a tick waits for the current run (buffer_one)
	Rev      int64           `json:"rev"`
}

// Schedules keeps schedules. Several coordinators may share them: saves
// compare revisions, and a tick's run is started with a business key naming
// the tick, so each tick starts one run.
type Schedules interface {
	// SaveSchedule stores s if the stored schedule's Rev equals s.Rev (0 for
	// a new one), returning it with Rev+1; otherwise a baton.Conflict error.
	SaveSchedule(ctx context.Context, s Schedule) (Schedule, error)
	// Schedule returns one schedule, or an error that is baton.ErrNotFound.
	Schedule(ctx context.Context, name string) (Schedule, error)
	ListSchedules(ctx context.Context) ([]Schedule, error)
	// DeleteSchedule removes a schedule; baton.ErrNotFound if absent.
	DeleteSchedule(ctx context.Context, name string) error
}
