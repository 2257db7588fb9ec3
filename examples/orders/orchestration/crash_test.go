package orchestration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/crashtest"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// The crash test's harness: its environment, and the kill schedule.
var orch = crashtest.Config{
	Test:          "TestCrashOrchestrated",
	ChildEnv:      "BATON_ORCH_CRASH_CHILD",
	OrdersEnv:     "BATON_ORCH_CRASH_ORDERS",
	SeedEnv:       "BATON_ORCH_CRASH_SEED",
	DefaultOrders: 2000,
	Batch:         100, // orders started before each "started=" line
	Beginning:     "starting",
	Begun:         "started",
	Stream:        0x2545f4914f6cdd1d,
	MaxChildren:   20,
	BeginDelay:    5 * time.Millisecond,
	MidFlowShare:  0.3,
}

const orchStarters = 16 // StartRun calls at once

var orchFaults = orders.Faults{Rate: 0.3}

// TestCrashOrchestrated runs the orchestrated order flow — the order
// services and the coordinator — on the embedded backend in a child process
// (this test binary), kills it with SIGKILL at random points, while it
// starts the orders and while they run, restarts it each time, lets a last
// run finish, and then checks from the data directory and the ledger that
// every run ended as its order's fault says, with each effect once.
func TestCrashOrchestrated(t *testing.T) {
	n := orch.Orders(t)
	if root := os.Getenv(orch.ChildEnv); root != "" {
		runOrchChild(t, root, n)
		return
	}
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	root := t.TempDir()
	start := time.Now()
	k := orch.Kill(t, root, n)
	if k.Total < 4 || k.MidFlow == 0 {
		t.Fatalf("%d kills, %d while starting, %d mid-flow: the crashes did not happen as planned",
			k.Total, k.Beginning, k.MidFlow)
	}

	c := orch.Start(t, root, n)
	if err := c.Finish(3 * time.Minute); err != nil {
		t.Fatalf("last child after %d kills: %v", k.Total, err)
	}
	t.Logf("%d kills (%d while starting, %d mid-flow), then a child to the end: %v in all; its last words: %s",
		k.Total, k.Beginning, k.MidFlow, time.Since(start).Round(time.Millisecond), c.Last())

	verifyOrchRun(t, root, n)
}

// runOrchChild is the child process. It starts every order (again: a
// client that cannot prove which starts were accepted before the crash
// starts them all, and the business key makes that harmless), reports its
// progress on stdout, and returns once every run has ended.
func runOrchChild(t *testing.T, root string, n int) {
	ctx := context.Background()
	child := crashtest.StartChild(ctx, t, root, orchFaults)
	b, rt := child.Backend, child.Runtime
	co, err := flow.New(flow.Config{Store: b, Transport: b, Flows: []flow.Flow{orchestration.Flow()}, Services: child.Services})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// The runs a previous child left, ended or not: the first progress
	// line counts them before any order is started again.
	w := &orchWatch{co: co, n: n, known: map[string]bool{}, open: map[string]string{}}
	for after := ""; ; {
		page, err := co.Runs(ctx, store.RunQuery{Flow: "order", After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			w.add(r.Key, r.ID)
			after = r.ID
		}
		if len(page) < 1000 {
			break
		}
	}
	first, err := w.poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(first)
	watched := make(chan error, 1)
	go func() { watched <- w.follow(ctx) }()

	batches := (n + orch.Batch - 1) / orch.Batch
	fmt.Printf("starting orders=%d batches=%d\n", n, batches)
	var created atomic.Int64
	for lo := 0; lo < n; lo += orch.Batch {
		var wg sync.WaitGroup
		sem := make(chan struct{}, orchStarters)
		errs := make(chan error, orch.Batch)
		for i := lo; i < min(lo+orch.Batch, n); i++ {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				o := orders.NewOrder(i)
				in, err := json.Marshal(o)
				if err != nil {
					errs <- err
					return
				}
				run, made, err := co.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in})
				if err != nil {
					errs <- fmt.Errorf("start %s: %w", o.OrderID, err)
					return
				}
				if made {
					created.Add(1)
				}
				w.add(o.OrderID, run.ID)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		fmt.Printf("started=%d created=%d\n", min(lo+orch.Batch, n), created.Load())
	}

	if err := <-watched; err != nil {
		t.Fatal(err)
	}

	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := co.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	child.Stop(stopCtx, t)
	fmt.Printf("done created=%d handled=%d retried=%d dead=%v\n", created.Load(), rt.Stats().Handled(), rt.Stats().Retried(), rt.Stats().DeadLettered())
}

// orchWatch follows the runs of the child.
type orchWatch struct {
	co *flow.Coordinator
	n  int

	mu        sync.Mutex
	known     map[string]bool   // run ids added
	open      map[string]string // run id -> order id, of the runs not seen ended
	completed int
	failed    int
	other     int // ended otherwise (cancelled)
}

func (w *orchWatch) add(orderID, runID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.known[runID] {
		w.known[runID] = true
		w.open[runID] = orderID
	}
}

