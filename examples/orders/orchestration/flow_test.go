package orchestration_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// The services of the choreography demo, unchanged, under a coordinator:
// every order ends as its fault says, and no effect happens twice.
func TestOrdersOrchestrated(t *testing.T) {
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	runOrders(t, b, b, 300)
}

// runOrders runs n orders (fault rate 0.3) through the order services on
// the bus of messages and the coordinator with its runs in runs, and checks
// that every run ends as its order's fault says and that the ledger holds
// exactly the effects each fault predicts.
func runOrders(t *testing.T, messages flow.Transport, runs store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	ledger, _ := orders.NewLedger("")
	faults := orders.Faults{Rate: 0.3}
	services := orders.Services(ledger, faults)
	// The services' inbox, journal and dead letters are the bus's own when
	// it is also a store (the embedded backend), as cmd/baton wires them.
	serviceStore := runs
	if s, ok := messages.(store.Store); ok {
		serviceStore = s
	}
	rt, err := bus.New(bus.Config{Transport: messages, Store: serviceStore})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		if err := rt.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(ctx)
	co, err := flow.New(flow.Config{Store: runs, Transport: messages, Flows: []flow.Flow{orchestration.Flow()}, Services: services, TimerPoll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer co.Stop(ctx)

	want := map[store.RunStatus]int{}
	ids := map[string]string{}
	for i := range n {
		o := orders.NewOrder(i)
		in, _ := json.Marshal(o)
		run, created, err := co.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in})
		if err != nil || !created {
			t.Fatalf("start %s: %v (created %v)", o.OrderID, err, created)
		}
		ids[o.OrderID] = run.ID
		if faults.For(o.OrderID).Outcome() == orders.TypeOrderCompleted {
			want[store.RunCompleted]++
		} else {
			want[store.RunFailed]++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[store.RunStatus]int{}
		for _, id := range ids {
			r, err := co.Run(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got[r.Status]++
		}
		if got[store.RunCompleted] == want[store.RunCompleted] && got[store.RunFailed] == want[store.RunFailed] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs by status %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ob, ok := runs.(store.Outbox); ok {
		if p, err := ob.ClaimOutbound(ctx, 10, 0); err != nil || len(p) != 0 {
			t.Errorf("the outbox holds %d messages after every run ended (err %v); want it relayed", len(p), err)
		}
	}
	for i := range n {
		id := orders.NewOrder(i).OrderID
		f := faults.For(id)
		want := map[string]int{}
		switch f {
		case orders.NoFault, orders.GatewayFlaky:
			want = map[string]int{orders.EffectCharged: 1, orders.EffectReserved: 1, orders.EffectNotified: 1, orders.EffectCompleted: 1}
		case orders.Declined:
			want = map[string]int{orders.EffectCancelled: 1}
		case orders.OutOfStock:
			want = map[string]int{orders.EffectCharged: 1, orders.EffectRefunded: 1, orders.EffectCancelled: 1}
		}
		for _, e := range []string{orders.EffectCharged, orders.EffectRefunded, orders.EffectReserved, orders.EffectNotified, orders.EffectCompleted, orders.EffectCancelled} {
			if got := ledger.Count(id, e); got != want[e] {
				t.Errorf("%s (%v): %s %d times, want %d", id, f, e, got, want[e])
			}
		}
	}
	if d := ledger.Duplicates(); len(d) > 0 {
		t.Errorf("duplicates: %v", d)
	}
}
