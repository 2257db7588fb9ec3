package api_test

import (
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
)

// A caller's W3C trace context is taken inward: the event it publishes and
// the run it starts join its trace, which the journal names.
func TestAPIJoinsTheCallersTrace(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tp := "00-" + traceID + "-00f067aa0ba902b7-01"

	o := orders.NewOrder(77)
	r := s.do(t, "POST", "/v1/events", map[string]any{"type": orders.TypeOrderPlaced, "subject": o.OrderID, "data": o},
		"traceparent", tp)
	if r.status != 202 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	var h api.History
	s.do(t, "GET", "/v1/history/"+o.OrderID, nil).decode(t, &h)
	if len(h.Entries) == 0 || h.Entries[0].Outcome != store.Published || h.Entries[0].TraceID != traceID {
		t.Errorf("the published event's entry: %+v, want trace %s", h.Entries, traceID)
	}

	r = s.do(t, "POST", "/v1/runs", orderStart(78), "traceparent", tp)
	var started api.Started
	r.decode(t, &started)
	if r.status != 202 || started.TraceParent != tp {
		t.Errorf("started run: %d, traceparent %q, want the caller's %q", r.status, started.TraceParent, tp)
	}
}
