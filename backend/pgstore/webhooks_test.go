package pgstore_test

import (
	"testing"

	"github.com/batonhq/baton/conformance"
	"github.com/batonhq/baton/store"
)

func TestPostgresDeliveries(t *testing.T) {
	conformance.TestDeliveries(t, func(t *testing.T) store.Deliveries { return open(t) })
}
