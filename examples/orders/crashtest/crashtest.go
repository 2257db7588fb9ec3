// Package crashtest is the harness of the two SIGKILL tests of the order
// example, TestCrashChoreographed in examples/orders and
// TestCrashOrchestrated in examples/orders/orchestration, and is meant for
// those tests only. It runs the test binary again as a child process, kills
// it with SIGKILL on a schedule drawn from a seed, follows the progress the
// child prints, starts the order services in the child, and says which
// effects each fault leaves in the ledger.
//
// A child first begins the orders, in batches (the choreographed test
// places them, the orchestrated one starts their runs), printing
//
//	<Beginning> orders=N batches=B
//	<Begun>=N ...
//
// and then, until every order has ended, lines of progress
//
//	progress ... terminal=N ...
//
// and a last line "done ..." when it returns by itself.
package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
)

// Config is what a crash test tells the harness.
type Config struct {
	Test      string // the test function the child runs
	ChildEnv  string // set in the child: its work directory
	OrdersEnv string // how many orders (default DefaultOrders)
	SeedEnv   string // the kill schedule's seed, to replay a failure

	DefaultOrders int
	Batch         int // orders the child begins between two "<Begun>=" lines

	// The words of the child's lines while it begins the orders, such as
	// "placing" and "placed".
	Beginning, Begun string

	Stream       uint64        // mixed with the seed into the schedule's generator
	MaxChildren  int           // child processes at most, the last included
	BeginDelay   time.Duration // a kill while beginning comes up to this long after its line
	MidFlowShare float64       // a kill mid-flow waits for 2% plus up to this share of the open orders to end
}

// Orders is the number of orders: OrdersEnv's, or DefaultOrders.
func (c Config) Orders(t testing.TB) int {
	t.Helper()
	s := os.Getenv(c.OrdersEnv)
	if s == "" {
		return c.DefaultOrders
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < c.Batch {
		t.Fatalf("%s=%q: want a number of orders, at least %d", c.OrdersEnv, s, c.Batch)
	}
	return n
}

// Kills counts the children killed.
type Kills struct {
	Total     int // every child killed, where planned or not
	Beginning int // killed as planned, while beginning the orders
	MidFlow   int // killed as planned, while the orders ran
}

// Kill runs children in root on n orders and kills them: twice while they
// begin the orders and four times mid-flow, in an order drawn from the seed
// (SeedEnv's, or the clock's, logged either way). A kill that does not land
// as planned (the child finished first, or had nothing to begin) is tried
// again in the next child; when every order has ended, the kills left are
// made while beginning. It stops at MaxChildren-1 children, leaving the last
// to the test.
func (c Config) Kill(t testing.TB, root string, n int) Kills {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(c.SeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", c.SeedEnv, s, err)
		}
	}
	t.Logf("%d orders; kill schedule seed %d (rerun with %s=%d)", n, seed, c.SeedEnv, seed)
	rnd := rand.New(rand.NewPCG(seed, seed^c.Stream))

	plan := []bool{true, true, false, false, false, false} // while beginning?
	rnd.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	var k Kills
	for child := 1; len(plan) > 0 && child < c.MaxChildren; child++ {
		p := c.Start(t, root, n)
		var killed, landed, ended bool
		if plan[0] {
			killed, landed = p.killWhileBeginning(rnd, child)
		} else {
			killed, landed, ended = p.killMidFlow(rnd, child, n)
		}
		switch {
		case ended:
			// No order is left to kill the flow in the middle of: kill
			// the rest while beginning orders again.
			t.Logf("child %d: every order had ended; the %d kills left will be while %s", child, len(plan), c.Beginning)
			for i := range plan {
				plan[i] = true
			}
		case !killed:
			t.Logf("child %d: finished before the kill (%s)", child, p.last)
		case !landed:
			k.Total++
			t.Logf("child %d: killed, but not where planned (%s)", child, p.last)
		case plan[0]:
			k.Total++
			k.Beginning++
		default:
			k.Total++
			k.MidFlow++
		}
		if landed {
			plan = plan[1:]
		}
	}
	return k
}

// Process is a running child process.
type Process struct {
	t      testing.TB
	c      Config
	cmd    *exec.Cmd
	lines  chan string // the child's stdout, closed at its end
	other  []string    // the rest of its stdout (a failed test's log); read once lines is closed
	stderr bytes.Buffer
	last   string // the last progress the child reported
}

