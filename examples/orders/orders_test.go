package orders_test

import (
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/orders"
)

// dispatcher hands each event to the one handler of its type, as the bus or
// the coordinator would, without either.
type dispatcher map[string]route

type route struct {
	service string
	handler baton.Handler
	retry   baton.RetryPolicy
}

func newDispatcher(t testing.TB, services []baton.Service) dispatcher {
	t.Helper()
	d := dispatcher{}
	for _, s := range services {
		for _, h := range s.Handlers {
			if r, dup := d[h.Type]; dup {
				t.Fatalf("%s is handled by %s and %s", h.Type, r.service, s.Name)
			}
			retry := s.Retry
			if h.Retry != nil {
				retry = *h.Retry
			}
			d[h.Type] = route{service: s.Name, handler: h, retry: retry.OrDefault()}
		}
	}
	return d
}

// run handles start and everything it causes, breadth first, retrying a
// failed handler (without waiting) as its policy allows. It returns every
// event seen, start first, and the error that stopped it. Emitted events get
// ids derived from their cause, so running the same start again yields the
// same ids, as the runtime's deterministic ids do.
func (d dispatcher) run(ctx context.Context, start baton.Event) ([]baton.Event, error) {
	queue := []baton.Event{start}
	var trail []baton.Event
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		trail = append(trail, e)
		r, ok := d[e.Type]
		if !ok {
			continue // terminal
		}
		var outs []baton.Event
		var err error
		for attempt := 1; attempt <= r.retry.MaxAttempts; attempt++ {
			outs, err = r.handler.Func(baton.WithAttempt(ctx, attempt), e)
			if err == nil || baton.IsPermanent(err) {
				break
			}
		}
		if err != nil {
			return trail, fmt.Errorf("%s handling %s: %w", r.service, e.Type, err)
		}
		for i, out := range outs {
			out.ID = e.ID + "/" + r.service + "/" + strconv.Itoa(i)
			out.CausationID = e.ID
			queue = append(queue, out)
		}
	}
	return trail, nil
}

func placed(t testing.TB, o orders.OrderPlaced, id string) baton.Event {
	t.Helper()
	e, err := o.Event()
	if err != nil {
		t.Fatal(err)
	}
	e.ID = id
	return e
}

func types(trail []baton.Event) []string {
	var ts []string
	for _, e := range trail {
		ts = append(ts, e.Type)
	}
	return ts
}

// orderWith finds a sample order that meets fault k at f's rate.
func orderWith(t testing.TB, f orders.Faults, k orders.Fault) orders.OrderPlaced {
	t.Helper()
	for i := range 100000 {
		if o := orders.NewOrder(i); f.For(o.OrderID) == k {
			return o
		}
	}
	t.Fatalf("no sample order meets %v at rate %v", k, f.Rate)
	return orders.OrderPlaced{}
}

