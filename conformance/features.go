package conformance

import "testing"

// Features are what a backend promises beyond the contract every case
// checks. Each backend's own test declares them when it runs a suite, so
// that the production interfaces carry nothing for the tests' sake; a case
// whose feature is not declared skips and says so.
type Features struct {
	// Ordered: one consumer of a group receives the group's messages in
	// publish order while none is nacked. It enables the ordering case.
	Ordered bool
	// Atomic: the transport is a bus.Committer and is itself the
	// store.Store its commits write to, so a handler's outputs, its inbox
	// mark, its journal entries and its dead letter are one write, and a
	// run transition delivers the messages it sends in its own write. It
	// enables the Commit cases and the RunOutbox cases; without it, the
	// store must be a store.Outbox (RunOutboxKept).
	Atomic bool
}

// given passes f to a case that depends on a feature.
func given[T any](f Features, run func(*testing.T, T, Features)) func(*testing.T, T) {
	return func(t *testing.T, v T) { run(t, v, f) }
}
