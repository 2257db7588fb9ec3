package orders_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
)

// A producer that places its orders again after they ended (it could not
// prove they were accepted) must not get its customers charged again, even
// by a payment API without idempotency keys: the payment service's inbox
// skips each copy before the handler runs, so the ledger sees one charge
// call per order, not one per copy.
func TestPlacingAgainDoesNotCallThePaymentHandler(t *testing.T) {
	t.Parallel()
	const n = 50
	ctx := context.Background()
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
	for _, s := range orders.Services(ledger, orders.Faults{}) {
		if err := rt.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)

	place := func() {
		t.Helper()
		batch := make([]baton.Event, n)
		for i := range n {
			o := orders.NewOrder(i)
			e, err := o.Event()
			if err != nil {
				t.Fatal(err)
			}
			e.ID, e.CorrelationID = "place-"+o.OrderID, o.OrderID
			batch[i] = e
		}
		if err := rt.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, done func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, seen := done()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 20s for %s; saw %s", what, seen)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	place()
	waitFor("every order completed", func() (bool, string) {
		got := ledger.Totals()[orders.EffectCompleted]
		return got == n, fmt.Sprintf("%d completed", got)
	})
	place()
	waitFor("payment to skip every copy", func() (bool, string) {
		for i := range n {
			id := orders.NewOrder(i).OrderID
			h, err := b.History(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			dup := 0
			for _, e := range h {
				if e.Outcome == store.Duplicate && e.Group == "payment" {
					dup++
				}
			}
			if dup != 1 {
				return false, fmt.Sprintf("%s: %d duplicates journaled in payment", id, dup)
			}
		}
		return true, ""
	})
	if got := ledger.Calls(orders.EffectCharged); got != n {
		t.Errorf("the payment handler recorded a charge %d times for %d orders placed twice, want %d: the copies reached it", got, n, n)
	}
	if d := ledger.Duplicates(); len(d) > 0 {
		t.Errorf("effects doubled: %v", d)
	}
}