func newLedger(t testing.TB) *orders.Ledger {
	t.Helper()
	l, err := orders.NewLedger("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func counts(l *orders.Ledger, orderID string) map[string]int {
	m := map[string]int{}
	for _, effect := range []string{
		orders.EffectCharged, orders.EffectRefunded, orders.EffectReserved,
		orders.EffectNotified, orders.EffectCompleted, orders.EffectCancelled,
	} {
		if n := l.Count(orderID, effect); n > 0 {
			m[effect] = n
		}
	}
	return m
}

var allFaults = orders.Faults{Rate: 1}

func TestChains(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault   orders.Fault
		types   []string
		effects map[string]int
	}{
		{
			fault: orders.NoFault,
			types: []string{
				orders.TypeOrderPlaced, orders.TypePaymentProcessed, orders.TypeInventoryReserved,
				orders.TypeNotificationSent, orders.TypeOrderCompleted,
			},
			effects: map[string]int{"charged": 1, "reserved": 1, "notified": 1, "completed": 1},
		},
		{
			fault:   orders.Declined,
			types:   []string{orders.TypeOrderPlaced, orders.TypePaymentFailed, orders.TypeOrderCancelled},
			effects: map[string]int{"cancelled": 1},
		},
		{
			fault: orders.OutOfStock,
			types: []string{
				orders.TypeOrderPlaced, orders.TypePaymentProcessed, orders.TypeInventoryFailed,
				orders.TypePaymentRefunded, orders.TypeOrderCancelled,
			},
			effects: map[string]int{"charged": 1, "refunded": 1, "cancelled": 1},
		},
		{
			fault: orders.GatewayFlaky,
			types: []string{
				orders.TypeOrderPlaced, orders.TypePaymentProcessed, orders.TypeInventoryReserved,
				orders.TypeNotificationSent, orders.TypeOrderCompleted,
			},
			effects: map[string]int{"charged": 1, "reserved": 1, "notified": 1, "completed": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			f := allFaults
			if tt.fault == orders.NoFault {
				f = orders.Faults{}
			}
			o := orderWith(t, f, tt.fault)
			l := newLedger(t)
			d := newDispatcher(t, orders.Services(l, f))

			trail, err := d.run(t.Context(), placed(t, o, "e-1"))
			if err != nil {
				t.Fatal(err)
			}
			if got := types(trail); !slices.Equal(got, tt.types) {
				t.Fatalf("chain of %s:\n got %v\nwant %v", o.OrderID, got, tt.types)
			}
			if got, want := trail[len(trail)-1].Type, tt.fault.Outcome(); got != want {
				t.Errorf("%v ends in %s, Outcome says %s", tt.fault, got, want)
			}
			for _, e := range trail[1:] {
				if e.Subject != o.OrderID {
					t.Errorf("%s has subject %q, want the order id %q", e.Type, e.Subject, o.OrderID)
				}
			}
			if got := counts(l, o.OrderID); !mapsEqual(got, tt.effects) {
				t.Errorf("effects of %s: got %v, want %v", o.OrderID, got, tt.effects)
			}
			if dups := l.Duplicates(); dups != nil {
				t.Errorf("duplicates: %v", dups)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestTerminalData(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	d := newDispatcher(t, orders.Services(l, allFaults))

	o := orderWith(t, allFaults, orders.OutOfStock)
	trail, err := d.run(t.Context(), placed(t, o, "e-1"))
	if err != nil {
		t.Fatal(err)
	}
	var c orders.OrderCancelled
	if err := trail[len(trail)-1].Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.OrderID != o.OrderID || !c.Refunded || !strings.Contains(c.Reason, "out of stock") {
		t.Errorf("cancelled after running out of stock: %+v", c)
	}
	var r orders.PaymentRefunded
	if err := trail[3].Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.AmountCents != o.AmountCents || r.PaymentID == "" {
		t.Errorf("refund %+v of order %+v", r, o)
	}

	o = orderWith(t, allFaults, orders.Declined)
	trail, err = d.run(t.Context(), placed(t, o, "e-2"))
	if err != nil {
		t.Fatal(err)
	}
	var declined orders.OrderCancelled
	if err := trail[len(trail)-1].Decode(&declined); err != nil {
		t.Fatal(err)
	}
	if declined.OrderID != o.OrderID || declined.Refunded || !strings.Contains(declined.Reason, "declined") {
		t.Errorf("cancelled after a decline: %+v", declined)
	}
}

// handler returns the handler of typ among services.
func handler(t testing.TB, services []baton.Service, typ string) baton.HandlerFunc {
	t.Helper()
	for _, s := range services {
		for _, h := range s.Handlers {
			if h.Type == typ {
				return h.Func
			}
		}
	}
	t.Fatalf("no handler for %s", typ)
	return nil
}

func TestGatewayFlakyFailsTwiceThenSucceeds(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	charge := handler(t, orders.Services(l, allFaults), orders.TypeOrderPlaced)
	o := orderWith(t, allFaults, orders.GatewayFlaky)
	e := placed(t, o, "e-1")

	for attempt := 1; attempt <= 2; attempt++ {
		out, err := charge(baton.WithAttempt(t.Context(), attempt), e)
		if err == nil {
			t.Fatalf("attempt %d succeeded with %v, want a transient error", attempt, types(out))
		}
		if baton.IsPermanent(err) || baton.ErrorCode(err) != baton.Unavailable {
			t.Fatalf("attempt %d: %v (permanent %v, code %s), want a transient unavailable error",
				attempt, err, baton.IsPermanent(err), baton.ErrorCode(err))
		}
		if !strings.Contains(err.Error(), o.OrderID) {
			t.Errorf("error %q does not name the order", err)
		}
	}
	out, err := charge(baton.WithAttempt(t.Context(), 3), e)
	if err != nil {
		t.Fatalf("attempt 3: %v", err)
	}
	if got := types(out); !slices.Equal(got, []string{orders.TypePaymentProcessed}) {
		t.Fatalf("attempt 3 emitted %v", got)
	}
	if n := l.Count(o.OrderID, orders.EffectCharged); n != 1 {
		t.Errorf("charged %d times, want 1", n)
	}
}

func TestGatewayDownAlwaysFails(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	services := orders.Services(l, allFaults)
	o := orderWith(t, allFaults, orders.GatewayDown)
	e := placed(t, o, "e-1")

	charge := handler(t, services, orders.TypeOrderPlaced)
	for attempt := 1; attempt <= 10; attempt++ {
		_, err := charge(t.Context(), e)
		if err == nil || baton.IsPermanent(err) || baton.ErrorCode(err) != baton.Unavailable {
			t.Fatalf("attempt %d: %v, want a transient unavailable error", attempt, err)
		}
		want := "payment gateway unavailable for order " + o.OrderID + ": connection refused"
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}

	// Through the dispatcher, its retries are spent and the chain stops.
	trail, err := newDispatcher(t, services).run(t.Context(), e)
	if err == nil || baton.IsPermanent(err) {
		t.Fatalf("chain ended with %v after %v", err, types(trail))
	}
	if got := types(trail); !slices.Equal(got, []string{orders.TypeOrderPlaced}) {
		t.Errorf("chain went on to %v", got)
	}
	if got := l.Totals(); len(got) != 0 || l.Calls(orders.EffectCharged) != 0 {
		t.Errorf("a dead gateway had effects: %v", got)
	}
}

func TestMalformedIsPermanent(t *testing.T) {
	t.Parallel()
	good := orders.NewOrder(7)
	tests := []struct {
		name string
		typ  string
		data string
		id   string
		want string
	}{
		{"no order id", orders.TypeOrderPlaced, `{"customer":"c","items":[{"sku":"S","qty":1}],"amount_cents":100}`, "e-1", "order_id missing"},
		{"no items", orders.TypeOrderPlaced, `{"order_id":"o-1","items":[],"amount_cents":100}`, "e-1", "items empty"},
		{"zero amount", orders.TypeOrderPlaced, `{"order_id":"o-1","items":[{"sku":"S","qty":1}]}`, "e-1", "amount_cents 0 is not positive"},
		{"negative amount", orders.TypeOrderPlaced, `{"order_id":"o-1","items":[{"sku":"S","qty":1}],"amount_cents":-5}`, "e-1", "amount_cents -5"},
		{"zero quantity", orders.TypeOrderPlaced, `{"order_id":"o-1","items":[{"sku":"S","qty":0}],"amount_cents":5}`, "e-1", "items[0].qty 0"},
		{"all wrong", orders.TypeOrderPlaced, `{}`, "e-1", "order_id missing; items empty; amount_cents 0"},
		{"not json", orders.TypeOrderPlaced, `{"order_id":`, "e-1", "decode"},
		{"wrong shape", orders.TypeOrderPlaced, `{"items":"many"}`, "e-1", "decode"},
		{"no event id", orders.TypeOrderPlaced, mustJSON(t, good), "", "no id"},
		{"payment.processed without order", orders.TypePaymentProcessed, `{"items":[{"sku":"S","qty":1}]}`, "e-1", "order_id"},
		{"inventory.failed without order", orders.TypeInventoryFailed, `{}`, "e-1", "order_id missing"},
		{"inventory.reserved without order", orders.TypeInventoryReserved, `{}`, "e-1", "order_id missing"},
		{"notification.sent without order", orders.TypeNotificationSent, `{}`, "e-1", "order_id missing"},
		{"payment.failed without order", orders.TypePaymentFailed, `{}`, "e-1", "order_id missing"},
		{"payment.refunded not json", orders.TypePaymentRefunded, `[`, "e-1", "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLedger(t)
			h := handler(t, orders.Services(l, orders.Faults{}), tt.typ)
			e := baton.Event{ID: tt.id, Type: tt.typ, Subject: "o-1", Data: []byte(tt.data)}
			out, err := h(t.Context(), e)
			if err == nil {
				t.Fatalf("accepted, emitting %v", types(out))
			}
			if !baton.IsPermanent(err) {
				t.Errorf("%v is not permanent", err)
			}
			if baton.ErrorCode(err) != baton.Invalid {
				t.Errorf("%v has code %s, want invalid", err, baton.ErrorCode(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if got := l.Totals(); len(got) != 0 {
				t.Errorf("malformed input had effects: %v", got)
			}
		})
	}
}

func mustJSON(t testing.TB, o orders.OrderPlaced) string {
	t.Helper()
	e, err := o.Event()
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Data)
}

func TestRedeliveryIsIdempotentNewIDIsDuplicate(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	d := newDispatcher(t, orders.Services(l, orders.Faults{}))
	o := orders.NewOrder(3)

	// The same event delivered twice: same ids all the way, one effect each.
	for range 2 {
		if _, err := d.run(t.Context(), placed(t, o, "e-1")); err != nil {
			t.Fatal(err)
		}
	}
	if dups := l.Duplicates(); dups != nil {
		t.Fatalf("a redelivery made duplicates: %v", dups)
	}
	if got := l.Calls(orders.EffectCharged); got != 2 {
		t.Errorf("Calls(charged) = %d, want 2: the redelivery reached the provider", got)
	}

	// The same order placed again under a new event id is charged again, and
	// the ledger says so.
	if _, err := d.run(t.Context(), placed(t, o, "e-2")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"order o-000003: charged 2 times",
		"order o-000003: completed 2 times",
		"order o-000003: notified 2 times",
		"order o-000003: reserved 2 times",
	}
	if got := l.Duplicates(); !slices.Equal(got, want) {
		t.Errorf("Duplicates:\n got %q\nwant %q", got, want)
	}
}

func TestFaultsFor(t *testing.T) {
	t.Parallel()
	const n = 20000
	for i := range n {
		if k := (orders.Faults{}).For(orders.NewOrder(i).OrderID); k != orders.NoFault {
			t.Fatalf("rate 0 gave %v", k)
		}
		if k := allFaults.For(orders.NewOrder(i).OrderID); k == orders.NoFault {
			t.Fatalf("rate 1 gave no fault")
		}
	}

	f := orders.Faults{Rate: 0.5}
	seen := map[orders.Fault]int{}
	for i := range n {
		id := orders.NewOrder(i).OrderID
		k := f.For(id)
		if again := f.For(id); again != k {
			t.Fatalf("%s: %v then %v", id, k, again)
		}
		seen[k]++
	}
	want := map[orders.Fault]float64{
		orders.NoFault:      0.5,
		orders.Declined:     0.15,
		orders.OutOfStock:   0.125,
		orders.GatewayFlaky: 0.175,
		orders.GatewayDown:  0.05,
	}
	for k, share := range want {
		if got := float64(seen[k]) / n; got < share-0.015 || got > share+0.015 {
			t.Errorf("%v: %.3f of orders, want about %.3f", k, got, share)
		}
	}
}

func TestNewOrder(t *testing.T) {
	t.Parallel()
	if got := orders.NewOrder(42).OrderID; got != "o-000042" {
		t.Errorf("NewOrder(42).OrderID = %q", got)
	}
	for i := range 1000 {
		o := orders.NewOrder(i)
		if err := o.Validate(); err != nil {
			t.Fatalf("NewOrder(%d) = %+v: %v", i, o, err)
		}
		again := orders.NewOrder(i)
		if o.AmountCents != again.AmountCents || !slices.Equal(o.Items, again.Items) {
			t.Fatalf("NewOrder(%d) differs between calls", i)
		}
	}
}

func TestServicesShape(t *testing.T) {
	t.Parallel()
	services := orders.Services(newLedger(t), orders.Faults{})
	var names []string
	for _, s := range services {
		names = append(names, s.Name)
		want := baton.RetryPolicy{}
		if s.Name == "payment" {
			want = orders.PaymentRetry
		}
		if s.Retry != want {
			t.Errorf("%s retries %v, want %v", s.Name, s.Retry, want)
		}
	}
	if want := []string{"order", "payment", "inventory", "notification"}; !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}
	if orders.PaymentRetry != (baton.RetryPolicy{MaxAttempts: 4, Base: 20e6, Cap: 500e6}) {
		t.Errorf("PaymentRetry = %v", orders.PaymentRetry)
	}
	newDispatcher(t, services) // fails on a type handled twice
}

// The services are coordination-agnostic: they may not import the bus or
// the store.
func TestImportsNeitherBusNorStore(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/batonhq/baton/") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
