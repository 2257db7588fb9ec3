package orchestration_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/runner"
	"github.com/batonhq/baton/store"
)

// An order whose payment service gave up leaves its run failed and its
// charge command in the payment service's dead letters. Replaying every dead
// letter once the gateway is back must not charge that customer: the run
// has ended and would neither use the payment nor refund it. The replay is
// refused and the dead letter kept.
func TestReplayAfterTheRunFailedDoesNotCharge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ledger, _ := orders.NewLedger("")
	services := orders.Services(ledger, orders.Faults{})
	// The payment gateway is down for the first order until it is fixed.
	failing := orders.NewOrder(1).OrderID
	var fixed atomic.Bool
	for i := range services {
		for j, h := range services[i].Handlers {
			if h.Type != orders.TypeOrderPlaced {
				continue
			}
			charge := h.Func
			services[i].Handlers[j].Func = func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
				if e.Subject == failing && !fixed.Load() {
					return nil, baton.Permanent(errors.New("payment gateway down: connection refused"))
				}
				return charge(ctx, e)
			}
		}
	}
	r, err := runner.New(runner.Config{Transport: b, Store: b, Services: services, Flows: []flow.Flow{orchestration.Flow()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	co := r.Coordinator()
	start := func(i int) store.Run {
		t.Helper()
		o := orders.NewOrder(i)
		in, _ := json.Marshal(o)
		run, created, err := co.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in})
		if err != nil || !created {
			t.Fatalf("start %s: %v (created %v)", o.OrderID, err, created)
		}
		return run
	}
	waitRun := func(id string, want store.RunStatus) store.Run {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := co.Run(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == want {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s of %s is %s after 20s, want %s", id, r.Key, r.Status, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	failed := waitRun(start(1).ID, store.RunFailed)
	fixed.Store(true)

	// baton dlq replay --all: every dead letter, refusals counted.
	dead, err := b.ListDead(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Group != "payment" {
		t.Fatalf("dead letters %+v, want the payment service's one", dead)
	}
	refused := 0
	for _, d := range dead {
		err := bus.Replay(ctx, b, b, d.ID)
		switch {
		case baton.ErrorCode(err) == baton.Conflict:
			refused++
			if !strings.Contains(err.Error(), failed.ID) || !strings.Contains(err.Error(), "baton dlq drop "+d.ID) {
				t.Errorf("refusal %q names neither run %s nor baton dlq drop %s", err, failed.ID, d.ID)
			}
		case err != nil:
			t.Fatalf("replay dead letter %s: %v", d.ID, err)
		}
	}
	if refused != 1 {
		t.Errorf("%d of %d replays refused, want the charge of failed run %s refused", refused, len(dead), failed.ID)
	}
	// A later order goes through the same payment service in full: had the
	// charge been replayed, it would have been handled by now.
	waitRun(start(2).ID, store.RunCompleted)
	if n := ledger.Count(failing, orders.EffectCharged); n != 0 {
		t.Errorf("%s charged %d times after its run failed and its dead letters were replayed, want 0", failing, n)
	}
	if r := waitRun(failed.ID, store.RunFailed); r.Error != failed.Error {
		t.Errorf("run %s: error %q after the replay, was %q", r.ID, r.Error, failed.Error)
	}
	if left, err := b.ListDead(ctx, "", 100); err != nil || len(left) != 1 {
		t.Errorf("dead letters after the refused replay: %d (err %v), want the refused one kept", len(left), err)
	}
}
