package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// serveDemo runs baton demo --serve with args until the test ends, and
// waits until it serves.
func serveDemo(t *testing.T, e *env, args ...string) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, append([]string{"demo", "--serve"}, args...)) }()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("demo: exit %d", code)
		}
	})
	errOut := e.stderr.(*syncBuffer)
	waitFor(t, "the demo to serve", func() bool { return strings.Contains(errOut.String(), "serving") }, done, errOut)
}

// baton run list and run get reach the coordinator of an orchestrated
// demo through its control socket.
func TestRunListUnderOrchestratedDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut syncBuffer
	serveDemo(t, &env{stdout: &out, stderr: &errOut}, "--style", styleOrchestration, "--orders", "20", "--data", dir)
	list := mustRun(t, "run", "list", "--data", dir, "--key", "o-000001")
	if !strings.Contains(list, "order v1") || !strings.Contains(list, "completed") {
		t.Fatalf("run list:\n%s", list)
	}
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	if got := mustRun(t, "run", "get", "--data", dir, id); !strings.Contains(got, "key:      o-000001") {
		t.Errorf("run get %s:\n%s", id, got)
	}
}

// A library's log line, written to slog's default logger while the demo
// runs, goes to the demo's stderr, not around it. Not parallel: it changes
// the process's default logger.
func TestDemoLogsThroughItsConsole(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) }) // after the demo stops
	var out, errOut syncBuffer
	serveDemo(t, &env{stdout: &out, stderr: &errOut, tty: true, defaultLog: true}, "--orders", "10")
	slog.Warn("a library's warning")
	if !strings.Contains(errOut.String(), `level=WARN msg="a library's warning"`) {
		t.Errorf("stderr does not show the warning:\n%q", errOut.String())
	}
}

// A line written while the progress line is drawn clears it first and
// redraws it after.
func TestConsoleClearsTheProgressLine(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	c := &console{w: &b}
	c.draw("placed 5")
	c.Write([]byte("level=WARN msg=reconnecting\n"))
	c.draw("placed 6")
	c.endLine()
	c.Write([]byte("after\n"))
	want := "\rplaced 5\x1b[K" + "\r\x1b[K" + "level=WARN msg=reconnecting\n" + "placed 5\x1b[K" + "\rplaced 6\x1b[K" + "\n" + "after\n"
	if b.String() != want {
		t.Errorf("console wrote\n%q\nwant\n%q", b.String(), want)
	}
}

// --data on a broker makes the directory, for the ledger.
func TestDemoDataDirOnBrokers(t *testing.T) {
	t.Parallel()
	need(t, "NATS", natsTestURL())
	need(t, "Redis", redisTestURL())
	ns := testNamespace()
	cleanNATS(t, ns)
	cleanRedis(t, ns)
	dir := filepath.Join(t.TempDir(), "new", "data")
	mustRun(t, "demo", "--orders", "10", "--data", dir, "--bus", natsTestURL(), "--store", redisTestURL(), "--namespace", ns)
	if _, err := os.Stat(filepath.Join(dir, "ledger.jsonl")); err != nil {
		t.Errorf("no ledger in %s: %v", dir, err)
	}
}

// Under orchestration, each order counts as placed when its run starts,
// not when its batch is done.
func TestStartOrdersCountsEachRun(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ledger, err := orders.NewLedger("")
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	co, err := flow.New(flow.Config{Store: b, Transport: b, Flows: []flow.Flow{orchestration.Flow()}, Services: orders.Services(ledger, orders.Faults{})})
	if err != nil {
		t.Fatal(err)
	}
	var placed atomic.Int64
	if err := startOrders(context.Background(), co, []int{0, 1, 2}, &placed); err != nil || placed.Load() != 3 {
		t.Fatalf("started %d of 3 (%v)", placed.Load(), err)
	}
}

// A resumed demo places only the orders never placed: an order the
// journal has is left to the services, as a real producer would.
func TestDemoResumePlacesOnlyTheNeverPlaced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustRun(t, "demo", "--orders", "3", "--data", dir)
	// o-000004 was placed (its event is journaled) and its event lost in
	// this made-up past: a run that places it again would complete it.
	b, err := embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Append(context.Background(), store.Entry{Time: time.Now(), CorrelationID: "o-000004", Outcome: store.Published,
		EventID: "place-o-000004", EventType: orders.TypeOrderPlaced, Source: "baton-demo"})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := batonCmd(t, context.Background(), "demo", "--orders", "6", "--data", dir, "--timeout", "3s")
	if r.code != 1 || !strings.Contains(r.stdout, "1 orders did not end") || !strings.Contains(r.stdout, "o-000004  last: published order.placed.v1") {
		t.Fatalf("exit %d; want 1 and o-000004 left as it was\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
