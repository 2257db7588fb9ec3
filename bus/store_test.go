package bus_test

import (
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
)

// An embedded transport commits the inbox, journal and dead letters of what
// it delivers to its own store: paired with another store, the runtime
// would read an inbox and journal that its commits never write. bus.New
// refuses the pair and says why; it accepts the transport as its own store,
// a value wrapping it, and any store beside a transport that is not a
// Committer.
func TestNewRefusesForeignStore(t *testing.T) {
	t.Parallel()
	b, other := openMemory(t), openMemory(t)
	wrapped := struct{ *embedded.Backend }{b}
	for _, c := range []struct {
		name  string
		cfg   bus.Config
		valid bool
	}{
		{"embedded transport, another store", bus.Config{Transport: b, Store: other}, false},
		{"a value wrapping the embedded transport, another store", bus.Config{Transport: wrapped, Store: other}, false},
		{"embedded transport, itself as the store", bus.Config{Transport: b, Store: b}, true},
		{"a value wrapping the embedded transport, the transport as the store", bus.Config{Transport: wrapped, Store: b}, true},
		{"a transport that is not a Committer, any store", bus.Config{Transport: stepwise{b}, Store: other}, true},
	} {
		_, err := bus.New(c.cfg)
		if c.valid {
			if err != nil {
				t.Errorf("%s: New = %v; want it accepted", c.name, err)
			}
			continue
		}
		if baton.ErrorCode(err) != baton.Invalid {
			t.Errorf("%s: New = %v; want an invalid error", c.name, err)
			continue
		}
		for _, why := range []string{"commits the inbox, journal and dead letters", "would split", "give the transport itself as the store"} {
			if !strings.Contains(err.Error(), why) {
				t.Errorf("%s: New = %q; want it to say %q", c.name, err, why)
			}
		}
	}
}
