package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/crashtest"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// asCommand makes the test binary stand in for the baton command: the
// multi-process tests start it with this variable set, so the processes
// they kill are built from the code under test, race detector included.
const asCommand = "BATON_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) == "1" {
		main()
	}
	os.Exit(m.Run())
}

func rabbitTestURL() string {
	return serviceURL("BATON_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
}

// cleanRabbitMQ deletes the namespace's exchange and queues when the test
// ends. Queues are found with rabbitmqctl, which only a broker on this
// machine answers; elsewhere they are left for the operator.
func cleanRabbitMQ(t *testing.T, ns string) {
	t.Cleanup(func() {
		out, err := exec.Command("rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name").Output()
		if err != nil {
			t.Logf("cleanup: cannot list the queues of %s: %v", ns, err)
		}
		conn, err := amqp.Dial(rabbitTestURL())
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer ch.Close()
		for q := range strings.FieldsSeq(string(out)) {
			if !strings.HasPrefix(q, ns+".") {
				continue
			}
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", q, err)
				return
			}
		}
		if err := ch.ExchangeDelete(ns, false, false); err != nil {
			t.Errorf("cleanup: delete exchange %s: %v", ns, err)
		}
	})
}

// proc is a baton command running as a process of its own.
type proc struct {
	name   string
	args   []string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // how it exited, once done is closed
}

// startProc starts baton with args and waits until its stderr shows ready.
func startProc(t *testing.T, name, ready string, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, name, ready, nil, args...)
}

// startProcEnv is startProc with env added to the process's environment.
func startProcEnv(t *testing.T, name, ready string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, args: args, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(append(os.Environ(), asCommand+"=1"), env...)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(p.stderr.String(), ready) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready (%v):\n%s", name, p.err, p.stderr.String())
		case <-deadline:
			t.Fatalf("%s not ready after 2 minutes:\n%s", name, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the process with SIGTERM and checks that it stopped cleanly.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.kill()
		t.Errorf("%s did not stop within a minute of SIGTERM:\n%s", p.name, p.stderr.String())
		return
	}
	if p.err != nil {
		t.Errorf("%s stopped with %v:\n%s", p.name, p.err, p.stderr.String())
	}
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// url is the address a server listens on.
func (p *proc) url() string {
	m := listening.FindStringSubmatch(p.stderr.String())
	if m == nil {
		return ""
	}
	return m[1]
}

// cluster is Baton spread over processes on one bus and one store: two
// coordinators (baton server --services=false) and one baton worker per
// order service.
type cluster struct {
	t        *testing.T
	dir      string
	backends []string // --bus, --store and --namespace
	rate     float64
	flows    string // a --flows file for the servers, or ""
	servers  [2]*proc
	workers  map[string]*proc
}

const serverReady = "listening on http://"

func (c *cluster) startServer(i int) {
	args := append([]string{"server", "--demo", "--services=false", "--addr", "127.0.0.1:0",
		"--data", filepath.Join(c.dir, fmt.Sprintf("coordinator-%d", i))}, c.backends...)
	if c.flows != "" {
		args = append(args, "--flows", c.flows)
	}
	c.servers[i] = startProc(c.t, fmt.Sprintf("coordinator %d", i), serverReady, args...)
}

func (c *cluster) startWorker(service string) {
	args := append([]string{"worker", "--service", service, "--data", filepath.Join(c.dir, service),
		"--fail-rate", fmt.Sprint(c.rate)}, c.backends...)
	c.workers[service] = startProc(c.t, service+" worker", "baton worker: services "+service, args...)
}

func (c *cluster) client(i int) *client.Client {
	cl := client.New(c.servers[i].url(), nil)
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// stop stops every process gracefully, the coordinators first.
func (c *cluster) stop() {
	for _, s := range c.servers {
		s.stop(c.t)
	}
	for _, name := range slices.Sorted(maps.Keys(c.workers)) {
		c.workers[name].stop(c.t)
	}
}

func newCluster(t *testing.T, rate float64, flows string, backends ...string) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), backends: backends, rate: rate, flows: flows, workers: map[string]*proc{}}
	c.startServer(0)
	c.startServer(1)
	for _, s := range orderServiceNames() {
		c.startWorker(s)
	}
	return c
}

// The pairs of engines the multi-process tests run on.
type enginePair struct {
	name  string
	setUp func(t *testing.T, ns string) []string // checks, cleans up after, returns the flags
}

var enginePairs = []enginePair{
	{"rabbitmq+postgres", func(t *testing.T, ns string) []string {
		need(t, "RabbitMQ", rabbitTestURL())
		need(t, "PostgreSQL", pgTestURL())
		cleanRabbitMQ(t, ns)
		cleanPostgres(t, ns)
		// The payment group's queue is a quorum queue, the others classic.
		return []string{"--bus", rabbitTestURL() + "?queue_type.payment=quorum", "--store", pgTestURL(), "--namespace", ns}
	}},
	{"nats+redis", func(t *testing.T, ns string) []string {
		need(t, "NATS", natsTestURL())
		need(t, "Redis", redisTestURL())
		cleanNATS(t, ns)
		cleanRedis(t, ns)
		return []string{"--bus", natsTestURL(), "--store", redisTestURL(), "--namespace", ns}
	}},
}

