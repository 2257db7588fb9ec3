package pgstore_test

import (
	"testing"
	"time"

	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/store"
)

// TestRetentionSweepsInBackground: a store opened on a schema holding data
// older than its retention sweeps it by itself, without a forced Sweep; one
// whose retention is off keeps it.
func TestRetentionSweepsInBackground(t *testing.T) {
	url := needServer(t)
	schema := uniqueSchema(t)
	dropSchema(t, url, schema)
	ctx := t.Context()
	keeper, err := pgstore.Open(ctx, pgstore.Config{URL: url, Schema: schema, Logger: quiet, Retention: store.Retention{Age: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer keeper.Close()
	old := time.Now().Add(-store.DefaultAge - time.Hour)
	if err := keeper.Append(ctx, store.Entry{Time: old, CorrelationID: "order-1", Outcome: store.Handled, EventID: "ev-1"}); err != nil {
		t.Fatal(err)
	}
	if err := keeper.AddDead(ctx, store.DeadLetter{Group: "billing", Type: "order.placed.v1", Body: []byte("{}"), Time: old}); err != nil {
		t.Fatal(err)
	}
	run := store.Run{ID: "run-1", Flow: "order", Key: "order-1", Status: store.RunCompleted, Created: old, Updated: old}
	if _, _, err := keeper.CreateRun(ctx, run, nil); err != nil {
		t.Fatal(err)
	}

	sweeper, err := pgstore.Open(ctx, pgstore.Config{URL: url, Schema: schema, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sweeper.Close()
	want := store.Swept{Journal: 1, Runs: 1, Dead: 1}
	deadline := time.Now().Add(10 * time.Second)
	for sweeper.Swept() != want {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after Open, the background sweeps removed %+v; want %+v", sweeper.Swept(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := keeper.Swept(); got != (store.Swept{}) {
		t.Errorf("a store whose retention is off swept %+v; want nothing", got)
	}
	if h, err := keeper.History(ctx, "order-1"); err != nil || len(h) != 0 {
		t.Errorf("History after the background sweep: %d entries, %v; want none", len(h), err)
	}
	if _, err := keeper.Run(ctx, "run-1"); err == nil {
		t.Errorf("the ended run is still there after the background sweep")
	}
}
