package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/traffic"
)

// orderEdges are the edges the demo's first n orders draw at a fault rate,
// with their counts: every path of the order choreography, the failure
// paths included (docs of package orders).
func orderEdges(t *testing.T, n int, rate float64) map[[2]string]traffic.Edge {
	t.Helper()
	faults := map[orders.Fault]int{}
	f := orders.Faults{Rate: rate}
	for i := range n {
		faults[f.For(orders.NewOrder(i).OrderID)]++
	}
	for _, k := range []orders.Fault{orders.Declined, orders.OutOfStock, orders.GatewayFlaky, orders.GatewayDown} {
		if faults[k] == 0 {
			t.Fatalf("no order meets fault %s among %d at rate %v: the map would not show its path", k, n, rate)
		}
	}
	declined, noStock, flaky, down := faults[orders.Declined], faults[orders.OutOfStock], faults[orders.GatewayFlaky], faults[orders.GatewayDown]
	paid := n - declined - down
	completed := paid - noStock
	consumes := func(typ, group string, count int) traffic.Edge {
		return traffic.Edge{Kind: traffic.Consumes, From: typ, To: group, Count: count}
	}
	emits := func(group, typ string, count int) traffic.Edge {
		return traffic.Edge{Kind: traffic.Emits, From: group, To: typ, Count: count}
	}
	placed := consumes(orders.TypeOrderPlaced, "payment", n-down)
	// The flaky gateway fails twice; the dead one on each of the payment
	// service's attempts, the last of which dead-letters the order.
	placed.Failed = 2*flaky + (orders.PaymentRetry.MaxAttempts-1)*down
	placed.DeadLettered = down
	want := map[[2]string]traffic.Edge{}
	for _, e := range []traffic.Edge{
		{Kind: traffic.Publishes, From: "baton-demo", To: orders.TypeOrderPlaced, Count: n},
		placed,
		emits("payment", orders.TypePaymentProcessed, paid),
		emits("payment", orders.TypePaymentFailed, declined),
		consumes(orders.TypePaymentProcessed, "inventory", paid),
		emits("inventory", orders.TypeInventoryReserved, completed),
		emits("inventory", orders.TypeInventoryFailed, noStock),
		consumes(orders.TypeInventoryReserved, "notification", completed),
		emits("notification", orders.TypeNotificationSent, completed),
		consumes(orders.TypeNotificationSent, "order", completed),
		emits("order", orders.TypeOrderCompleted, completed),
		consumes(orders.TypePaymentFailed, "order", declined),
		consumes(orders.TypeInventoryFailed, "payment", noStock),
		emits("payment", orders.TypePaymentRefunded, noStock),
		consumes(orders.TypePaymentRefunded, "order", noStock),
		emits("order", orders.TypeOrderCancelled, declined+noStock),
	} {
		want[[2]string{e.From, e.To}] = e
	}
	return want
}

// checkOrderMap checks the map of the demo's orders: its edges and their
// counts, and hop latencies measured on every handled event.
func checkOrderMap(t *testing.T, m traffic.Map, n int, rate float64) {
	t.Helper()
	want := orderEdges(t, n, rate)
	got := map[[2]string]traffic.Edge{}
	for _, e := range m.Edges {
		got[[2]string{e.From, e.To}] = e
		if e.Kind != traffic.Consumes {
			continue
		}
		if e.Timed != e.Count || e.HopP50 > e.HopP99 {
			t.Errorf("%s -> %s: %d of %d handlings timed, p50 %v, p99 %v; want all, p50 <= p99", e.From, e.To, e.Timed, e.Count, e.HopP50, e.HopP99)
		}
		if attempts := e.Count + e.Failed + e.DeadLettered; attempts > 0 && e.ErrorRate != float64(e.Failed+e.DeadLettered)/float64(attempts) {
			t.Errorf("%s -> %s: error rate %v for %+v", e.From, e.To, e.ErrorRate, e)
		}
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("no edge %s -> %s (%s) in the map", k[0], k[1], w.Kind)
			continue
		}
		if g.Kind != w.Kind || g.Count != w.Count || g.Failed != w.Failed || g.DeadLettered != w.DeadLettered || g.Duplicates != 0 {
			t.Errorf("%s -> %s: %s %d, failed %d, dead-lettered %d, duplicates %d; want %s %d, failed %d, dead-lettered %d",
				k[0], k[1], g.Kind, g.Count, g.Failed, g.DeadLettered, g.Duplicates, w.Kind, w.Count, w.Failed, w.DeadLettered)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected edge %s -> %s: %+v", k[0], k[1], g)
		}
	}
	if m.Truncated || m.Entries == 0 {
		t.Errorf("map of %d entries, truncated %v", m.Entries, m.Truncated)
	}
}

