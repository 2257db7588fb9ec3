package api_test

import (
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/traffic"
)

// GET /v1/map draws the orders published through the API, behind the same
// token as the journal.
func TestMap(t *testing.T) {
	t.Parallel()
	s := newStack(t, "traffic-token-0123")
	const n = 3
	for i := range n {
		o := orders.NewOrder(i)
		if r := s.do(t, "POST", "/v1/events", map[string]any{"type": orders.TypeOrderPlaced, "subject": o.OrderID, "data": o}); r.status != 202 {
			t.Fatalf("publish: %d %s", r.status, r.body)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range n {
		for id := orders.NewOrder(i).OrderID; s.ledger.Count(id, orders.EffectCompleted) == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("order %s not completed by choreography", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The journal of the last order's completion may trail its effect.
	var m traffic.Map
	for {
		r := s.do(t, "GET", "/v1/map?window=1h", nil)
		if r.status != 200 {
			t.Fatalf("map: %d %s", r.status, r.body)
		}
		r.decode(t, &m)
		if len(m.Edges) > 0 && m.Edges[len(m.Edges)-1].To == orders.TypeOrderCompleted && m.Edges[len(m.Edges)-1].Count == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("map: %+v; want the orders to reach order.completed.v1", m.Edges)
		}
		time.Sleep(10 * time.Millisecond)
	}
	chain := []string{orders.TypeOrderPlaced, "payment", orders.TypePaymentProcessed, "inventory", orders.TypeInventoryReserved,
		"notification", orders.TypeNotificationSent, "order", orders.TypeOrderCompleted}
	if len(m.Edges) != len(chain) {
		t.Fatalf("%d edges, want %d: %+v", len(m.Edges), len(chain), m.Edges)
	}
	if e := m.Edges[0]; e.Kind != traffic.Publishes || e.To != orders.TypeOrderPlaced || e.Count != n {
		t.Errorf("first edge %+v, want %d order.placed.v1 published", e, n)
	}
	for i, e := range m.Edges[1:] {
		if e.From != chain[i] || e.To != chain[i+1] || e.Count != n || e.Failed != 0 || e.DeadLettered != 0 {
			t.Errorf("edge %d: %+v; want %s -> %s, %d and no failures", i+1, e, chain[i], chain[i+1], n)
		}
	}
	if m.Truncated || !m.To.After(m.From) || m.To.Sub(m.From) != time.Hour {
		t.Errorf("window %v to %v, truncated %v; want an hour, whole", m.From, m.To, m.Truncated)
	}

	if e := s.do(t, "GET", "/v1/map?window=soon", nil).apiError(t, 400); e.Code != baton.Invalid {
		t.Errorf("bad window: %+v", e)
	}
	s.token = ""
	if e := s.do(t, "GET", "/v1/map", nil).apiError(t, 401); e.Code != "unauthorized" {
		t.Errorf("without a token: %+v", e)
	}
}
