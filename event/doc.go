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
// Marshal and Unmarshal speak CloudEvents 1.0 structured mode
// (application/cloudevents+json), with Baton's extensions correlationid,
// causationid, traceparent and hops as top-level members. They are
// hand-written because they run for every message: Marshal appends into one
// buffer, Unmarshal scans the input once and allocates twice (the attribute
// strings, the data). Both accept and produce only what encoding/json would.
//
// ToBinary and FromBinary map an event to and from binary mode, attributes in
// headers and data in the body, with the prefixes of the AMQP binding
// (AMQPPrefix) and the NATS and HTTP bindings (NATSPrefix), so that a plain
// client in any language can publish and read Baton's events.
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