// Orders placed on two coordinators and four service processes, in both
// styles, survive SIGKILL of the payment worker and of a coordinator part
// way: every order ends as its fault says, every effect is in the
// services' ledgers exactly once, and only the orders whose gateway is down
// are dead-lettered.
func TestMultiProcessOrders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six processes per case; skipped with -short")
	}
	for _, pair := range enginePairs {
		for _, style := range []string{styleChoreography, styleOrchestration} {
			t.Run(pair.name+"/"+style, func(t *testing.T) {
				ns := testNamespace()
				backends := pair.setUp(t, ns)
				multiProcessOrders(t, style, backends)
			})
		}
	}
}

func multiProcessOrders(t *testing.T, style string, backends []string) {
	const n, rate = 200, 0.3
	c := newCluster(t, rate, "", backends...)
	ctx := t.Context()
	clients := [2]*client.Client{c.client(0), c.client(1)}
	faults := orders.Faults{Rate: rate}

	place := func(cl *client.Client, i int) {
		o := orders.NewOrder(i)
		// A coordinator busy restarting a broker connection may refuse
		// for a moment: try again, as a caller would; the start and the
		// event are idempotent (business key, event id).
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			if style == styleOrchestration {
				in, _ := json.Marshal(o)
				_, _, err = cl.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in})
			} else {
				e, eerr := o.Event()
				if eerr != nil {
					t.Fatal(eerr)
				}
				_, err = cl.Publish(ctx, e)
			}
			if err == nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("place order %s: %v", o.OrderID, err)
	}

	for i := range n / 2 {
		place(clients[i%2], i)
	}
	// Part-way: the payment worker and the first coordinator crash with
	// work in flight; orders keep coming through the second coordinator.
	c.workers["payment"].kill()
	c.servers[0].kill()
	for i := n / 2; i < 3*n/4; i++ {
		place(clients[1], i)
	}
	c.startWorker("payment")
	c.startServer(0)
	clients[0] = c.client(0)
	for i := 3 * n / 4; i < n; i++ {
		place(clients[i%2], i)
	}

	wantDead := 0
	for i := range n {
		if faults.For(orders.NewOrder(i).OrderID) == orders.GatewayDown {
			wantDead++
		}
	}
	ended := func() (bool, string) {
		var dead []store.DeadLetter
		for after := ""; ; {
			page, err := clients[1].ListDead(ctx, after, 500)
			if err != nil {
				return false, err.Error()
			}
			dead = append(dead, page...)
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].ID
		}
		if style == styleOrchestration {
			runs, err := allRuns(ctx, clients[1], "order")
			if err != nil {
				return false, err.Error()
			}
			open := 0
			for _, r := range runs {
				if !r.Status.Terminal() {
					open++
				}
			}
			return len(runs) == n && open == 0 && len(dead) >= wantDead,
				fmt.Sprintf("%d runs, %d not ended, %d dead letters of %d", len(runs), open, len(dead), wantDead)
		}
		endedOrders := 0
		l := c.ledger(t, "order")
		endedOrders += len(l.Orders(orders.EffectCompleted)) + len(l.Orders(orders.EffectCancelled))
		return endedOrders == n-wantDead && len(dead) >= wantDead,
			fmt.Sprintf("%d of %d orders ended, %d of %d dead letters", endedOrders, n-wantDead, len(dead), wantDead)
	}
	waitUntil(t, 4*time.Minute, "every order ends", ended)
	if style == styleOrchestration {
		runs, err := allRuns(ctx, clients[0], "order")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			want := store.RunFailed
			if faults.For(r.Key).Outcome() == orders.TypeOrderCompleted {
				want = store.RunCompleted
			}
			if r.Status != want {
				t.Errorf("run %s of order %s (%s): %s (%s), want %s", r.ID, r.Key, faults.For(r.Key), r.Status, r.Error, want)
			}
		}
	}
	c.stop()

	// Every effect exactly once, as the order's fault says.
	ledgers := map[string]*orders.Ledger{}
	for _, s := range orderServiceNames() {
		ledgers[s] = c.ledger(t, s)
		if d := ledgers[s].Duplicates(); len(d) > 0 {
			t.Errorf("%s ledger: orders with an effect twice: %v", s, d)
		}
	}
	for i := range n {
		id := orders.NewOrder(i).OrderID
		k := faults.For(id)
		got := map[string]int{}
		for _, l := range ledgers {
			for effect, count := range crashtest.Effects(l, id) {
				got[effect] += count
			}
		}
		if want := crashtest.WantEffects(k); !maps.Equal(got, want) {
			t.Errorf("order %s (%s): effects %v, want %v", id, k, got, want)
		}
	}
	t.Logf("%d orders, %d dead-lettered (gateway down); %s", n, wantDead, workerSummary(c))
}

