package redisstore_test

import (
	"testing"

	"github.com/batonhq/baton/conformance"
	"github.com/batonhq/baton/store"
)

func TestRedisDeliveries(t *testing.T) {
	conformance.TestDeliveries(t, func(t *testing.T) store.Deliveries { return openStore(t) })
}
