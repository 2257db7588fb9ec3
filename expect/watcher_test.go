package expect_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/expectations"
	"github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/runner"
	"github.com/batonhq/baton/store"
)

func serviceURL(env, def string) string {
	if u := os.Getenv(env); u != "" {
		return u
	}
	return def
}

var (
	rabbitURL = serviceURL("BATON_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
	pgURL     = serviceURL("BATON_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	natsURL   = serviceURL("BATON_NATS_URL", "nats://127.0.0.1:4222")
	redisURL  = serviceURL("BATON_REDIS_URL", "redis://127.0.0.1:6379/0")
)

// need fails the test in CI and skips it elsewhere when nothing listens at
// rawURL's host.
func need(t *testing.T, service, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s URL %q: %v", service, rawURL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err == nil {
		conn.Close()
		return
	}
	msg := fmt.Sprintf("%s is not reachable at %s: %v (DEVELOPERS.md says how to start it)", service, u.Host, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// groups are the consumer groups the tests declare, whose RabbitMQ queues
// the cleanup deletes.
var groups = []string{"order", "payment", "inventory", "notification", expect.DefaultGroup}

// open opens the backends of kind in a namespace of the test's own, and
// deletes the namespace when the test ends.
func open(t *testing.T, kind string) *backend.Backends {
	t.Helper()
	ns := "bt" + strings.ToLower(rand.Text()[:12])
	cfg := backend.Config{Namespace: ns, Data: t.TempDir()}
	switch kind {
	case "rabbitmq+postgres":
		need(t, "RabbitMQ", rabbitURL)
		need(t, "PostgreSQL", pgURL)
		cfg.Bus, cfg.Store = rabbitURL, pgURL
		t.Cleanup(func() {
			ctx := context.Background()
			if _, err := rabbitbus.DeleteNamespace(ctx, rabbitbus.Config{URL: rabbitURL, Namespace: ns}, groups); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			if _, err := pgstore.DeleteNamespace(ctx, pgstore.Config{URL: pgURL, Schema: ns}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	case "nats+redis":
		need(t, "NATS", natsURL)
		need(t, "Redis", redisURL)
		cfg.Bus, cfg.Store = natsURL, redisURL
		t.Cleanup(func() {
			ctx := context.Background()
			if _, err := natsbus.DeleteNamespace(ctx, natsbus.Config{URL: natsURL, Namespace: ns}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			if _, err := redisstore.DeleteNamespace(ctx, redisstore.Config{URL: redisURL, Prefix: ns + ":"}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	b, err := backend.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() }) // before the namespace is deleted
	return b
}

// eventually polls cond until it holds, failing the test after a minute.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: still not after a minute: %s", what, last)
}

// notes counts the notifications a hub hands a subscriber (what its event
// stream sends) and those its webhook receives, by kind and key.
type notes struct {
	mu      sync.Mutex
	sub     map[string]map[string]int // kind -> run key -> count
	webhook map[string]map[string]int
}

func (n *notes) add(m map[string]map[string]int, kind, key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m[kind] == nil {
		m[kind] = map[string]int{}
	}
	m[kind][key]++
}

// count returns how many notifications of kind came on each channel, and
// whether each key of keys came exactly once on both.
func (n *notes) count(kind string, keys []string) (sub, webhook int, once bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	once = len(n.sub[kind]) == len(keys) && len(n.webhook[kind]) == len(keys)
	for _, k := range keys {
		if n.sub[kind][k] != 1 || n.webhook[kind][k] != 1 {
			once = false
		}
	}
	for _, c := range n.sub[kind] {
		sub += c
	}
	for _, c := range n.webhook[kind] {
		webhook += c
	}
	return sub, webhook, once
}

// hub starts a notification hub with a subscriber and a webhook, both
// counted in the notes.
func hub(t *testing.T) (*notify.Hub, *notes) {
	t.Helper()
	n := &notes{sub: map[string]map[string]int{}, webhook: map[string]map[string]int{}}
	const secret = "s3cret"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got flow.Notification
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil || got.Run == nil {
			t.Errorf("webhook: a notification without a run: %v", err)
			return
		}
		n.add(n.webhook, got.Kind, got.Run.Key)
	}))
	t.Cleanup(srv.Close)
	// The webhook's deliveries wait in a store of their own.
	deliveries, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deliveries.Close() })
	h, err := notify.New(notify.Config{Webhooks: []notify.Webhook{{URL: srv.URL, Secret: secret}}, Store: deliveries})
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := h.Subscribe(flow.ExpectationBroken, flow.ExpectationCleared)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got := range ch {
			n.add(n.sub, got.Kind, got.Run.Key)
		}
	}()
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		h.Stop(context.Background())
		<-done
	})
	return h, n
}

// gauge returns the value of a metric with the expectation's label in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, expectation string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "expectation" && l.GetValue() == expectation {
					if m.Gauge != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{expectation=%q} in the registry", name, expectation)
	return 0
}

