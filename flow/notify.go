package flow

import (
	"context"
	"encoding/json"
	"time"

	"github.com/batonhq/baton/store"
)

// StartRequest asks for a run of a flow.
type StartRequest struct {
	Flow    string          `json:"flow"`
	Version int             `json:"version,omitempty"` // 0: the latest
	Key     string          `json:"key"`               // the business key; starting it again returns the same run
	Input   json.RawMessage `json:"input,omitempty"`
}

// Notification kinds.
const (
	RunCompleted = "run.completed"
	RunFailed    = "run.failed"
	RunCancelled = "run.cancelled"
	InputInvalid = "run.invalid" // a start was refused: the alert channel
	DeadLetter   = "dead_letter"
	Alert        = "alert" // a flow's Notify step

	// A declared expectation was broken, and later met (package expect).
	ExpectationBroken  = "expectation.broken"
	ExpectationCleared = "expectation.cleared"
)

// Notification is something the coordinator tells the outside world.
type Notification struct {
	Kind    string            `json:"kind"`
	Time    time.Time         `json:"time"`
	Message string            `json:"message,omitempty"`
	Run     *store.Run        `json:"run,omitempty"`
	Dead    *store.DeadLetter `json:"dead_letter,omitempty"`
	Request *StartRequest     `json:"request,omitempty"` // for run.invalid
}

// Notifier delivers notifications (webhooks, a server-sent-events stream).
// Notify must not block for long: deliver asynchronously.
type Notifier interface {
	Notify(ctx context.Context, n Notification)
}