// Start starts a child in root on n orders. The test kills it if it is
// still running when the test ends.
func (c Config) Start(t testing.TB, root string, n int) *Process {
	t.Helper()
	p := &Process{t: t, c: c, lines: make(chan string, 1024)}
	p.cmd = exec.Command(os.Args[0], "-test.run=^"+c.Test+"$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), c.ChildEnv+"="+root, c.OrdersEnv+"="+strconv.Itoa(n))
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() }) // when the test fails with a child running
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "progress "), strings.HasPrefix(line, c.Begun+"="),
				strings.HasPrefix(line, c.Beginning+" "), strings.HasPrefix(line, "done "):
				p.lines <- line
			default:
				p.other = append(p.other, line)
			}
		}
	}()
	return p
}

// Last is the last progress the child reported.
func (p *Process) Last() string { return p.last }

// next returns the child's next line, false when its output has ended. It
// fails the test when the child says nothing for a minute.
func (p *Process) next() (string, bool) {
	p.t.Helper()
	select {
	case line, ok := <-p.lines:
		if ok && (strings.HasPrefix(line, "progress ") || strings.HasPrefix(line, p.c.Begun+"=")) {
			p.last = line
		}
		return line, ok
	case <-time.After(time.Minute):
		p.kill()
		p.t.Fatalf("the child said nothing for a minute after %q\n%s\n%s", p.last, strings.Join(p.other, "\n"), p.stderr.Bytes())
		return "", false
	}
}

// kill kills the child with SIGKILL and reports whether the signal ended it
// (rather than the child having exited first).
func (p *Process) kill() bool {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatal(err)
	}
	return p.wait()
}

// wait drains the child's output and waits for it; it reports whether a
// signal ended it, and fails the test if it exited with an error.
func (p *Process) wait() bool {
	p.t.Helper()
	for range p.lines {
	}
	err := p.cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return false
	case errors.As(err, &exit) && !exit.Exited():
		return true
	}
	p.t.Fatalf("child failed: %v; last progress %q\n%s\n%s", err, p.last, strings.Join(p.other, "\n"), p.stderr.Bytes())
	return false
}

// killWhileBeginning kills the child a few milliseconds after it has begun
// a random number of batches of orders (none: as soon as it starts). landed
// is false when the child had nothing left to begin.
func (p *Process) killWhileBeginning(rnd *rand.Rand, child int) (killed, landed bool) {
	p.t.Helper()
	delay := time.Duration(rnd.IntN(int(p.c.BeginDelay/time.Microsecond))) * time.Microsecond
	after := -1 // orders begun when to kill
	for {
		line, ok := p.next()
		if !ok {
			return p.wait(), false
		}
		if rest, ok := strings.CutPrefix(line, p.c.Beginning+" "); ok {
			batches := fields(rest)["batches"]
			if batches == 0 {
				return p.kill(), false
			}
			after = rnd.IntN(batches) * p.c.Batch
		}
		begun, isBegun := strings.CutPrefix(line, p.c.Begun+"=")
		begun, _, _ = strings.Cut(begun, " ")
		if after == 0 || (isBegun && begun == strconv.Itoa(after)) {
			time.Sleep(delay)
			killed := p.kill()
			if killed {
				p.t.Logf("child %d: killed while %s, %v after %q", child, p.c.Beginning, delay, line)
			}
			return killed, killed
		}
	}
}

// killMidFlow kills the child, after a random delay, once a random share of
// the orders still open when it began have ended. landed is true when the
// kill came after orders ended in this child and before all had; ended is
// true when every order had ended before the child began.
func (p *Process) killMidFlow(rnd *rand.Rand, child, n int) (killed, landed, ended bool) {
	p.t.Helper()
	share := 0.02 + p.c.MidFlowShare*rnd.Float64()
	delay := time.Duration(rnd.IntN(20)) * time.Millisecond
	base, target := -1, 0
	for {
		line, ok := p.next()
		if !ok {
			return p.wait(), false, base == n
		}
		rest, isProgress := strings.CutPrefix(line, "progress ")
		if !isProgress {
			continue
		}
		terminal := fields(rest)["terminal"]
		if base < 0 {
			base = terminal
			target = base + max(1, int(share*float64(n-base)))
		}
		if terminal >= target {
			time.Sleep(delay)
			killed = p.kill()
			if killed {
				p.t.Logf("child %d: killed mid-flow, %v after %q (%d ended when it began)", child, delay, line, base)
			}
			return killed, killed && terminal > base && terminal < n, false
		}
	}
}

