package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

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
	// Trimmed says what Trim cut or left out, when it did: one line per
	// field, such as "request.input: 1048576 bytes left out".
	Trimmed []string `json:"trimmed,omitempty"`
}

// NotificationFieldLimit bounds, in bytes, each field of a notification
// that comes from outside: the message, a refused start's flow, key and
// input, a dead letter's body.
const NotificationFieldLimit = 4 << 10

// Trim returns n with each field that comes from outside bounded by
// NotificationFieldLimit, so that a refused 1 MiB request is not sent
// whole to every subscriber and webhook: a text is cut (at a character
// boundary) and marked with "…", an input (JSON, which a cut would break)
// is left out, a dead letter's body is cut (the dead letter itself keeps
// it: GET /v1/dead-letters/{id}). Trimmed lists what was cut. A run's own
// fields are not trimmed: the run holds what its flow accepted.
func (n Notification) Trim() Notification {
	if len(n.Message) > NotificationFieldLimit {
		n.Trimmed = append(n.Trimmed, fmt.Sprintf("message: cut to %d of %d bytes", NotificationFieldLimit, len(n.Message)))
		n.Message = cut(n.Message)
	}
	if r := n.Request; r != nil && (len(r.Flow) > NotificationFieldLimit || len(r.Key) > NotificationFieldLimit || len(r.Input) > NotificationFieldLimit) {
		c := *r
		if len(c.Flow) > NotificationFieldLimit {
			n.Trimmed = append(n.Trimmed, fmt.Sprintf("request.flow: cut to %d of %d bytes", NotificationFieldLimit, len(c.Flow)))
			c.Flow = cut(c.Flow)
		}
		if len(c.Key) > NotificationFieldLimit {
			n.Trimmed = append(n.Trimmed, fmt.Sprintf("request.key: cut to %d of %d bytes", NotificationFieldLimit, len(c.Key)))
			c.Key = cut(c.Key)
		}
		if len(c.Input) > NotificationFieldLimit {
			n.Trimmed = append(n.Trimmed, fmt.Sprintf("request.input: %d bytes left out", len(c.Input)))
			c.Input = nil
		}
		n.Request = &c
	}
	if d := n.Dead; d != nil && len(d.Body) > NotificationFieldLimit {
		c := *d
		n.Trimmed = append(n.Trimmed, fmt.Sprintf("dead_letter.body: cut to %d of %d bytes", NotificationFieldLimit, len(c.Body)))
		c.Body = c.Body[:NotificationFieldLimit:NotificationFieldLimit]
		n.Dead = &c
	}
	return n
}

// cut shortens s to at most NotificationFieldLimit bytes, at a character
// boundary, ending in "…".
func cut(s string) string {
	const ellipsis = "…"
	end := NotificationFieldLimit - len(ellipsis)
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + ellipsis
}

// Notifier delivers notifications (webhooks, a server-sent-events stream).
// Notify must not block for long: deliver asynchronously.
type Notifier interface {
	Notify(ctx context.Context, n Notification)
}
