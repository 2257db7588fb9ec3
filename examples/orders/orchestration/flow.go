// Package orchestration wires the order services of package orders under a
// coordinator: the same services that choreography runs, unchanged, with the
// order process written down as a flow.
package orchestration

import (
	"encoding/json"

	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/flow"
)

// inputSchema is what an order must look like to start a run.
var inputSchema = json.RawMessage(`{
  "type": "object",
  "required": ["order_id", "items", "amount_cents"],
  "properties": {
    "order_id": {"type": "string", "minLength": 1},
    "customer": {"type": "string"},
    "items": {"type": "array", "minItems": 1},
    "amount_cents": {"type": "integer", "minimum": 1}
  }
}`)

// Flow is the order process: charge, reserve, notify, complete. A declined
// payment cancels the order; running out of stock refunds the payment (the
// charge step's compensation) and then cancels the order. An order whose
// payment service gave up is left failed, its event in the payment
// service's dead letters.
func Flow() flow.Flow {
	forward := func(name string) *flow.Step {
		// Hand the event that ended the run on to its handler: the failure
		// a service reported, or the refund a compensation produced.
		return &flow.Step{Name: name, Send: &flow.Send{Type: "$last", Data: "last"}}
	}
	return flow.Flow{
		Name:        "order",
		Version:     1,
		InputSchema: inputSchema,
		Steps: []flow.Step{
			{
				Name:       "charge",
				Send:       &flow.Send{Type: orders.TypeOrderPlaced, FailOn: []string{orders.TypePaymentFailed}},
				Compensate: forward("refund"),
			},
			{Name: "reserve", Send: &flow.Send{Type: orders.TypePaymentProcessed, Data: "steps.charge", FailOn: []string{orders.TypeInventoryFailed}}},
			{Name: "notify", Send: &flow.Send{Type: orders.TypeInventoryReserved, Data: "steps.reserve"}},
			{Name: "complete", Send: &flow.Send{Type: orders.TypeNotificationSent, Data: "steps.notify"}},
		},
		OnFailure: []flow.Step{{
			Name: "cancel",
			Choice: []flow.Branch{{
				When:  &flow.Condition{Path: "last.type", Op: "in", Value: []any{orders.TypePaymentFailed, orders.TypePaymentRefunded}},
				Steps: []flow.Step{*forward("cancel_order")},
			}},
		}},
	}
}