// ledger reads a service's ledger as its worker wrote it so far, from a
// copy: the worker may still be appending to the file.
func (c *cluster) ledger(t *testing.T, service string) *orders.Ledger {
	t.Helper()
	src := filepath.Join(c.dir, service, "ledger-"+service+".jsonl")
	b, err := os.ReadFile(src)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	cp := filepath.Join(c.dir, service+"-ledger-copy.jsonl")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := orders.NewLedger(cp)
	if err != nil {
		t.Fatalf("%s ledger: %v", service, err)
	}
	// Only read from now on: the file is not kept open while the test
	// polls.
	l.Close()
	return l
}

// workerSummary says what the workers printed about
// duplicates when they stopped (the payment worker: since its restart).
func workerSummary(c *cluster) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(c.workers)) {
		if m := workerStopped.FindStringSubmatch(c.workers[name].stderr.String()); m != nil {
			parts = append(parts, fmt.Sprintf("%s worker: handled %s, duplicates skipped %s", name, m[1], m[4]))
		}
	}
	return strings.Join(parts, "; ")
}

// allRuns lists every run of a flow, page by page.
func allRuns(ctx context.Context, cl *client.Client, flowName string) ([]store.Run, error) {
	var all []store.Run
	for after := ""; ; {
		page, err := cl.Runs(ctx, store.RunQuery{Flow: flowName, After: after, Limit: 200})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 200 {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
}

// waitUntil polls cond until it holds, failing with cond's last word after
// limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		if state != last {
			t.Logf("waiting until %s: %s", what, state)
			last = state
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, limit, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// tickFlow is a flow the schedule test starts every second: one short,
// durable sleep.
const tickFlow = `name: tick
version: 1
steps:
  - name: nap
    sleep: 10ms
`

// A schedule shared by two coordinators starts one run per tick: no tick
// twice, none missed, whichever coordinator fires it.
func TestMultiProcessScheduleOncePerTick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six processes per case; skipped with -short")
	}
	for _, pair := range enginePairs {
		t.Run(pair.name, func(t *testing.T) {
			ns := testNamespace()
			backends := pair.setUp(t, ns)
			flows := filepath.Join(t.TempDir(), "tick.yaml")
			if err := os.WriteFile(flows, []byte(tickFlow), 0o644); err != nil {
				t.Fatal(err)
			}
			c := &cluster{t: t, dir: t.TempDir(), backends: backends, flows: flows, workers: map[string]*proc{}}
			c.startServer(0)
			c.startServer(1)
			ctx := t.Context()
			cl := c.client(0)
			// Every tick starts a run, even when the last is still running or
			// a busy machine makes the coordinators late: a gap between
			// ticks can then only be a tick lost.
			sc := store.Schedule{Name: "tick", Flow: "tick", Every: time.Second, Overlap: store.OverlapAllow, CatchUp: 100}
			if _, err := cl.PutSchedule(ctx, sc); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, 2*time.Minute, "eight ticks", func() (bool, string) {
				runs, err := allRuns(ctx, cl, "tick")
				if err != nil {
					return false, err.Error()
				}
				return len(runs) >= 8, fmt.Sprintf("%d runs", len(runs))
			})
			if _, err := cl.PauseSchedule(ctx, "tick"); err != nil {
				t.Fatal(err)
			}
			// A tick either coordinator had begun before the pause may
			// still land: wait for the schedule to be quiet.
			time.Sleep(2 * time.Second)
			runs, err := allRuns(ctx, c.client(1), "tick")
			if err != nil {
				t.Fatal(err)
			}
			checkTicks(t, runs, time.Second)
			c.stop()
		})
	}
}

// checkTicks checks that runs started by a schedule have one business key
// per tick, and that their ticks follow one another without a gap.
func checkTicks(t *testing.T, runs []store.Run, every time.Duration) {
	t.Helper()
	var ticks []time.Time
	seen := map[string]bool{}
	for _, r := range runs {
		if seen[r.Key] {
			t.Errorf("two runs for %s", r.Key)
		}
		seen[r.Key] = true
		name, at, ok := strings.Cut(r.Key, "@")
		if !ok || name != "tick" {
			t.Errorf("run %s has key %q, want tick@TIME", r.ID, r.Key)
			continue
		}
		tick, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Errorf("run %s: key %q: %v", r.ID, r.Key, err)
			continue
		}
		ticks = append(ticks, tick)
	}
	slices.SortFunc(ticks, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(ticks); i++ {
		if gap := ticks[i].Sub(ticks[i-1]); gap != every {
			t.Errorf("ticks %s and %s are %v apart, want %v", ticks[i-1].Format(time.RFC3339Nano), ticks[i].Format(time.RFC3339Nano), gap, every)
		}
	}
	t.Logf("%d runs, one per tick from %s to %s", len(runs), ticks[0].Format(time.RFC3339), ticks[len(ticks)-1].Format(time.RFC3339))
}
