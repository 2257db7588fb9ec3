package backend_test

import (
	"testing"
	"time"

	"github.com/batonhq/baton/backend"
	"github.com/batonhq/baton/store"
)

// The retention of a Config reaches the store, with defaults for what it
// leaves zero.
func TestOpenPassesTheRetention(t *testing.T) {
	t.Parallel()
	b, err := backend.Open(t.Context(), backend.Config{Data: t.TempDir(), Retention: store.Retention{Age: 48 * time.Hour, DeadCap: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sw, ok := b.Store.(store.Sweeper)
	if !ok {
		t.Fatalf("the embedded store is not a store.Sweeper")
	}
	want := store.Retention{Age: 48 * time.Hour, DeadCap: -1, DeadBody: store.DefaultDeadBody}
	if got := sw.Retention(); got != want {
		t.Errorf("store's retention %+v; want %+v", got, want)
	}
}
