package orders_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/crashtest"
	"github.com/batonhq/baton/store"
)

// The crash test's harness: its environment, and the kill schedule.
var crash = crashtest.Config{
	Test:          "TestCrashChoreographed",
	ChildEnv:      "BATON_CRASH_CHILD",
	OrdersEnv:     "BATON_CRASH_ORDERS",
	SeedEnv:       "BATON_CRASH_SEED",
	DefaultOrders: 3000,
	Batch:         100, // orders placed per Publish
	Beginning:     "placing",
	Begun:         "placed",
	Stream:        0x9e3779b97f4a7c15,
	MaxChildren:   3*6 + 1, // three for each of the six kills planned, and the last
	BeginDelay:    3 * time.Millisecond,
	MidFlowShare:  0.25,
}

var crashFaults = orders.Faults{Rate: 0.3}

// TestCrashChoreographed runs the choreographed order flow on the embedded
// backend in a child process (this test binary), kills it with SIGKILL at
// random points — while it places orders and while they flow — restarts it
// each time, lets a last run finish, and then checks from the data directory
// and the ledger that every order reached its end and that every effect and
// every dead letter happened exactly once.
func TestCrashChoreographed(t *testing.T) {
	n := crash.Orders(t)
	if root := os.Getenv(crash.ChildEnv); root != "" {
		runCrashChild(t, root, n)
		return
	}
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	root := t.TempDir()
	start := time.Now()
	k := crash.Kill(t, root, n)
	if k.Total < 5 || k.Beginning == 0 || k.MidFlow == 0 {
		t.Fatalf("%d kills, %d while placing, %d mid-flow: the crashes did not happen as planned",
			k.Total, k.Beginning, k.MidFlow)
	}

	c := crash.Start(t, root, n)
	if err := c.Finish(2 * time.Minute); err != nil {
		t.Fatalf("last run after %d kills: %v", k.Total, err)
	}
	t.Logf("%d kills (%d while placing, %d mid-flow), then a run to the end: %v in all; last run: %s",
		k.Total, k.Beginning, k.MidFlow, time.Since(start).Round(time.Millisecond), c.Last())

	verifyCrashRun(t, root, n)
}

func crashOrderID(i int) string { return orders.NewOrder(i).OrderID }

// runCrashChild is the child process. It places the orders it cannot prove
// were placed, places again the orders that have ended (a publisher that
// retries more than it must), reports its progress on stdout and returns
// once every order has ended.
func runCrashChild(t *testing.T, root string, n int) {
	ctx := context.Background()
	child := crashtest.StartChild(ctx, t, root, crashFaults)
	rt := child.Runtime

	// The first progress line counts what a previous child left, before
	// any order is placed again; the lines go on while placing, since the
	// flow keeps up with it and most orders end before the placing does.
	w := newCrashWatch(child.Backend, child.Ledger, n)
	first, err := w.poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(first)
	watched := make(chan error, 1)
	go func() { watched <- w.follow(ctx, n) }()

	// Every start places every order again, as a publisher that cannot
	// prove what was accepted before the crash would: the ids are the same,
	// and the payment group's inbox skips the copies.
	place := make([]int, n)
	for i := range place {
		place[i] = i
	}
	fmt.Printf("placing orders=%d batches=%d\n", len(place), (len(place)+crash.Batch-1)/crash.Batch)
	for lo := 0; lo < len(place); lo += crash.Batch {
		batch := make([]baton.Event, 0, crash.Batch)
		for _, i := range place[lo:min(lo+crash.Batch, len(place))] {
			o := orders.NewOrder(i)
			e, err := o.Event()
			if err != nil {
				t.Fatal(err)
			}
			// Deterministic: placing the order again is the same event.
			e.ID, e.CorrelationID = "place-"+o.OrderID, o.OrderID
			batch = append(batch, e)
		}
		if err := rt.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("placed=%d\n", lo+len(batch))
	}

	if err := <-watched; err != nil {
		t.Fatal(err)
	}

	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	child.Stop(stopCtx, t)
	fmt.Printf("done handled=%d retried=%d dead=%v\n", rt.Stats().Handled(), rt.Stats().Retried(), rt.Stats().DeadLettered())
}

// follow prints the progress every 10ms until every order has ended.
func (w *crashWatch) follow(ctx context.Context, n int) error {
	for {
		time.Sleep(10 * time.Millisecond)
		p, err := w.poll(ctx)
		if err != nil {
			return err
		}
		fmt.Println(p)
		if p.terminal == n {
			return nil
		}
	}
}

// crashWatch follows the child's progress.
type crashWatch struct {
	b      *embedded.Backend
	ledger *orders.Ledger
	ids    []string

	deadAfter string          // the last dead letter read
	dead      map[string]bool // orders with a dead letter
}

func newCrashWatch(b *embedded.Backend, ledger *orders.Ledger, n int) *crashWatch {
	w := &crashWatch{b: b, ledger: ledger, dead: map[string]bool{}}
	for i := range n {
		w.ids = append(w.ids, crashOrderID(i))
	}
	return w
}

type crashProgress struct {
	completed, cancelled, dead, terminal int
	left                                 []string // some orders not ended
}

func (p crashProgress) String() string {
	s := fmt.Sprintf("progress completed=%d cancelled=%d dead=%d terminal=%d",
		p.completed, p.cancelled, p.dead, p.terminal)
	if len(p.left) > 0 {
		s += " left=" + strings.Join(p.left, ",")
	}
	return s
}

