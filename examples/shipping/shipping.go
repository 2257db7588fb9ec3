// Package shipping is the service of docs/first-service.md: it schedules
// a pickup for every order that is ready to ship, and a flow that ships an
// order through it. cmd/shipping runs the service in a process of its own;
// cmd/ship runs the flow under a coordinator, with the API.
package shipping

import (
	"context"
	"errors"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
)

// Request asks for a shipment: the data of shipment.requested.v1.
type Request struct {
	OrderID string `json:"order_id"`
	Address string `json:"address"`
}

// Scheduled says when it is picked up: the data of shipment.scheduled.v1.
type Scheduled struct {
	OrderID string `json:"order_id"`
	Carrier string `json:"carrier"`
}

// Service is the shipping service: one handler, for shipment.requested.v1.
func Service() baton.Service {
	return baton.Service{Name: "shipping", Handlers: []baton.Handler{
		{Type: "shipment.requested.v1", Func: schedule},
	}}
}

func schedule(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var req Request
	if err := e.Decode(&req); err != nil {
		return nil, baton.Permanent(err) // retrying cannot fix it
	}
	if req.Address == "" {
		return nil, baton.Permanent(errors.New("no address to ship to"))
	}
	out, err := baton.NewEvent("shipment.scheduled.v1", req.OrderID,
		Scheduled{OrderID: req.OrderID, Carrier: "parcel-post"})
	return []baton.Event{out}, err
}

// Flow ships an order: one step, which the shipping service handles.
func Flow() flow.Flow {
	return flow.Flow{Name: "ship", Version: 1, Steps: []flow.Step{
		{Name: "schedule", Send: &flow.Send{Type: "shipment.requested.v1"}},
	}}
}