// poll looks at the runs not yet seen ended and returns a progress line.
func (w *orchWatch) poll(ctx context.Context) (string, error) {
	w.mu.Lock()
	ids := make([]string, 0, len(w.open))
	for id := range w.open {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	var left []string
	for _, id := range ids {
		r, err := w.co.Run(ctx, id)
		if err != nil {
			return "", err
		}
		if !r.Status.Terminal() {
			if len(left) < 5 {
				left = append(left, r.Key+"("+orchFaults.For(r.Key).String()+")")
			}
			continue
		}
		w.mu.Lock()
		delete(w.open, id)
		switch r.Status {
		case store.RunCompleted:
			w.completed++
		case store.RunFailed:
			w.failed++
		default:
			w.other++
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	line := fmt.Sprintf("progress completed=%d failed=%d other=%d terminal=%d open=%d",
		w.completed, w.failed, w.other, w.completed+w.failed+w.other, len(w.open))
	if len(left) > 0 {
		line += " left=" + strings.Join(left, ",")
	}
	return line, nil
}

// follow prints the progress every 50ms until every order's run has ended.
func (w *orchWatch) follow(ctx context.Context) error {
	for {
		time.Sleep(50 * time.Millisecond)
		line, err := w.poll(ctx)
		if err != nil {
			return err
		}
		fmt.Println(line)
		w.mu.Lock()
		terminal := w.completed + w.failed + w.other
		w.mu.Unlock()
		if terminal == w.n {
			return nil
		}
	}
}

// verifyOrchRun checks, from the data directory and the ledger file, that
// each order has one run, ended as its fault says, with each effect once
// and each dead gateway's charge dead-lettered once.
func verifyOrchRun(t *testing.T, root string, n int) {
	t.Helper()
	ctx := context.Background()
	b, ledger := crashtest.Open(t, root)

	if dups := ledger.Duplicates(); len(dups) > 0 {
		t.Errorf("%d effects happened more than once, first: %q", len(dups), dups[:min(len(dups), 10)])
	}

	runs := map[string][]store.Run{} // by order id
	total := 0
	for after := ""; ; {
		page, err := b.ListRuns(ctx, store.RunQuery{Flow: "order", After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			runs[r.Key] = append(runs[r.Key], r)
			after = r.ID
		}
		total += len(page)
		if len(page) < 1000 {
			break
		}
	}
	if total != n {
		t.Errorf("%d runs stored, want %d: one per order", total, n)
	}

	dead, deadTotal := crashtest.DeadLetters(ctx, t, b)

	byFault := map[orders.Fault]int{}
	byStatus := map[store.RunStatus]int{}
	bad := 0
	report := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for i := range n {
		id := orders.NewOrder(i).OrderID
		k := orchFaults.For(id)
		byFault[k]++

		rs := runs[id]
		delete(runs, id)
		if len(rs) != 1 {
			report("%s (%v): %d runs, want 1", id, k, len(rs))
			continue
		}
		r := rs[0]
		byStatus[r.Status]++
		want := store.RunFailed
		if k.Outcome() == orders.TypeOrderCompleted {
			want = store.RunCompleted
		}
		if r.Status != want {
			report("%s (%v): run %s ended %s (%q), want %s", id, k, r.ID, r.Status, r.Error, want)
		}
		var wantError string
		switch k {
		case orders.Declined:
			wantError = "step charge: the service answered " + orders.TypePaymentFailed
		case orders.OutOfStock:
			wantError = "step reserve: the service answered " + orders.TypeInventoryFailed
		case orders.GatewayDown:
			wantError = "step charge: service payment gave up"
		}
		if !strings.HasPrefix(r.Error, wantError) || (wantError == "" && r.Error != "") {
			report("%s (%v): run error %q, want %q", id, k, r.Error, wantError)
		}
		for path, st := range r.Steps {
			if st.Attempts > 1 {
				report("%s (%v): step %s took %d attempts (%s): a timeout at the coordinator", id, k, path, st.Attempts, st.Error)
			}
		}

		got, wantEffects := crashtest.Effects(ledger, id), crashtest.WantEffects(k)
		if !maps.Equal(got, wantEffects) {
			report("%s (%v): effects %v, want %v", id, k, got, wantEffects)
		}

		ds := dead[id]
		delete(dead, id)
		switch {
		case k == orders.GatewayDown && len(ds) != 1:
			report("%s (%v): %d dead letters, want 1", id, k, len(ds))
		case k == orders.GatewayDown:
			d := ds[0]
			if d.Group != "payment" || d.Type != orders.TypeOrderPlaced || d.EventID != r.ID+"/charge#1" || d.Reason == "" {
				report("%s (%v): dead letter of group %q, type %q, event %q, reason %q; want payment's %s %s/charge#1 with a reason",
					id, k, d.Group, d.Type, d.EventID, d.Reason, orders.TypeOrderPlaced, r.ID)
			}
		case len(ds) > 0:
			report("%s (%v): %d dead letters, want none", id, k, len(ds))
		}
	}
	for key, rs := range runs {
		report("runs of no order (key %q): %d", key, len(rs))
	}
	for corr, ds := range dead {
		report("dead letters of no order (correlation %q): %d", corr, len(ds))
	}
	if bad > 20 {
		t.Errorf("... and %d more", bad-20)
	}
	if deadTotal != byFault[orders.GatewayDown] {
		t.Errorf("%d dead letters, want %d: one per order whose gateway is down", deadTotal, byFault[orders.GatewayDown])
	}
	t.Logf("orders by fault %v; runs by status %v; ledger totals %v; %d dead letters; %d charge calls for %d charges",
		byFault, byStatus, ledger.Totals(), deadTotal, ledger.Calls(orders.EffectCharged), ledger.Totals()[orders.EffectCharged])
}
