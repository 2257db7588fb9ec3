// Package e2e holds end-to-end tests against real engines: the order
// services of examples/orders running on a broker bus (RabbitMQ, NATS
// JetStream) and a database store (PostgreSQL, Redis), while the tests
// restart those engines under load. It has no code of its own.
//
// The tests start private instances of the engines, on free loopback ports
// and in temporary directories, and stop them when they end; they never
// touch the services the other packages' tests share. An engine whose
// programs are missing makes its tests skip, or fail when CI=true. They are
// skipped under -short.
package e2e
