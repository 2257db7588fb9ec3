// Package bus is the messaging seam of Baton and the runtime around handlers.
//
// Transport is what a broker must do: publish durably, deliver to consumer
// groups bound to type patterns, ack, nack with a delay. The Runtime wraps
// each handler: decode, upcast, validate, inbox dedup, handle, publish the
// outputs, settle, with retries, dead letters, a storm guard and panic
// recovery.
package bus
