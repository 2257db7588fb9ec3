// Package store is the state seam of Baton: the inbox that makes consumers
// idempotent, the journal that tells what happened to one business
// transaction, the dead letters, and the coordinator's runs and schedules.
//
// It holds no timer index: a flow's timeouts, sleeps and retries are the
// Wake time of its run (Runs.DueRuns), saved in the transition that set
// them, and a handler's retry delay is the transport's (Subscription.Nack).
//
// Each part is a small interface; a backend implements all of them in one
// value (Store), and the conformance package holds the suite every Store
// passes. The parts of Baton that use a store each declare the slice of it
// they call (bus.Store, flow.Store, flow.ScheduleStore, api.Store), so what
// depends on what is plain; any Store satisfies them.
package store

import (
	"context"
	"strings"
	"time"
)

// Store is everything a backend keeps: what a backend implements and the
// conformance suite checks, not what any one consumer asks for.
type Store interface {
	Inbox
	Journal
	DeadLetters
	Runs
	Schedules
	Close() error
}

// Inbox remembers, per consumer group, the ids of the events it handled, for
// a retention window, so a redelivered event is skipped.
type Inbox interface {
	// Seen reports whether group already handled the event id.
	Seen(ctx context.Context, group, id string) (bool, error)
	// MarkSeen records that group handled id; the mark expires after the
	// store's retention window.
	MarkSeen(ctx context.Context, group, id string) error
	// Forget removes the mark, so the group handles id again: a replayed
	// dead letter. Forgetting an unmarked id is not an error.
	Forget(ctx context.Context, group, id string) error
}

// Settler is implemented by stores that can mark an event handled and
// append the journal entries of its handling in one atomic write, which the
// runtime then uses instead of MarkSeen and Append: one round trip to the
// store per handled event instead of two.
type Settler interface {
	// Settle does MarkSeen(group, id) and Append(entries...) at once: both
	// or neither.
	Settle(ctx context.Context, group, id string, entries ...Entry) error
}

// Expirer is implemented by stores that expire inbox marks on request (as
// well as on their own), so the retention window can be tested and forced.
type Expirer interface {
	// InboxRetention is how long a mark is kept after MarkSeen.
	InboxRetention() time.Duration
	// ExpireInbox removes the marks older than the retention window at now
	// and returns how many it removed.
	ExpireInbox(ctx context.Context, now time.Time) (int, error)
}

// Outcome says what an Entry records.
type Outcome string

const (
	Published    Outcome = "published"     // an event was accepted by the bus
	Handled      Outcome = "handled"       // a group's handler succeeded
	Failed       Outcome = "failed"        // an attempt failed; a retry is scheduled
	DeadLettered Outcome = "dead-lettered" // the event went to the group's dead letters
	Duplicate    Outcome = "duplicate"     // a redelivery was skipped by the inbox
	Replayed     Outcome = "replayed"      // a dead letter was published again

	// The entries of an expectation's watcher (package expect): its Source
	// is "baton.expect/NAME", its Error says what was awaited.
	ExpectationBroken  Outcome = "expectation-broken"   // the awaited event did not come in time
	ExpectationMetLate Outcome = "expectation-met-late" // it came after all: the alert is cleared
)

// RunEnded is the outcome of the entry a coordinator journals when a flow
// run ends in status s (completed, failed or cancelled): "run-completed",
// "run-failed", "run-cancelled". The entry's EventID is the run's id, its
// EventType the flow's name, its CorrelationID the run's key and its Error
// why the run failed or was cancelled. It lets a reader of the journal alone
// (baton status) tell how a run ended, whatever its events were named.
func RunEnded(s RunStatus) Outcome { return Outcome("run-" + string(s)) }

// RunEnd reports the status of the run whose end an entry with outcome o
// records, and whether it records one.
func (o Outcome) RunEnd() (RunStatus, bool) {
	s, ok := strings.CutPrefix(string(o), "run-")
	if !ok || !RunStatus(s).Terminal() {
		return "", false
	}
	return RunStatus(s), true
}

// Entry is one line of a business transaction's history.
type Entry struct {
	Seq           uint64        `json:"seq"` // assigned by the journal, increasing
	Time          time.Time     `json:"time"`
	CorrelationID string        `json:"correlationid"`
	Outcome       Outcome       `json:"outcome"`
	EventID       string        `json:"eventid,omitempty"`
	EventType     string        `json:"eventtype,omitempty"`
	Subject       string        `json:"subject,omitempty"`
	Source        string        `json:"source,omitempty"`
	Group         string        `json:"group,omitempty"`    // the handler's group
	Attempt       int           `json:"attempt,omitempty"`  // of the handler
	Duration      time.Duration `json:"duration,omitempty"` // the handler's
	Error         string        `json:"error,omitempty"`
	Caused        []string      `json:"caused,omitempty"` // ids of the events emitted
	// TraceID is the W3C trace id of the event's trace context, in hex:
	// the trace a tracing tool shows the transaction in.
	TraceID string `json:"traceid,omitempty"`
}

// Journal is the ordered history of every business transaction.
type Journal interface {
	// Append records entries, assigning their Seq.
	Append(ctx context.Context, entries ...Entry) error
	// History returns the entries of one correlation id in order.
	History(ctx context.Context, correlationID string) ([]Entry, error)
	// Since returns up to limit entries with Seq > after, in order: the feed
	// behind a live tail.
	Since(ctx context.Context, after uint64, limit int) ([]Entry, error)
}

// DeadLetter is a message a group gave up on, with why.
type DeadLetter struct {
	ID            string    `json:"id"` // assigned by the store
	Group         string    `json:"group"`
	Type          string    `json:"type"`    // the message's routing type
	Body          []byte    `json:"body"`    // the message as received; an event in structured mode
	EventID       string    `json:"eventid"` // empty when the body did not decode
	CorrelationID string    `json:"correlationid,omitempty"`
	Attempts      int       `json:"attempts"`
	Reason        string    `json:"reason"`
	Time          time.Time `json:"time"`
	// Meta is the message's metadata (see bus.Message): a replay sends it
	// again with the body, so that a step's command still answers its
	// coordinator.
	Meta map[string]string `json:"meta,omitempty"`
	// Truncated says the store kept only the first bytes of the body
	// (Retention.DeadBody) of Size bytes: such a dead letter can be read
	// but not replayed.
	Truncated bool `json:"truncated,omitempty"`
	Size      int  `json:"size,omitempty"`
}

// DeadLetters is the dead-letter queue of every group.
type DeadLetters interface {
	// AddDead stores d under a new ID that the store assigns; an ID set in
	// d is ignored.
	AddDead(ctx context.Context, d DeadLetter) error
	// Dead returns the dead letter with id, or an error that is
	// baton.ErrNotFound.
	Dead(ctx context.Context, id string) (DeadLetter, error)
	// ListDead returns up to limit dead letters after the id after, oldest
	// first.
	ListDead(ctx context.Context, after string, limit int) ([]DeadLetter, error)
	// DropDead deletes the dead letter with id; baton.ErrNotFound if absent.
	DropDead(ctx context.Context, id string) error
}
