package api_test

import (
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/examples/orders"
)

// An event published without a correlation id gets its subject's: the
// history of the business key finds it and what it caused.
func TestPublishCorrelatesBySubject(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	o := orders.NewOrder(43)
	r := s.do(t, "POST", "/v1/events", map[string]any{"type": orders.TypeOrderPlaced, "subject": o.OrderID, "data": o})
	var p api.Published
	r.decode(t, &p)
	if r.status != 202 || p.CorrelationID != o.OrderID {
		t.Fatalf("publish: %d %s; want the correlation id %s", r.status, r.body, o.OrderID)
	}
	var h api.History
	s.do(t, "GET", "/v1/history/"+o.OrderID, nil).decode(t, &h)
	if len(h.Entries) == 0 || h.Entries[0].EventID != p.ID {
		t.Errorf("history of %s: %+v; want the published event first", o.OrderID, h.Entries)
	}
}
