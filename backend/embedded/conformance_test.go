package embedded_test

import (
	"testing"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/conformance"
	"github.com/batonhq/baton/store"
)

func openEmbedded(t *testing.T) *embedded.Backend {
	// A small dead-letter cap, so that the suite can fill it.
	b, err := embedded.Open(embedded.Config{Memory: true, Retention: store.Retention{DeadCap: 20}})
	if err != nil {
		t.Fatalf("open embedded backend in memory: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// features: one consumer sees its group's messages in publish order (one
// queue per group, read in key order), and the backend is its own store, so
// a Commit is one atomic batch.
var features = conformance.Features{Ordered: true, Atomic: true}

func TestEmbeddedTransport(t *testing.T) {
	conformance.TestTransport(t, features, func(t *testing.T) bus.Transport { return openEmbedded(t) })
}

func TestEmbeddedStore(t *testing.T) {
	conformance.TestStore(t, features, func(t *testing.T) store.Store { return openEmbedded(t) })
}
