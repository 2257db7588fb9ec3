// Package baton is the domain of Baton: the event envelope, the handler
// model shared by choreography and orchestration, and the coded errors every
// other package speaks.
//
// A handler is a function of one event that returns the events it causes. It
// does not know how it is coordinated: under choreography its outputs are
// published to the bus, under orchestration they go back to the coordinator.
package baton

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SpecVersion is the CloudEvents version of every envelope Baton writes.
const SpecVersion = "1.0"

// Event is a CloudEvents 1.0 envelope with Baton's extensions.
type Event struct {
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time,omitzero"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	DataSchema      string          `json:"dataschema,omitempty"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	CausationID     string          `json:"causationid,omitempty"`
	TraceParent     string          `json:"traceparent,omitempty"`
	TraceState      string          `json:"tracestate,omitempty"`
	Hops            int             `json:"hops,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// NewEvent returns an event of type typ about subject, with data encoded as
// JSON. The runtime fills in id, source, time, correlation and causation when
// a handler returns it; a publisher fills them in when it publishes it.
func NewEvent(typ, subject string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, Errorf(Invalid, "new event", "encode data of %s: %w", typ, err)
	}
	return Event{Type: typ, Subject: subject, DataContentType: "application/json", Data: raw}, nil
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return Errorf(Invalid, "decode", "data of %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// HandlerFunc handles one event and returns the events it causes.
type HandlerFunc func(ctx context.Context, e Event) ([]Event, error)

// Handler is the logic a service runs for one event type.
type Handler struct {
	// Type is the event type consumed, with its version: "order.placed.v1".
	Type string
	// Func does the work. It receives the event id as an idempotency key for
	// anything it does outside Baton.
	Func HandlerFunc
	// Retry overrides the service's retry policy for this handler.
	Retry *RetryPolicy
}

// Service is a named set of handlers. Under choreography the service is one
// consumer group, named after the service.
type Service struct {
	Name     string
	Handlers []Handler
	// Retry is the policy of handlers that do not set their own; the zero
	// value means DefaultRetry.
	Retry RetryPolicy
}

// Types lists the event types the service consumes.
func (s Service) Types() []string {
	types := make([]string, len(s.Handlers))
	for i, h := range s.Handlers {
		types[i] = h.Type
	}
	return types
}

// RetryPolicy says how often and how patiently a failed handler is retried:
// exponential backoff from Base, capped at Cap, with full jitter.
//
// In JSON and YAML it is written {"max_attempts": 3, "base": "100ms",
// "cap": "5s"}.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, the first included
	Base        time.Duration // delay before the second attempt, before jitter
	Cap         time.Duration // largest delay
}

type retryJSON struct {
	MaxAttempts int    `json:"max_attempts,omitempty"`
	Base        string `json:"base,omitempty"`
	Cap         string `json:"cap,omitempty"`
}

func (p RetryPolicy) MarshalJSON() ([]byte, error) {
	j := retryJSON{MaxAttempts: p.MaxAttempts}
	if p.Base > 0 {
		j.Base = p.Base.String()
	}
	if p.Cap > 0 {
		j.Cap = p.Cap.String()
	}
	return json.Marshal(j)
}

func (p *RetryPolicy) UnmarshalJSON(b []byte) error {
	var j retryJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("retry policy: %w (want max_attempts, base, cap)", err)
	}
	p.MaxAttempts = j.MaxAttempts
	for _, d := range []struct {
		name string
		s    string
		to   *time.Duration
	}{{"base", j.Base, &p.Base}, {"cap", j.Cap, &p.Cap}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("retry policy: %s %q: want a duration such as \"100ms\"", d.name, d.s)
		}
		*d.to = v
	}
	return nil
}

// DefaultRetry is used where a policy is left zero: five attempts, waiting up
// to 100ms, 200ms, 400ms and 800ms between them.
var DefaultRetry = RetryPolicy{MaxAttempts: 5, Base: 100 * time.Millisecond, Cap: 30 * time.Second}

// OrDefault fills the zero fields of p from DefaultRetry.
func (p RetryPolicy) OrDefault() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetry.MaxAttempts
	}
	if p.Base <= 0 {
		p.Base = DefaultRetry.Base
	}
	if p.Cap <= 0 {
		p.Cap = DefaultRetry.Cap
	}
	return p
}

// Backoff is the delay before attempt+1 after attempt failed, drawn with full
// jitter from [0, min(Cap, Base*2^(attempt-1))]. rnd returns a value in [0,1).
func (p RetryPolicy) Backoff(attempt int, rnd func() float64) time.Duration {
	p = p.OrDefault()
	ceiling := p.Cap
	if attempt < 1 {
		attempt = 1
	}
	if shift := attempt - 1; shift < 63 && p.Base <= ceiling>>shift {
		ceiling = p.Base << shift
	}
	return time.Duration(rnd() * float64(ceiling))
}

func (p RetryPolicy) String() string {
	return fmt.Sprintf("%d attempts, backoff %v..%v", p.MaxAttempts, p.Base, p.Cap)
}

type attemptKey struct{}

// WithAttempt returns ctx carrying the delivery attempt of the event being
// handled; the runtime sets it for every handler call.
func WithAttempt(ctx context.Context, attempt int) context.Context {
	return context.WithValue(ctx, attemptKey{}, attempt)
}

// Attempt is the delivery attempt of the event being handled: 1 the first
// time, counting retries durably across restarts. It is 1 outside a handler.
func Attempt(ctx context.Context) int {
	if n, ok := ctx.Value(attemptKey{}).(int); ok && n > 0 {
		return n
	}
	return 1
}
