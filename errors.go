package baton

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for callers, the API and the CLI.
type Code string

const (
	Invalid     Code = "invalid"     // the input is wrong; retrying will not help
	NotFound    Code = "not_found"   // the thing asked for does not exist
	Conflict    Code = "conflict"    // the state changed under the caller
	Unavailable Code = "unavailable" // a backend is away; retry later
	Internal    Code = "internal"    // a bug or an unexpected failure
)

// Error is Baton's coded error: what went wrong (Code), during what (Op), and
// why (Err).
type Error struct {
	Code Code
	Op   string
	Err  error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and operation.
func Errorf(code Code, op, format string, args ...any) error {
	return &Error{Code: code, Op: op, Err: fmt.Errorf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal
// when there is none, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrNotFound is returned when a looked-up item does not exist.
var ErrNotFound = &Error{Code: NotFound, Err: errors.New("not found")}

// Is makes errors.Is(err, ErrNotFound) true for every not_found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t == ErrNotFound && e.Code == NotFound
}

// Permanent marks err as one retrying cannot fix: the runtime sends the event
// straight to the dead-letter queue.
func Permanent(err error) error { return &controlError{err: err, permanent: true} }

// RetryAfter asks the runtime to retry no sooner than d, instead of using the
// handler's backoff. Attempts still count against the policy.
func RetryAfter(d time.Duration, err error) error { return &controlError{err: err, after: d} }

type controlError struct {
	err       error
	permanent bool
	after     time.Duration
}

func (e *controlError) Error() string { return e.err.Error() }
func (e *controlError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var c *controlError
	return errors.As(err, &c) && c.permanent
}

// RetryDelay returns the delay asked for with RetryAfter, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var c *controlError
	if errors.As(err, &c) && c.after > 0 {
		return c.after, true
	}
	return 0, false
}
