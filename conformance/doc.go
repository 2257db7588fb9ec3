// Package conformance holds the suites every Baton backend must pass: one for
// bus.Transport and one for store.Store. A backend runs them from its own
// tests:
//
//	func TestConformance(t *testing.T) {
//		features := conformance.Features{Ordered: true}
//		conformance.TestTransport(t, features, func(t *testing.T) bus.Transport {
//			b, err := mybackend.Open(mybackend.Config{Dir: t.TempDir()})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// open is called once per case and must return a fresh, isolated instance
// (its own namespace, queue prefix or data directory) and register its own
// cleanup. Cases still use unique group names and event types, so a backend
// that can only share one broker between cases passes too, but then a case
// may count messages a previous case left behind.
//
// The suites adapt to what a backend's test declares (Features) rather than
// forking per backend; nothing on bus.Transport or store.Store exists for
// the tests' sake:
//
//   - Features.Ordered enables the ordering case.
//   - Features.Atomic enables the Commit cases. An Atomic transport must
//     implement bus.Committer and must itself be the store.Store its commits
//     write to: the suite obtains the store with tr.(store.Store) to check the
//     inbox, journal and dead letters a Commit changed. A bus.Committer whose
//     test does not declare Atomic fails those cases: the runtime commits
//     through every Committer, so its commits are checked.
//   - A store that implements store.Expirer gets the inbox retention case.
//   - A store that implements store.Sweeper gets the retention cases: a
//     sweep at a chosen time removes exactly the old journal entries, ended
//     runs and dead letters, the oldest dead letters beyond the cap, and a
//     dead letter keeps a bounded body. Open the suite's stores with a
//     Retention.DeadCap of at most 100, so that the cap can be filled.
//   - A store declared Atomic (it is also the bus.Transport) gets the outbox
//     cases: the messages of a run transition are delivered with it, to one
//     group or to every group bound to their type. A store-only backend
//     implements store.Outbox instead, which RunOutboxKept checks.
//
// Cases skipped for a feature not declared say so with t.Skip. Every wait is
// bounded (about ten seconds, reset whenever progress is made) and fails with
// what was expected and what was seen; no case sleeps to assert timing.
// Where a case asserts that nothing more arrives (no duplicate, no
// redelivery of an acked message, nothing for a non-matching type), it
// listens for a short quiet period; a transport that redelivers only after a
// long ack timeout is not caught by that, by design.
//
// A consumer is expected to hold at least ten un-acked deliveries at once
// (a prefetch or max-ack-pending of ten or more).
//
// Message bodies are CloudEvents structured JSON, as the runtime publishes
// them. A transport that re-encodes them on the wire (binary mode) passes
// the round trip when the body it hands back is the same JSON value.
package conformance
