package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
)

func TestOrderFlowChoreographed(t *testing.T) {
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ledger, _ := orders.NewLedger("")
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	faults := orders.Faults{Rate: 0.3}
	for _, s := range orders.Services(ledger, faults) {
		if err := rt.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 500
	want := map[string]int{}
	for i := range n {
		o := orders.NewOrder(i)
		e, err := o.Event()
		if err != nil {
			t.Fatal(err)
		}
		e.ID = "place-" + o.OrderID
		if err := rt.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		want[faults.For(o.OrderID).Outcome()]++
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tot := ledger.Totals()
		dl, _ := b.ListDead(ctx, "", 10000)
		if tot[orders.EffectCompleted] == want[orders.TypeOrderCompleted] &&
			tot[orders.EffectCancelled] == want[orders.TypeOrderCancelled] && len(dl) == want[""] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("totals %v, %d dead; want %v", tot, len(dl), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := ledger.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicate effects: %v", d)
	}
	t.Logf("want %v stats handled=%d retried=%d dead=%v", want, rt.Stats().Handled(), rt.Stats().Retried(), rt.Stats().DeadLettered())
}