func mapJSON(t *testing.T, args ...string) traffic.Map {
	t.Helper()
	var m traffic.Map
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"map", "--format", "json"}, args...)...)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const mapOrders, mapRate = 60, 0.3

// The order choreography on the embedded backend, drawn from its data
// directory, and from a server's API over it; and in each format.
func TestMapOfOrders(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	mustRun(t, "demo", "--data", dir, "--keep", "--orders", fmt.Sprint(mapOrders), "--fail-rate", fmt.Sprint(mapRate))
	m := mapJSON(t, "--data", dir, "--window", "1h")
	checkOrderMap(t, m, mapOrders, mapRate)

	checkFormats(t, m, "--data", dir)

	// A window that ends before the demo began draws nothing.
	if m := mapJSON(t, "--data", dir, "--window", "1ns"); len(m.Edges) != 0 {
		t.Errorf("map of the last nanosecond: %+v", m.Edges)
	}

	// The same through a server's API.
	b, err := embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(api.NewHandler(b, b))
	defer srv.Close()
	if remote := mapJSON(t, "--server", srv.URL, "--window", "1h"); !reflect.DeepEqual(remote.Edges, m.Edges) {
		t.Errorf("map through the API:\n%+v\nfrom the directory:\n%+v", remote.Edges, m.Edges)
	}
}

var (
	dotNode    = regexp.MustCompile(`^  "(type|group|source):[^"]+" \[label="[^"]+", shape=(ellipse|box|plaintext)\];$`)
	dotEdge    = regexp.MustCompile(`^  "(type|group|source):[^"]+" -> "(type|group):[^"]+" \[label="[^"]+"(, color=(red|orange))?\];$`)
	mermaidDef = regexp.MustCompile(`^  (n\d+)(\(\["[^"]+"\]\)|\["[^"]+"\]|>"[^"]+"\])$`)
	mermaidArc = regexp.MustCompile(`^  (n\d+) -->\|"[^"]+"\| (n\d+)$`)
)

