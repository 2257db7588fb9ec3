package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
)

// Mistakes in baton worker's command line are usage errors naming what to
// give.
func TestWorkerUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"worker", "--service", "shipping"}, `worker: --service "shipping": unknown service; give one of order, payment, inventory, notification`},
		{[]string{"worker", "--service", "order", "--service", "billing"}, `--service "billing": unknown service; give one of order, payment, inventory, notification`},
		{[]string{"worker"}, "worker: missing --service NAME: give one of order, payment, inventory, notification"},
		{[]string{"worker", "--service", "order"}, "worker: the embedded backend needs --data DIR"},
		{[]string{"worker", "--service", "order", "--fail-rate", "2", "--data", "x"}, "worker: --fail-rate 2: give a share from 0 to 1"},
		{[]string{"worker", "--service", "order", "--bus", "nats://127.0.0.1:4222"}, "worker: --bus nats://… needs --store"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := batonCmd(t, context.Background(), tc.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.stderr)
			}
		})
	}
}

var workerStopped = regexp.MustCompile(`stopped: handled (\d+), retried (\d+), dead-lettered (\d+), duplicates (\d+)`)

// One worker process running the four order services on NATS and Redis
// handles orders published by another runtime on the same namespace, keeps
// a ledger per service in --data, and stops gracefully when cancelled.
func TestWorkerOnNATSAndRedis(t *testing.T) {
	t.Parallel()
	need(t, "NATS", natsTestURL())
	need(t, "Redis", redisTestURL())
	ns := testNamespace()
	cleanNATS(t, ns)
	cleanRedis(t, ns)
	dir := t.TempDir()
	const n = 50

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	args := []string{"worker", "--bus", natsTestURL(), "--store", redisTestURL(), "--namespace", ns, "--data", dir}
	for _, s := range []string{"order", "payment", "inventory", "notification"} {
		args = append(args, "--service", s)
	}
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, &env{stdout: &out, stderr: &errOut}, args) }()

	// Wait for the start line: the groups are declared from then on.
	for !strings.Contains(errOut.String(), "baton worker: services order, payment, inventory, notification; bus nats, store redis, namespace "+ns) {
		select {
		case code := <-exited:
			t.Fatalf("worker exited with %d before starting\nstderr:\n%s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}

	// Place the orders from a runtime of this test's own, on the same bus
	// and store.
	tp, st, closeBackends, err := openBackends(ctx, natsTestURL(), redisTestURL(), "", ns, store.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeBackends()
	rt, err := bus.New(bus.Config{Transport: tp, Store: st, Source: "worker-test"})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]int, n)
	for i := range batch {
		batch[i] = i
	}
	if err := publishOrders(ctx, rt, batch); err != nil {
		t.Fatal(err)
	}

	// The journal shows every order's notification handled by the order
	// service, which completes the order.
	for done := 0; done < n; {
		select {
		case code := <-exited:
			t.Fatalf("worker exited with %d\nstderr:\n%s", code, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		done = 0
		for i := range n {
			h, err := st.History(ctx, orders.NewOrder(i).OrderID)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range h {
				if en.Group == "order" && en.EventType == orders.TypeNotificationSent && en.Outcome == store.Handled {
					done++
					break
				}
			}
		}
	}

	cancel()
	if code := <-exited; code != exitOK {
		t.Fatalf("worker exit %d; want 0\nstderr:\n%s", code, errOut.String())
	}
	m := workerStopped.FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no final stats line in stderr:\n%s", errOut.String())
	}
	// Four handlers per order: charge, reserve, notify, complete.
	if m[1] != "200" || m[2] != "0" || m[3] != "0" {
		t.Errorf("final stats %q; want 200 handled, none retried or dead-lettered", m[0])
	}

	// Each service wrote its own ledger; the order service's holds every
	// order completed once.
	for _, s := range []string{"order", "payment", "inventory", "notification"} {
		l, err := orders.NewLedger(filepath.Join(dir, "ledger-"+s+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if d := l.Duplicates(); len(d) > 0 {
			t.Errorf("ledger of %s: effects more than once: %v", s, d)
		}
		if s == "order" {
			if got := len(l.Orders(orders.EffectCompleted)); got != n {
				t.Errorf("ledger of order: %d orders completed; want %d", got, n)
			}
		}
		l.Close()
	}
}
