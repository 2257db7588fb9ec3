package orders_test

import (
	"context"
	"fmt"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/orders"
)

// The services' handlers called by hand, each output handed to the service
// that consumes its type, until the order completes.
func ExampleServices() {
	ledger, _ := orders.NewLedger("") // memory only
	defer ledger.Close()

	handlers := map[string]baton.HandlerFunc{}
	for _, s := range orders.Services(ledger, orders.Faults{}) {
		for _, h := range s.Handlers {
			handlers[h.Type] = h.Func
		}
	}

	e, _ := orders.NewOrder(1).Event()
	e.ID = "evt-1" // the idempotency key of what the handler does
	for {
		fmt.Println(e.Type, e.Subject)
		h, ok := handlers[e.Type]
		if !ok {
			break
		}
		out, err := h(context.Background(), e)
		if err != nil {
			fmt.Println(err)
			return
		}
		out[0].ID = e.ID + "+"
		e = out[0]
	}
	fmt.Println(ledger.Totals())
	// Output:
	// order.placed.v1 o-000001
	// payment.processed.v1 o-000001
	// inventory.reserved.v1 o-000001
	// notification.sent.v1 o-000001
	// order.completed.v1 o-000001
	// map[charged:1 completed:1 notified:1 reserved:1]
}

func ExampleLedger_Duplicates() {
	ledger, _ := orders.NewLedger("")
	defer ledger.Close()

	ledger.Record("o-000001", orders.EffectCharged, "evt-1")
	ledger.Record("o-000001", orders.EffectCharged, "evt-1") // redelivered: no-op
	ledger.Record("o-000002", orders.EffectCharged, "evt-2")
	ledger.Record("o-000002", orders.EffectCharged, "evt-3") // placed twice: charged twice

	fmt.Println(ledger.Calls(orders.EffectCharged), "calls")
	fmt.Println(ledger.Duplicates())
	// Output:
	// 4 calls
	// [order o-000002: charged 2 times]
}

// Which sample orders go wrong at a rate of 50%, and how they end: "" is
// dead-lettered.
func ExampleFaults() {
	f := orders.Faults{Rate: 0.5}
	seen := map[orders.Fault]bool{orders.NoFault: true}
	for i := 0; len(seen) < 5; i++ {
		id := orders.NewOrder(i).OrderID
		if k := f.For(id); !seen[k] {
			seen[k] = true
			fmt.Printf("%s: %v -> %q\n", id, k, k.Outcome())
		}
	}
	// Output:
	// o-000000: gateway flaky -> "order.completed.v1"
	// o-000002: declined -> "order.cancelled.v1"
	// o-000003: out of stock -> "order.cancelled.v1"
	// o-000020: gateway down -> ""
}