// checkFormats prints m's target as text, DOT and Mermaid, and checks each
// is well formed and holds every edge of m.
func checkFormats(t *testing.T, m traffic.Map, target ...string) {
	t.Helper()
	format := func(f string) string {
		return mustRun(t, append([]string{"map", "--window", "1h", "--format", f}, target...)...)
	}

	text := format("text")
	if !strings.Contains(text, "FROM") || !strings.Contains(text, "HOP P99") {
		t.Errorf("text has no header:\n%s", text)
	}
	for _, e := range m.Edges {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(e.From) + ` +-> +` + regexp.QuoteMeta(e.To) + ` +` + string(e.Kind) + ` +` + fmt.Sprint(e.Count) + `\b`).MatchString(text) {
			t.Errorf("text has no row for %s -> %s (%s %d):\n%s", e.From, e.To, e.Kind, e.Count, text)
		}
	}

	dot := strings.Split(strings.TrimSuffix(format("dot"), "\n"), "\n")
	if dot[0] != "digraph baton {" || dot[len(dot)-1] != "}" || !strings.HasPrefix(dot[1], "  label=\"") || dot[2] != "  rankdir=LR;" {
		t.Errorf("dot header or end:\n%s", strings.Join(dot, "\n"))
	}
	edges := 0
	for _, l := range dot[3 : len(dot)-1] {
		switch {
		case dotEdge.MatchString(l):
			edges++
		case !dotNode.MatchString(l):
			t.Errorf("dot line is neither a node nor an edge: %q", l)
		}
	}
	if edges != len(m.Edges) {
		t.Errorf("dot has %d edges, the map %d", edges, len(m.Edges))
	}
	if want := `"type:order.placed.v1" -> "group:payment"`; !strings.Contains(strings.Join(dot, "\n"), want) {
		t.Errorf("dot has no %s", want)
	}

	mermaid := strings.Split(strings.TrimSuffix(format("mermaid"), "\n"), "\n")
	if mermaid[0] != "flowchart LR" || !strings.HasPrefix(mermaid[1], "  %% traffic of ") {
		t.Errorf("mermaid header:\n%s", strings.Join(mermaid, "\n"))
	}
	defined := map[string]bool{}
	edges = 0
	for _, l := range mermaid[2:] {
		if d := mermaidDef.FindStringSubmatch(l); d != nil {
			defined[d[1]] = true
			continue
		}
		a := mermaidArc.FindStringSubmatch(l)
		if a == nil {
			t.Errorf("mermaid line is neither a node nor an edge: %q", l)
			continue
		}
		if !defined[a[1]] || !defined[a[2]] {
			t.Errorf("mermaid edge before its nodes: %q", l)
		}
		edges++
	}
	if edges != len(m.Edges) {
		t.Errorf("mermaid has %d edges, the map %d", edges, len(m.Edges))
	}
}

// The order choreography drawn from a broker and a database directly.
func TestMapOfOrdersOnBrokers(t *testing.T) {
	t.Parallel()
	for _, pair := range brokerPairs {
		t.Run(pair.name, func(t *testing.T) {
			t.Parallel()
			pair.need(t)
			ns := testNamespace()
			pair.clean(t, ns)
			backends := pair.args(ns)
			mustRun(t, append([]string{"demo", "--style", styleChoreography, "--orders", fmt.Sprint(mapOrders), "--fail-rate", fmt.Sprint(mapRate)}, backends...)...)
			m := mapJSON(t, append([]string{"--window", "1h"}, backends...)...)
			checkOrderMap(t, m, mapOrders, mapRate)
			if text := mustRun(t, append([]string{"map"}, backends...)...); !strings.Contains(text, "traffic of namespace "+ns) {
				t.Errorf("text map does not name the namespace:\n%s", text)
			}
		})
	}
}

func TestMapUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"map", "--format", "svg"}, `--format "svg": give text, dot, mermaid or json`},
		{[]string{"map", "--window", "0s"}, "--window 0s: give a positive duration"},
		{[]string{"map", "extra"}, `unexpected argument "extra"`},
	} {
		if r := batonCmd(t, context.Background(), tc.args...); r.code != exitUsage || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.stderr)
		}
	}
	out := mustRun(t, "map", "--help")
	for _, want := range []string{"Usage:\n  baton map", "--window DURATION", "--format FORMAT", "--server URL", "--bus", "Examples:\n  baton map"} {
		if !strings.Contains(out, want) {
			t.Errorf("map --help has no %q:\n%s", want, out)
		}
	}
}

// baton map reaches a running demo's journal through its control socket.
func TestMapOfRunningDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut syncBuffer
	serveDemo(t, &env{stdout: &out, stderr: &errOut}, "--orders", "20", "--data", dir)
	m := mapJSON(t, "--data", dir)
	want := map[[2]string]int{{"baton-demo", orders.TypeOrderPlaced}: 20, {orders.TypeOrderPlaced, "payment"}: 20, {"order", orders.TypeOrderCompleted}: 20}
	for _, e := range m.Edges {
		if n, ok := want[[2]string{e.From, e.To}]; ok {
			if e.Count != n {
				t.Errorf("%s -> %s: %d, want %d", e.From, e.To, e.Count, n)
			}
			delete(want, [2]string{e.From, e.To})
		}
	}
	if len(want) > 0 {
		t.Errorf("edges %v missing from the map of the running demo: %+v", want, m.Edges)
	}
}
