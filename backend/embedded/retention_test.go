package embedded_test

import (
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

// TestRetentionSweepsInBackground: a backend opened on data older than its
// retention sweeps it by itself, without a forced Sweep; one whose
// retention is off keeps it.
func TestRetentionSweepsInBackground(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	// The first backend keeps everything, so that the old data waits for
	// the second.
	b, err := embedded.Open(embedded.Config{Dir: dir, Retention: store.Retention{Age: -1}})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-store.DefaultAge - time.Hour)
	if err := b.Append(ctx, store.Entry{Time: old, CorrelationID: "order-1", Outcome: store.Handled, EventID: "ev-1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddDead(ctx, store.DeadLetter{Group: "billing", Type: "order.placed.v1", Body: []byte("{}"), Time: old}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := store.Swept{Journal: 1, Dead: 1}
	deadline := time.Now().Add(10 * time.Second)
	for b.Swept() != want {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after Open, the background sweeps removed %+v; want %+v", b.Swept(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h, err := b.History(ctx, "order-1"); err != nil || len(h) != 0 {
		t.Errorf("History after the background sweep: %d entries, %v; want none", len(h), err)
	}
	if d, err := b.ListDead(ctx, "", 10); err != nil || len(d) != 0 {
		t.Errorf("ListDead after the background sweep: %d, %v; want none", len(d), err)
	}
}