// outcomes counts the entries of each outcome in one order's journal, and
// tells whether the order ended (completed or cancelled).
func outcomes(t *testing.T, j store.Journal, key string) (map[store.Outcome]int, bool) {
	t.Helper()
	h, err := j.History(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	n := map[store.Outcome]int{}
	ended := false
	for _, e := range h {
		n[e.Outcome]++
		if e.Outcome == store.Published && (e.EventType == orders.TypeOrderCompleted || e.EventType == orders.TypeOrderCancelled) {
			ended = true
		}
		if e.Outcome == store.ExpectationBroken || e.Outcome == store.ExpectationMetLate {
			if name, ok := expect.Name(e); !ok || name != "inventory-answers" {
				t.Errorf("%s: an entry %s names expectation %q", key, e.Outcome, name)
			}
		}
	}
	return n, ended
}

// The test: with the inventory service down, every paid order
// breaks the expectation once, within its window: one notification per
// order on the event stream and the webhook, one journal entry, the counter
// at the number of orders. When the service comes back, the orders end and
// every alert clears: one notification and one entry each, the gauge back
// to 0. With two watchers sharing the store, each order still fires once.
func TestInventoryDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		backends string
		watchers int
	}{
		{"embedded", 1},
		{"embedded", 2},
		{"rabbitmq+postgres", 1},
		{"rabbitmq+postgres", 2},
		{"nats+redis", 1},
	} {
		t.Run(fmt.Sprintf("%s/%d-watchers", tc.backends, tc.watchers), func(t *testing.T) {
			t.Parallel()
			inventoryDown(t, open(t, tc.backends), tc.watchers)
		})
	}
}

func inventoryDown(t *testing.T, b *backend.Backends, watchers int) {
	const n = 12
	ctx := context.Background()
	x := expectations.InventoryAnswers()
	x.Within = time.Second
	h, notes := hub(t)
	ledger, err := orders.NewLedger("")
	if err != nil {
		t.Fatal(err)
	}
	var up, down []baton.Service // the inventory, and the others
	for _, s := range orders.Services(ledger, orders.Faults{}) {
		if s.Name == "inventory" {
			up = append(up, s)
		} else {
			down = append(down, s)
		}
	}
	start := func(cfg runner.Config) *runner.Runner {
		cfg.Transport, cfg.Store, cfg.Notifier = b.Transport, b.Store, h
		r, err := runner.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Stop(ctx) })
		return r
	}
	// The inventory has run before (its group holds what comes while it
	// is down), and is down.
	if err := start(runner.Config{Services: up}).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	regs := make([]*prometheus.Registry, watchers)
	var first *runner.Runner
	for i := range regs {
		regs[i] = prometheus.NewRegistry()
		cfg := runner.Config{Expectations: []expect.Expectation{x}, Metrics: regs[i]}
		if i == 0 {
			cfg.Services = down
		}
		r := start(cfg)
		if i == 0 {
			first = r
		}
	}

	keys := make([]string, n)
	var placed []baton.Event
	for i := range keys {
		o := orders.NewOrder(i)
		keys[i] = o.OrderID
		e, err := o.Event()
		if err != nil {
			t.Fatal(err)
		}
		e.ID, e.CorrelationID = "place-"+o.OrderID, o.OrderID
		placed = append(placed, e)
	}
	if err := first.Publish(ctx, placed...); err != nil {
		t.Fatal(err)
	}

	broken := func() float64 {
		var sum float64
		for _, reg := range regs {
			sum += gauge(t, reg, "baton_expectations_broken_total", x.Name)
		}
		return sum
	}
	eventually(t, "a broken notification per order", func() (bool, string) {
		sub, hook, once := notes.count(flow.ExpectationBroken, keys)
		return once, fmt.Sprintf("%d on the stream, %d by webhook, for %d orders", sub, hook, n)
	})
	for _, k := range keys {
		got, ended := outcomes(t, b.Store, k)
		if got[store.ExpectationBroken] != 1 || got[store.ExpectationMetLate] != 0 || ended {
			t.Errorf("%s: journal %v, ended %v; want one expectation-broken entry and no end", k, got, ended)
		}
	}
	if got := broken(); got != n {
		t.Errorf("baton_expectations_broken_total = %v; want %d", got, n)
	}
	for i, reg := range regs {
		if got := gauge(t, reg, "baton_expectations_open_broken", x.Name); got != n {
			t.Errorf("watcher %d: baton_expectations_open_broken = %v; want %d", i, got, n)
		}
	}
	// The instances are runs of the reserved flow, which listings of a
	// user's runs leave out.
	all, err := flow.ListRuns(ctx, b.Store, store.RunQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Errorf("the runs listed hold %d runs of expectations, as %s", len(all), all[0].Flow)
	}

	start(runner.Config{Services: up})
	eventually(t, "a cleared notification per order", func() (bool, string) {
		sub, hook, once := notes.count(flow.ExpectationCleared, keys)
		return once, fmt.Sprintf("%d on the stream, %d by webhook, for %d orders", sub, hook, n)
	})
	eventually(t, "every order ended", func() (bool, string) {
		for _, k := range keys {
			if _, ended := outcomes(t, b.Store, k); !ended {
				return false, k + " has not"
			}
		}
		return true, ""
	})
	for _, k := range keys {
		got, _ := outcomes(t, b.Store, k)
		if got[store.ExpectationBroken] != 1 || got[store.ExpectationMetLate] != 1 {
			t.Errorf("%s: journal %v; want one expectation-broken and one expectation-met-late entry", k, got)
		}
	}
	for i, reg := range regs {
		if got := gauge(t, reg, "baton_expectations_open_broken", x.Name); got != 0 {
			t.Errorf("watcher %d: baton_expectations_open_broken = %v after the alerts cleared; want 0", i, got)
		}
	}
	if got := broken(); got != n {
		t.Errorf("baton_expectations_broken_total = %v after the alerts cleared; want still %d", got, n)
	}
	if sub, hook, once := notes.count(flow.ExpectationBroken, keys); !once {
		t.Errorf("broken notifications: %d on the stream, %d by webhook; want one per order, %d", sub, hook, n)
	}
}