func (w *crashWatch) poll(ctx context.Context) (crashProgress, error) {
	for {
		page, err := w.b.ListDead(ctx, w.deadAfter, 500)
		if err != nil {
			return crashProgress{}, err
		}
		for _, d := range page {
			w.dead[d.CorrelationID] = true
			w.deadAfter = d.ID
		}
		if len(page) < 500 {
			break
		}
	}
	var p crashProgress
	for _, id := range w.ids {
		completed := w.ledger.Count(id, orders.EffectCompleted) > 0
		cancelled := w.ledger.Count(id, orders.EffectCancelled) > 0
		if completed {
			p.completed++
		}
		if cancelled {
			p.cancelled++
		}
		if w.dead[id] {
			p.dead++
		}
		if completed || cancelled || w.dead[id] {
			p.terminal++
		} else if len(p.left) < 5 {
			p.left = append(p.left, id+"("+crashFaults.For(id).String()+")")
		}
	}
	return p, nil
}

// crashOutputs are the events the services emit on an order's path, each
// published once.
func crashOutputs(k orders.Fault) []string {
	switch k {
	case orders.NoFault, orders.GatewayFlaky:
		return []string{orders.TypeInventoryReserved, orders.TypeNotificationSent, orders.TypeOrderCompleted, orders.TypePaymentProcessed}
	case orders.Declined:
		return []string{orders.TypeOrderCancelled, orders.TypePaymentFailed}
	case orders.OutOfStock:
		return []string{orders.TypeInventoryFailed, orders.TypeOrderCancelled, orders.TypePaymentProcessed, orders.TypePaymentRefunded}
	}
	return nil
}

// verifyCrashRun checks, from the ledger file and the data directory, that
// every order ended as its fault says, with each effect and each emitted
// event once, and each dead gateway's order dead-lettered once.
func verifyCrashRun(t *testing.T, root string, n int) {
	t.Helper()
	ctx := context.Background()
	b, ledger := crashtest.Open(t, root)

	if dups := ledger.Duplicates(); len(dups) > 0 {
		t.Errorf("%d effects happened more than once, first: %q", len(dups), dups[:min(len(dups), 10)])
	}

	dead, total := crashtest.DeadLetters(ctx, t, b)

	// The journal in one pass, by order: cheaper than History per order.
	journal := map[string][]store.Entry{}
	for after := uint64(0); ; {
		page, err := b.Since(ctx, after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Seq <= after {
				t.Fatalf("journal entry %d after %d: Since does not move on", e.Seq, after)
			}
			journal[e.CorrelationID] = append(journal[e.CorrelationID], e)
			after = e.Seq
		}
		if len(page) < 5000 {
			break
		}
	}

	byFault := map[orders.Fault]int{}
	bad := 0
	skipped := 0 // placements the payment group's inbox skipped
	report := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for i := range n {
		id := crashOrderID(i)
		k := crashFaults.For(id)
		byFault[k]++

		got, want := crashtest.Effects(ledger, id), crashtest.WantEffects(k)
		if !maps.Equal(got, want) {
			report("%s (%v): effects %v, want %v", id, k, got, want)
		}
		if got[orders.EffectCompleted] > 0 && got[orders.EffectCancelled] > 0 {
			report("%s (%v): both completed and cancelled", id, k)
		}

		ds := dead[id]
		delete(dead, id)
		switch {
		case k == orders.GatewayDown && len(ds) != 1:
			report("%s (%v): %d dead letters, want 1: %s", id, k, len(ds), describeDead(ds))
		case k == orders.GatewayDown:
			d := ds[0]
			if d.Group != "payment" || d.EventID != "place-"+id || d.Type != orders.TypeOrderPlaced || d.Reason == "" {
				report("%s (%v): dead letter %s of group %q, event %q of type %q, reason %q; want payment's order.placed.v1 place-%s with a reason",
					id, k, d.ID, d.Group, d.EventID, d.Type, d.Reason, id)
			}
		case len(ds) > 0:
			report("%s (%v) ended as %s but has %d dead letters: %s", id, k, k.Outcome(), len(ds), describeDead(ds))
		}

		emitted := map[string]int{}
		handled := 0 // the payment group's settlements of the placement
		for _, e := range journal[id] {
			switch {
			case e.Outcome == store.Published && e.EventType != orders.TypeOrderPlaced:
				emitted[e.EventType]++
			case e.EventID != "place-"+id || e.Group != "payment":
			case e.Outcome == store.Handled || e.Outcome == store.DeadLettered:
				handled++
			case e.Outcome == store.Duplicate:
				skipped++
			}
		}
		if handled != 1 {
			report("%s (%v): the payment group handled or dead-lettered its placement %d times, want once", id, k, handled)
		}
		wantEmitted := map[string]int{}
		for _, typ := range crashOutputs(k) {
			wantEmitted[typ] = 1
		}
		if !maps.Equal(emitted, wantEmitted) {
			report("%s (%v): events emitted %v, want %v", id, k, emitted, wantEmitted)
		}
	}
	for corr, ds := range dead {
		report("dead letters of no order (correlation %q): %s", corr, describeDead(ds))
	}
	if bad > 20 {
		t.Errorf("... and %d more", bad-20)
	}
	if total != byFault[orders.GatewayDown] {
		t.Errorf("%d dead letters, want %d: one per order whose gateway is down", total, byFault[orders.GatewayDown])
	}
	if skipped == 0 {
		t.Errorf("no placement was skipped as a duplicate: the test never placed an order twice")
	}
	t.Logf("orders by fault %v; ledger totals %v; %d dead letters; %d placements skipped as duplicates; %d charge calls for %d charges",
		byFault, ledger.Totals(), total, skipped, ledger.Calls(orders.EffectCharged), ledger.Totals()[orders.EffectCharged])
}

func describeDead(ds []store.DeadLetter) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("[%s %s %s attempt %d: %s]", d.ID, d.Group, d.EventID, d.Attempts, d.Reason))
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}
