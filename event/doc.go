// Package event is everything about Baton's envelope, baton.Event, except
// moving it: ids, validation, the CloudEvents codecs and versioning.
//
// # Ids
//
// NewID gives a fresh event a ULID: random, unique, and sortable by creation
// time. OutputID gives the events a handler emits ids derived from the input
// event's id, the handler's name and the output's index, so a redelivered
// input yields the same outputs and an idempotent consumer drops them.
//
// # Wire formats
//
// Between Baton's parts an event travels as a value (bus.Message), and each
// transport maps its attributes to native headers through a Binding: AMQP
// (cloudEvents_ application properties) and NATS (ce- headers, as in HTTP),
// CloudEvents binary mode, attributes in headers and data in the body, one
// header at a time and with no intermediate form, so that a plain client in
// any language can publish and read Baton's events. Size measures an event
// against a limit without encoding it.
//
// Marshal and Unmarshal speak CloudEvents 1.0 structured mode
// (application/cloudevents+json), with Baton's extensions correlationid,
// causationid, traceparent, tracestate and hops as top-level members: for
// dead letters, the API, and plain clients that choose structured mode. They
// no longer run for every message, so Unmarshal leaves the JSON to encoding/json, and
// Marshal appends into one buffer.
//
// Every decoded event is validated (Validate); every failure is a
// *baton.Error with code baton.Invalid that names the attribute at fault, the
// kind of message a dead-letter queue should show.
//
// # Versions
//
// An event type ends with its version: "order.placed.v2". A Registry holds
// upcasters, each rewriting the data of one version into the next, and JSON
// Schemas for exact versions. Prepare brings an event to the version a
// handler takes and checks its data.
//
// Schemas are compiled with github.com/santhosh-tekuri/jsonschema/v6: pure Go,
// every draft from 4 to 2020-12, passes the official JSON-Schema-Test-Suite,
// and its errors say where in the data the violation is.
package event
