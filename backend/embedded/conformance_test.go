package embedded_test

import (
	"testing"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/conformance"
	"github.com/batonhq/baton/store"
)

func openEmbedded(t *testing.T) *embedded.Backend {
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatalf("open embedded backend in memory: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestEmbeddedTransport(t *testing.T) {
	conformance.TestTransport(t, func(t *testing.T) bus.Transport { return openEmbedded(t) })
}

func TestEmbeddedStore(t *testing.T) {
	conformance.TestStore(t, func(t *testing.T) store.Store { return openEmbedded(t) })
}
