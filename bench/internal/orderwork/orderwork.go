// Package orderwork is the work each service of the order flow does per
// event when it is written without Baton: the hand-written flows in bench
// and the Watermill flow in bench/watermill share it, so that every peer
// does the same work per handler as the orders example's services (decode
// the event's JSON, check it, build the next event's data, encode it), with
// no faults and no ledger.
package orderwork

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/batonhq/baton/examples/orders"
)

// Hop is one service of the order flow: it consumes events of type In and,
// from each one's data, makes the data of one event of type Out and tells
// which order it is about.
type Hop struct {
	Group, In, Out string
	Handle         func(data []byte) (out []byte, orderID string, err error)
}

// transform decodes data into In and encodes what next makes of it.
func transform[In any](next func(In) (any, string, error)) func([]byte) ([]byte, string, error) {
	return func(data []byte) ([]byte, string, error) {
		var in In
		if err := json.Unmarshal(data, &in); err != nil {
			return nil, "", err
		}
		v, id, err := next(in)
		if err != nil {
			return nil, "", err
		}
		out, err := json.Marshal(v)
		return out, id, err
	}
}

// Hops are the order flow's four services, in the order an order passes
// through them: payment, inventory, notification, and the order service,
// which completes the order (nothing consumes order.completed).
func Hops() []Hop {
	return []Hop{
		{"payment", orders.TypeOrderPlaced, orders.TypePaymentProcessed, transform(func(o orders.OrderPlaced) (any, string, error) {
			if err := o.Validate(); err != nil {
				return nil, "", err
			}
			return orders.PaymentProcessed{OrderID: o.OrderID, PaymentID: "pay-" + o.OrderID, Customer: o.Customer, Items: o.Items, AmountCents: o.AmountCents}, o.OrderID, nil
		})},
		{"inventory", orders.TypePaymentProcessed, orders.TypeInventoryReserved, transform(func(p orders.PaymentProcessed) (any, string, error) {
			if p.OrderID == "" || len(p.Items) == 0 {
				return nil, "", errors.New("order_id or items missing")
			}
			return orders.InventoryReserved{OrderID: p.OrderID, ReservationID: "res-" + p.OrderID, PaymentID: p.PaymentID, Customer: p.Customer, Items: p.Items, AmountCents: p.AmountCents}, p.OrderID, nil
		})},
		{"notification", orders.TypeInventoryReserved, orders.TypeNotificationSent, transform(func(r orders.InventoryReserved) (any, string, error) {
			if r.OrderID == "" {
				return nil, "", errors.New("order_id missing")
			}
			return orders.NotificationSent{OrderID: r.OrderID, Customer: r.Customer, Channel: "email", Message: fmt.Sprintf("Your order %s is confirmed and on its way.", r.OrderID)}, r.OrderID, nil
		})},
		{"order", orders.TypeNotificationSent, orders.TypeOrderCompleted, transform(func(s orders.NotificationSent) (any, string, error) {
			if s.OrderID == "" {
				return nil, "", errors.New("order_id missing")
			}
			return orders.OrderCompleted{OrderID: s.OrderID}, s.OrderID, nil
		})},
	}
}

// Order is the data of the i-th order placed, as the Baton benchmarks
// place it, and its id.
func Order(i int) (data []byte, orderID string) {
	o := orders.NewOrder(i)
	data, _ = json.Marshal(o)
	return data, o.OrderID
}