// Finish waits for the child to end by itself, within limit.
func (p *Process) Finish(limit time.Duration) error {
	p.t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				if p.wait() {
					return fmt.Errorf("killed by a signal; last progress %q\n%s", p.last, p.stderr.Bytes())
				}
				return nil
			}
			if strings.HasPrefix(line, "progress ") || strings.HasPrefix(line, "done ") {
				p.last = line
			}
		case <-deadline:
			p.kill()
			return fmt.Errorf("not finished after %v; last progress %q", limit, p.last)
		}
	}
}

// fields reads the numbers of "key=value" fields.
func fields(s string) map[string]int {
	p := map[string]int{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		if n, err := strconv.Atoi(v); err == nil {
			p[k] = n
		}
	}
	return p
}

// Child is the child process's side: the backend of its data directory and
// its ledger, with the order services running on them.
type Child struct {
	Backend  *embedded.Backend
	Ledger   *orders.Ledger
	Services []baton.Service
	Runtime  *bus.Runtime
}

// StartChild opens the backend and the ledger in root and starts the order
// services, meeting faults, on a bus runtime.
func StartChild(ctx context.Context, t testing.TB, root string, faults orders.Faults) *Child {
	t.Helper()
	b, err := embedded.Open(embedded.Config{Dir: filepath.Join(root, "data")})
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := orders.NewLedger(filepath.Join(root, "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	services := orders.Services(ledger, faults)
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
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
	return &Child{Backend: b, Ledger: ledger, Services: services, Runtime: rt}
}

// Stop stops the services, within ctx, and closes the ledger and the
// backend.
func (c *Child) Stop(ctx context.Context, t testing.TB) {
	t.Helper()
	if err := c.Runtime.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ledger.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Backend.Close(); err != nil {
		t.Fatal(err)
	}
}

// Open opens the ledger and the backend the children left in root, to check
// them; both are closed when the test ends.
func Open(t testing.TB, root string) (*embedded.Backend, *orders.Ledger) {
	t.Helper()
	ledger, err := orders.NewLedger(filepath.Join(root, "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ledger.Close() })
	b, err := embedded.Open(embedded.Config{Dir: filepath.Join(root, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, ledger
}

// DeadLetters reads every dead letter of b, by correlation id, and counts
// them.
func DeadLetters(ctx context.Context, t testing.TB, b *embedded.Backend) (map[string][]store.DeadLetter, int) {
	t.Helper()
	dead := map[string][]store.DeadLetter{}
	total := 0
	for after := ""; ; {
		page, err := b.ListDead(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			dead[d.CorrelationID] = append(dead[d.CorrelationID], d)
			after = d.ID
		}
		total += len(page)
		if len(page) < 500 {
			break
		}
	}
	return dead, total
}

// Effects are the counts in the ledger of an order's effects, of those it
// has at least once.
func Effects(ledger *orders.Ledger, orderID string) map[string]int {
	got := map[string]int{}
	for _, effect := range allEffects {
		if c := ledger.Count(orderID, effect); c > 0 {
			got[effect] = c
		}
	}
	return got
}

var allEffects = []string{
	orders.EffectCharged, orders.EffectRefunded, orders.EffectReserved,
	orders.EffectNotified, orders.EffectCompleted, orders.EffectCancelled,
}

// WantEffects are the effects an order with fault k meets on its path, each
// once, choreographed or orchestrated alike. A dead gateway's order has
// none: its payment is dead-lettered.
func WantEffects(k orders.Fault) map[string]int {
	var effects []string
	switch k {
	case orders.NoFault, orders.GatewayFlaky:
		effects = []string{orders.EffectCharged, orders.EffectCompleted, orders.EffectNotified, orders.EffectReserved}
	case orders.Declined:
		effects = []string{orders.EffectCancelled}
	case orders.OutOfStock:
		effects = []string{orders.EffectCancelled, orders.EffectCharged, orders.EffectRefunded}
	}
	want := map[string]int{}
	for _, effect := range effects {
		want[effect] = 1
	}
	return want
}
